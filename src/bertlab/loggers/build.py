"""Experiment loggers: Weights & Biases (default), TensorBoard, MLflow, several at once, a fork's own
(the `logger` entries, conf/logger/ and choice.py), a local CSV of every logged metric, or none.
Each library is imported only when its logger is on.

`metrics.csv` in the run directory is what the sweep report reads for its curves, so it is
written whenever a logger is on. W&B never blocks a run: with no API key, or when its server
does not answer (a compute node without network), it logs offline and says how to sync later.
"""

import os
from pathlib import Path

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.core.network import unreachable
from bertlab.loggers.choice import CONTEXT, LOGGER_WHAT, logger_entries
from bertlab.loggers.console import wandb_settings
from bertlab.loggers.dashboards import (
    mlflow_held,
    send_wandb_missing,
    skip_logged,
    tensorboard_held,
    wandb_run_id,
)
from bertlab.loggers.metrics_file import METRICS_FILE
from bertlab.loggers.run_csv import RunFolderCSVLogger, csv_logger

WANDB_MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")  # wandb's own (Settings.mode)
OFFLINE_MODES = ("offline", "dryrun", "disabled")  # dryrun: wandb's old name for offline
SYNC_HINT = "sync later with `wandb sync <run_dir>/wandb/offline-run-*` (or `wandb sync --sync-all` in that folder)."


MODE_KEY = "logger.wandb.mode"


def wandb_mode(configured: str | None) -> str:
    """online / offline / disabled: the config wins, then WANDB_MODE, then the key's presence.

    Online (asked for, or implied by a configured key) falls back to offline, saying so in one
    line, when the W&B server does not answer a quick probe: without network `wandb.init` would
    wait 90 s and fail the run. A key that W&B itself would refuse (wrong length or characters)
    is a ConfigError: the user meant to log online, and every run would fail or log elsewhere.
    """
    mode = configured or os.environ.get("WANDB_MODE")
    if mode and mode not in WANDB_MODES:
        key = MODE_KEY if configured else "WANDB_MODE"
        raise ConfigError(f"{key}={mode} is unknown; valid: {', '.join(WANDB_MODES)}.")
    if mode in OFFLINE_MODES:
        return mode
    base_url = wandb_base_url()
    if not wandb_api_key_configured(base_url):
        if mode:
            key = MODE_KEY if configured else "WANDB_MODE"
            raise ConfigError(
                f"{key}={mode} needs a W&B API key for {base_url}: run `wandb login` (or set "
                "WANDB_API_KEY), or log without one: logger.wandb.mode=offline."
            )
        say(f"W&B: no API key configured, logging offline; {SYNC_HINT}")
        return "offline"
    why = unreachable(base_url)
    if why is not None:
        say(f"W&B: {base_url} is unreachable ({why}), logging offline; {SYNC_HINT}")
        stop_wandb_telemetry()
        return "offline"
    return "online"


def stop_wandb_telemetry() -> None:
    """wandb's own usage telemetry posts to the server when the process exits, offline runs too:
    10 s more per run where the network drops packets. Off for this process and the wandb
    service it starts (which reads the variable)."""
    from wandb.analytics.opentelemetry import opentelemetry_proxy

    os.environ["WANDB_ERROR_REPORTING"] = "false"
    opentelemetry_proxy.disable()


def wandb_base_url() -> str:
    """The server wandb.init would talk to: WANDB_BASE_URL, else W&B's settings files, else api.wandb.ai."""
    from wandb.sdk import wandb_setup

    try:
        return str(wandb_setup.singleton().settings.base_url)
    except ValueError as err:  # pydantic's ValidationError, e.g. WANDB_BASE_URL=notaurl
        detail = " ".join(line.strip() for line in str(err).splitlines()[1:3])
        raise ConfigError(
            f"W&B settings are invalid: {detail}. Fix the WANDB_* variable (e.g. WANDB_BASE_URL) "
            "or the wandb settings file, or log without W&B: logger=csv."
        ) from None


def wandb_api_key_configured(base_url: str) -> bool:
    """Whether wandb.init finds credentials for `base_url` (WANDB_API_KEY, ~/.netrc from `wandb
    login`, its settings), found the way it does; raises ConfigError for a malformed key."""
    from wandb.errors import AuthenticationError

    # wandb's private wbauth (hence the pin to one wandb minor in pyproject.toml): its public
    # counterpart, wandb.login(prompt=False, verify=False), does find the key the same way, but it
    # also asks the server for the user's name to print "Currently logged in as" (a wait without
    # network, before our probe), prints it, and rewrites wandb's settings file. No public call
    # only answers "is a key configured, and well-formed?" (wandb 0.31).
    from wandb.sdk.lib.wbauth import authenticate_session

    try:
        auth = authenticate_session(host=base_url, source="bertlab", prompt=False, update_session=False)
    except AuthenticationError as err:
        # W&B names the variable (WANDB_API_KEY invalid: ...) but not the netrc file
        where = "" if os.environ.get("WANDB_API_KEY") else f"the W&B API key in {netrc_path()}: "
        raise ConfigError(
            f"{where}{err} Fix it with `wandb login --relogin` (or WANDB_API_KEY=<the key from "
            f"https://wandb.ai/authorize>), or log without it: logger.wandb.mode=offline."
        ) from None
    return auth is not None


def netrc_path() -> str:
    return os.environ.get("NETRC") or str(Path("~/.netrc").expanduser())


def build_loggers(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    keep_rows: int = 0,
    resumed: bool = False,
) -> list[Logger]:
    """The run's loggers: the `logger` entries (conf/logger/; a fork's too), each `_partial_: true`
    one given what it asks for of the run folder, run name, group (the sweep), tags, keep_rows and
    resumed flag (loggers/choice.py CONTEXT); and metrics.csv first whenever any entry is on (the
    report reads it). keep_rows: metrics.csv's rows a resumed run continues (run_csv.py). `resumed`:
    the run continues from its checkpoint, so each dashboard continues its run (dashboards.py) and
    leaves out the values the attempt before sent."""
    from bertlab.core.entries import build_entry

    context = dict(
        cfg=cfg, run_dir=run_dir, run_name=run_name, group=group, tags=tags, keep_rows=keep_rows, resumed=resumed
    )
    built: list[Logger] = []
    for name, entry in logger_entries(cfg.logger).items():
        built += build_entry(f"logger.{name}", entry, context, CONTEXT, LOGGER_WHAT)
    if not built:
        return []
    # metrics.csv directly in the run directory, first (logger=csv's entry, or added)
    csv = [lg for lg in built if isinstance(lg, RunFolderCSVLogger)][:1] or [csv_logger(run_dir, keep_rows)]
    # its readers find it by METRICS_FILE: a Lightning that renamed the file would leave them without curves
    assert ExperimentWriter.NAME_METRICS_FILE == METRICS_FILE, ExperimentWriter.NAME_METRICS_FILE
    dashboards = [lg for lg in built if not isinstance(lg, RunFolderCSVLogger)]
    if resumed:
        # The resumed run re-trains from its checkpoint to where the attempt before was killed, with
        # the same numbers. TensorBoard and MLflow leave out what their own files already hold, read
        # back: each value once. (metrics.csv would not do: it is written up to 5 s after them, so a
        # SIGKILL leaves them values it lacks.) W&B's writer keeps a run's records in memory until
        # it ends (wandb_file.py): a SIGKILL loses them all. So W&B gets the re-trained steps again,
        # and the rows before the checkpoint that no W&B file holds.
        for logger in dashboards:
            if isinstance(logger, TensorBoardLogger):
                skip_logged(logger, tensorboard_held(logger.log_dir))
            elif isinstance(logger, MLFlowLogger):
                skip_logged(logger, mlflow_held(logger))
            elif isinstance(logger, WandbLogger):
                sent = send_wandb_missing(logger, run_dir, keep_rows)
                if sent:
                    say(f"wandb: {sent} rows of metrics.csv that the attempts before had not written sent again")
    return csv + dashboards


def wandb_logger(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    project: str = "bertlab",
    entity: str | None = None,
    mode: str | None = None,
) -> WandbLogger:
    """Lightning's WandbLogger around a run we start with wandb.init (public), so that every argument
    is ours: Lightning's own init passes a deprecated `anonymous` that wandb warns about. The id is
    the run folder's (dashboards.py) and `resume="allow"`: a restarted run continues its W&B run.
    project, entity, mode: logger.wandb's keys."""
    import wandb

    mode = wandb_mode(mode)
    run = wandb.init(
        project=project,
        entity=entity,
        name=run_name,
        group=group,
        job_type=cfg.task.name,
        tags=tags,
        dir=str(run_dir),
        mode=mode,
        id=wandb_run_id(run_dir),
        resume="allow",
        config=OmegaConf.to_container(cfg, resolve=True),  # the full resolved config
        settings=wandb.Settings(**wandb_settings(mode)),
    )
    # the x-axis of every chart: the step Lightning passes (WandbLogger.log_metrics logs it as
    # trainer/global_step), as Lightning's own init defines it
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return WandbLogger(experiment=run, project=project, save_dir=str(run_dir))


def finish_wandb(exit_code: int = 0) -> None:
    """Close the W&B run, so the next job of a multirun (same process) opens a fresh one."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
