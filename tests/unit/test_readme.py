"""The README stays true to the code it documents."""

from reid.config import settings_table
from tools.shared import ROOT

README = (ROOT / "README.md").read_text()


def test_settings_table_is_current():
    assert settings_table() in README, "regenerate the table with: python -m reid.config"


def test_readme_names_the_commands_ci_runs():
    assert "make test" in README and "make test" in (ROOT / ".ci" / "run").read_text()
