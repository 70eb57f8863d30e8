"""The dashboards tell the run's own story: one step axis, one set of final numbers, one run across
restarts, a sweep as a W&B group, the console in the run's log file (loggers/dashboards.py)."""

import csv
import re
import signal

import pytest

from bertlab.loggers.dashboards import final_numbers, mlflow_held, skip_logged, tensorboard_held, wandb_run_id
from tests.helpers.e2e import TINY, StoppedRun, python, results_under, run_train
from tests.helpers.logged import mlflow_runs
from tests.helpers.wandb_records import offline_runs

OFFLINE = {"WANDB_MODE": "offline"}


def test_the_wandb_run_id_is_the_run_folders(tmp_path):
    first = wandb_run_id(tmp_path / "a")
    assert first == wandb_run_id(tmp_path / "a" / ".." / "a")  # the folder, however it is written
    assert first != wandb_run_id(tmp_path / "b")
    assert re.fullmatch(r"[0-9a-f]{16}", first)


def test_final_numbers_are_result_jsons_under_the_dashboards_names():
    metrics = {"val/f1": 0.8, "val/accuracy": 0.7, "test_best/f1": 0.6, "test_last/f1": 0.5}
    assert final_numbers(metrics, 12) == {
        "val_best/f1": 0.8,
        "val_best/accuracy": 0.7,
        "test_best/f1": 0.6,
        "test_last/f1": 0.5,
        "best_step": 12,
    }
    assert "best_step" not in final_numbers({}, None)  # no validation ran


def test_a_resumed_run_sends_no_value_twice(tmp_path, monkeypatch):
    """What TensorBoard's and MLflow's own files hold is read back, and only the rest is sent."""
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

    # the attempt before: the validation at its checkpoint's step 2, then the next step's loss at 2
    sent = [({"train/loss": 1.6}, 0), ({"val/accuracy": 0.5}, 2), ({"train/loss": 1.4}, 2)]
    expected = {(0, "train/loss"), (2, "val/accuracy"), (2, "train/loss")}
    tensorboard = TensorBoardLogger(save_dir=str(tmp_path), name="tb", version="run")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow = MLFlowLogger(experiment_name="bertlab", tracking_uri=(tmp_path / "mlruns").as_uri())
    for logger in (tensorboard, mlflow):
        for metrics, step in sent:
            logger.log_metrics(metrics, step)
    tensorboard.experiment.flush()  # what Lightning's save() after each log call does
    assert tensorboard_held(tensorboard.log_dir) == expected
    assert mlflow_held(mlflow) == expected
    assert tensorboard_held(tmp_path / "nothing") == set()

    class Recorder:
        def __init__(self):
            self.rows = []

        def log_metrics(self, metrics, step=None):
            self.rows.append((step, metrics))

    logger = Recorder()
    skip_logged(logger, expected)
    logger.log_metrics({"train/loss": 1.4}, 2)  # sent before the kill
    logger.log_metrics({"lr/all": 0.1, "train/loss": 1.4}, 2)  # the lr at 2 was not
    logger.log_metrics({"train/loss": 1.3}, 3)
    assert logger.rows == [(2, {"lr/all": 0.1}), (3, {"train/loss": 1.3})]


def csv_validation_steps(run_dir, metric="val/accuracy") -> list[int]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get(metric)]


@pytest.mark.slow
def test_every_logger_agrees_with_the_console_and_result_json(tmp_path):
    """Validations at the optimizer steps done (Lightning logged them one step early), and the best
    validation, the tests and the best step in W&B's summary, TensorBoard's hparams and MLflow's
    metrics, equal to result.json; the console's lines are in app.log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "logger=many", f"hydra.run.dir={run_dir}", env=OFFLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["run"]
    console = [int(s) for s in re.findall(r"validation at step (\d+)/", proc.stdout)]
    assert console == [2, 4] and result["best_step"] in console and result["validations"] == 2
    final = final_numbers(result["metrics"], result["best_step"])
    assert set(final) == {"val_best/accuracy", "test_best/accuracy", "test_last/accuracy", "best_step"}

    assert csv_validation_steps(run_dir) == console

    (wandb_run,) = offline_runs(run_dir)
    assert [h["trainer/global_step"] for h in wandb_run.history if "val/accuracy" in h] == console
    assert {k: wandb_run.summary[k] for k in final} == pytest.approx(final)

    (tb_dir,) = (run_dir / "tensorboard").iterdir()
    events = EventAccumulator(str(tb_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("val/accuracy")] == console
    assert {k: events.Scalars(k)[-1].value for k in final} == pytest.approx(final)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    assert {m.name.tag for m in experiment.metric_infos} == set(final)  # the HPARAMS tab's columns

    (mlflow_run,) = mlflow_runs(run_dir / "mlruns")
    assert {k: mlflow_run.data.metrics[k] for k in final} == pytest.approx(final)
    from mlflow import MlflowClient

    history = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri()).get_metric_history(
        mlflow_run.info.run_id, "val/accuracy"
    )
    assert [m.step for m in history] == console

    log = (run_dir / "app.log").read_text()
    for line in ("run folder:", "validation at step 2/4", "test_best/accuracy", "config"):
        assert line in log and line in proc.stdout


@pytest.mark.slow
def test_a_preempted_and_resumed_run_continues_its_dashboards(tmp_path):
    """SIGTERM in the step after the first checkpoint (a preemption), then the same command: one
    W&B run id (the folder's), each value sent once, one MLflow run, one TensorBoard folder."""
    run_dir = tmp_path / "run"
    command = (*TINY, "logger=many", "resume_every_s=0", f"hydra.run.dir={run_dir}")
    stopped = StoppedRun(run_dir, "mid-step", *command, env=OFFLINE)
    assert stopped.kill(signal.SIGTERM).returncode == 143
    proc = run_train(*command, env=OFFLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in proc.stdout

    first, second = offline_runs(run_dir)
    assert first.run_id == second.run_id == wandb_run_id(run_dir)
    sent = [
        (h["trainer/global_step"], key)
        for run in (first, second)
        for h in run.history
        for key in h
        if not key.startswith("_") and key not in ("trainer/global_step", "epoch")
    ]
    assert len(sent) == len(set(sent)), "a value was sent twice"
    assert sorted(step for step, key in sent if key == "val/accuracy") == [2, 4]
    assert second.summary["best_step"] == results_under(tmp_path)["run"]["best_step"]
    (mlflow_run,) = mlflow_runs(run_dir / "mlruns")
    assert mlflow_run.info.status == "FINISHED"
    from mlflow import MlflowClient

    history = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri()).get_metric_history(
        mlflow_run.info.run_id, "val/accuracy"
    )
    assert [m.step for m in history] == [2, 4]
    assert len(list((run_dir / "tensorboard").iterdir())) == 1


@pytest.mark.slow
def test_a_sweep_is_a_wandb_group_and_the_report_joins_it(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train("-m", *TINY, "logger=wandb", "seed=0,1", f"hydra.sweep.dir={sweep}", env=OFFLINE, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [run for job in ("0", "1") for run in offline_runs(sweep / job)]
    assert [r.name for r in runs] == ["seed=0", "seed=1"]  # the swept choice, not the fixed ones
    assert {r.group for r in runs} == {f"{tmp_path.name}/sweep"}
    assert runs[0].config["seed"] == 0 and runs[0].config["model"]["name"] == "tiny"  # the resolved config

    report = python("-m", "bertlab.cli", "report", str(sweep), "--wandb", env=OFFLINE, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    (logged,) = offline_runs(sweep)
    assert logged.name == "report" and logged.group == f"{tmp_path.name}/sweep"
    (row,) = logged.history  # a table or image is a nested value: its keys are read as <name>/<field>
    assert row["runs/_type"] == row["bbcnews/summary/_type"] == row["bbcnews/paired/_type"] == "table-file"
    assert row["runs/nrows"] == 2
    assert row["bbcnews/boxplot/_type"] == row["bbcnews/curves/_type"] == "image-file"
    assert logged.config["command"] == f"bertlab report {sweep} --wandb"
