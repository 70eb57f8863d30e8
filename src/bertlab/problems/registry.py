"""`task.problem` -> its Problem: the one place that lists the packaged ones, and how a fork names its own.

`task.problem` is either a packaged name (PROBLEMS below) or a fork's module: a dotted module path
importable from the run's process (on PYTHONPATH), e.g. `task.problem: myproblems.rating`, whose
module defines `PROBLEM` (a problems/problem.py `Problem`), or `module:ATTR` to name another
attribute (`myproblems.rating:STARS`). So a fork adds a kind of task with one folder (its reader,
encoder, metrics and Problem, e.g. myproblems/rating/__init__.py) and one task YAML, without
touching bertlab (docs/extending.md).

Each problem's module is imported when a task asks for it: a run of one problem does not import
the readers, encoders and metrics of the others (question answering's windows, multiple choice,
token tags), which every job of a sweep would pay at start-up (docs/speed.md).
"""

import importlib

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError
from bertlab.problems.problem import Problem

# task.problem -> "module:ATTR", the Problem it names
PROBLEMS = {
    "classification": "bertlab.problems.sequence:CLASSIFICATION",
    "regression": "bertlab.problems.sequence:REGRESSION",
    "token_classification": "bertlab.problems.token_classification:TOKEN_CLASSIFICATION",
    "multiple_choice": "bertlab.problems.multiple_choice:MULTIPLE_CHOICE",
    "question_answering": "bertlab.problems.question_answering:QUESTION_ANSWERING",
}
DEFAULT_ATTR = "PROBLEM"  # what a fork's module defines, unless task.problem says module:ATTR

FORK_HINT = (
    "or a fork's own: a module on PYTHONPATH defining PROBLEM (task.problem=mypkg.myproblem), "
    "or module:ATTR (task.problem=mypkg.myproblem:MINE)"
)


def problem_of(task: DictConfig) -> Problem:
    return problem_named(task.problem)


def _is_module_path(value: str) -> bool:
    module, _, attr = value.partition(":")
    return (
        "." in module and all(part.isidentifier() for part in module.split(".")) and (not attr or attr.isidentifier())
    )


def problem_named(problem: str) -> Problem:
    """The Problem of a `task.problem` value, its module imported now."""
    spec = PROBLEMS.get(problem) if isinstance(problem, str) else None
    if spec is None:
        if not isinstance(problem, str) or not _is_module_path(problem):
            raise ConfigError(f"task.problem={problem} is invalid; valid: {', '.join(PROBLEMS)}, {FORK_HINT}.")
        spec = problem if ":" in problem else f"{problem}:{DEFAULT_ATTR}"
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"task.problem={problem}: module {module_name} cannot be imported ({type(err).__name__}: {err}); "
            "put the folder that holds it on PYTHONPATH (e.g. PYTHONPATH=/path/to/forks python train.py ...)."
        ) from err
    found = getattr(module, attr, None)
    if not isinstance(found, Problem):
        what = f"defines no {attr}" if found is None else f"has {attr}, a {type(found).__name__}, not a Problem"
        raise ConfigError(
            f"task.problem={problem}: module {module_name} {what}; it must define {attr} = "
            "bertlab.problems.problem.Problem(...) (docs/extending.md, 'A task')."
        )
    return found
