"""`bertlab.train(overrides)`: one run of `python train.py <overrides>` inside this process, for a
notebook, a script or a test.

The same run as the command line's: the same key check first (config/keys.py), the same config
checks (check_config, in fit.py), the same run folder rules (`hydra.run.dir`, relative to the
current folder) and the same files in it (.hydra/, result.json, metrics.csv, app.log). It returns
the record written to result.json; a run that does not end ok raises what ended it (a ConfigError,
DataError or ModelError for bad input, with the message the command line prints; DivergedError for
a diverged run), after result.json is written. A library call never exits the process.

Why Hydra's own run machinery (`Hydra.run`, what `@hydra.main` calls after reading the command
line) and not `compose` + `HydraConfig.set_config`: Hydra.run is the code that makes the command
line's run folder. It resolves hydra.run.dir, writes .hydra/config.yaml, hydra.yaml and
overrides.yaml, configures the job's logging (the console lines and <run_dir>/app.log), applies
hydra.job.env_set and calls conf/train.yaml's Hydra callbacks; with compose we would copy each of
those steps and drift from them. `initialize_config_dir` gives the Hydra instance (job name `app`,
the name `@hydra.main` gives the job in run/app.py, hence app.log) and clears it on the way out.

What Hydra leaves behind in a process that runs on (it is written for one job per process) is put
back after each call: the logging handlers and levels (Hydra's dictConfig replaces the root's
handlers and leaves app.log open), the environment (Lightning's PL_GLOBAL_SEED, W&B's variables),
the warning filters, torch's deterministic flag and the current folder. The W&B run is finished by
the job itself (run/job.py). So several calls in one process give the numbers of separate processes.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR

JOB_NAME = "app"  # @hydra.main names the job after its module, run/app.py: the log file is app.log


def train(overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Run `python train.py <overrides>` in this process and return its result record (result.json).

    Raises ConfigError for a bad override (an unknown key, an unknown group option, a sweep: use the
    command line's -m for those) or a run folder that cannot be written, before anything runs; a run
    that does not end ok raises the exception that ended it once its result.json is written.
    """
    if isinstance(overrides, str):  # train("seed=1") would be read letter by letter
        raise ConfigError(f"bertlab.train takes a list of overrides, e.g. [{overrides!r}], not a string.")
    overrides = [str(o) for o in overrides]
    check_overrides(overrides, CONF_DIR)  # before the heavy imports, as the command line does
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode

    from bertlab.run.folder import check_writable

    with restored_process(), initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=JOB_NAME):
        hydra = GlobalHydra.instance().hydra
        try:
            cfg = hydra.compose_config("train", overrides, run_mode=RunMode.RUN)
        except HydraException as err:  # an unknown group option, a sweep without -m: Hydra's own message
            raise ConfigError(str(err)) from None
        # RunFolderCheck (conf/train.yaml) makes the same check but exits, as a command may
        message = check_writable(Path(str(cfg.hydra.run.dir)), "hydra.run.dir")
        if message is not None:
            raise ConfigError(message)
        value = hydra.run("train", _job, overrides).return_value
        if isinstance(value, Raised):
            raise value.error
        return value


class Raised(NamedTuple):
    """What ended a run, handed past Hydra: for a job that raises, Hydra writes "Error executing job
    with overrides: [...]" on stderr before re-raising it, a line the command line never shows."""

    error: Exception


def _job(cfg) -> dict | Raised:
    """The task function: run/app.py's, with the record returned instead of an exit code."""
    from bertlab.loggers.console import quiet_libraries
    from bertlab.run.job import record_job

    quiet_libraries()
    try:
        return record_job(cfg)
    except Exception as err:
        return Raised(err)


@contextmanager
def restored_process():
    """Put back, on the way out, the process state a run changes (the module docstring lists it)."""
    cwd, environ = os.getcwd(), dict(os.environ)
    root = logging.getLogger()
    loggers = {
        name: logger for name, logger in logging.Logger.manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }
    saved = {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for name, lg in loggers.items()}
    root_state = (root.level, list(root.handlers))
    deterministic = _torch_deterministic()
    try:
        with warnings.catch_warnings():
            yield
    finally:
        # the handlers Hydra's logging config put on the loggers that existed: closed below. Loggers
        # the run created keep theirs (a library's own, added at its import, as in a fresh process).
        before = set(root_state[1]).union(*(set(s[1]) for s in saved.values()))
        added = {h for lg in [root, *loggers.values()] for h in lg.handlers} - before
        for name, (level, handlers, propagate, disabled) in saved.items():
            logger = loggers[name]
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
        root.setLevel(root_state[0])
        root.handlers[:] = root_state[1]
        for handler in added:  # the run's console and app.log handlers: closed, the file released
            handler.close()
        if deterministic is not None:
            import torch

            torch.use_deterministic_algorithms(deterministic)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)


def _torch_deterministic() -> bool | None:
    import sys

    torch = sys.modules.get("torch")  # not imported yet: nothing to restore (the run sets it afresh)
    return None if torch is None else torch.are_deterministic_algorithms_enabled()
