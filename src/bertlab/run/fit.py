"""One run, composed in one function read top to bottom, `train(cfg, run)`: the checks, the data,
approach=setfit's own stages (returned), distill=self's teacher, the fit step (model, module,
callbacks, Trainer, fit, test), the record.

Its steps, in order, each with the file that does it:

1. check: the config's cross-key checks, before anything is read (run/checks.py `check_config`);
2. data: the task's train/val/test examples, read and drawn by the task's problem
   (problems/registry.py, data/sampling.py), the training split augmented (data/augment.py):
   `task_splits`;
3. approach=setfit: its own two stages, not a Lightning fit (setfit/train.py); its record is the run's;
4. distill=self: the teacher, a step of its own (run/distill.py `teacher_step`): trained here with
   the run's settings in `<run_dir>/teacher/` (the same fit step as the student's, below), or a saved
   run; it gives the student its soft labels and loss (methods/distill.py), and result.json `distill`;
5. the fit step (`train_and_test`; the teacher's fit is this step too): the resume checkpoint
   (callbacks/resume.py), the loggers (loggers/build.py), further pre-training (pretrain/stage.py;
   pretrain=none: none), the side features' scaler (data/features.py), the model of the run's
   approach, seeded with init_seed (run/approach.py; + re-init, mixout, compile), the datamodule and
   the LightningModule (`data_and_module`: data/datamodule.py, training/finetuner.py), the
   callbacks in their order (`build_callbacks`, callbacks/entries.py), the Trainer
   (run/trainer.py), order_seed, Trainer.fit, then the test of the last and of the best weights
   (callbacks/keep_best.py), the weights saved (save_weights: run/saved_run.py);
6. record: the run's part of result.json (core/record.py lists its keys), with `augment` and, for
   a student, `distill`; run/job.py writes it.

`Run` carries what names the run and where it writes (its folder, name, W&B group and tags, the
job's overrides) through every step that writes or logs. What happens inside one training step,
and which file does each part, is written down in training/finetuner.py.
"""

from pathlib import Path
from typing import NamedTuple

import lightning as L
from omegaconf import DictConfig, OmegaConf

from bertlab.callbacks.diagnostics import TrainingDiagnostics
from bertlab.callbacks.entries import CALLBACK_WHAT, CONTEXT, KEEP_BEST, RESUME, callback_entries
from bertlab.callbacks.keep_best import KeepBestWeights
from bertlab.callbacks.resume import metrics_rows, resume_checkpoint
from bertlab.callbacks.throughput import TrainThroughput
from bertlab.core.atomic import follow_umask
from bertlab.core.devices import resolve_precision
from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.data.augment import augment_train
from bertlab.data.datamodule import FewSampleDataModule
from bertlab.data.features import FeatureScaler, feature_fields, feature_kinds, feature_names, wants_features
from bertlab.data.fingerprint import FINGERPRINT_KEY, data_fingerprint
from bertlab.data.sampling import make_splits
from bertlab.heads.fusion import fusion_of
from bertlab.loggers.build import build_loggers
from bertlab.loggers.dashboards import final_numbers, log_final_numbers
from bertlab.methods.auxiliary import INDEX_KEY, aux_of
from bertlab.methods.peft_tuning import parameter_counts
from bertlab.pretrain.stage import further_pretrain
from bertlab.problems.metrics import check_metrics, selection_metric
from bertlab.problems.registry import problem_of
from bertlab.run.approach import approach_of, build_model
from bertlab.run.checks import check_config
from bertlab.run.distill import teacher_step
from bertlab.run.saved_run import MODEL_DIR, SAVED_CONFIG, save_run_model
from bertlab.run.trainer import build_trainer, compiled_graphs
from bertlab.setfit.model import save_setfit_model
from bertlab.setfit.train import is_setfit, train_setfit
from bertlab.training.finetuner import FineTuner


def load_trained_model(cfg: DictConfig, model_dir: Path):
    """Tokenizer and trained model that a run saved (save_weights=true) in `model_dir`, rebuilt
    as the run's approach built it (run/approach.py) from its saved config `cfg`, in eval mode: the
    one place `bertlab predict` and `evaluate` get a model from (a head of another kind, a prompt
    model, is loaded there). No re-init, mixout or compile: those shaped training; the saved weights
    are the result (mixout's layers are plain Linears in eval)."""
    return approach_of(cfg).load_trained(cfg, model_dir)


def data_and_module(
    cfg: DictConfig, splits: dict, tokenizer, model, soft_labels=None, distill=None, train=None, data=None
):
    """The task problem's FewSampleDataModule (its encoder: tokenisation, labels, batches; the
    approach's own where it has one, e.g. approach=prompt's template) and the FineTuner around
    `model` (the problem's metrics, which may read the encoder's per-split state: question
    answering's windows): the one place both are built, for a run and for `bertlab evaluate`.
    `train`: the training examples an approach's encoder draws from (prompt demonstrations) when
    `splits` has none; `data`: the run's TaskData, for an approach's extra loss (None: no extra loss)."""
    task = cfg.task
    problem = problem_of(task)
    approach = approach_of(cfg)
    encoder = approach.encoder(cfg, tokenizer, splits.get("train", train or []))
    extra_loss = approach.extra_loss(cfg, tokenizer, data, encoder) if data is not None else None
    encoder = encoder or problem.encoder(task, tokenizer)
    fusion = fusion_of(model)
    datamodule = FewSampleDataModule(
        splits,
        tokenizer,
        task.max_length,
        problem.regression,
        cfg.data.batch_size,
        cfg.data.eval_batch_size,
        cfg.data.num_workers,
        # the training batches' order; a run saved before order_seed existed (bertlab evaluate): seed
        seed=cfg.get("order_seed", cfg.seed),
        group_by_length=cfg.data.group_by_length,
        token_cache_dir=cfg.data.token_cache,
        soft_labels=soft_labels,
        encoder=encoder,
        scaler=fusion.scaler if fusion is not None else None,  # the run's own statistics (a saved run's too)
        example_index=INDEX_KEY if aux_of(model) is not None else None,
    )
    module = FineTuner(
        model,
        cfg.optimizer,
        cfg.schedule,
        list(task.metrics),
        problem.kind,  # the default evaluation's predictions; the problem's own `evaluate` is passed below
        llrd=cfg.llrd,
        distill=distill,
        metrics_factory=problem.metrics(task, problem.num_labels(task), encoder),
        evaluate_batch=problem.evaluate,
        extra_loss=extra_loss,
        aux_weight=cfg.aux.weight if "aux" in cfg else 0.0,
    )
    return datamodule, module


def build_callbacks(cfg: DictConfig, model, run_dir: Path, overrides: list[str] | None, select: str, loggers):
    """The run's callbacks: conf/callbacks/default.yaml's entries (its comments say why each sits
    where it does) and a fork's, in the order Lightning calls them (its own, like the progress bar,
    come after). Built here, after re-init and before fit (and before a resume loads any weights),
    so the starting weights that TrainingDiagnostics and PriorWeightDecay copy are the run's own.
    A `_partial_: true` entry gets the run's things it asks for by name (callbacks/entries.py CONTEXT).
    Returns the callbacks, and the keep-best, throughput and diagnostics callbacks that result.json
    reads (the last two None when their entry is dropped)."""
    from bertlab.core.entries import build_entry

    context = {
        "cfg": cfg,
        "model": model,
        "run_dir": run_dir,
        "overrides": overrides,
        "select": select,
        "loggers": loggers,
    }
    callbacks: list[L.Callback] = []
    for name, entry in callback_entries(cfg).items():
        built = build_entry(f"callbacks.{name}", entry, context, CONTEXT, CALLBACK_WHAT)
        callbacks += built
        if name == KEEP_BEST:
            context["best"] = next((c for c in built if isinstance(c, KeepBestWeights)), None)
            if context["best"] is None:
                raise ConfigError(
                    f"callbacks.{KEEP_BEST}._target_={entry['_target_']} built no KeepBestWeights, which "
                    "result.json reads; point it at bertlab.callbacks.entries.keep_best or a KeepBestWeights subclass"
                )
    throughput = next((c for c in callbacks if isinstance(c, TrainThroughput)), None)
    diagnostics = next((c for c in callbacks if isinstance(c, TrainingDiagnostics)), None)
    return callbacks, context["best"], throughput, diagnostics


def run_test(trainer: L.Trainer, module: FineTuner, datamodule, prefix: str) -> dict[str, float]:
    """Test the weights the module holds now; their metrics, as `<prefix>/<metric>`."""
    module.test_prefix = prefix
    trainer.test(module, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{prefix}/")}


class Fitted(NamedTuple):
    """A finished fit: its part of result.json, and what a second fit may need (run/distill.py)."""

    record: dict
    module: FineTuner  # holding the best weights (the last ones when validation never ran)
    datamodule: FewSampleDataModule
    trainer: L.Trainer


class TaskData(NamedTuple):
    """A run's examples (task_splits): what training reads, and what the pre-training corpus may."""

    splits: dict  # train (augmented as cfg.augment says), val, test
    augmented: dict  # result.json's `augment`: the training-set size before and after
    drawn: dict  # the splits as drawn, before augmentation (the TAPT corpus: the task's own text)
    pools: dict  # what the reader returned (pretrain.corpus=train_pool, the domain corpus)
    fingerprint: dict  # result.json's data_fingerprint: the drawn splits' content and the labels (data/fingerprint.py)


def task_splits(cfg: DictConfig) -> TaskData:
    """The task's train/val/test examples, after the metric checks (seconds, before any model),
    the training split augmented as cfg.augment says; and result.json's `augment` record."""
    task = cfg.task
    problem = problem_of(task)
    check_metrics(list(task.metrics), task.main_metric, problem.name, problem.metric_names)
    selection_metric(list(task.metrics), task.main_metric, task.select_metric)
    # The data sample depends on task.data_seed only, never on the training seed.
    # (problem.read fills task.labels when a csv or tokens task leaves them to be inferred.)
    pools = problem.read(task)
    drawn = make_splits(pools, task, task.data_seed, problem.kind)
    splits, augmented = augment_train(drawn, cfg.augment, task)  # the training split only (data/augment.py)
    return TaskData(splits, augmented, drawn, pools, data_fingerprint(drawn, task.get("labels")))


class Run(NamedTuple):
    """What names a run and where it writes, for every step of `train` that writes or logs: run/job.py
    builds it from the job (run/identity.py); a self-distillation teacher's is the run's in
    `<run_dir>/teacher/`, named `<run_name>-teacher` (run/distill.py)."""

    run_dir: Path  # result.json's folder: metrics.csv, the resume checkpoint, the saved weights
    run_name: str  # the loggers' run name
    group: str | None = None  # the W&B group (the sweep); None outside a multirun
    tags: list[str] | tuple[str, ...] = ()  # the loggers' tags
    overrides: list[str] | None = None  # the job's: the resume checkpoint's owner (callbacks/resume.py)


def train(cfg: DictConfig, run: Run) -> dict:
    """One run, start to end (the module docstring lists its steps): its part of result.json."""
    check_config(cfg)
    data = task_splits(cfg)  # the teacher and the student see the same augmented split
    if is_setfit(cfg):  # approach=setfit: setfit's two stages, not a Lightning fit (bertlab/setfit/)
        return {**fit_setfit(cfg, data, run.run_dir), "augment": data.augmented}
    # distill=self: the teacher first (trained now, or a saved run); the student is the ordinary fit
    # below, on the teacher's soft labels with the distillation loss (run/distill.py)
    teacher = teacher_step(cfg, data, run, train_and_test) if cfg.distill.name != "none" else None
    soft_labels, loss = (teacher.soft_labels, teacher.loss) if teacher is not None else (None, None)
    record = train_and_test(cfg, data, run, soft_labels=soft_labels, distill=loss).record
    record["augment"] = data.augmented  # training-set size before and after augmentation
    if teacher is not None:
        record["distill"] = teacher.record
    return record


def fit_setfit(cfg: DictConfig, data: TaskData, run_dir: Path) -> dict:
    """approach=setfit's part of result.json (setfit/train.py); with save_weights, its model in
    setfit's format and the run's config, where `bertlab predict` and `evaluate` look (saved_run.py)."""
    record, model = train_setfit(cfg, data.splits, run_dir)
    if cfg.save_weights:
        folder = run_dir / MODEL_DIR
        save_setfit_model(model, folder)
        (folder / SAVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
        follow_umask(folder)
    return {**record, FINGERPRINT_KEY: data.fingerprint}


def train_and_test(cfg: DictConfig, data: TaskData, run: Run, soft_labels=None, distill=None) -> Fitted:
    """The fit step: one fit of a fresh model on `data.splits`, tested with the last and the best
    weights, in `run.run_dir`. soft_labels, distill: a distillation student's (run/distill.py
    `teacher_step`); None for an ordinary run and for a teacher."""
    run_dir, overrides = run.run_dir, run.overrides
    task = cfg.task
    problem = problem_of(task)  # reader, encoding, head, metrics of task.problem (problems/)
    select = selection_metric(list(task.metrics), task.main_metric, task.select_metric)
    splits = data.splits
    num_labels = problem.num_labels(task)
    # callbacks.resume=null: no resume checkpoint is saved, nor read
    resumable = cfg.resume and RESUME in callback_entries(cfg)
    ckpt_path = resume_checkpoint(run_dir, overrides) if resumable else None
    keep_rows = 0  # of metrics.csv: a fresh run starts it afresh
    if ckpt_path is not None:  # a previous attempt was killed: continue it (resume.py)
        say(f"resuming from {ckpt_path}")
        keep_rows = metrics_rows(ckpt_path)  # the rows logged before the checkpoint
    loggers = build_loggers(cfg, run_dir, run.run_name, run.group, run.tags, keep_rows, resumed=ckpt_path is not None)
    # further pre-training (pretrain=tapt|dapt|dapt_tapt; none: the configured model, untouched), on
    # the drawn splits before augmentation: its corpus is the task's own training text (pretrain/corpus.py)
    start_from, pretrain = further_pretrain(
        cfg, data.drawn, run_dir, loggers, resolve_precision(cfg.trainer.precision), data.pools
    )
    # side features: scaled by statistics of the drawn training split alone (data/features.py)
    scaler = None
    if wants_features(task) and cfg.features.fusion == "none":
        say("features.fusion=none: the task's side features are read and checked, and the model does not see them")
    elif wants_features(task):
        train = data.drawn["train"]
        dim = len(train[0].features) - len(feature_fields(task))
        scaler = FeatureScaler.fit(train, feature_names(task, dim), feature_kinds(task, dim))
    tokenizer, model = build_model(cfg, splits["train"][0].text_b is not None, num_labels, start_from, scaler)

    datamodule, module = data_and_module(
        cfg, splits, tokenizer, model, soft_labels=soft_labels, distill=distill, data=data
    )
    callbacks, best, throughput, diagnostics = build_callbacks(cfg, model, run_dir, overrides, select, loggers)
    datamodule.setup("fit")  # its training items: question answering's windows outnumber its questions
    trainer = build_trainer(cfg, run_dir, len(datamodule.encoded["train"]), loggers, callbacks)

    # order_seed (Dodge et al. 2020): every random draw of training from here on, dropout and
    # mixout's masks (the batch order has its own generator, seeded with it too: data_and_module),
    # so two runs with one init_seed start from the same weights whatever their order_seed
    L.seed_everything(cfg.order_seed, workers=True, verbose=False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if diagnostics is not None and not diagnostics.train_ended:
        # resumed from a checkpoint of the last step (killed after its last save, e.g. while testing):
        # Lightning then skips the whole training loop, its on_train_end included, and the weights'
        # relative change (metrics.csv's last diag row, result.json's diagnostics) would be missing
        diagnostics.on_train_end(trainer, module)
    metrics = dict(best.best_metrics)
    metrics.update(run_test(trainer, module, datamodule, "test_last"))
    if best.restore(module):
        metrics.update(run_test(trainer, module, datamodule, "test_best"))
    # the dashboards' final numbers, equal to result.json's (loggers/dashboards.py)
    log_final_numbers(loggers, final_numbers(metrics, best.best_step), trainer.global_step)
    if cfg.save_weights:
        # the best weights (or the last ones when validation never ran), loadable with from_pretrained,
        # with what `bertlab predict` / `evaluate` need to rebuild the run (run/saved_run.py)
        save_run_model(cfg, module.model, tokenizer, run_dir, base=start_from)

    record = {
        "metrics": metrics,
        "select_metric": select,  # the validation metric that picked the best weights
        "best_step": best.best_step,
        "validations": best.validations,
        "baseline": problem.baseline(
            task, num_labels, [e.label for e in splits["train"]], [e.label for e in splits["test"]]
        ),
        "split_sizes": {name: len(examples) for name, examples in splits.items()},
        FINGERPRINT_KEY: data.fingerprint,  # which examples, whatever the files' names (a saved teacher's check)
        # the throughput callback's (None when ~callbacks.throughput dropped it)
        "train_samples_per_s": throughput and throughput.samples_per_s,
        "padding_efficiency": throughput and throughput.padding_efficiency,  # real / processed training tokens
        "startup_s": throughput and throughput.startup_s,  # process start (the command) -> first training batch
        "model_tflops_per_s": throughput and throughput.model_tflops_per_s,
        "mfu": throughput and throughput.mfu,  # model FLOPs utilisation (GPUs Lightning knows; None on CPU)
        "first_step_at": throughput and throughput.first_step_at,  # unix time (scripts/bench.py)
        "token_cache_hits": datamodule.cache_hits,
        "global_steps": trainer.global_step,
        "world_size": trainer.world_size,  # processes that trained (run/checks.py refuses more than one)
        # graphs torch.compile built (trainer.compile); 0 when off. Recompiles show up here.
        "compiled_graphs": compiled_graphs(),
        "diagnostics": diagnostics and diagnostics.summary(),  # None when ~callbacks.diagnostics
        # what training actually ran in: float32 master weights, and the Trainer's precision
        "param_dtype": str(next(module.model.parameters()).dtype).removeprefix("torch."),
        "precision": str(trainer.precision),
        "head": module.model.head_origin,  # new, or kept from the checkpoint (model/load.py, heads/build.py)
        # what trained and what the forward uses (peft=: the adapter and head of the whole; methods/peft_tuning.py)
        "parameters": parameter_counts(module.model),
        "pretrain": pretrain,  # the further pre-training stages, their corpus and held-out loss (pretrain/stage.py)
        "aux": model.aux_record,  # the auxiliary objective: its weight and head or descriptions (methods/auxiliary.py)
        # the side features' fusion and the training split's statistics (data/features.py); None: none
        "features": None if scaler is None else {"fusion": cfg.features.fusion, **scaler.state()},
    }
    return Fitted(record, module, datamodule, trainer)
