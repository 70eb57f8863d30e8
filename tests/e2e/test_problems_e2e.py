"""What every task problem beyond sequence classification must do through `python train.py`, once
for all of them (tiny random BERT, the fixtures): a sweep after a TAPT stage the second seed
reuses, then `bertlab report` with the problem's main metric, baseline and figures; a killed run
resumed to the uninterrupted result; `bertlab evaluate` re-testing the saved weights to the run's
own test metrics, and `bertlab predict` refusing the run in one message."""

import signal
from pathlib import Path

import pytest

from bertlab.cli import main
from tests.helpers.e2e import TINY, StoppedRun, results_under
from tests.helpers.e2e import run_train as run_process
from tests.helpers.inprocess import run_train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Problem:
    def __init__(self, task, metrics, predictor, outputs):
        self.task, self.metrics, self.predictor, self.outputs = task, metrics, predictor, outputs
        self.main_metric = metrics[0]
        self.run = [*TINY, f"task={task}", f"task.data_dir={FIXTURES / task}", "data.token_cache=null"]


PROBLEMS = {
    # the task of its fixture, its metrics (main first), the report's trivial predictor, the head's outputs
    "token_classification": Problem("conll2003", ("entity_f1", "token_accuracy"), "majority-tag", "9 labels"),
    "multiple_choice": Problem("swag", ("accuracy",), "majority-class", "one score per choice"),
    "question_answering": Problem(
        "squad", ("answer_f1", "exact_match"), "first-k-words", "a start and an end score per token"
    ),
}
NAMES = sorted(PROBLEMS)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_sweep_with_pretraining_and_its_report(name, tmp_path):
    p = PROBLEMS[name]
    sweep = tmp_path / "sweep"
    proc = run_process(
        "-m",
        *p.run,
        "pretrain=tapt",
        "pretrain.max_epochs=1",
        f"pretrain.cache_dir={tmp_path / 'pretrained'}",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(sweep)
    assert sorted(results) == ["0", "1"] and all(r["status"] == "ok" for r in results.values())
    assert results["0"]["head"] == f"new classifier head ({p.outputs})"
    assert results["0"]["select_metric"] == p.main_metric
    stages = [r["pretrain"]["stages"][0] for r in results.values()]
    assert [s["reused"] for s in stages] == [False, True]  # the task's own text, trained once
    assert stages[0]["corpus"]["documents"] > 0
    assert main(["report", str(sweep)]) == 0
    text = (sweep / "report.md").read_text()
    assert f"{p.task}: test {p.main_metric}, 2 runs" in text
    assert f"at/below the {p.predictor} predictor's test {p.main_metric}" in text
    assert (sweep / f"{p.task}_boxplot.png").stat().st_size > 20_000  # a real figure


# Where each problem's run is killed, how, and with which logger (issue 24): with test_resume_e2e.py's
# kills of sequence classification, every kind of task meets both signals and several loggers.
KILLS = {
    "token_classification": ("csv", signal.SIGTERM, "validating"),  # no checkpoint yet: starts over
    "multiple_choice": ("tensorboard", signal.SIGKILL, "saving"),  # inside the second save (step 8)
    "question_answering": ("wandb", signal.SIGTERM, "mid-step"),  # saved at the end of step 5
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_killed_run_resumes_to_the_uninterrupted_result(name, tmp_path):
    # 16 training examples in batches of 6 (QA: windows): 12 steps; a validation (and a resume
    # checkpoint) every 4 steps, mid-epoch, so the resumed run must restore the loader position.
    long = [*PROBLEMS[name].run, "data.batch_size=6", "trainer.max_steps=12", "trainer.max_epochs=100"]
    long += ["trainer.num_evals=3", "resume_every_s=0"]
    reference = run_train(*long, f"hydra.run.dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-3000:]
    logger, sig, when = KILLS[name]
    env = {"WANDB_MODE": "offline"} if logger == "wandb" else None  # W&B's own files, no account
    run_dir = tmp_path / "run"
    long += [f"logger={logger}", f"hydra.run.dir={run_dir}"]
    killed = StoppedRun(run_dir, when, *long, env=env).kill(sig)
    assert killed.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL), killed.stderr[-3000:]
    resumed = run_train(*long, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout  # SIGTERM saves wherever it lands; SIGKILL: the first save
    expected, got = results_under(tmp_path / "reference")["."], results_under(run_dir)["."]
    assert got["status"] == "ok"
    assert got["metrics"] == expected["metrics"] and got["best_step"] == expected["best_step"]
    assert got["global_steps"] == 12
    # the whole history, as the uninterrupted run logged it: no row lost, none twice
    assert (run_dir / "metrics.csv").read_bytes() == (tmp_path / "reference" / "metrics.csv").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_evaluate_retests_a_saved_run_and_predict_refuses_it(name, tmp_path):
    """bertlab evaluate rebuilds the run with its problem's own reader, encoder, head and metrics."""
    from bertlab.run.evaluate import evaluate
    from bertlab.run.predict import predict
    from bertlab.run.saved_run import SavedRunError

    p = PROBLEMS[name]
    run_dir = tmp_path / "run"
    proc = run_train(*p.run, "save_weights=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(run_dir)["."]
    metrics = evaluate(run_dir)
    for metric in p.metrics:
        assert metrics[f"test/{metric}"] == pytest.approx(result["metrics"][f"test_best/{metric}"], abs=1e-6)
    with pytest.raises(SavedRunError, match=f"task.problem={name} run.*bertlab evaluate"):
        predict(run_dir, tmp_path / "in.csv")
    assert "Traceback" not in proc.stderr
