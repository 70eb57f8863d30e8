"""TensorBoard, MLflow and several loggers at once (loggers/choice.py, mlflow_store.py, tensorboard_dir.py)."""

import pytest
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.loggers.choice import check_logger, logger_names
from bertlab.loggers.mlflow_store import check_tracking_uri, mlflow_tags, store_uri
from bertlab.loggers.tensorboard_dir import run_folder_name
from tests.helpers.e2e import TINY, results_under, run_train
from tests.helpers.logged import mlflow_runs, tensorboard_scalars


def test_logger_names_one_or_a_list(compose_train):
    assert logger_names(compose_train("logger=wandb").logger) == ["wandb"]
    assert logger_names(compose_train("logger=none").logger) == []
    many = compose_train("logger=many").logger
    assert logger_names(many) == ["wandb", "tensorboard", "mlflow"]
    # the keys of each logger, from its own file
    assert many.wandb.project == "bertlab" and many.mlflow.experiment == "bertlab" and many.mlflow.tracking_uri is None
    subset = compose_train("logger=many", "~logger.wandb", "~logger.tensorboard").logger
    assert logger_names(subset) == ["mlflow"]


@pytest.mark.parametrize(
    "logger, message",
    [
        (
            {"name": "tensorbord"},
            "logger.name=tensorbord: tensorbord is unknown; valid: wandb, csv, tensorboard, mlflow",
        ),
        ({"name": []}, "an empty list names no logger"),
        ({"name": ["none", "csv"]}, "`none` cannot be combined"),
        ({"name": ["csv", "mlflow"]}, "names mlflow, whose keys (logger.experiment, logger.tracking_uri)"),
        ({"name": "mlflow", "experiment": "", "tracking_uri": None}, "logger.experiment='' is invalid"),
        ({"name": "mlflow", "experiment": "x", "tracking_uri": "ftp://host/x"}, "unknown scheme 'ftp:'"),
    ],
)
def test_bad_logger_keys_get_one_message(logger, message):
    with pytest.raises(ConfigError) as err:
        check_logger(OmegaConf.create(logger))
    assert message in str(err.value)


def test_an_unreachable_tracking_server_is_an_error_before_the_run(monkeypatch):
    # port 9 (discard) on the loopback: nothing listens, the connection is refused at once
    with pytest.raises(ConfigError) as err:
        check_tracking_uri("http://127.0.0.1:9", "bertlab")
    assert "logger.mlflow.tracking_uri=http://127.0.0.1:9: the MLflow tracking server is unreachable" in str(err.value)
    assert "logger.mlflow.tracking_uri=null" in str(err.value)


def test_a_file_is_no_file_store(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_tracking_uri(str(tmp_path / "f"), "bertlab")


def test_tracking_uri_defaults_to_a_file_store_beside_the_run(tmp_path):
    assert store_uri(None, tmp_path) == (tmp_path / "mlruns").as_uri()
    assert store_uri(str(tmp_path / "store"), tmp_path / "x") == (tmp_path / "store").as_uri()
    assert store_uri("http://host:5000", tmp_path) == "http://host:5000"


def test_mlflow_tags_are_wandbs_group_job_type_and_tags():
    tags = mlflow_tags("2026-11-24/10-00-00", "rte", ["optimizer=bertadam", "+extra=1", "mine"])
    assert tags == {
        "job_type": "rte",
        "group": "2026-11-24/10-00-00",
        "optimizer": "bertadam",
        "_extra": "1",
        "mine": "true",
    }
    assert run_folder_name("task.data_dir=RTE,a/b") == "task.data_dir=RTE,a_b"


@pytest.mark.slow
def test_several_loggers_leave_their_files(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "logger=many", "~logger.wandb", "seed=3", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = results_under(tmp_path)["run"]["metrics"]
    run_name = "logger=many,~logger.wandb,seed=3"  # model=tiny,... come first
    (tb_dir,) = (run_dir / "tensorboard").iterdir()
    assert tb_dir.name.endswith(run_name)
    scalars = tensorboard_scalars(tb_dir)
    assert scalars["test_best/accuracy"] == [pytest.approx(metrics["test_best/accuracy"])]
    assert max(scalars["val/accuracy"]) == pytest.approx(metrics["val/accuracy"])  # the best validation
    assert "train/loss" in scalars and any(k.startswith("lr/") for k in scalars)
    assert (run_dir / "metrics.csv").exists()  # always, for the report

    (run,) = mlflow_runs(run_dir / "mlruns")
    assert run.info.run_name == tb_dir.name and run.info.status == "FINISHED"
    assert run.data.metrics["test_last/accuracy"] == pytest.approx(metrics["test_last/accuracy"])
    assert run.data.params["seed"] == "3" and run.data.params["model/name"] == "tiny"
    assert run.data.tags["seed"] == "3" and run.data.tags["job_type"] == "bbcnews"
    assert "group" not in run.data.tags  # a single run has no group, as on W&B


@pytest.mark.slow
def test_a_sweep_logs_to_one_mlflow_store_with_its_group(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train("-m", *TINY, "logger=mlflow", "seed=0,1", f"hydra.sweep.dir={sweep}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = mlflow_runs(sweep / "mlruns")
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1"]
    assert {r.data.tags["group"] for r in runs} == {f"{tmp_path.name}/sweep"}
    assert not (sweep / "0" / "mlruns").exists()


def test_an_mlflow_store_torn_by_a_kill_is_one_message_naming_the_file(tmp_path, monkeypatch):
    """Issue 24: a run killed while MLflow created its experiment left a cut meta.yaml; every later run
    of the store then failed in MLflow's YAML reader with a traceback."""
    from bertlab.loggers.mlflow_store import create_experiment

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = store_uri(None, tmp_path)
    create_experiment(uri, "bertlab")
    meta = next(p for p in (tmp_path / "mlruns").glob("*/meta.yaml") if p.parent.name != "0")
    meta.write_bytes(meta.read_bytes()[: len(meta.read_bytes()) // 2])
    with pytest.raises(ConfigError) as err:
        create_experiment(uri, "bertlab")
    assert f"has a damaged file, {meta}" in str(err.value)
    assert f"move its experiment folder ({meta.parent}) out of the store" in str(err.value)
