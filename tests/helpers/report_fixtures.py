"""Synthetic sweeps in the result-file contract, for the report tests.

`write_run` writes one Hydra job folder (`.hydra/`, `result.json`, `metrics.csv`);
`write_sweep` a sweep folder with `multirun.yaml` and one numbered job per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]

BASE_SETTINGS = {
    "task": "rte",
    "model": "minilm",
    "optimizer": "adamw",
    "bias_correction": True,
    "schedule": "linear",
    "reinit": 0,
    "reinit_pooler": False,
    "llrd": 1.0,
    "seed": 0,
    "lr": 2e-05,
    "weight_decay": 0.01,
    "batch_size": 16,
    "max_epochs": 3,
    "max_steps": -1,
    "n_train": 1000,
    "n_val": 1000,
    "data_seed": 0,
}


def settings(**changes) -> dict:
    values = dict(BASE_SETTINGS, **changes)
    if "optimizer" in changes:
        values["bias_correction"] = changes["optimizer"] != "bertadam"
    return values


def result(
    settings: dict,
    swept: list[str],
    best: float | None,
    last: float | None = None,
    status: str = "ok",
    main_metric: str = "accuracy",
    baseline: float | None = 0.55,
    overrides: list[str] | None = None,
) -> dict:
    metrics = {}
    if status == "ok":
        last = best if last is None else last
        metrics = {f"val/{main_metric}": best, f"test_best/{main_metric}": best, f"test_last/{main_metric}": last}
    return {
        "status": status,
        "error": None if status == "ok" else "CUDA out of memory",
        "task": settings["task"],
        "main_metric": main_metric,
        "settings": settings,
        "swept": swept,
        "overrides": overrides if overrides is not None else [f"{k}={settings[k]}" for k in swept if k in settings],
        "metrics": metrics,
        "baseline": {} if baseline is None else {f"test/{main_metric}": baseline},
        "train_samples_per_s": 15.0,
        "duration_s": 100.0,
        "run_dir": "/elsewhere/moved",
        "diverged_at_step": None,
    }


def write_metrics_csv(run_dir: Path, metric: str, final: float, seed: int, steps: int = 100) -> None:
    """10 validations rising linearly to `final`, a training loss logged every 5 steps."""
    rng = np.random.default_rng(seed)
    lines = [f"epoch,step,train/loss,val/{metric}"]
    for step in range(4, steps, 5):
        loss = 1.0 - final * step / steps + 0.05 * rng.standard_normal()  # better runs end lower
        lines.append(f"0,{step},{loss:.5f},")
        if (step + 1) % 10 == 0:
            lines.append(f"0,{step},,{final * (step + 1) / steps:.5f}")
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def write_run(run_dir: Path, record: dict | None, curves: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")
    if record is not None:
        (run_dir / "result.json").write_text(json.dumps(record, indent=2))
        best = record["metrics"].get(f"test_best/{record['main_metric']}")
        if curves and record["status"] == "ok" and best is not None:
            write_metrics_csv(run_dir, record["main_metric"], best, record["settings"]["seed"])
    return run_dir


def write_sweep(sweep_dir: Path, records: list[dict | None], curves: bool = True) -> Path:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    for num, record in enumerate(records):
        write_run(sweep_dir / str(num), record, curves=curves)
    return sweep_dir
