"""Run the real entry point, `python train.py ...`, in a subprocess (as a user would)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_train(*overrides: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`env` adds to (or replaces) the defaults: no hub, W&B disabled; a None value unsets a variable."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", **(env or {})}
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


def results_under(folder: Path) -> dict[str, dict]:
    """Every result.json below `folder`, keyed by its run directory relative to `folder`."""
    return {str(p.parent.relative_to(folder)): json.loads(p.read_text()) for p in sorted(folder.rglob("result.json"))}
