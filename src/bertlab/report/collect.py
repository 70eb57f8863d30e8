"""Find the runs under sweep folders and read what each left: `result.json` and `metrics.csv`.

A run folder is what `sweep.folders.is_run_dir` says it is (the sweep's summary counts the same
folders): one that holds a `result.json`, a `.hydra` folder, or a numbered job folder beside a
sweep's `multirun.yaml`. A run folder whose
`result.json` is missing or malformed becomes a `BadRun` with the reason, so the report lists
it instead of silently counting fewer seeds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bertlab.core.record import RESULT_FILE
from bertlab.core.values import is_number
from bertlab.loggers.metrics_file import METRICS_FILE
from bertlab.sweep.folders import is_run_dir

REQUIRED_KEYS = ("status", "task", "main_metric", "settings")


@dataclass
class Run:
    """One readable `result.json`; metric values are floats (NaN where the record had null)."""

    path: Path
    status: str
    error: str | None
    task: str
    main_metric: str
    settings: dict
    swept: list[str] | None
    overrides: dict[str, str]
    metrics: dict[str, float]
    baseline: dict[str, float]

    def metric(self, prefix: str) -> float:
        return self.metrics.get(f"{prefix}/{self.main_metric}", math.nan)

    @property
    def seed(self):
        return self.settings.get("seed")


@dataclass
class BadRun:
    path: Path
    reason: str


@dataclass
class Collection:
    runs: list[Run] = field(default_factory=list)
    bad: list[BadRun] = field(default_factory=list)


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders under `root` (or `root` itself), in path order; never looks inside a run folder."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames.clear()  # wandb/, model/, .hydra/ of a run hold no runs
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found, key=_natural_key)


def _natural_key(path: Path):
    # job folders 0, 1, ..., 10 in numeric order
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts]


def _as_float(value) -> float:
    """A record's number as a float; nan for anything else (a missing or non-numeric field)."""
    return float(value) if is_number(value) else math.nan


def _parse_overrides(overrides) -> dict[str, str]:
    parsed = {}
    for item in overrides or []:
        if isinstance(item, str) and "=" in item:
            key, value = item.split("=", 1)
            parsed[key.lstrip("+~")] = value
    return parsed


def read_run(path: Path) -> Run | BadRun:
    file = path / RESULT_FILE
    if not file.exists():
        return BadRun(path, f"no {RESULT_FILE} (still running, or killed before it was written)")
    try:
        record = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as err:
        return BadRun(path, f"{RESULT_FILE} unreadable: {err}")
    except json.JSONDecodeError as err:
        return BadRun(path, f"{RESULT_FILE} is not valid JSON: {err}")
    if not isinstance(record, dict):
        return BadRun(path, f"{RESULT_FILE} holds a {type(record).__name__}, not an object")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        return BadRun(path, f"{RESULT_FILE} lacks {', '.join(missing)}")
    if not isinstance(record["settings"], dict):
        return BadRun(path, f"{RESULT_FILE}: 'settings' is not an object")
    metrics = record.get("metrics") or {}
    baseline = record.get("baseline") or {}
    if not isinstance(metrics, dict) or not isinstance(baseline, dict):
        return BadRun(path, f"{RESULT_FILE}: 'metrics' or 'baseline' is not an object")
    swept = record.get("swept")
    run = Run(
        path=path,
        status=str(record["status"]),
        error=record.get("error"),
        task=str(record["task"]),
        main_metric=str(record["main_metric"]),
        settings=record["settings"],
        swept=[str(k).lstrip("+~") for k in swept] if isinstance(swept, list) else None,
        overrides=_parse_overrides(record.get("overrides")),
        # null is how result.json writes NaN: keep the key, so the run counts as failed, not malformed
        metrics={str(k): _as_float(v) for k, v in metrics.items()},
        baseline={str(k): _as_float(v) for k, v in baseline.items()},
    )
    if run.status == "ok" and not any(f"{p}/{run.main_metric}" in metrics for p in ("test_best", "test_last")):
        return BadRun(path, f"status ok but no test_best/{run.main_metric} or test_last/{run.main_metric} in metrics")
    return run


def collect(dirs: list[Path]) -> Collection:
    """Every run under `dirs`; raises FileNotFoundError for a folder that does not exist."""
    collection = Collection()
    seen: set[Path] = set()
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"no such folder: {root}")
        for path in find_run_dirs(root):
            if path.resolve() in seen:  # overlapping arguments, e.g. a sweep and its parent
                continue
            seen.add(path.resolve())
            item = read_run(path)
            (collection.runs if isinstance(item, Run) else collection.bad).append(item)
    return collection


def read_curves(run: Run) -> tuple[pd.DataFrame | None, str | None]:
    """(step, val, loss) rows from the run's `metrics.csv`, or (None, reason) when unusable.

    `val` is the main metric at each validation, `loss` the training loss at each logging step.
    """
    file = run.path / METRICS_FILE
    if not file.exists():
        return None, None  # logger=none: nothing to plot, nothing wrong
    try:
        frame = pd.read_csv(file)
    except (OSError, ValueError) as err:
        return None, f"{METRICS_FILE} unreadable: {err}"
    if "step" not in frame.columns:
        return None, f"{METRICS_FILE} has no 'step' column"
    val_col = f"val/{run.main_metric}"
    loss_col = next((c for c in ("train/loss", "train/loss_step") if c in frame.columns), None)
    curves = pd.DataFrame({"step": pd.to_numeric(frame["step"], errors="coerce")})
    curves["val"] = pd.to_numeric(frame[val_col], errors="coerce") if val_col in frame.columns else math.nan
    curves["loss"] = pd.to_numeric(frame[loss_col], errors="coerce") if loss_col else math.nan
    return curves.dropna(subset=["step"]), None
