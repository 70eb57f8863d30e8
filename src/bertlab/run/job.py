"""One Hydra job's record, from start to exit: result.json is written whatever happens.

The record starts as `failed` with what is known before training (record.py lists its keys),
takes the run's results (run/fit.py `train`, the one composition of a run) when it succeeds or
outcome.py's status and error when it does not, is written in any case, and decides the exit code.
In a multirun a failed job is recorded and the sweep goes on; a single run exits non-zero with one
message. `bertlab.train` (run/inprocess.py) runs the same job through `record_job`, which returns
the record or raises what ended the run.
"""

import os
import sys
import time
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bertlab.callbacks.resume import remove_resume_state
from bertlab.core.devices import resolve_accelerator
from bertlab.core.errors import BertlabError
from bertlab.core.lines import say
from bertlab.core.record import RESULT_FILE, settings, write_json_atomic
from bertlab.loggers.build import finish_wandb
from bertlab.loggers.console import print_config
from bertlab.run.distill import TEACHER_DIR
from bertlab.run.fit import Run, train
from bertlab.run.folder import storage_error, storage_message
from bertlab.run.identity import JobIdentity, job_identity
from bertlab.run.model_card import write_model_card
from bertlab.run.outcome import exit_code, outcome
from bertlab.run.saved_run import MODEL_DIR
from bertlab.sweep.folders import finished_result, foreign_result


def first_record(cfg: DictConfig, run_dir: Path, job: JobIdentity) -> dict:
    """What result.json holds before training: a failed run, unless something replaces the status."""
    return {
        "status": "failed",
        "error": None,
        "task": cfg.task.name,
        "main_metric": cfg.task.main_metric,
        "settings": settings(cfg),
        "swept": job.swept,
        "overrides": job.overrides,
        "metrics": {},
        "run_dir": str(run_dir),
        "devices": {
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "accelerator": resolve_accelerator(cfg.trainer.accelerator),
        },
        "pid": os.getpid(),  # a fresh process per job on the gpus launcher (tested)
    }


def write_record(record: dict, run_dir: Path, multirun: bool, keep_resume: bool) -> bool:
    """Write result.json; never raises. A record that cannot be written turns the job failed, its
    error saying why. Returns whether the resume checkpoint must be kept (a full folder)."""
    try:
        write_json_atomic(run_dir / RESULT_FILE, record)
    except OSError as err:
        # Never raised from here: in a sweep, Hydra would re-raise it after the jobs and skip the
        # summary. The job is reported failed (its metrics were never recorded).
        full = storage_error(err)
        if not keep_resume:  # else the error already says the folder cannot be written
            unwritten = (
                storage_message(full, run_dir, multirun) if full else f"{run_dir / RESULT_FILE} not written: {err}"
            )
            ended = f" (the run itself ended {record['status']}: {record['error']})" if record["error"] else ""
            record["error"] = unwritten + ended
        if record["status"] == "ok":
            record["status"] = "failed"
        keep_resume = keep_resume or full is not None
    return keep_resume


def run_job(cfg: DictConfig) -> float | None:
    """The command line's job (run/app.py): a failed run exits non-zero with one line on stderr."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    job = job_identity(cfg)
    if job.multirun and foreign_result(run_dir, job.overrides) is not None:
        # a sweeper whose jobs SweepFolderGuard could not list in advance: keep the other job's result
        print(
            f"error: {run_dir} holds another job's result (see bertlab/sweep/folders.py); it is kept and this job is not run",
            file=sys.stderr,
        )
        return None
    done = finished_result(run_dir, job.overrides) if job.multirun else None
    if done is not None:  # a re-run of the same sweep: this job already succeeded
        say(f"skipped (already ok): {run_dir}")
        return done["metrics"].get(f"val/{cfg.task.main_metric}")
    record, _ = run_recorded(cfg, run_dir, job)
    if record["status"] != "ok":
        print(f"error ({record['status']}): {record['error']}", file=sys.stderr)
        code = exit_code(record["status"], job.multirun)
        if code is not None:
            sys.exit(code)
        return None
    return record["metrics"].get(f"val/{cfg.task.main_metric}")


def record_job(cfg: DictConfig) -> dict:
    """bertlab.train's job (run/inprocess.py): the same run and files as run_job, but it returns the
    record, and a run that did not end ok raises what ended it (a library call never exits)."""
    record, err = run_recorded(cfg, Path(HydraConfig.get().runtime.output_dir), job_identity(cfg))
    if err is not None:
        raise err
    return record


def run_recorded(cfg: DictConfig, run_dir: Path, job: JobIdentity) -> tuple[dict, BaseException | None]:
    """Run the job and write its record whatever happens: (the record, the exception that ended a run
    that is not ok, else None). Exceptions that outcome.py re-raises go on once result.json is written."""
    record = first_record(cfg, run_dir, job)
    print_config(cfg, record["devices"]["accelerator"])  # the resolved config tree, the run folder, the device
    keep_resume = False  # a full disk: the last checkpoint is kept, to continue from once there is space
    ended = None
    start = time.time()
    record["started_at"] = start  # unix time; with duration_s, when the job ran
    try:
        record.update(train(cfg, Run(run_dir, job.run_name, job.group, job.tags, job.overrides)))  # run/fit.py
        record["status"] = "ok"
        if cfg.save_weights:  # the saved weights' README.md: what they are, from this record
            write_model_card(run_dir / MODEL_DIR, record)
    except BaseException as err:
        ended = err
        end = outcome(err, run_dir, job.multirun)
        record.update(status=end.status, error=end.error, **end.fields)
        keep_resume = end.keep_resume
        if end.traceback:
            try:
                (run_dir / "error.log").write_text(traceback.format_exc())
            except OSError:  # the traceback is re-raised (single run) or summarised (sweep) anyway
                pass
        if end.reraise:
            raise
    finally:
        record["duration_s"] = round(time.time() - start, 3)
        keep_resume = write_record(record, run_dir, job.multirun, keep_resume)
        finish_wandb(exit_code=0 if record["status"] == "ok" else 1)
        if record["status"] != "interrupted" and not keep_resume:  # a finished run keeps no checkpoint
            remove_resume_state(run_dir)
            remove_resume_state(run_dir / TEACHER_DIR)  # distill=self's teacher, same rule (run/distill.py)

    say(f"run directory: {run_dir}")
    if record["status"] == "ok":
        for key, value in sorted(record["metrics"].items()):
            say(f"  {key:<28} {value:.4f}")
        return record, None
    if ended is None or isinstance(ended, SystemExit):  # result.json could not be written after a good run
        ended = RunFailed(record["error"])  # (or a SIGTERM, which Lightning raises as a SystemExit)
    return record, ended


class RunFailed(BertlabError):
    """A run that ended without an exception of its own to raise (its record says why): result.json
    could not be written, or SIGTERM stopped it (the same command resumes)."""
