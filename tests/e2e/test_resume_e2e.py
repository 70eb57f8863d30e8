"""Determinism and kill/resume through `python train.py` on the CPU (tiny random BERT).

A run killed with SIGKILL, SIGTERM or SIGINT mid-training and started again with the same command
(same run directory) must end with exactly the metrics, and the same training-loss curve, as an
uninterrupted run. The run to kill stops itself at a known point of its training (after its first
checkpoint, or inside the step after it: tests/helpers/stopping_train.py) and gets its signal there, so
the kill lands mid-training however busy the machine is; no sleeps.
"""

import csv
import json
import signal

import pytest
import torch

from tests.helpers.e2e import TINY, StoppedRun, results_under, run_train

# 32 examples in batches of 8: 4 steps per epoch; 40 steps; validation (and a resume
# checkpoint: resume_every_s=0) every 10 steps, i.e. mid-epoch, so the resumed run must restore the
# loader position.
LONG = [
    *TINY,
    "task.n_train=32",
    "trainer.max_steps=40",
    "trainer.max_epochs=1000",
    "resume_every_s=0",
    "trainer.num_evals=4",
    "logger=csv",
]


def train_losses(run_dir) -> dict[int, str]:
    with open(run_dir / "metrics.csv") as f:
        return {int(r["step"]): r["train/loss"] for r in csv.DictReader(f) if r.get("train/loss")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    proc = run_train(*LONG, f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_same_config_and_seed_give_identical_results(reference, tmp_path):
    proc = run_train(*LONG, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, again = results_under(reference)["."], results_under(tmp_path)["."]
    assert first["metrics"] == again["metrics"] and first["best_step"] == again["best_step"]
    assert train_losses(reference) == train_losses(tmp_path)
    assert len(train_losses(reference)) == 40
    # seed 0 is a seed (the default), and another seed really changes the run
    assert first["settings"]["seed"] == 0
    other = run_train(*LONG, "seed=1", f"hydra.run.dir={tmp_path / 'seed1'}")
    assert other.returncode == 0, other.stderr[-3000:]
    assert train_losses(tmp_path / "seed1") != train_losses(reference)
    # the data sample depends on task.data_seed only
    assert results_under(tmp_path / "seed1")["."]["baseline"] == first["baseline"]


def checkpoint_step(checkpoint) -> int:
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"]


# The run stops itself at a known point (tests/helpers/stopping_train.py) and gets the signal there:
# SIGTERM right after a validation (step 10 of 40: its checkpoint is kept) and mid-step (in step
# 11: saved at the end of that step); SIGKILL and Ctrl-C (SIGINT, mid-step): resumed from the last
# validation's checkpoint.
@pytest.mark.slow
@pytest.mark.parametrize(
    "sig,when,saved_at",
    [
        (signal.SIGKILL, "saved", 10),
        (signal.SIGTERM, "saved", 10),
        (signal.SIGTERM, "mid-step", 11),
        (signal.SIGINT, "mid-step", 10),
    ],
    ids=["SIGKILL", "SIGTERM", "SIGTERM-mid-step", "SIGINT"],
)
def test_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path, sig, when, saved_at):
    run_dir = tmp_path / "run"
    run = StoppedRun(run_dir, when, *LONG, f"hydra.run.dir={run_dir}")
    assert "stopping for the test at step 10" in run.stdout()
    killed = run.kill(sig)
    checkpoint = run_dir / "resume" / "last.ckpt"
    assert checkpoint.exists(), killed.stderr[-3000:]
    assert checkpoint_step(checkpoint) == saved_at
    if sig == signal.SIGTERM:
        # preemption: saved at the end of the current step, recorded as interrupted, exit 128 + 15
        assert killed.returncode == 143, killed.stderr[-3000:]
        result = results_under(run_dir)["."]
        assert result["status"] == "interrupted" and "SIGTERM" in result["error"]
    elif sig == signal.SIGINT:
        # Ctrl-C: no new save, but the last validation's checkpoint is kept and the record says so
        assert killed.returncode != 0
        result = results_under(run_dir)["."]
        assert result["status"] == "interrupted" and "resumes" in result["error"], result
    else:
        assert killed.returncode == -signal.SIGKILL
        assert not (run_dir / "result.json").exists()

    resumed = run_train(*LONG, f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint}" in resumed.stdout
    expected, got = results_under(reference)["."], results_under(run_dir)["."]
    assert got["status"] == "ok"
    assert got["metrics"] == expected["metrics"]  # exactly, not approximately
    assert (
        (got["best_step"], got["global_steps"])
        == (expected["best_step"], expected["global_steps"])
        == (expected["best_step"], 40)
    )
    # the whole history: rows before the checkpoint kept, rows after it identical, none twice
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    assert "will be deleted" not in resumed.stderr
    # a finished run keeps no checkpoint: a sweep's job leaves a few kB
    assert not (run_dir / "resume").exists() and not list(run_dir.rglob("*.ckpt"))
    assert sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) < 2_000_000


def with_logger(logger: str) -> list[str]:
    return [*(o for o in LONG if not o.startswith("logger=")), f"logger={logger}"]


# Issue 24: killed anywhere (before the first validation, during one, inside a save, mid-step), with
# whatever logger, the same command ends `ok` with the uninterrupted run's metrics and metrics.csv.
# The many kill points of the file itself are test_metrics_file.py's; here, the process path: what
# each logger leaves behind must not stop the restart.
@pytest.mark.slow
@pytest.mark.parametrize(
    "logger,sig,when",
    [
        ("wandb", signal.SIGTERM, "validating"),
        ("tensorboard", signal.SIGKILL, "saving"),
        ("mlflow", signal.SIGTERM, "started"),
        ("many", signal.SIGKILL, "validating"),
        ("none", signal.SIGTERM, "saving"),
    ],
)
def test_a_run_killed_anywhere_with_any_logger_restarts_to_the_uninterrupted_run(
    reference, tmp_path, logger, sig, when
):
    run_dir = tmp_path / "run"
    overrides = [*with_logger(logger), f"hydra.run.dir={run_dir}"]
    env = {"WANDB_MODE": "offline"} if logger in ("wandb", "many") else None  # W&B's files, no account
    killed = StoppedRun(run_dir, when, *overrides, env=env).kill(sig)
    assert killed.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL), killed.stderr[-3000:]

    resumed = run_train(*overrides, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr and "will be deleted" not in resumed.stderr, resumed.stderr[-3000:]
    expected, got = results_under(reference)["."], results_under(run_dir)["."]
    assert got["status"] == "ok" and got["metrics"] == expected["metrics"]
    if logger == "none":
        assert not (run_dir / "metrics.csv").exists()
    else:
        assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()


@pytest.mark.slow
def test_a_metrics_file_torn_by_a_kill_keeps_its_whole_rows_and_no_cut_value(reference, tmp_path):
    """What Lightning's writer left when killed mid-append: a last row cut inside a number. The
    restart used to keep the cut number (a loss of 1.596 for 1.5969926...) as if it were logged."""
    run_dir = tmp_path / "run"
    StoppedRun(run_dir, "saved", *LONG, f"hydra.run.dir={run_dir}").kill(signal.SIGKILL)
    metrics = run_dir / "metrics.csv"
    lines = metrics.read_bytes().splitlines(keepends=True)
    loss_line = max(i for i, line in enumerate(lines) if b"." in line.split(b",")[-2])  # a train/loss row
    torn = b"".join(lines[:loss_line]) + lines[loss_line][: lines[loss_line].rindex(b".") + 3]
    metrics.write_bytes(torn)

    resumed = run_train(*LONG, f"hydra.run.dir={run_dir}", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"metrics.csv: kept {loss_line - 1} of the" in resumed.stdout
    assert f"{metrics} line {loss_line + 1} is not a whole row" not in resumed.stdout  # a cut line is no row
    assert results_under(run_dir)["."]["metrics"] == results_under(reference)["."]["metrics"]
    with open(metrics) as f, open(reference / "metrics.csv") as g:
        got, expected = list(csv.DictReader(f)), list(csv.DictReader(g))
    # every row as logged; only the cut row and the rows after it up to the checkpoint are missing
    assert got[: loss_line - 1] == expected[: loss_line - 1]
    lost = len(expected) - len(got)
    assert got[loss_line - 1 :] == expected[loss_line - 1 + lost :] and 0 < lost < 5


@pytest.mark.slow
def test_sweep_rerun_resumes_the_killed_job_in_its_folder(reference, tmp_path):
    sweep_dir = tmp_path / "sweep"
    # job 0 stops itself right after its first checkpoint and is killed there: job 1 never starts
    StoppedRun(sweep_dir, "saved", "-m", *LONG, "seed=0,1", f"hydra.sweep.dir={sweep_dir}").kill(signal.SIGKILL)
    checkpoint = sweep_dir / "0" / "resume" / "last.ckpt"
    assert checkpoint.exists() and not (sweep_dir / "1").exists()
    assert "seed=0" in json.loads((checkpoint.parent / "overrides.json").read_text())  # whose checkpoint it is

    rerun = run_train("-m", *LONG, "seed=0,1", f"hydra.sweep.dir={sweep_dir}")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from {checkpoint}" in rerun.stdout
    results = results_under(sweep_dir)
    assert {k: r["status"] for k, r in results.items()} == {"0": "ok", "1": "ok"}
    assert results["0"]["metrics"] == results_under(reference)["."]["metrics"]
    assert not list(sweep_dir.rglob("*.ckpt"))


def test_resume_saves_at_most_once_per_interval_but_always_on_sigterm(tmp_path, monkeypatch):
    """resume_every_s: a validation saves only when the interval has passed since the last save."""
    from types import SimpleNamespace

    from bertlab.callbacks import resume

    clock = [100.0]
    monkeypatch.setattr(resume.time, "monotonic", lambda: clock[0])
    saved = []
    trainer = SimpleNamespace(
        state=SimpleNamespace(fn="fit"),
        sanity_checking=False,
        global_step=0,
        is_global_zero=True,
        received_sigterm=False,
        save_checkpoint=lambda path, weights_only: saved.append(clock[0]),
    )
    callback = resume.ResumeCheckpoint(tmp_path, every_s=60)
    callback.on_fit_start(trainer, None)
    for now in (130.0, 159.0, 161.0, 200.0, 222.0):  # validations
        clock[0] = now
        callback.on_validation_end(trainer, None)
    assert saved == [161.0, 222.0]
    clock[0], trainer.received_sigterm, trainer.global_step = 223.0, True, 7
    callback.on_train_batch_end(trainer, None)
    assert saved == [161.0, 222.0, 223.0] and callback.saved_at_step == 7


def test_a_checkpoint_of_another_job_is_not_resumed(tmp_path, said):
    """A sweep folder re-used for a different sweep: job N's old checkpoint is not continued."""
    from bertlab.callbacks.resume import resume_checkpoint

    checkpoint = tmp_path / "resume" / "last.ckpt"
    checkpoint.parent.mkdir()
    torch.save({"global_step": 3, "state_dict": {}, "bertlab_resume": {}}, checkpoint)
    (checkpoint.parent / "overrides.json").write_text(json.dumps(["optimizer=adamw", "seed=0"]))
    assert resume_checkpoint(tmp_path, ["optimizer=adamw", "seed=0"]) == checkpoint  # the same job
    assert resume_checkpoint(tmp_path) == checkpoint  # outside a sweep's bookkeeping: as before
    assert resume_checkpoint(tmp_path, ["optimizer=bertadam", "seed=0"]) is None
    assert "belongs to another job (optimizer=adamw seed=0)" in said()
    assert not (tmp_path / "resume").exists()  # deleted: the new job starts afresh


def test_a_checkpoint_save_that_fails_leaves_the_previous_one_whole(tmp_path):
    """A full disk during a save tore resume/last.ckpt (Lightning's save is a move from /tmp)."""
    import errno
    from types import SimpleNamespace

    from bertlab.callbacks.resume import RESUME_DIR, RESUME_FILE, ResumeCheckpoint

    def save_checkpoint(path, weights_only):
        if not calls:
            calls.append(path)
            path.write_bytes(b"the whole first checkpoint")
            return
        with open(path, "wb") as f:  # a full disk: part of the checkpoint is written, then the write fails
            f.write(b"torn")
        raise OSError(errno.ENOSPC, "No space left on device")

    calls = []
    trainer = SimpleNamespace(global_step=3, is_global_zero=True, save_checkpoint=save_checkpoint)
    callback = ResumeCheckpoint(tmp_path, every_s=0.0, overrides=["seed=0"])
    callback.save(trainer)
    with pytest.raises(OSError):
        callback.save(trainer)
    checkpoint = tmp_path / RESUME_DIR / RESUME_FILE
    assert checkpoint.read_bytes() == b"the whole first checkpoint"
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.ckpt", "overrides.json"]


# Issue 24, "the kill test runs at least 20 kill points per logger": one run with every logger at
# once (logger=many: metrics.csv, W&B offline, TensorBoard and MLflow, written by the same process),
# killed at 25 points in the order a run meets them, each restart stopped at the next point and
# killed there: before the first step, mid-epoch, inside and after each validation, inside each
# save, right after one, and in the test. SIGKILL (nothing saved: the restart goes back to the last
# checkpoint and re-trains), SIGTERM (saved where it lands) and SIGINT (Ctrl-C). The restart after
# the last kill must end `ok` with the uninterrupted run's metrics and metrics.csv, and every
# dashboard must hold each value of metrics.csv with its value: TensorBoard and MLflow exactly once,
# W&B at least once (its offline writer buffers; build.py says why it gets re-trained steps again).
KILL, TERM, INT = signal.SIGKILL, signal.SIGTERM, signal.SIGINT
# Each point must be one the restart meets: a SIGTERM inside a validation saves there and the
# restart does not validate that step again, so no point of that validation follows one.
CHAIN = [
    ("started@0", KILL),  # before the first step: nothing saved, the restart starts over
    ("started@1", TERM),  # saved at the end of step 2
    ("started@2", KILL),  # back to step 2
    ("started@4", INT),  # Ctrl-C: back to step 2
    ("started@7", TERM),  # saved at step 8, mid-epoch
    ("validating@10", KILL),  # back to 8
    ("saving@10", KILL),  # inside the save, metrics.csv written, the checkpoint not: back to 8
    ("saved@10", KILL),  # right after it: back to 10
    ("mid-step@10", TERM),  # saved at 11
    ("started@13", KILL),  # back to 11
    ("started@15", TERM),  # 16
    ("validating@20", KILL),  # back to 16
    ("saving@20", TERM),  # the save completes, then the run stops: resumed at 20
    ("mid-step@20", KILL),
    ("started@22", INT),
    ("started@24", TERM),  # 25
    ("validating@30", KILL),  # back to 25
    ("saved@30", TERM),  # the checkpoint of this very step is kept
    ("mid-step@30", KILL),
    ("started@33", TERM),  # 34
    ("validating@40", KILL),  # back to 34
    ("started@39", TERM),  # in the step that ends in the last validation: saved at 40, before it
    ("testing", KILL),  # trained, not yet tested: the restart trains nothing and tests
    ("testing", TERM),
    ("testing", INT),
]


def csv_values(run_dir) -> dict[tuple[str, int], float]:
    with open(run_dir / "metrics.csv") as f:
        return {(k, int(r["step"])): float(v) for r in csv.DictReader(f) for k, v in r.items() if k != "step" and v}


def dashboard_values(run_dir) -> dict[str, dict[tuple[str, int], list[float]]]:
    """(metric, step) -> every value each dashboard holds, read back with its own reader."""
    from mlflow import MlflowClient

    from tests.helpers.logged import mlflow_runs
    from tests.helpers.wandb_records import offline_runs

    held: dict[str, dict[tuple[str, int], list[float]]] = {"wandb": {}, "tensorboard": {}, "mlflow": {}}
    for run in offline_runs(run_dir):
        for row in run.history:
            for key, value in row.items():
                if not key.startswith("_") and key != "trainer/global_step" and isinstance(value, (int, float)):
                    held["wandb"].setdefault((key, int(row["trainer/global_step"])), []).append(float(value))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tb_dir,) = (run_dir / "tensorboard").iterdir()
    events = EventAccumulator(str(tb_dir))
    events.Reload()
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            held["tensorboard"].setdefault((tag, event.step), []).append(event.value)
    (mlflow_run,) = mlflow_runs(run_dir / "mlruns")
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    for key in mlflow_run.data.metrics:
        for metric in client.get_metric_history(mlflow_run.info.run_id, key):
            held["mlflow"].setdefault((key, metric.step), []).append(metric.value)
    return held


@pytest.mark.long
@pytest.mark.slow
def test_one_run_killed_at_25_points_with_every_logger_ends_as_the_uninterrupted_run(reference, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*with_logger("many"), f"hydra.run.dir={run_dir}"]
    env = {"WANDB_MODE": "offline"}
    for point, sig in CHAIN:
        killed = StoppedRun(run_dir, point, *overrides, env=env).kill(sig)
        code = killed.returncode
        assert code == {KILL: -signal.SIGKILL, TERM: 143}.get(sig, code) != 0, f"{point} {sig!r}: {code}"
        assert "Traceback" not in killed.stderr, f"{point}: {killed.stderr[-3000:]}"
    resumed = run_train(*overrides, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr and "will be deleted" not in resumed.stderr, resumed.stderr[-3000:]
    expected, got = results_under(reference)["."], results_under(run_dir)["."]
    assert got["status"] == "ok" and got["metrics"] == expected["metrics"]
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()

    logged = csv_values(run_dir)
    for name, held in dashboard_values(run_dir).items():
        held = {key: values for key, values in held.items() if key[0] in {k for k, _ in logged}}
        assert set(held) == set(logged), f"{name}: {sorted(set(held) ^ set(logged))}"
        for key, values in held.items():
            assert values == pytest.approx([logged[key]] * len(values), rel=1e-6), f"{name} {key}: {values}"
            if name != "wandb":
                assert len(values) == 1, f"{name} {key} logged {len(values)} times: {values}"
