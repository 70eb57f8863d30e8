"""Multiple choice through `python train.py` (tiny random BERT, the SWAG-format and JSONL fixtures):
result.json, the methods, bad input, kill and resume, evaluate and predict."""

import signal
from pathlib import Path

import pytest
from e2e import TINY, StoppedRun, results_under, run_train

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SWAG = [*TINY, "task=swag", f"task.data_dir={FIXTURES / 'swag'}", "data.token_cache=null"]
CHOICES = [
    *TINY,
    "task=choices",
    f"task.data_dir={FIXTURES / 'choices'}",
    "task.train_file=train.jsonl",
    "task.dev_file=dev.jsonl",
    "task.text_fields=[context,question]",
    "task.ending_fields=[endings]",
    "task.num_choices=3",
    "task.label_field=answer",
]


@pytest.mark.slow
def test_swag_end_to_end(tmp_path):
    proc = run_train(*SWAG, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["select_metric"] == "accuracy"
    assert result["split_sizes"] == {"train": 16, "val": 8, "test": 20}  # n_val from train.csv; val.csv whole
    for prefix in ("val", "test_last", "test_best"):
        assert 0.0 <= result["metrics"][f"{prefix}/accuracy"] <= 1.0
    assert 0 < result["baseline"]["test/accuracy"] < 1
    assert result["train_samples_per_s"] > 0 and 0 < result["padding_efficiency"] <= 1
    assert result["head"].startswith("new classifier head")


@pytest.mark.slow
def test_reinit_llrd_and_mixout_prior_wd(tmp_path):
    proc = run_train(
        *SWAG, "reinit=1", "llrd=0.8", "data.group_by_length=true", f"hydra.run.dir={tmp_path / 'reinit_llrd'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(*SWAG, "mixout=0.1", "prior_wd=0.01", "optimizer=bertadam", f"hydra.run.dir={tmp_path / 'mix'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert results["reinit_llrd"]["settings"]["llrd"] == 0.8 and results["reinit_llrd"]["settings"]["reinit"] == 1


@pytest.mark.slow
def test_jsonl_choices_with_a_list_field(tmp_path):
    proc = run_train(*CHOICES, "task.n_val=null", f"hydra.run.dir={tmp_path}")  # val/test = dev.jsonl's halves
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["split_sizes"] == {"train": 16, "val": 6, "test": 6}


@pytest.mark.slow
def test_an_example_with_the_wrong_number_of_endings_is_one_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text((FIXTURES / "choices" / "train.jsonl").read_text())
    lines = (FIXTURES / "choices" / "dev.jsonl").read_text().splitlines()
    lines[4] = lines[4].replace('"endings": [', '"endings": ["one more", ')
    (data / "dev.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_train(*CHOICES, f"task.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "dev.jsonl, line 5: 4 endings in field 'endings', task.num_choices=3" in proc.stderr
    assert "Traceback" not in proc.stderr


# 16 examples in batches of 6: 3 batches per epoch; 12 steps; a validation (and a resume
# checkpoint) every 4 steps, mid-epoch, so the resumed run must restore the loader position.
LONG = [*SWAG, "data.batch_size=6", "trainer.max_steps=12", "trainer.max_epochs=100", "trainer.num_evals=3"]
LONG += ["resume_every_s=0"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference = run_train(*LONG, f"hydra.run.dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    run_dir = tmp_path / "run"
    run = StoppedRun(run_dir, "saved", *LONG, f"hydra.run.dir={run_dir}")
    assert "stopping for the test at step 4" in run.stdout()
    killed = run.kill(signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL and (run_dir / "resume" / "last.ckpt").exists()
    resumed = run_train(*LONG, f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    expected, got = results_under(tmp_path / "reference")["."], results_under(run_dir)["."]
    assert got["metrics"] == expected["metrics"] and got["best_step"] == expected["best_step"]
    assert got["global_steps"] == 12


@pytest.mark.slow
def test_evaluate_retests_a_saved_choice_run_and_predict_refuses_it(tmp_path):
    """bertlab evaluate rebuilds a multiple-choice run with its own reader, head and accuracy."""
    from bertlab.run.evaluate import evaluate
    from bertlab.run.predict import predict
    from bertlab.run.saved_run import SavedRunError

    run_dir = tmp_path / "run"
    proc = run_train(*SWAG, "save_weights=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(run_dir)["."]
    metrics = evaluate(run_dir)
    assert metrics["test/accuracy"] == pytest.approx(result["metrics"]["test_best/accuracy"], abs=1e-6)
    with pytest.raises(SavedRunError, match="task.problem=multiple_choice run.*bertlab evaluate"):
        predict(run_dir, tmp_path / "in.csv")
