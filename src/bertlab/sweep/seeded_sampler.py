"""A search's sampler whose every draw depends only on (seed, trial number, parameter) and the
study's trials: a search killed and started again proposes what an uninterrupted one would have.

Why: Optuna's samplers keep their random state in memory (TPESampler and RandomSampler: one numpy
RandomState, seeded once in __init__), and the study's storage does not hold it. A resumed search
builds its sampler from the same seed, so the RNG starts over and the first new trial replays the
first trial's proposal. Optuna's own recipe (the "Saving/Resuming Study with RDB Backend"
tutorial) pickles the sampler beside the study; but that file and the database cannot be written
in one step, and Optuna writes a new trial's parameters one row at a time, so a kill between two
writes would still break the sequence. Here each draw gets a fresh sampler seeded from
(seed, trial number, parameter name): there is no state to save, and a trial the kill left half
written is completed with the very values it would have got (tests/unit/test_search_resume.py kills at
each of these points).

It relies on the sampler keeping nothing in memory from one trial to the next but its RNG: true of
TPE, random, grid, brute force and NSGA-II (their history is the study's trials, or the study's
system attributes). QMCSampler is left as it is: its seed is one scramble of a single sequence,
and it numbers its points in the study already, so it resumes by itself.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from optuna.samplers import BaseSampler

# `_target_`s of samplers whose seed must stay one for the whole study (see the docstring)
RESUMES_BY_ITSELF = {"optuna.samplers.QMCSampler"}


def derived_seed(seed: int, *keys: Any) -> int:
    """A 32-bit seed (what numpy's RandomState takes) that depends only on seed and keys."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededSampler(BaseSampler):
    """Wraps `build(seed) -> sampler`: each call goes to a sampler built with a seed derived from
    `seed` and the trial's number (and, for an independent draw, the parameter's name)."""

    def __init__(self, build: Callable[[int], BaseSampler], seed: int) -> None:
        self._build, self._seed = build, seed

    def _for(self, trial, *name: str) -> BaseSampler:
        return self._build(derived_seed(self._seed, trial.number, *name))

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial, param_name).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every draw is seeded afresh."""


def build_sampler(config: dict | None) -> BaseSampler | None:
    """The search's sampler from `hydra.sweeper.sampler` (any optuna.samplers class). A seeded one
    is wrapped in TrialSeededSampler; an unseeded one (seed: null) cannot be reproduced anyway."""
    from hydra.utils import instantiate

    if not config:
        return None
    seed = config.get("seed")
    sampler = instantiate(config)  # a bad _target_ or argument fails here, once
    if seed is None or config.get("_target_") in RESUMES_BY_ITSELF:
        return sampler
    make = instantiate(config, _partial_=True)
    return TrialSeededSampler(lambda derived: make(seed=derived), seed)
