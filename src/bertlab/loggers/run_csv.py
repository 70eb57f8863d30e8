"""`metrics.csv` in the run folder: every row the run logged, whole at any moment a run is killed,
and continued, not replaced, by the run that resumes it.

Lightning's CSVLogger keeps the logging API here (the Trainer and our callbacks log through it);
its file handling is replaced, for two reasons:
- it appends rows, and rewrites the file in place whenever a new column appears (the first
  validation, the first diagnostics, the test metrics): a kill during that rewrite or during an
  append left a file whose rows and header disagree, and the restarted run failed reading it;
- it deletes the metrics.csv it finds when it starts ("Previous log files in this directory will
  be deleted"): a resumed run lost the curve logged before its checkpoint.

The writer keeps every row of the run in memory and replaces the whole file atomically
(core/atomic.py: a temporary file in the same folder, renamed over it): a reader, or the next
attempt after a kill, finds the previous version or the new one, never a torn one. Appending
whole rows under a header that never changes was the other way; but the columns are not known
when the first row is written (they depend on the task, the options and the phase), and an
append can still be cut by a kill, leaving a short last row that a CSV reader takes for a real
one. The rewrite costs a few ms for a few hundred rows, so it is done at most every `WRITE_EVERY_S`
seconds, and always when a resume checkpoint is saved and when the run ends (`flush`).

A resumed run keeps the first rows of the file that its checkpoint counts (the rows logged
before it was saved: `ResumeCheckpoint`) and appends its own: no duplicated step, no lost row.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from bertlab.core.atomic import write_atomic
from bertlab.core.lines import say

# Between two checkpoints the file only serves a person watching the run: no more than one rewrite
# per WRITE_EVERY_S (a long run logs thousands of rows; each rewrite is the whole file).
WRITE_EVERY_S = 5.0


def read_complete_rows(path: Path, limit: int) -> tuple[list[dict], str | None]:
    """The first `limit` rows of a metrics.csv, as written; and why fewer, or None.

    A file written by this module is always whole, but one left by Lightning's writer (a run of an
    earlier version), a crash of the machine (NUL bytes, a cut file) or an editor need not be: the
    rows are read up to the first one that is not a complete row of numbers under the header (a cut
    last row has no line end; a row of a later header has more fields), never past it. A cut row
    whose number lost its last digits would be read as a real value: a silently wrong curve.
    """
    if limit <= 0:
        return [], None
    if not path.is_file():
        return [], f"{path} is missing"
    text = path.read_bytes().decode("utf-8", errors="replace")
    complete = text if text.endswith(("\n", "\r")) else text[: text.rfind("\n") + 1]  # a cut last line goes
    rows: list[dict] = []
    problem = None
    try:
        records = csv.reader(io.StringIO(complete, newline=""))
        header = next(records, None)
        if not header or "step" not in header:
            return [], f"{path} has no header with a `step` column"
        for line, record in enumerate(records, start=2):
            if len(rows) == limit:
                break
            if len(record) != len(header) or not all(map(_is_number, record)):
                problem = f"{path} line {line} is not a whole row of the header's {len(header)} numbers"
                break
            rows.append({key: value for key, value in zip(header, record) if value != ""})
    except csv.Error as err:  # NUL bytes after a crash, an unterminated quote
        problem = f"{path} cannot be read past row {len(rows)} ({err})"
    if problem is None and len(rows) < limit:
        problem = f"{path} holds {len(rows)} rows"
    return rows, problem


def _is_number(value: str) -> bool:
    if value == "":
        return True  # a column this row did not log
    try:
        float(value)  # "nan" and "inf" too: a diverged run logs them
    except ValueError:
        return False
    return True


class RunFolderWriter(ExperimentWriter):
    """Lightning's writer, with the whole run's rows in memory and the file replaced atomically."""

    def __init__(self, log_dir: str, keep_rows: int = 0):
        self.rows: list[dict] = []  # every row of the run, the kept ones first
        self._written_at: float | None = None  # monotonic time of the last write
        self._unwritten = False
        super().__init__(log_dir)  # calls _check_log_dir_exists: nothing is deleted
        path = Path(self.metrics_file_path)
        # a kill during a write leaves its temporary file (core/atomic.py names it): not ours to keep
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        kept, problem = read_complete_rows(path, keep_rows)
        if problem is not None:
            say(
                f"metrics.csv: kept {len(kept)} of the {keep_rows} rows logged before the checkpoint "
                f"({problem}); the curve misses the rest"
            )
        self.rows = kept
        if kept:
            self.flush()  # whole again now (a file of an earlier version may end in a cut row)
        else:
            path.unlink(missing_ok=True)  # an earlier attempt's rows, of steps this run logs again

    def _check_log_dir_exists(self) -> None:
        """Lightning's warns and deletes the file; what this run keeps of it is read above."""

    def save(self) -> None:
        """Lightning calls this after every log call: when WRITE_EVERY_S has passed, write the rows of
        the calls before this one, then take this call's rows.

        Not this call's rows yet: Lightning hands each log call to the loggers one after the other
        (this one first, logger by logger: log_metrics, then save), so when this runs, TensorBoard
        and MLflow have not been sent this call's values. A resumed run leaves out of them what
        metrics.csv holds (dashboards.skip_logged): a row written here and killed before the
        dashboards had it would be missing from them for good."""
        if self._unwritten and (self._written_at is None or time.monotonic() - self._written_at >= WRITE_EVERY_S):
            self._write()
        if self.metrics:
            self.rows.extend(self.metrics)
            self.metrics = []
            self._unwritten = True

    def flush(self) -> int:
        """Write every row now (whole, atomically); returns how many the file holds. Called between
        log calls (a resume checkpoint, the end of a fit or test), when every logger has every row."""
        if self.metrics:
            self.rows.extend(self.metrics)
            self.metrics = []
        return self._write()

    def _write(self) -> int:
        keys = sorted(set().union(*self.rows, {"step"}))  # Lightning's order: sorted names

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.rows)

        write_atomic(Path(self.metrics_file_path), write)
        self.metrics_keys = keys
        self._written_at, self._unwritten = time.monotonic(), False
        return len(self.rows)


class RunFolderCSVLogger(CSVLogger):
    """CSVLogger(save_dir=run_dir, name="", version=""): metrics.csv directly in the run folder.

    keep_rows: how many rows of the folder's metrics.csv this run continues (a resumed run: the
    rows its checkpoint counts); 0 starts the file afresh."""

    def __init__(self, run_dir: str, keep_rows: int = 0):
        super().__init__(save_dir=run_dir, name="", version="")
        self.keep_rows = keep_rows

    @property
    @rank_zero_experiment
    def experiment(self) -> RunFolderWriter:
        # CSVLogger.experiment, with our writer
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = RunFolderWriter(log_dir=self.log_dir, keep_rows=self.keep_rows)
        return self._experiment

    def finalize(self, status: str) -> None:
        # the end of a fit or test, or a failure: whatever the interval, the file is whole and complete
        if self._experiment is not None:
            self._experiment.flush()

    def flush(self) -> int:
        """Write every row logged so far; the number of rows in the file (ResumeCheckpoint records it)."""
        return self.experiment.flush()


def csv_logger(run_dir, keep_rows: int = 0) -> RunFolderCSVLogger:
    """conf/logger/csv.yaml's entry: metrics.csv in the run folder (the report's curves), continuing
    the `keep_rows` rows a resumed run logged before (build_loggers adds it beside any logger anyway)."""
    return RunFolderCSVLogger(str(run_dir), keep_rows)
