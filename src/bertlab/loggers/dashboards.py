"""What every dashboard (W&B, TensorBoard, MLflow) must agree on with the run's own record.

- One set of final numbers: `val_best/<m>` (result.json's `val/<m>`, the best validation, which the
  search optimises and the report ranks), `test_best/<m>`, `test_last/<m>` and `best_step`, written
  at the end to W&B's summary, TensorBoard's hparams and MLflow's metrics. Under `val/<m>` each
  dashboard keeps its curve, whose last point is the last validation, not the best one.
- One run across restarts: the W&B run id is derived from the run folder (stable across restarts,
  distinct across folders); MLflow's run id is kept in the run folder; TensorBoard's folder is named
  after the run. A resumed run re-trains the steps between its checkpoint and the kill with the
  same results, so TensorBoard and MLflow leave out the values the attempt before already sent
  (W&B gets them again: build.py says why).
"""

import hashlib
import sys
from pathlib import Path

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

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


def logged_before(run_dir: Path) -> set[tuple[int, str]]:
    """(step, metric) of every value in metrics.csv as the attempt before left it (read before this
    run's CSV logger rewrites it). metrics.csv is written beside the dashboards, so it tells what
    they were sent. A step alone would not do: the rows logged at the checkpoint's step mix values
    from before it (its validation) and after it (the next step's loss and lr). Its whole rows only
    (run_csv.read_complete_rows): a torn last row says nothing sure of what was sent."""
    rows, _ = read_complete_rows(Path(run_dir) / METRICS_FILE, limit=sys.maxsize)
    return {(int(float(row["step"])), key) for row in rows for key in row if key != "step"}


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
