"""`task.problem` -> its Problem: the one place that lists them.

Each problem's module is imported when a task asks for it: a run of one problem does not import
the readers, encoders and metrics of the others (question answering's windows, multiple choice,
token tags), which every job of a sweep would pay at start-up (docs/speed.md).
"""

import importlib

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError
from bertlab.problems.problem import Problem

# task.problem -> (module, the Problem it defines)
PROBLEMS = {
    "classification": ("bertlab.problems.sequence", "CLASSIFICATION"),
    "regression": ("bertlab.problems.sequence", "REGRESSION"),
    "token_classification": ("bertlab.problems.token_classification", "TOKEN_CLASSIFICATION"),
    "multiple_choice": ("bertlab.problems.multiple_choice", "MULTIPLE_CHOICE"),
    "question_answering": ("bertlab.problems.question_answering", "QUESTION_ANSWERING"),
}


def problem_of(task: DictConfig) -> Problem:
    return problem_named(task.problem)


def problem_named(problem: str) -> Problem:
    """The Problem of a `task.problem` value, its module imported now."""
    entry = PROBLEMS.get(problem)
    if entry is None:
        raise ConfigError(f"task.problem={problem} is invalid; valid: {', '.join(PROBLEMS)}.")
    module, name = entry
    return getattr(importlib.import_module(module), name)
