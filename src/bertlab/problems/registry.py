"""`task.problem` -> its Problem: the one place that lists them."""

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError
from bertlab.problems.multiple_choice import MULTIPLE_CHOICE
from bertlab.problems.problem import Problem
from bertlab.problems.question_answering import QUESTION_ANSWERING
from bertlab.problems.sequence import CLASSIFICATION, REGRESSION
from bertlab.problems.token_classification import TOKEN_CLASSIFICATION

PROBLEMS = {p.name: p for p in (CLASSIFICATION, REGRESSION, TOKEN_CLASSIFICATION, MULTIPLE_CHOICE, QUESTION_ANSWERING)}


def problem_of(task: DictConfig) -> Problem:
    problem = PROBLEMS.get(task.problem)
    if problem is None:
        raise ConfigError(f"task.problem={task.problem} is invalid; valid: {', '.join(PROBLEMS)}.")
    return problem
