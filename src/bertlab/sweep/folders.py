"""Sweep-level bookkeeping: one job per folder, skip jobs already done, and a summary with the
sweep's exit code.

- A job folder belongs to one job, named by its overrides (in its `result.json`, or in
  `.hydra/overrides.yaml` when the job died before writing one). A multirun into a folder that
  already holds jobs (`hydra.sweep.dir=X` again) may re-use a job folder only for the same job:
  `SweepFolderGuard` (a Hydra callback, conf/train.yaml) works out which folder each job of this
  grid will get, before the sweeper writes anything (multirun.yaml, `.hydra/`), and refuses the
  whole sweep with one message when one of them holds another job, or something that is no job's
  (a file, a folder that is no run, a folder this user cannot write: `blocked_places`, which a
  search checks for its trials' folders too). So the same command resumes
  its sweep, a grid that only adds jobs extends it, and a different grid never overwrites a
  finished job. `foreign_result` is the same rule inside a job, for sweepers whose jobs cannot be
  listed in advance.
- `finished_result`: a re-run of the same sweep skips a job whose `result.json` says `ok` for the
  same overrides; failed, diverged and missing jobs run again.
- `SweepSummary`: a Hydra callback that, once every job of a multirun has ended, counts this
  grid's jobs by the status in their `result.json` (jobs of an earlier grid in the same folder
  are not counted), lists the ones that did not succeed, and exits non-zero if any (a search,
  hparams_search=: if no trial succeeded; a failed trial is one of its results, not re-run). It reads
  files, not the launcher's return values, so it works the same with every launcher (basic,
  gpus, slurm).
"""

import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from bertlab.core.record import RESULT_FILE, read_result

EXIT_JOBS_FAILED = 1
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"  # a config value, not an import
SEARCH_SWEEPER = "hydra_plugins.bertlab_launchers.optuna_sweeper.OptunaSearch"  # hparams_search= (search.py)


def started_job(directory: Path) -> list[str] | None:
    """The overrides Hydra wrote when it last started a job in this folder, if any."""
    try:
        recorded = OmegaConf.load(Path(directory) / ".hydra" / "overrides.yaml")
    except (OSError, ValueError):
        return None
    return [str(o) for o in recorded] if OmegaConf.is_list(recorded) else None


def folder_job(directory: Path) -> list[str] | None:
    """The overrides of the job a folder holds: from its result.json, else from the overrides
    Hydra wrote when it started the job; None for a folder that holds no job."""
    record = read_result(directory)
    if record is not None and isinstance(record.get("overrides"), list):
        return record["overrides"]
    return started_job(directory)


def finished_result(run_dir: Path, overrides: list[str]) -> dict | None:
    """The job's earlier record if it succeeded with these same overrides, else None."""
    previous = read_result(run_dir)
    if previous and previous.get("status") == "ok" and previous.get("overrides") == list(overrides):
        return previous
    return None


def foreign_result(run_dir: Path, overrides: list[str]) -> dict | None:
    """The folder's record when it belongs to a job with other overrides (never overwrite it)."""
    previous = read_result(run_dir)
    if previous and isinstance(previous.get("overrides"), list) and previous["overrides"] != list(overrides):
        return previous
    return None


def planned_jobs(config: DictConfig) -> list[tuple[Path, list[str]]] | None:
    """(folder, overrides) of every job of this multirun, in launch order, worked out as Hydra's
    basic sweeper and run_job will (their own parser and override_dirname). None when it cannot be
    known in advance: another sweeper, or a job folder named after anything but the job's number
    and overrides."""
    # Private, kept: the job folders must be named exactly as Hydra names them (its sweeper's
    # batching and override_dirname), and Hydra 1.3 exposes neither publicly; a copy of ours
    # would drift silently from Hydra's on the next release (the sweep-folder tests run real sweeps).
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_cfg = config.hydra
    if hydra_cfg.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    subdir = str(OmegaConf.to_container(hydra_cfg.sweep, resolve=False)["subdir"])
    names = {"hydra.job.num", "hydra.job.override_dirname"}
    if not set(re.findall(r"\$\{([^}]*)\}", subdir)) <= names:
        return None
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    parser = OverridesParser.create(config_loader=loader)
    params = [f"{k}={v}" for k, v in (hydra_cfg.sweeper.get("params") or {}).items()]
    arguments = params + list(OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    dirname = hydra_cfg.job.config.override_dirname
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    jobs = []
    for num, overrides in enumerate(o for batch in batches for o in batch):
        named = get_overrides_dirname(
            parser.parse_overrides(overrides), list(dirname.exclude_keys), dirname.item_sep, dirname.kv_sep
        )
        folder = subdir.replace("${hydra.job.num}", str(num)).replace("${hydra.job.override_dirname}", named)
        jobs.append((sweep_dir / folder, list(overrides)))
    return jobs


def blocked_place(folder: Path) -> str | None:
    """Why a job could not have `folder` as its own, else None: Hydra would raise in the middle of
    the sweep (FileExistsError, PermissionError) and end it without a summary, or mix the job's
    files into something that is not a run."""
    if folder.is_symlink() and not folder.exists():
        return "is a broken link"
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    if not folder.is_dir():
        return None  # Hydra creates it (the sweep folder's own checks: run/folder.py)
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot be written by this user (owner uid {folder.stat().st_uid})"
    if not holds_a_run(folder) and any(folder.iterdir()):
        held = sorted(p.name for p in folder.iterdir())
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        return f"is a folder that holds no run ({shown})"
    return None


def blocked_places(folders: list[Path]) -> str | None:
    """One message naming every job folder of a sweep that is taken by something else (a file, a
    folder that is no run, another user's folder), checked before the first job starts: the
    user decides what happens to their files, and a sweep that would fail at job 37 fails now."""
    blocked = [f"{folder} {why}" for folder in folders if (why := blocked_place(folder)) is not None]
    if not blocked:
        return None
    shown = "; ".join(blocked[:5]) + (f"; and {len(blocked) - 5} more" if len(blocked) > 5 else "")
    return (
        f"{len(blocked)} job folder{'s' if len(blocked) > 1 else ''} of this sweep {'are' if len(blocked) > 1 else 'is'} "
        f"taken: {shown}. Nothing was run. Move or remove {'them' if len(blocked) > 1 else 'it'}, or use a new "
        "hydra.sweep.dir."
    )


def numbered_folders(config: DictConfig, count: int) -> list[Path]:
    """The folders of jobs 0..count-1 when a job's folder is named by its number alone (a search's
    trials: their overrides are not known in advance); else none."""
    subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
    if set(re.findall(r"\$\{([^}]*)\}", subdir)) != {"hydra.job.num"}:
        return []
    sweep_dir = Path(str(config.hydra.sweep.dir))
    return [sweep_dir / subdir.replace("${hydra.job.num}", str(num)) for num in range(count)]


def other_jobs_in_the_way(config: DictConfig) -> str | None:
    """One message when a job folder this multirun would use holds another job, or something that
    is no job's (blocked_places); else None."""
    jobs = planned_jobs(config)
    if not jobs:
        return None
    blocked = blocked_places([folder for folder, _ in jobs])
    if blocked:
        return blocked
    clashes = []
    for folder, overrides in jobs:
        held = folder_job(folder) if folder.is_dir() else None
        if held is not None and held != overrides:
            status = (read_result(folder) or {}).get("status", "no result.json")
            # the overrides both jobs share say nothing: name the ones that differ
            theirs = " ".join(o for o in held if o not in overrides) or " ".join(held) or "(no overrides)"
            ours = " ".join(o for o in overrides if o not in held) or " ".join(overrides) or "(no overrides)"
            clashes.append(f"{folder.name}/ holds {theirs} ({status}), this sweep would run {ours} there")
    if not clashes:
        return None
    sweep_dir = jobs[0][0].parent if jobs else ""
    shown = "; ".join(clashes[:3]) + (f"; and {len(clashes) - 3} more" if len(clashes) > 3 else "")
    return (
        f"hydra.sweep.dir={sweep_dir} holds the jobs of another sweep: {shown}. Nothing was run or "
        f"overwritten. Use a new hydra.sweep.dir for this grid, or re-run that sweep's own command "
        "to resume it (a grid that only adds jobs to it may share the folder)."
    )


def holds_a_run(path: Path) -> bool:
    """A `result.json`, or a `.hydra/` (Hydra writes it before the job starts)."""
    return (Path(path) / RESULT_FILE).is_file() or (Path(path) / ".hydra").is_dir()


def is_run_dir(path: Path) -> bool:
    """A run's folder: it holds a run (`holds_a_run`), or it is a numbered job folder beside its
    sweep's `multirun.yaml`. The one rule for the sweep's summary and for the report, so both
    count the same jobs."""
    path = Path(path)
    numbered_job = path.name.isdigit() and (path.parent / "multirun.yaml").is_file()
    return path.is_dir() and (holds_a_run(path) or numbered_job)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (`is_run_dir`)."""
    dirs = [p for p in Path(sweep_dir).iterdir() if is_run_dir(p)]
    return sorted(dirs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def summarize(
    sweep_dir: Path,
    jobs: list[tuple[Path, list[str]]] | None = None,
) -> tuple[Counter, list[tuple[Path, str, str]]]:
    """Status counts, and (folder, status, error) of every job that did not succeed: of `jobs`
    (this grid's) when given, else of every job folder in the sweep folder, each as the job Hydra
    last started there."""
    counts: Counter = Counter()
    bad = []
    for directory, overrides in jobs if jobs is not None else ((d, started_job(d)) for d in job_dirs(sweep_dir)):
        record = read_result(directory)
        if record and overrides is not None and foreign_result(directory, overrides):
            record = {"status": "not run", "error": "its folder holds another job's result, kept as it was"}
        status = record.get("status", "unknown") if record else "no result.json"
        counts[status] += 1
        if status != "ok":
            bad.append(
                (
                    directory,
                    status,
                    (record or {}).get("error")
                    or "the job ended without writing its result (killed, or its folder could not be written)",
                )
            )
    return counts, bad


def summary_lines(
    sweep_dir: Path, jobs: list[tuple[Path, list[str]]] | None = None, search: bool = False
) -> tuple[list[str], bool]:
    """The summary's lines, and whether the sweep succeeded: every job ok; for a search (whose
    failed trials are told to Optuna as failed and never re-run), at least one trial ok."""
    counts, bad = summarize(sweep_dir, jobs)
    total = sum(counts.values())
    parts = [f"{counts.get('ok', 0)} succeeded"] + [
        f"{n} {status}" for status, n in sorted(counts.items()) if status != "ok"
    ]
    lines = [f"sweep {sweep_dir}: {total} job{'' if total == 1 else 's'}, {', '.join(parts)}"]
    for directory, status, error in bad:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        lines.append(f"  {directory.name}: {status}: {first[:300]}")
    if search:
        return lines, counts.get("ok", 0) > 0
    if bad:
        lines.append(f"re-run the same command with hydra.sweep.dir={sweep_dir} to re-run only these")
    return lines, not bad and total > 0


class SweepFolderGuard(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # runs before the sweeper writes multirun.yaml or any job folder
        problem = other_jobs_in_the_way(config)
        if problem:
            print(f"error: {problem}", file=sys.stderr, flush=True)
            # SystemExit passes through Hydra's callback wrapper (it catches Exception only)
            sys.exit(1)


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        search = config.hydra.sweeper.get("_target_") == SEARCH_SWEEPER
        lines, all_ok = summary_lines(sweep_dir, planned_jobs(config), search)
        print("\n".join(lines), flush=True)
        if not all_ok:
            # SystemExit passes through Hydra's callback wrapper (it catches Exception only)
            sys.exit(EXIT_JOBS_FAILED)
