"""`bertlab report SWEEP --wandb`: the report's tables and figures as a W&B run in the sweep's group,
so the paper-style comparison sits beside the jobs' curves on the dashboard.

The run is named `report`, its job type is `report`, and it lands in the group the sweep's jobs
logged to (run/identity.py `sweep_group`: the sweep folder) and in their project and entity (read
from the first job's saved config). Offline-capable like every run: without an API key (or
without network) it is written under `<out>/wandb/` and synced later with `wandb sync`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from bertlab.report.build import runs_table
from bertlab.report.model import Report

DEFAULT_PROJECT = "bertlab"  # conf/logger/wandb.yaml's logger.wandb.project


def _logger_settings(report: Report) -> tuple[str, str | None]:
    """(project, entity) the sweep's jobs logged to: their saved config (`.hydra/config.yaml`)."""
    for task in report.tasks:
        for run in task.runs:
            saved = Path(run.path) / ".hydra" / "config.yaml"
            if saved.is_file():
                logger = OmegaConf.load(saved).get("logger") or {}
                # the logger.wandb entry; a run saved by an older bertlab: logger.project, logger.entity
                wandb = logger.get("wandb") if isinstance(logger.get("wandb"), Mapping) else logger
                return str(wandb.get("project") or DEFAULT_PROJECT), wandb.get("entity")
    return DEFAULT_PROJECT, None


def _table(frame):
    """A W&B table of a pandas frame, its index as columns (the settings)."""
    import wandb

    frame = frame.reset_index() if frame.index.name or any(frame.index.names) else frame
    return wandb.Table(dataframe=frame.astype(object).where(frame.notna(), None))


def log_report(report: Report, out: Path, command: str) -> str:
    """Log the report to W&B; returns where it went (the run's URL, its offline folder, or why not)."""
    import wandb

    from bertlab.loggers.build import wandb_mode
    from bertlab.run.identity import sweep_group

    project, entity = _logger_settings(report)
    mode = wandb_mode(None)  # online with a key and an answering server, else offline (one line says so)
    if mode == "disabled":
        return "not logged: W&B is disabled (WANDB_MODE=disabled)"
    run = wandb.init(
        project=project,
        entity=entity,
        name="report",
        group=sweep_group(report.dirs[0]),
        job_type="report",
        dir=str(out),
        mode=mode,
        config={"command": command, "dirs": [str(d) for d in report.dirs], "threshold": report.threshold},
        settings=wandb.Settings(quiet=True, silent=mode != "online"),
    )
    try:
        logged = {"runs": _table(runs_table(report))}
        for task in report.tasks:
            logged[f"{task.name}/summary"] = _table(task.summary)
            logged[f"{task.name}/paired"] = _table(task.paired)
            logged[f"{task.name}/variance"] = _table(task.variance)  # split vs seed (variance.py)
            logged[f"{task.name}/expected_max"] = _table(task.expected)  # E[best of n] (expected_max.py)
            for name, path in task.figures.items():
                logged[f"{task.name}/{name}"] = wandb.Image(str(path))
        run.log(logged)
        where = run.url if mode == "online" else str(Path(run.dir).parent)
    finally:
        run.finish()
    return where
