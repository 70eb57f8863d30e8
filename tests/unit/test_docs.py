"""The README and the docs site say what is true of the code: the README stays a front door, its
commands compose, every path the docs name exists, every package has its API page, and the parts
generated at build time (scripts/docs_pages.py) render. `make docs` (mkdocs build --strict, in CI)
checks the links and the nav; these are what it cannot see."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from scripts import docs_pages
from tests.helpers.e2e import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "incoming" not in p.relative_to(DOCS).parts)
README_LIMIT = 10_000  # bytes: the front door; the rest belongs in docs/


def test_readme_is_a_front_door():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes, over {README_LIMIT:,}: move sections into docs/"


def train_commands(text: str) -> list[str]:
    """The `python train.py ...` command lines of a markdown text, continuation lines joined, a
    trailing comment dropped, a variable that starts a path (`$GLUE/RTE`) made a path; lines with
    other placeholders (`...`, `$C`, `<run_dir>`) are not whole commands and are left out."""
    text = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in text.splitlines():
        match = re.search(r"python train\.py(?P<args>[^`#]*)", line)
        if match:
            args = re.sub(r"\$\{?\w+\}?/", "/path/", match["args"])
            if not re.search(r"\.\.\.|\$|<", args):
                commands.append(args.strip())
    return commands


def first_job(args: str) -> list[str]:
    """The overrides of a command's first job: `-m` dropped, every sweep cut to its first value."""
    words = [w for w in shlex.split(args) if w not in ("-m", "--multirun")]
    overrides = OverridesParser.create().parse_overrides(words)
    return [
        f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
        for o in overrides
    ]


def check_commands(page: Path) -> None:
    """Each `python train.py` line of `page` names only keys and options that exist (bertlab's own
    check, which sees every option of a swept group), and its first job composes, as
    `python train.py` would do before it runs anything."""
    from hydra import compose, initialize_config_dir

    from bertlab.config.keys import check_command_line
    from bertlab.core.paths import CONF_DIR

    commands = train_commands(page.read_text(encoding="utf-8"))
    assert commands, f"{page.name} has no `python train.py` line left"
    for args in dict.fromkeys(commands):
        try:
            check_command_line([w for w in shlex.split(args) if w not in ("-m", "--multirun")], CONF_DIR)
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                compose("train", overrides=first_job(args), return_hydra_config=True)
        except (Exception, SystemExit) as err:
            pytest.fail(f"{page.relative_to(REPO)}: `python train.py {args}` does not compose: {err}")


README_COMMANDS = train_commands(README.read_text(encoding="utf-8"))


def test_readme_has_the_main_job_and_a_sweep():
    assert "" in README_COMMANDS, "README.md lost `python train.py` (the main job)"
    assert any(args.startswith("-m ") for args in README_COMMANDS), "README.md lost its sweep"


def test_readme_commands_compose():
    check_commands(README)


# About a second per command on 2 busy cores, sixty commands: with the end-to-end tests.
@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if "python train.py" in p.read_text()], ids=lambda p: p.name)
def test_docs_commands_compose(page):
    check_commands(page)


# `src/...`, or a path inside the package (`run/fit.py`, `conf/task/csv.yaml`): a file or folder to find.
PATH = re.compile(r"`((?:src|scripts|tests|docs)/[\w./-]*|[a-z_]+/[\w/]*\.(?:py|yaml))`")
LINK = re.compile(r"\]\(((?:src|scripts|tests|docs)/[^)#]*)")  # the README's links into the repository
ROOTS = (REPO, REPO / "src" / "bertlab", REPO / "src" / "bertlab" / "conf")


def test_every_path_the_docs_name_exists():
    missing = []
    for page in [README, *PAGES]:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for path in PATH.findall(line) + LINK.findall(line):
                if not any((root / path).exists() for root in ROOTS):
                    missing.append(f"{page.relative_to(REPO)}:{number}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_every_package_has_its_api_page_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    packages = sorted(p.name for p in (REPO / "src" / "bertlab").iterdir() if (p / "__init__.py").exists())
    for package in packages:
        page = DOCS / "api" / f"{package}.md"
        assert page.exists() and f"::: bertlab.{package}" in page.read_text(), f"no API page for bertlab.{package}"
        assert f"api/{package}.md" in nav, f"docs/api/{package}.md is not in mkdocs.yml's nav"


def test_generated_parts_render():
    for page in PAGES:
        docs_pages.render(page.read_text(encoding="utf-8"))  # raises on an unknown marker or module
    layout = docs_pages.layout()
    for module in (REPO / "src" / "bertlab").rglob("*.py"):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in layout
            assert docs_pages.summary(module), f"{module.relative_to(REPO)} has no docstring for the layout"
    with pytest.raises(ValueError, match="unknown generated part"):
        docs_pages.render("<!-- generated: nothing -->")


def test_every_benchmark_file_renders_as_tables():
    """Each section of each docs/bench/*.json has its table (a new section would fall back to a
    flat key/value table: give it a renderer in scripts/docs_pages.py)."""
    import json

    files = sorted((DOCS / "bench").glob("*.json"))
    assert files
    for path in files:
        sections = set(json.loads(path.read_text())) - docs_pages.HEADER_KEYS
        assert sections <= set(docs_pages.SECTIONS), (
            f"{path.name}: no renderer for {sections - set(docs_pages.SECTIONS)}"
        )
        text = docs_pages.bench_file(path)
        assert text.count("|---") >= len(sections)
    assert docs_pages._generic({"a": {"b": 1.5, "c": [1, 2]}}) == [
        "| key | value |",
        "|---|---|",
        "| a.b | 1.5000 |",
        "| a.c | 1, 2 |",
    ]


def test_mkdocs_config_builds_offline():
    """No fonts or plugins that fetch at build time; incoming notes are out of the build."""
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    assert config["theme"]["font"] == "false" and config["strict"] == "true"
    plugins = {p if isinstance(p, str) else next(iter(p)) for p in config["plugins"]}
    assert not plugins & {"social", "privacy", "optimize"}
    assert "incoming/" in config["exclude_docs"]
