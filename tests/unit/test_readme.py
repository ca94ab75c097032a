"""The README stays true to the code it documents: its commands, files and settings exist."""

import re
import shlex

from reid.config import settings_table
from tools.shared import ROOT

README = (ROOT / "README.md").read_text()
# Every command of the README's bash blocks, continuation lines joined.
COMMANDS = [
    command.strip()
    for block in re.findall(r"```bash\n(.*?)```", README, re.S)
    for command in block.replace("\\\n", " ").splitlines()
    if command.strip()
]


def test_settings_table_is_current():
    assert settings_table() in README, "regenerate the table with: python -m reid.config"


def test_the_two_setup_commands_are_make_targets_and_ci_runs_the_test_one():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("serve", "test", "test-fast", "lint", "bento", "container", "test-container"):
        assert f"make {target}" in README and re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    ci = (ROOT / ".ci" / "run").read_text()
    for target in ("test", "test-container"):
        assert re.search(rf"^make {target}$", ci, re.M), f".ci/run must run make {target}"


def test_every_script_the_readme_runs_exists_and_takes_its_options():
    import subprocess
    import sys

    scripts: dict[str, set[str]] = {}
    for command in COMMANDS:
        words = shlex.split(command, comments=True)
        for start, word in enumerate(words):
            if word.startswith("scripts/") and word.endswith(".py"):
                options = {w.split("=")[0] for w in words[start:] if w.startswith("--")}
                scripts.setdefault(word, set()).update(options)
    assert scripts, "no script commands found in the README"
    for script, options in scripts.items():
        assert (ROOT / script).is_file(), script
        usage = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True).stdout
        missing = {option for option in options if option not in usage}
        assert not missing, f"{script} has no {missing}"


def test_every_docs_file_the_readme_names_exists():
    for name in set(re.findall(r"docs/[\w.-]+\.(?:json|png|jpg)", README)):
        assert (ROOT / name).is_file(), name
