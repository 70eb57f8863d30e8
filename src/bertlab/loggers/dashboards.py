"""What every dashboard (W&B, TensorBoard, MLflow) must agree on with the run's own record.

- One set of final numbers: `val_best/<m>` (result.json's `val/<m>`, the best validation, which the
  search optimises and the report ranks), `test_best/<m>`, `test_last/<m>` and `best_step`, written
  at the end to W&B's summary, TensorBoard's hparams and MLflow's metrics. Under `val/<m>` each
  dashboard keeps its curve, whose last point is the last validation, not the best one.
- One run across restarts: the W&B run id is derived from the run folder (stable across restarts,
  distinct across folders); MLflow's run id is kept in the run folder; TensorBoard's folder is named
  after the run. A resumed run re-trains the steps between its checkpoint and the kill with the
  same results, so TensorBoard and MLflow leave out the values their own files already hold, read
  back (W&B gets them again: build.py says why).
"""

import hashlib
from pathlib import Path

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from bertlab.loggers import wandb_file
from bertlab.loggers.metrics_file import METRICS_FILE
from bertlab.loggers.run_csv import read_complete_rows

BEST_STEP = "best_step"


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id of the run in `run_dir`: a hash of its absolute path, so the same folder (a
    restart, a sweep re-run) continues one run and two folders never share one. W&B ids may hold
    letters, digits, - and _; 16 hex digits leave collisions to chance (1 in 2**64)."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def final_numbers(metrics: dict[str, float], best_step: int | None) -> dict[str, float]:
    """result.json's metrics as the dashboards name them: val/<m> (the best validation) is
    val_best/<m>; the test metrics keep their names; with the step of the best weights."""
    final = {}
    for key, value in metrics.items():
        prefix, _, name = key.partition("/")
        if prefix == "val":
            final[f"val_best/{name}"] = value
        elif prefix in ("test_best", "test_last"):
            final[key] = value
    if best_step is not None:
        final[BEST_STEP] = best_step
    return final


def log_final_numbers(loggers: list[Logger], final: dict[str, float], step: int) -> None:
    """Write the final numbers where each dashboard shows a run's result: W&B's summary (the runs
    table), TensorBoard's hparams (the HPARAMS tab, beside the config) and MLflow's metrics (its
    runs table shows each metric's latest value). metrics.csv already has the test rows."""
    # the test loop logged the test metrics at this step already: a value is not drawn twice
    tested = {(step, key) for key in final if key.startswith("test_")}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(final)
        elif isinstance(logger, TensorBoardLogger):
            # the hparams session with these metrics as its columns (the config was stored when the
            # logger started); Lightning logs the metrics as scalars too, which the tab reads
            skip_logged(logger, tested)
            logger.log_hyperparams(logger.hparams, metrics=final, step=step)
        elif isinstance(logger, MLFlowLogger):
            skip_logged(logger, tested)
            logger.log_metrics(final, step=step)


def tensorboard_held(log_dir: str | Path) -> set[tuple[int, str]]:
    """(step, tag) of every scalar the TensorBoard run folder's event files hold, read back with
    TensorBoard's own reader (a file cut by a SIGKILL is read up to its last whole record)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    if not Path(log_dir).is_dir():
        return set()
    events = EventAccumulator(str(log_dir), size_guidance={SCALARS: 0})  # 0: every value, not a sample
    events.Reload()
    return {(event.step, tag) for tag in events.Tags()["scalars"] for event in events.Scalars(tag)}


def mlflow_held(logger: MLFlowLogger) -> set[tuple[int, str]]:
    """(step, metric) of every value the logger's MLflow run holds, read back from its store."""
    client, run_id = logger.experiment, logger.run_id
    keys = client.get_run(run_id).data.metrics
    return {(metric.step, key) for key in keys for metric in client.get_metric_history(run_id, key)}


def skip_logged(logger: Logger, logged: set[tuple[int, str]]) -> None:
    """Make `logger` leave out the values the attempt before already sent (`logged`: step, metric).

    A resumed run re-trains from its checkpoint to where the attempt before was killed, with the
    same numbers (resume is exact on the CPU): sending them again would draw those steps twice in
    the same W&B run, MLflow run and TensorBoard folder, and none of the three can take a value
    back. Set on the instance: this one logger, for this run only.
    """
    log_metrics = logger.log_metrics

    def log_new(metrics, step=None):
        if step is not None:
            metrics = {k: v for k, v in metrics.items() if (step, k) not in logged}
        if metrics:
            log_metrics(metrics, step)

    logger.log_metrics = log_new


def send_wandb_missing(logger: WandbLogger, run_dir: Path, keep_rows: int) -> int:
    """Send W&B the values of metrics.csv's first `keep_rows` rows (those the resumed checkpoint
    covers, which this attempt does not log again) that none of the run's W&B files holds: an
    attempt killed with SIGKILL lost whatever it had logged (wandb_file.py). Each at its own step,
    W&B's x-axis. Online, the server may have had some of them already: there W&B shows those twice.
    Returns how many rows were sent."""
    rows, _ = read_complete_rows(Path(run_dir) / METRICS_FILE, keep_rows)
    have = wandb_file.held(run_dir, wandb_run_id(run_dir))
    sent = 0
    for row in rows:
        step = int(float(row["step"]))
        missing = {key: float(value) for key, value in row.items() if key != "step" and (step, key) not in have}
        if missing:
            logger.log_metrics(missing, step)
            sent += 1
    return sent
