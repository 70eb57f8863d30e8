"""MLflow: where a run is logged (`logger.mlflow.tracking_uri`), checked before the run starts, and its logger.

By default a local file store beside the run's files: `<sweep folder>/mlruns` in a multirun (all
jobs of the sweep in one store, so the MLflow UI compares them), `<run folder>/mlruns` for a single
run. A folder or `file:` URI, a database URI (`sqlite:///path/mlflow.db`) or a tracking server
(`http://host:5000`) may be given instead. A server that does not answer is an error before the
run starts, not a fallback: unlike W&B (which logs offline and syncs later), MLflow has no way to
move a run logged elsewhere into the server the user named, so a silent fallback would scatter a
sweep's runs.
"""

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say

STORE_DIR = "mlruns"  # MLflow's own name for a file store
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy's, with an optional +driver
OTHER_SCHEMES = ("databricks", "databricks-uc")
LOCAL_HINT = "or log to a local file store: logger.mlflow.tracking_uri=null (beside the run) or a folder"


def _scheme(uri: str) -> str:
    scheme = urlparse(uri).scheme
    return "" if len(scheme) <= 1 else scheme.split("+", 1)[0]  # C:\\... is a Windows path, not a scheme


def check_tracking_uri(uri, experiment, keys: str = "logger.mlflow") -> None:
    """One ConfigError for a tracking URI this run could not log to, or an empty experiment name;
    `keys`: where the two keys are (`logger` in a run saved by an older bertlab)."""
    hint = LOCAL_HINT.replace("logger.mlflow.", f"{keys}.")
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError(f"{keys}.experiment={experiment!r} is invalid: give the MLflow experiment's name.")
    if uri is None:
        return
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(
            f"{keys}.tracking_uri={uri!r} is invalid: give a folder, a file:, sqlite:/// or http(s):// URI, "
            "or null (a file store beside the run)."
        )
    scheme = _scheme(uri)
    if scheme in ("", "file"):
        path = local_path(uri)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{keys}.tracking_uri={uri}: {path} is a file, not a folder for MLflow's file store.")
    elif scheme in SERVER_SCHEMES:
        from bertlab.core.network import unreachable

        why = unreachable(uri)
        if why is not None:
            raise ConfigError(
                f"{keys}.tracking_uri={uri}: the MLflow tracking server is unreachable ({why}); start it or fix "
                f"the URI, {hint}."
            )
    elif scheme in DATABASE_SCHEMES:
        lacking = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
        if lacking:
            raise ConfigError(
                f"{keys}.tracking_uri={uri}: a database store needs {' and '.join(lacking)} "
                f"(`pip install {' '.join(lacking)}`), {hint}."
            )
    elif scheme not in OTHER_SCHEMES:
        valid = ", ".join(f"{s}:" for s in ("file", *SERVER_SCHEMES, *DATABASE_SCHEMES, *OTHER_SCHEMES))
        raise ConfigError(f"{keys}.tracking_uri={uri}: unknown scheme '{scheme}:'; valid: a folder, {valid}")


def local_path(uri: str) -> Path:
    return Path(urlparse(uri).path if _scheme(uri) == "file" else uri).expanduser().resolve()


def store_uri(configured: str | None, default_dir: Path) -> str:
    """The URI to log to: the configured one, or a file store in `default_dir` (an absolute file: URI)."""
    if configured is None:
        return (Path(default_dir).resolve() / STORE_DIR).as_uri()
    if _scheme(configured) in ("", "file"):
        return local_path(configured).as_uri()
    return configured


def mlflow_tags(group: str | None, job_type: str, tags: list[str]) -> dict[str, str]:
    """W&B's group, job type and tags as MLflow tags (key -> value, searchable in the UI: `tags.seed = '1'`):
    an override tag `key=value` becomes the tag `key` with its value, another tag the tag itself = "true"."""
    out = {"job_type": job_type}
    if group is not None:
        out["group"] = group
    for tag in tags:
        key, sep, value = tag.partition("=")
        # MLflow refuses tag keys outside [/\w.\- :] (`+key` overrides, an odd extra tag)
        key = "".join(c if c.isalnum() or c in "/_.- :" else "_" for c in key)
        out[key] = value if sep else "true"
    return out


def default_store_dir(run_dir: Path) -> Path:
    """The folder of the default file store: the sweep folder in a multirun, else the run folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir)
    return Path(run_dir)


def create_experiment(uri: str, name: str) -> None:
    """Create the experiment unless it exists. Lightning would too (with a warning line on every new
    store); here the parallel jobs of a sweep that race to create it are handled: the loser finds it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        found = client.get_experiment_by_name(name)  # reads every experiment's meta.yaml in a file store
    except Exception as err:
        raise damaged_store(uri, err) from None
    if found is None:
        try:
            client.create_experiment(name)
        except MlflowException:
            if client.get_experiment_by_name(name) is None:  # not the race: a real error
                raise


def damaged_store(uri: str, err: Exception) -> Exception:
    """MLflow's file store writes its meta.yaml files in place: a run killed while MLflow created the
    experiment leaves a cut file, and every later run failed reading it, with a traceback.
    One message naming the file and the way out instead; other errors are MLflow's own."""
    import yaml

    # (an empty one MLflow skips by itself, with a warning, and creates the experiment anew)
    if not isinstance(err, yaml.YAMLError) or getattr(err, "problem_mark", None) is None:
        return err
    where = err.problem_mark.name
    return ConfigError(
        f"the MLflow store {uri} has a damaged file, {where} (cut by a run killed while MLflow wrote it): "
        f"move its experiment folder ({Path(where).parent}) out of the store and run again (MLflow creates it "
        f"anew), or log to another store: logger.mlflow.tracking_uri=<folder>."
    )


RUN_ID_FILE = "mlflow_run_id"  # in the run folder: the MLflow run a restarted run continues


def mlflow_logger(
    cfg: DictConfig,
    run_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    resumed: bool,
    experiment: str = "bertlab",
    tracking_uri: str | None = None,
):
    """Lightning's MLFlowLogger in `experiment` at `tracking_uri` (logger.mlflow's keys); `resumed`: continue the MLflow run the attempt before started (its
    id kept in the run folder: MLflow makes run ids, so none can be derived from the folder)."""
    from lightning.pytorch.loggers import MLFlowLogger

    from bertlab.core.atomic import write_text_atomic

    uri = store_uri(tracking_uri, default_store_dir(run_dir))
    if uri.startswith("file:"):
        # MLflow 3 refuses its file store unless asked for (it would like a database); the file store
        # is what a sweep of parallel jobs needs: each run its own folder, no database lock.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    create_experiment(uri, experiment)
    id_file = Path(run_dir) / RUN_ID_FILE
    earlier = id_file.read_text().strip() if id_file.is_file() else None
    run_id = earlier if resumed else None
    logger = MLFlowLogger(
        experiment_name=experiment,
        run_name=run_name,
        tracking_uri=uri,
        tags=mlflow_tags(group, cfg.task.name, tags),
        run_id=run_id,
    )
    if run_id is not None:  # killed, it was left RUNNING or FAILED: it runs again
        logger.experiment.update_run(run_id, status="RUNNING")
    else:  # a new run: its params (a continued run has them; MLflow refuses to change one)
        if earlier is not None:
            _delete_unfinished(logger.experiment, earlier)
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        write_text_atomic(id_file, logger.run_id)
    return logger


def _delete_unfinished(client, run_id: str) -> None:
    """A fresh start in a folder whose attempt before ended without a checkpoint to continue (killed
    before its first save, or failed): that attempt's MLflow run, left RUNNING or FAILED with the
    first values of this very run, is marked deleted, as metrics.csv is started afresh; otherwise
    the experiment would list the folder's run twice. Deleted, not purged: `mlflow runs restore`
    brings it back. A FINISHED run (a finished folder run again) is left as it is."""
    from mlflow.exceptions import MlflowException

    try:
        if client.get_run(run_id).info.status != "FINISHED":
            client.delete_run(run_id)
            say(f"mlflow: run {run_id} of the attempt before (nothing to resume) marked deleted")
    except MlflowException:
        pass  # already gone (deleted by hand, another store): nothing to tidy
