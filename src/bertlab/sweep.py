"""Sweep-level bookkeeping: skip jobs already done, and a summary with the sweep's exit code.

- `finished_result`: a re-run of the same sweep (same sweep directory) skips a job whose
  `result.json` says `ok` for the same overrides; failed, diverged and missing jobs run again.
- `SweepSummary`: a Hydra callback (conf/train.yaml, hydra.callbacks) that, once every job of a
  multirun has ended, counts the jobs' statuses from their `result.json` files, lists the ones
  that did not succeed, and exits non-zero if any. It reads files, not the launcher's return
  values, so it works the same with every launcher (basic, gpus, slurm).
"""

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bertlab.results import RESULT_FILE, read_result

EXIT_JOBS_FAILED = 1


def finished_result(run_dir: Path, overrides: list[str]) -> dict | None:
    """The job's earlier record if it succeeded with these same overrides, else None."""
    previous = read_result(run_dir)
    if previous and previous.get("status") == "ok" and previous.get("overrides") == list(overrides):
        return previous
    return None


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: those Hydra started (`.hydra/`) or that hold a result."""
    dirs = [p for p in Path(sweep_dir).iterdir() if p.is_dir() and ((p / ".hydra").is_dir() or (p / RESULT_FILE).is_file())]
    return sorted(dirs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def summarize(sweep_dir: Path) -> tuple[Counter, list[tuple[Path, str, str]]]:
    """Status counts, and (folder, status, error) of every job that did not succeed."""
    counts: Counter = Counter()
    bad = []
    for directory in job_dirs(sweep_dir):
        record = read_result(directory)
        status = record.get("status", "unknown") if record else "no result.json"
        counts[status] += 1
        if status != "ok":
            bad.append((directory, status, (record or {}).get("error") or
                        "the job ended without writing its result (killed, or its folder could not be written)"))
    return counts, bad


def summary_lines(sweep_dir: Path) -> tuple[list[str], bool]:
    counts, bad = summarize(sweep_dir)
    total = sum(counts.values())
    parts = [f"{counts.get('ok', 0)} succeeded"] + [f"{n} {status}" for status, n in sorted(counts.items()) if status != "ok"]
    lines = [f"sweep {sweep_dir}: {total} job{'' if total == 1 else 's'}, {', '.join(parts)}"]
    for directory, status, error in bad:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        lines.append(f"  {directory.name}: {status}: {first[:300]}")
    if bad:
        lines.append("re-run the same command with hydra.sweep.dir=" f"{sweep_dir} to re-run only these")
    return lines, not bad and total > 0


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        lines, all_ok = summary_lines(sweep_dir)
        print("\n".join(lines), flush=True)
        if not all_ok:
            # SystemExit passes through Hydra's callback wrapper (it catches Exception only)
            sys.exit(EXIT_JOBS_FAILED)
