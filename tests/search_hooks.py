"""A Hydra callback that kills a search at a known point, for the resume test (no clocks).

Named on the command line with tests/ on PYTHONPATH (e2e.with_tests_on_path):
`+hydra.callbacks.kill._target_=search_hooks.KillAtJob +hydra.callbacks.kill.job=2`. On Hydra's
basic launcher a job runs in the search's own process, so killing the job kills the search, as
a user's `kill -9` or a lost node would: the job's folder exists, its trial is left running in
the study, and nothing after it runs.
"""

import os
import signal
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class KillAtJob(Callback):
    def __init__(self, job: int) -> None:
        self.job = job

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.num == self.job:
            os.kill(os.getpid(), signal.SIGKILL)
