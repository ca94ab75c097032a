"""The README and the pages of docs/ stay true to the code they document: the commands, scripts,
options, make targets, modules, settings, files and links they name exist, and the README fits
on a few screens.

Paths in code (`scripts/evaluate.py`, `docs/eval-default.json`) are from the repository's root,
as the commands run; links (`[api](docs/api.md)`, `![...](group-hall.jpg)`) are from their page.
"""

import ast
import contextlib
import fnmatch
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from reid.clients.cli import parser as reid_parser
from reid.config import Settings, settings_table
from reid_devtools.shared import ROOT

MAX_README_LINES = 200
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {page: page.read_text() for page in PAGES}
# What the repository holds at its root: a name in code that starts with one of these is a path.
TREE = (".ci", "deploy", "docs", "reid", "requirements", "scripts", "tests", "reid_devtools")
TREE_FILES = ("Makefile", "bentofile.yaml", "pyproject.toml", "service.py")
# The targets the pages must document, each a Makefile target.
TARGETS = ("serve", "test", "test-fast", "lint", "bento", "container", "test-container")


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text without its fenced blocks (code, JSON, the diagram)."""
    return re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.S | re.M)


def _spans(text: str) -> list[str]:
    """The inline code of the prose and tables, a span's line breaks read as spaces."""
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", _prose(text))]


def _commands(text: str) -> list[str]:
    """Every command of the bash blocks (continuation lines joined), and every inline span that
    runs one of the project's programs."""
    blocks = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip()
    ]
    inline = [span for span in _spans(text) if re.match(r"(\.venv/bin/|python3? |make |reid )", span)]
    return blocks + inline


COMMANDS = {page: _commands(text) for page, text in TEXT.items()}


def _words(command: str) -> list[str]:
    return [word.strip("[]") for word in shlex.split(command, comments=True)]


def test_the_readme_fits_on_a_few_screens():
    lines = len(TEXT[README].splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines: move detail into docs/"


def test_settings_table_is_current():
    assert settings_table() in TEXT[ROOT / "docs" / "settings.md"], (
        "regenerate the table in docs/settings.md with: python -m reid.config"
    )


def test_the_two_setup_commands_open_the_readme_and_ci_runs_the_test_one():
    first = re.search(r"```bash\n(.*?)```", TEXT[README], re.S)
    assert first, "README.md has no bash block"
    assert [_words(line) for line in first.group(1).splitlines()] == [["make", "serve"], ["make", "test"]]
    ci = (ROOT / ".ci" / "run").read_text()
    for target in ("test", "test-container"):
        assert re.search(rf"^make {target}$", ci, re.M), f".ci/run must run make {target}"


def test_every_make_target_the_pages_name_exists_and_each_is_documented():
    makefile = (ROOT / "Makefile").read_text()
    named = {_words(c)[1]: page for page, commands in COMMANDS.items() for c in commands if c.startswith("make ")}
    for target, page in named.items():
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{_name(page)}: no make target {target}"
    assert not set(TARGETS) - set(named), f"not documented: make {set(TARGETS) - set(named)}"


def test_every_script_the_pages_run_exists_and_takes_its_options():
    scripts: dict[str, set[str]] = {}
    for command in (c for commands in COMMANDS.values() for c in commands):
        words = _words(command)
        for start, word in enumerate(words):
            if word.startswith("scripts/") and word.endswith(".py"):
                scripts.setdefault(word, set()).update(w.split("=")[0] for w in words[start:] if w.startswith("--"))
    assert scripts, "no script commands found in the pages"
    for script, options in scripts.items():
        assert (ROOT / script).is_file(), script
        usage = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True).stdout
        missing = {option for option in options if option not in usage}
        assert not missing, f"{script} has no {missing}"


def _reid_help(*words: str) -> str:
    """``reid WORDS --help`` as it prints, or "" where WORDS are not a command."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        with pytest.raises(SystemExit) as stopped:
            reid_parser().parse_args([*words, "--help"])
    return out.getvalue() if stopped.value.code == 0 else ""


def test_every_reid_command_the_pages_run_exists_and_takes_its_options():
    # A synopsis names alternatives: `reid gallery list | get ID`, `reid gallery enrol|add-view ...`.
    checked = 0
    for page, commands in COMMANDS.items():
        for command in commands:
            words = _words(command)
            if not words or not re.fullmatch(r"(\.venv/bin/)?reid", words[0]):
                continue
            command_words = words[1:2]
            if words[1] in ("gallery", "models"):
                actions = words[2].split("|") + [words[k + 1] for k, word in enumerate(words[:-1]) if word == "|"]
                helps = [_reid_help(words[1], action) for action in actions]
            else:
                helps = [_reid_help(*command_words)]
            assert all(helps), f"{_name(page)}: not a reid command: {command}"
            options = {word.split("=")[0] for word in words if word.startswith("--")}
            missing = {o for o in options if not any(re.search(rf"(?<![\w-]){o}(?![\w-])", h) for h in helps)}
            assert not missing, f"{_name(page)}: {command} has no {missing}"
            checked += 1
    assert checked, "no reid commands found in the pages"


def _module_file(dotted: str) -> tuple[Path | None, list[str]]:
    """The source file of the longest module prefix of a dotted name, and the names after it."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, parts[end:]
    return None, parts


def _top_level_names(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def test_every_module_and_name_the_pages_name_exists():
    for page, text in TEXT.items():
        dotted = [span for span in _spans(text) if re.fullmatch(r"(reid|reid_devtools)(\.\w+)+", span)]
        dotted += [m for c in COMMANDS[page] for m in re.findall(r"(?:^|\s)-m\s+((?:reid|reid_devtools)[\w.]*)", c)]
        for name in dotted:
            source, rest = _module_file(name)
            assert source, f"{_name(page)}: no module {name}"
            if rest:
                assert rest[0] in _top_level_names(source), f"{_name(page)}: {name}: no {rest[0]} in {source}"


def test_every_setting_the_pages_name_exists():
    settings = {f"REID_{name.upper()}" for name in Settings.model_fields}
    # Beyond the settings, variables the tooling reads (REID_SHARED_DIR).
    sources = [ROOT / "service.py", *(p for d in TREE if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py"))]
    read = {name for p in sources for name in re.findall(r"[\"'](REID_[A-Z0-9_]+)[\"']", p.read_text())}
    for page, text in TEXT.items():
        for name in set(re.findall(r"REID_[A-Z0-9_*]*[A-Z0-9*]", text)):
            if "*" in name:
                assert fnmatch.filter(settings, name), f"{_name(page)}: no setting matches {name}"
            else:
                assert name in settings | read, f"{_name(page)}: no setting {name}"


def _paths(page: Path) -> set[str]:
    """The repository paths a page names in code and commands (brace patterns left out)."""
    words = [w for span in _spans(TEXT[page]) for w in span.split()] + [w for c in COMMANDS[page] for w in _words(c)]
    root = rf"(?:{'|'.join(re.escape(t) for t in TREE)})(?:/[\w.-]+)*/?|{'|'.join(re.escape(f) for f in TREE_FILES)}"
    paths = {word for word in words if re.fullmatch(root, word)}
    return paths | set(re.findall(r"docs/[\w.-]+\.(?:json|png|jpg|md)", TEXT[page]))


def test_every_file_the_pages_name_exists():
    missing = {_name(page): sorted(p for p in _paths(page) if not (ROOT / p).exists()) for page in PAGES}
    assert not any(missing.values()), f"the pages name what is not there: { {k: v for k, v in missing.items() if v} }"


def test_every_file_the_readme_folder_table_names_is_in_its_folder():
    rows = re.findall(r"^\| `([\w/]+/)` \|(.*)\|$", TEXT[README], re.M)
    assert rows, "README.md has no folder table"
    missing = [
        folder + name
        for folder, what in rows
        for name in re.findall(r"`([\w.-]+\.(?:py|sh))`", what)
        if not (ROOT / folder / name).is_file() and not (ROOT / name).is_file()  # or the root's own file
    ]
    assert not missing, f"README.md's folder table names what is not there: {missing}"


def test_every_figure_and_picture_in_docs_is_cited_by_a_page():
    text = "\n".join(TEXT.values())
    for file in sorted((ROOT / "docs").iterdir()):
        if file.suffix in (".json", ".png", ".jpg"):
            assert re.search(rf"(?<![\w.-]){re.escape(file.name)}", text), f"no page cites docs/{file.name}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text()), re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_every_relative_link_resolves_to_a_file_and_its_heading():
    for page, text in TEXT.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]+`", "", _prose(text))):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{_name(page)}: link to {target}: no such file"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file), f"{_name(page)}: link to {target}: no such heading"
