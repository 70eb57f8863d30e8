"""Self-distillation end to end on the tiny BERT: `python train.py distill=self` (teacher and
student metrics in result.json), alpha=0 against a standard run, a saved teacher
(`distill.teacher=DIR`: its own head, the data check, the bad-teacher messages), a regression task
and a kill during the student."""

import csv
import shutil
import signal
from pathlib import Path

import pytest
import torch

from bertlab.run.distill import SOFT_LABELS_FILE, TEACHER_DIR
from bertlab.run.fit import Run, train
from tests.helpers.e2e import TINY, StoppedRun, results_under
from tests.helpers.inprocess import run_train

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "glue"


def train_losses(run_dir: Path) -> list[str]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [row["train/loss"] for row in csv.DictReader(f) if row.get("train/loss")]


def test_distill_self_writes_the_teacher_and_the_student_metrics(tmp_path):
    run_dir = tmp_path / "run"
    done = run_train(*TINY, "distill=self", "distill.alpha=0.7", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    result = results_under(run_dir)["."]
    assert result["status"] == "ok" and result["settings"]["distill"] == "self"
    d = result["distill"]
    assert (d["alpha"], d["temperature"], d["teacher"]) == (0.7, 2.0, "self")
    assert d["teacher_s"] > 0 and d["teacher_best_step"] is not None
    for metrics in (result["metrics"], d["teacher_metrics"]):  # the same splits for both
        assert set(metrics) == {"val/accuracy", "test_last/accuracy", "test_best/accuracy"}
    assert (run_dir / TEACHER_DIR / SOFT_LABELS_FILE).is_file() and (run_dir / TEACHER_DIR / "metrics.csv").is_file()
    assert not list(run_dir.rglob("*.ckpt"))
    assert "teacher: fine-tuning with the run's settings" in done.stdout


def test_alpha_zero_equals_a_standard_run_bit_for_bit(compose_train, tiny, tmp_path):
    base = [*tiny, "logger=csv", "trainer.enable_progress_bar=false", "trainer.max_steps=6"]
    standard = train(compose_train(*base), Run(tmp_path / "standard", "s"))
    distilled = train(compose_train(*base, "distill=self", "distill.alpha=0"), Run(tmp_path / "student", "d"))
    assert distilled["metrics"] == standard["metrics"]
    assert distilled["best_step"] == standard["best_step"]
    assert train_losses(tmp_path / "student") == train_losses(tmp_path / "standard")  # every step's loss, as text
    # the teacher is a standard run too (the same seed): alpha=0 learns nothing from it
    assert distilled["distill"]["teacher_metrics"] == standard["metrics"]


def test_regression_task_distils_to_the_teachers_outputs(compose_train, tiny, tmp_path):
    cfg = compose_train(
        *tiny,
        "logger=none",
        "trainer.enable_progress_bar=false",
        "task=stsb",
        f"task.data_dir={FIXTURES / 'STS-B'}",
        "task.n_train=null",
        "task.n_val=2",
        "task.n_test=null",
        "distill=self",
    )
    result = train(cfg, Run(tmp_path, "r"))
    for metrics in (result["metrics"], result["distill"]["teacher_metrics"]):
        assert {"val/spearman", "test_best/pearson", "test_last/spearman"} <= set(metrics)
    saved = torch.load(tmp_path / TEACHER_DIR / SOFT_LABELS_FILE, weights_only=True)
    assert saved["logits"].shape == (result["split_sizes"]["train"], 1)


def csv_task(folder: Path) -> list[str]:
    """A csv task in `folder`, written here unless it is there: 24 training and 8 dev sentences of
    their own words (the folder's name), half pos, half neg; drawn as debug=fast draws (16 train,
    8 val), dev = test."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.csv", 24), ("dev.csv", 8)):
        if (folder / name).exists():
            continue
        rows = [f"{folder.name} sentence number {i},{'pos' if i % 2 else 'neg'}" for i in range(n)]
        (folder / name).write_text("text,label\n" + "\n".join(rows) + "\n")
    files = ["task.train_file=train.csv", "task.dev_file=dev.csv", "task.text_fields=[text]", "task.label_field=label"]
    return ["task=csv", f"task.data_dir={folder}", *files, "task.n_test=null"]


def test_a_saved_teacher_run_teaches_with_its_head_and_other_data_is_refused(tmp_path):
    teacher_dir = tmp_path / "teacher_run"
    ours = csv_task(tmp_path / "data")
    teacher = run_train(*TINY, *ours, "head=mean", "save_weights=true", f"hydra.run.dir={teacher_dir}")
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    # the same files from a copy in another folder: accepted, and the mean head teaches
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy)
    run_dir = tmp_path / "student"
    student = [*TINY, "distill=self", f"distill.teacher={teacher_dir}"]
    done = run_train(*student, *csv_task(copy), f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"teacher: the saved run {teacher_dir} (mean head)" in done.stdout
    assert "MISSING" not in done.stdout + done.stderr  # no newly drawn head
    result, theirs = results_under(run_dir)["."], results_under(teacher_dir)["."]
    assert result["distill"]["teacher"] == str(teacher_dir.resolve())
    assert result["distill"]["teacher_metrics"] == theirs["metrics"]
    assert result["data_fingerprint"] == theirs["data_fingerprint"]
    assert set(result["data_fingerprint"]) == {"train", "val", "test", "labels"}
    assert result["data_fingerprint"]["labels"] == ["neg", "pos"]
    assert not (run_dir / TEACHER_DIR).exists()  # no teacher trained here

    # another folder of the same labels and sizes: one message naming both, before any training
    other = run_train(*student, *csv_task(tmp_path / "other"), f"hydra.run.dir={tmp_path / 'o'}")
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "it was trained on other data than this run: its train/val/test examples differ" in other.stderr
    assert (
        f"task.data_dir={tmp_path / 'data'}" in other.stderr and f"task.data_dir={tmp_path / 'other'}" in other.stderr
    )
    assert "fine-tuning" not in other.stdout
    # a folder without saved weights: one message, no traceback, before any data is read
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run_train(*TINY, "distill=self", f"distill.teacher={empty}", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert f"distill.teacher={empty}: it has no saved weights" in bad.stderr
    assert "save_weights=true" in bad.stderr
    # another task's teacher (the csv task's 2 labels against BBC News' 5)
    bbc = run_train(*student, f"hydra.run.dir={tmp_path / 'bbc'}")
    assert bbc.returncode != 0 and "Traceback" not in bbc.stderr
    assert "its model has 2 label(s), this task has 5" in bbc.stderr


def test_a_job_killed_during_the_student_resumes_without_training_the_teacher_again(tmp_path):
    long = [*TINY, "task.n_train=32", "trainer.max_steps=12", "resume_every_s=0", "trainer.num_evals=3"]
    long += ["logger=csv", "distill=self"]
    reference = tmp_path / "reference"
    assert run_train(*long, f"hydra.run.dir={reference}").returncode == 0

    run_dir = tmp_path / "killed"
    run = StoppedRun(run_dir, "saved", *long, f"hydra.run.dir={run_dir}")  # stops in the teacher's fit
    run.proc.send_signal(signal.SIGCONT)
    run.proc.wait_stopped_or_ended(600)  # stops again, after the student's first save
    assert run.proc.stopped == signal.SIGSTOP, run.stdout()[-2000:]
    assert (run_dir / TEACHER_DIR / SOFT_LABELS_FILE).is_file()
    run.kill(signal.SIGKILL)
    assert (run_dir / "resume" / "last.ckpt").is_file()

    again = run_train(*long, f"hydra.run.dir={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "soft labels of an earlier attempt of this job" in again.stdout
    assert "teacher: fine-tuning" not in again.stdout and "resuming from" in again.stdout
    resumed, uninterrupted = results_under(run_dir)["."], results_under(reference)["."]
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["distill"]["teacher_metrics"] == uninterrupted["distill"]["teacher_metrics"]
    assert resumed["distill"]["teacher"] == "self"
