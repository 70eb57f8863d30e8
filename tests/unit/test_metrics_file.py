"""metrics.csv through kills, in-process (loggers/run_csv.py): the many kill points of issue 24 at the
level where a kill can tear the file, in milliseconds each. The process path (real SIGKILL and
SIGTERM, every logger, every kind of task) is in test_resume_e2e.py and test_problems_e2e.py.

- the writer killed at each of its file operations, at every flush of a run: the file left on disk
  is always whole, and the run restarted from its last checkpoint's row count ends with the very
  file an uninterrupted run writes;
- a file torn by another writer (Lightning's own, before this one; a crash of the machine) cut at
  every byte: a restart keeps exactly the whole rows before the cut, never a cut value.
"""

import csv
import io
import os
import shutil

import pytest
from lightning.fabric.loggers.csv_logs import _ExperimentWriter

from bertlab.core import atomic
from bertlab.loggers import run_csv
from bertlab.loggers.run_csv import RunFolderCSVLogger, read_complete_rows


def logged_rows(steps: int = 6) -> list[dict]:
    """What a run logs, in order: its columns appear as it goes (lr and loss, then a validation,
    then diagnostics, then the test metrics), as in a real metrics.csv."""
    rows = []
    for step in range(steps):
        rows.append({"lr/all/decay": 2e-5 * (1 - step / steps), "step": step})
        rows.append({"train/loss": 1.5 / (step + 1), "epoch": step // 4, "step": step})
        if step % 3 == 2:
            rows.append({"val/accuracy": 0.25 + step / 100, "epoch": step // 4, "step": step})
        if step >= steps // 2:
            rows.append({"grad_norm/layer_0": 0.01 * step, "optim/update_size/layer_0": 1e-4, "step": step + 1})
    rows.append({"test_last/accuracy": 0.5, "test_best/accuracy": float("nan"), "step": steps})
    return rows


CHECKPOINT_AFTER = {6, 11, 15}  # indexes of rows after which the run saves a resume checkpoint


def run(folder, rows, start: int = 0, keep_rows: int = 0, checkpoints: list | None = None) -> None:
    """Log rows[start:] as a run does (save() after each), saving a "checkpoint" (the row count the
    real one records: ResumeCheckpoint.on_save_checkpoint) after the rows of CHECKPOINT_AFTER."""
    logger = RunFolderCSVLogger(str(folder), keep_rows)
    for i in range(start, len(rows)):
        row = dict(rows[i])
        logger.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        logger.save()
        if i in CHECKPOINT_AFTER and checkpoints is not None:
            checkpoints.append(logger.flush())
    logger.finalize("success")


@pytest.fixture(autouse=True)
def every_save_writes(monkeypatch):
    # every save() is a write (a kill point), and no fsync: the disk's durability is not under test
    monkeypatch.setattr(run_csv, "WRITE_EVERY_S", 0.0)
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: None)


class Killed(BaseException):
    """The process ends here: nothing after it runs (a SIGKILL)."""


class KillAt:
    """atomic.py's `os`, killing the process at its n-th call: the folder as it is at that instant
    is what the next attempt finds."""

    def __init__(self, n: int, folder, snapshot):
        self.n, self.folder, self.snapshot, self.calls = n, folder, snapshot, 0

    def __getattr__(self, name):
        real = getattr(os, name)
        if not callable(real) or name == "getpid":
            return real

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.n:
                shutil.copytree(self.folder, self.snapshot)
                raise Killed
            return real(*args, **kwargs)

        return call


def parse(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def test_the_writer_killed_at_any_write_restarts_to_the_uninterrupted_file(tmp_path, monkeypatch):
    rows = logged_rows()
    run(tmp_path / "reference", rows)
    expected = (tmp_path / "reference" / "metrics.csv").read_bytes()
    assert parse(tmp_path / "reference" / "metrics.csv")[-1]["test_best/accuracy"] == "nan"

    points, n = 0, 1
    while True:
        folder, snapshot = tmp_path / f"run{n}", tmp_path / f"killed{n}"
        checkpoints = [0]  # none yet: a restart starts afresh
        monkeypatch.setattr(atomic, "os", KillAt(n, folder, snapshot))
        try:
            run(folder, rows, checkpoints=checkpoints)
        except Killed:
            pass
        monkeypatch.setattr(atomic, "os", os)
        if not snapshot.exists():
            break  # the run ended before its n-th file operation: every point was tried
        points += 1
        left = snapshot / "metrics.csv"
        if left.exists():  # whole: every row of the header's columns, in the order logged
            assert parse(left) == parse_rows(rows)[: len(parse(left))]
            assert read_complete_rows(left, 10**6)[0] == parse(left)
        # the same command again: the rows its last checkpoint counts kept, the run from there on
        kept = checkpoints[-1]
        run(snapshot, rows, start=kept, keep_rows=kept)
        assert (snapshot / "metrics.csv").read_bytes() == expected, n
        n += 1
    assert points > 60 and len(rows) == 18


def parse_rows(rows: list[dict]) -> list[dict]:
    """rows as a CSV reader gives them back (strings; what was not logged is absent)."""
    text = io.StringIO()
    keys = sorted(set().union(*rows))
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(io.StringIO(text.getvalue()))]


def lightning_file(rows: list[dict], folder) -> bytes:
    """metrics.csv as Lightning's own writer leaves it (appends, and in-place rewrites for new columns)."""
    writer = _ExperimentWriter(str(folder))
    for row in rows:
        writer.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        writer.save()
    return (folder / "metrics.csv").read_bytes()


def test_a_file_cut_at_any_byte_is_continued_from_its_whole_rows(tmp_path):
    rows = logged_rows()
    data = lightning_file(rows, tmp_path / "lightning")
    whole = parse_rows(rows)
    for cut in range(len(data) + 1):
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        (folder / "metrics.csv").write_bytes(data[:cut])
        logger = RunFolderCSVLogger(str(folder), keep_rows=len(rows))
        kept = logger.experiment.rows
        assert kept == whole[: len(kept)], cut  # a prefix, every value as written: no cut number
        if cut == len(data):
            assert len(kept) == len(rows)
        else:  # every line that ended (a row ends at "\r\n"; its "\r" alone ends it too), less the header
            ended = data[:cut].count(b"\n") + data[:cut].endswith(b"\r")
            assert len(kept) == max(ended - 1, 0), cut
        shutil.rmtree(folder)


def test_a_row_beside_its_header_stops_the_rows_kept_with_the_line_named(tmp_path, said):
    """The files of issue 24: rows of a later header below an earlier one (`dict contains fields not
    in fieldnames: None`), a missing row, NUL bytes from a crash, non-UTF-8 bytes."""
    path = tmp_path / "metrics.csv"
    cases = {
        "step,train/loss\n0,1.5\n1,1.2,0.25\n2,1.1\n": (1, "line 3 is not a whole row of the header's 2"),
        "step,train/loss\n0,1.5\n1,\x00\x00\n": (1, "line 3"),
        "step,train/loss\n0,1.5\n1,1.\xff2\n": (1, "line 3"),
        "step,train/loss\n0,1.5\n": (1, "holds 1 rows"),
        "train/loss\n1.5\n": (0, "no header with a `step` column"),
    }
    for text, (n, why) in cases.items():
        path.write_bytes(text.encode("utf-8", errors="surrogateescape").replace(b"\xc3\xbf", b"\xff"))
        logger = RunFolderCSVLogger(str(tmp_path), keep_rows=3)
        assert len(logger.experiment.rows) == n, text
        out = said()
        assert f"kept {n} of the 3 rows logged before the checkpoint" in out and why in out, out
        assert parse(path) == logger.experiment.rows if n else not path.exists()


def test_a_fresh_run_replaces_an_earlier_attempts_file_silently(tmp_path, recwarn):
    (tmp_path / "metrics.csv").write_text("step,train/loss\n0,1.5\n")  # of steps this run logs again
    (tmp_path / ".metrics.csv.123.abcd.tmp").write_text("step,train/lo")  # a write a kill cut short
    logger = RunFolderCSVLogger(str(tmp_path))
    assert logger.experiment.rows == [] and not (tmp_path / "metrics.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not [w for w in recwarn if "will be deleted" in str(w.message)]
    logger.log_metrics({"train/loss": 1.25}, step=0)
    logger.finalize("success")
    assert parse(tmp_path / "metrics.csv") == [{"step": "0", "train/loss": "1.25"}]


def test_rows_are_written_at_most_every_interval_and_always_when_flushed(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(run_csv, "WRITE_EVERY_S", 5.0)
    monkeypatch.setattr(run_csv.time, "monotonic", lambda: clock[0])
    logger = RunFolderCSVLogger(str(tmp_path))
    path = tmp_path / "metrics.csv"
    # a write holds the rows of the log calls before the one that triggers it: that call's values
    # have not yet reached the loggers after this one (TensorBoard, MLflow; run_csv.save says why)
    for t, step in ((0.0, 0), (1.0, 1), (4.0, 2), (6.5, 3)):
        clock[0] = t
        logger.log_metrics({"train/loss": 1.0}, step=step)
        logger.save()
        rows = len(parse(path)) if path.exists() else 0
        assert rows == {0: 0, 1: 1, 2: 1, 3: 3}[step]
    logger.log_metrics({"val/accuracy": 0.5}, step=3)
    assert logger.flush() == 5 and len(parse(path)) == 5
