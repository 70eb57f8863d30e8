"""Hooks that kill a search at a known point, for the resume tests (no clocks).

Named on the command line with the repository on PYTHONPATH (helpers/e2e.py with_tests_on_path). Every kill is a
SIGKILL of the search's own process, as a user's `kill -9` or a lost node: no handler runs.

- `KillAtJob`, a Hydra callback: `+hydra.callbacks.kill._target_=tests.helpers.search_hooks.KillAtJob
  +hydra.callbacks.kill.job=2`. On Hydra's basic launcher a job runs in the search's own process,
  so killing the job kills the search: the job's folder exists, its trial is left running in the
  study, and nothing after it runs.
- `KillingTPE`, the search's sampler (TPE, seeded as the default): `hydra.sweeper.sampler._target_=
  tests.helpers.search_hooks.KillingTPE +hydra.sweeper.sampler.at=create +hydra.sweeper.sampler.trial=2` kills
  inside Optuna's bookkeeping of that trial: `create` (its row exists, no parameter yet), `param`
  (with `+hydra.sweeper.sampler.param=NAME`: drawing that parameter, the ones before it written),
  `tell` (its value is being recorded: its state still says running).
"""

import os
import signal
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from optuna.samplers import TPESampler


def kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAtJob(Callback):
    def __init__(self, job: int) -> None:
        self.job = job

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.num == self.job:
            kill_this_process()


class KillingTPE(TPESampler):
    def __init__(self, at: str, trial: int, param: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.point = (at, trial, param)

    def _maybe_kill(self, at: str, trial, param: str | None = None) -> None:
        if (at, trial.number, param) == self.point:
            kill_this_process()

    def before_trial(self, study, trial) -> None:
        self._maybe_kill("create", trial)
        super().before_trial(study, trial)

    def sample_independent(self, study, trial, param_name, param_distribution):
        self._maybe_kill("param", trial, param_name)
        return super().sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._maybe_kill("tell", trial)
        super().after_trial(study, trial, state, values)
