"""problems/registry.py: `task.problem` names a packaged problem or a fork's module; what each wrong
name says."""

import sys

import pytest

from bertlab.core.errors import ConfigError
from bertlab.problems.problem import Problem
from bertlab.problems.registry import PROBLEMS, problem_named


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_packaged_name_gives_its_problem(name):
    problem = problem_named(name)
    assert isinstance(problem, Problem) and problem.name == name
    assert problem.sequence == (name in ("classification", "regression"))
    assert problem.regression == (name == "regression")


def test_an_unknown_name_lists_the_valid_ones_and_how_to_name_a_fork():
    with pytest.raises(ConfigError) as err:
        problem_named("clasification")
    message = str(err.value)
    assert message.startswith("task.problem=clasification is invalid; valid: classification, regression,")
    assert "PYTHONPATH" in message and "PROBLEM" in message and "module:ATTR" in message


def test_a_fork_module_that_does_not_import_says_so():
    with pytest.raises(ConfigError, match=r"task.problem=nowhere_pkg.rating: module nowhere_pkg.rating cannot be"):
        problem_named("nowhere_pkg.rating")


def _fork(tmp_path, monkeypatch, text: str) -> str:
    folder = tmp_path / "forkpkg_registry"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "mine.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("forkpkg_registry", "forkpkg_registry.mine"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return "forkpkg_registry.mine"


def test_a_fork_module_without_the_attribute_says_what_to_define(tmp_path, monkeypatch):
    module = _fork(tmp_path, monkeypatch, "OTHER = 1\n")
    with pytest.raises(
        ConfigError, match=r"module forkpkg_registry.mine defines no PROBLEM; it must define PROBLEM = "
    ):
        problem_named(module)
    with pytest.raises(ConfigError, match=r"module forkpkg_registry.mine has OTHER, a int, not a Problem"):
        problem_named(f"{module}:OTHER")


def test_a_fork_module_gives_its_problem_by_default_or_by_attribute(tmp_path, monkeypatch):
    text = (
        "import dataclasses\n"
        "from bertlab.problems.sequence import REGRESSION\n"
        "PROBLEM = dataclasses.replace(REGRESSION, name='rating')\n"
        "STARS = dataclasses.replace(REGRESSION, name='stars')\n"
    )
    module = _fork(tmp_path, monkeypatch, text)
    assert problem_named(module).name == "rating"
    assert problem_named(f"{module}:STARS").name == "stars"
    assert problem_named(module).kind == "regression"
