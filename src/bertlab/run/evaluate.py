"""`bertlab evaluate RUN_DIR [key=value ...]`: the saved weights re-tested on the task's test split.

The test split is drawn from the run's own config (bertlab.yaml: the same task, data_seed and
sizes, so the same examples) and tested by the run's own code (FineTuner, run_test): on the same
machine and data the metrics equal the run's `test_best/...` (its saved weights are the best
ones; the last ones when validation never ran). Overrides change keys of that config, e.g. a moved
data folder (`task.data_dir=DIR`), the whole test set (`task.n_test=null`) or the precision.
"""

from pathlib import Path

from omegaconf import DictConfig, open_dict

from bertlab.run.checks import check_config
from bertlab.run.saved_run import load_saved_config, saved_model_dir
from bertlab.setfit.train import is_setfit

PREFIX = "test_best"  # the FineTuner's metric set of the saved (best) weights


def without_training_stages(cfg: DictConfig) -> DictConfig:
    """A copy of the run's config for train.py's checks, less the stages a re-test never runs:
    the teacher folder, the augmentation files and the pre-training corpus it was trained with may
    be gone since, and their checks would refuse a run that needs none of them."""
    checked = cfg.copy()
    with open_dict(checked):
        checked.distill = {"name": "none"}
        checked.augment = {"name": "none"}
        if "pretrain" in checked:
            checked.pretrain.stages = []
    return checked


def evaluate(run_dir: Path, overrides: list[str] | None = None) -> dict[str, float]:
    """`test/<metric>` of the saved weights."""
    model_dir = saved_model_dir(run_dir)
    cfg = load_saved_config(model_dir, overrides)
    check_config(without_training_stages(cfg))  # train.py's checks: an override is refused as it is there

    from bertlab.core.devices import resolve_precision
    from bertlab.core.limits import lightning_trainer
    from bertlab.data.sampling import make_splits
    from bertlab.loggers.console import quiet_libraries
    from bertlab.problems.registry import problem_of
    from bertlab.run.fit import data_and_module, load_trained_model, run_test

    quiet_libraries()
    task = cfg.task
    problem = problem_of(task)  # the run's own reader, encoding and metrics (problems/)
    splits = make_splits(problem.read(task), task, task.data_seed, problem.kind)
    if is_setfit(cfg):  # approach=setfit: its saved model scored as its run scored it (setfit/train.py)
        from bertlab.setfit.model import load_setfit_model, probabilities
        from bertlab.setfit.train import scores

        probs = probabilities(load_setfit_model(model_dir), splits["test"], cfg.data.eval_batch_size)
        labels = [e.label for e in splits["test"]]
        return dict(sorted(scores(probs, labels, list(task.metrics), len(task.labels), "test").items()))
    tokenizer, model = load_trained_model(cfg, model_dir)
    # the run's own data module and FineTuner (fit.py builds both for a run); the test split alone
    # (the training split is not encoded; approach=prompt draws its demonstrations from it)
    datamodule, module = data_and_module(cfg, {"test": splits["test"]}, tokenizer, model, train=splits["train"])
    trainer = lightning_trainer(
        None,  # it tests only, and no cap of `limits` touches a test (core/limits.py)
        accelerator=cfg.trainer.accelerator,
        devices=1,  # one process: a test needs no data parallelism
        precision=resolve_precision(cfg.trainer.precision),
        limit_test_batches=cfg.trainer.limit_test_batches,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(run_dir),
    )
    metrics = run_test(trainer, module, datamodule, PREFIX)
    return {f"test/{k.split('/', 1)[1]}": v for k, v in sorted(metrics.items())}
