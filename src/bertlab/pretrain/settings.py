"""The `pretrain` config node's rules: one message per bad value, naming the key, the value and the
fix, before any data or model loads (run/checks.py calls `check_pretrain`).

RULES has one rule per key of conf/pretrain/tapt.yaml (a test checks that none is left out); the
masking keys are masking.py's (MaskingSettings.check), the optimizer and schedule the optim/
builders', with their messages' keys put under `pretrain.`.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.values import (
    check_choice,
    check_count,
    check_number,
    check_positive,
    check_seed,
    keys_under,
)
from bertlab.optim.optimizer import check_optimizer
from bertlab.optim.schedules import check_schedule
from bertlab.pretrain.corpus import CORPORA
from bertlab.pretrain.masking import LONG_DOCUMENTS, MaskingSettings

STAGES = ("tapt", "dapt")
OBJECTIVES = ("mlm", "mlm_nsp")
# keys a stage cannot have on its own (pretrain.per_stage.<stage>.<key>): they are the run's, not a stage's
NOT_PER_STAGE = ("name", "stages", "per_stage", "use_step", "cache_dir")
MASKING_KEYS = (
    "mlm_probability",
    "mask_replace_prob",
    "random_replace_prob",
    "masking",
    "static_copies",
    "whole_word_mask",
)


def _at_least(low: int, what: str, allow=()):
    return lambda value, key: check_count(value, key, what, minimum=low, allow=allow)


def _stages(value, key):
    stages = list(value) if not isinstance(value, str) and hasattr(value, "__iter__") else None
    if stages is None or any(s not in STAGES for s in stages) or len(set(stages)) != len(stages):
        raise ConfigError(
            f"{key}={value} is invalid: a list of distinct stages from {', '.join(STAGES)}, in the order they run "
            "(choose a preset instead: pretrain=none|tapt|dapt|dapt_tapt)."
        )


def _one_of(valid):
    return lambda value, key: check_choice(value, key, valid)


def _optional_path(value, key):
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{key}={value} is invalid: a path, or null.")


def _max_steps(value, key):
    check_count(value, key, allow=(None, -1), why="an integer >= 1 (optimizer steps), or -1 for pretrain.max_epochs")


def _fraction(value, key):
    check_number(
        value,
        key,
        "the fraction of the documents held out for the MLM validation loss, strictly between 0 and 1 (e.g. 0.1)",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )


def _clip(value, key):
    check_number(value, key, "a number >= 0 (0 or null = no clipping)", low=0, allow=(None,))


def _name(value, key):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}={value} is invalid: the option's label, a non-empty string (e.g. tapt).")


def _masking(value, key):  # one key of the masking group: checked together in check_pretrain
    return None


SELECTIVE = {
    "threshold": "the buffer rule's probability gap, a number in (0, 1)",
    "scorer_epochs": "epochs fine-tuning the scorer, an integer >= 1",
    "scorer_lr": "the scorer's learning rate, a positive number",
    "classifier_epochs": "epochs training the token classifier, an integer >= 1",
    "classifier_lr": "the token classifier's learning rate, a positive number",
    "batch_size": "examples per step of both, an integer >= 1",
}


def _selective(value, key):
    if not hasattr(value, "items"):
        raise ConfigError(f"{key}={value} is invalid: the selective masking settings ({', '.join(SELECTIVE)}).")
    for name, v in value.items():
        if name not in SELECTIVE:
            raise ConfigError(f"{key}.{name} is not a key of {key}; valid: {', '.join(SELECTIVE)}.")
        why = SELECTIVE[name]
        if name == "threshold":
            check_number(v, f"{key}.{name}", why, low=0, high=1, low_open=True, high_open=True)
        elif name in ("scorer_lr", "classifier_lr"):
            check_positive(v, f"{key}.{name}", why)
        else:
            check_count(v, f"{key}.{name}", why=why)


def _optional_step(value, key):
    check_count(
        value,
        key,
        allow=(None,),
        why="a step the stage saved (a multiple of pretrain.save_every_n_steps), or null for the stage's result",
    )


def _per_stage(value, key):
    if value is None:
        return
    if not hasattr(value, "items"):
        raise ConfigError(f"{key}={value} is invalid: a mapping stage -> settings, e.g. {key}.dapt.lr=5e-4.")
    for stage, own in value.items():
        if stage not in STAGES:
            raise ConfigError(f"{key}.{stage} is not a stage; valid: {', '.join(STAGES)}.")
        if own is None:
            continue
        if not hasattr(own, "items"):
            raise ConfigError(
                f"{key}.{stage}={own} is invalid: a mapping of pretrain keys, e.g. {key}.{stage}.lr=5e-4."
            )
        for name in own:
            if name not in RULES or name in NOT_PER_STAGE:
                valid = ", ".join(k for k in RULES if k not in NOT_PER_STAGE)
                raise ConfigError(f"{key}.{stage}.{name} is not a key a stage can set; valid: {valid}.")


RULES = {
    "name": _name,
    "stages": _stages,
    "corpus": _one_of(CORPORA),
    "domain_corpus": _optional_path,
    "lr": check_positive,
    "batch_size": _at_least(1, "blocks per optimizer step"),
    "eval_batch_size": _at_least(1, "held-out blocks per forward pass"),
    "max_epochs": lambda v, k: None,  # with max_steps below: only one of them is used
    "max_steps": _max_steps,
    "patience": _at_least(0, "validations without improvement before stopping; 0 = never stop early"),
    "num_evals_per_epoch": _at_least(1, "held-out validations per epoch"),
    "seed": check_seed,
    "max_length": _at_least(3, "tokens per block, the special tokens included"),
    "long_documents": _one_of(LONG_DOCUMENTS),
    "held_out": _fraction,
    **{key: _masking for key in MASKING_KEYS},
    "gradient_clip_val": _clip,
    "cache_dir": _optional_path,
    "objective": _one_of(OBJECTIVES),
    "save_every_n_steps": _at_least(0, "optimizer steps between saved models; 0 = none saved"),
    "use_step": _optional_step,
    "per_stage": _per_stage,
    "selective": lambda v, k: _selective(v, k),
    "optimizer": lambda v, k: None,  # the optim/ builders' checks, in check_pretrain
    "schedule": lambda v, k: None,
}


def stage_settings(p: DictConfig, stage: str) -> DictConfig:
    """The settings one stage trains with: the pretrain node, resolved, with pretrain.per_stage.<stage>
    over it (Don't Stop Pretraining trains DAPT and TAPT with different lr, steps and batch). A stage's
    own lr also sets its optimizer's lr, as pretrain.lr does (tapt.yaml: optimizer.lr: ${pretrain.lr})."""
    base = OmegaConf.to_container(p, resolve=True)
    own = dict((base.pop("per_stage", None) or {}).get(stage) or {})
    node = OmegaConf.merge(base, own)
    if "lr" in own and "lr" not in (own.get("optimizer") or {}):
        node.optimizer.lr = own["lr"]
    return node


def check_pretrain(p: DictConfig, stage: str | None = None, problem: str | None = None, task: str = "") -> None:
    """Every key of the pretrain node (also those of pretrain=none: a sweep runs them all), then each
    stage's own settings (per_stage). `stage`: the node is that stage's (messages name its keys).
    `problem`: the task's (task.problem), where known: masking=selective needs a classification task."""
    if stage is None and problem not in (None, "classification"):
        for kind in p.stages:
            if stage_settings(p, kind).masking == "selective":
                raise ConfigError(
                    f"pretrain.masking=selective scores tokens by how much they move the probability of the "
                    f"example's label, so it needs a sequence classification task; task '{task}' is {problem}: "
                    "use pretrain.masking=dynamic."
                )
    if stage is None and p.get("per_stage"):
        _per_stage(p.per_stage, "pretrain.per_stage")
        for kind in p.stages:
            if (p.per_stage or {}).get(kind):
                try:
                    check_pretrain(stage_settings(p, kind), stage=kind)
                except ConfigError as err:
                    raise ConfigError(f"{err} (in the {kind} stage's settings: pretrain.per_stage.{kind})") from None
    for key, value in p.items():
        rule = RULES.get(key)
        if rule is None:
            raise ConfigError(f"pretrain.{key} is not a key of the pretrain group; valid: {', '.join(RULES)}.")
        rule(value, f"pretrain.{key}")
    if p.max_steps in (None, -1):
        _at_least(1, "passes over the training blocks, when pretrain.max_steps=-1")(p.max_epochs, "pretrain.max_epochs")
    MaskingSettings.from_config(p)
    with keys_under("pretrain"):  # the builders' messages name pretrain.optimizer.* / pretrain.schedule.*
        check_schedule(p.schedule, check_optimizer(p.optimizer))
    if stage is None:
        _check_use_step(p)
    if "dapt" in p.stages and p.domain_corpus is not None:
        path = Path(p.domain_corpus).expanduser()
        if not path.exists():
            raise ConfigError(
                f"pretrain.domain_corpus={p.domain_corpus}: no such file or folder; give a .txt file (one document "
                "per line) or a folder of .txt files (one document per file), or null for the task's own corpus."
            )


def _check_use_step(p: DictConfig) -> None:
    """use_step names a step the last stage saves: a multiple of its save_every_n_steps, within its max_steps."""
    if p.use_step is None or not p.stages:
        return
    last = stage_settings(p, p.stages[-1])
    every = last.save_every_n_steps
    if not every:
        raise ConfigError(
            f"pretrain.use_step={p.use_step} needs saved steps: set pretrain.save_every_n_steps (e.g. "
            f"pretrain.save_every_n_steps={p.use_step}), so that the {p.stages[-1]} stage saves its model."
        )
    if p.use_step % every:
        raise ConfigError(
            f"pretrain.use_step={p.use_step} is not a saved step: the stage saves every {every} steps "
            f"(pretrain.save_every_n_steps={every}); use a multiple of {every}."
        )
    if last.max_steps not in (None, -1) and p.use_step > last.max_steps:
        raise ConfigError(
            f"pretrain.use_step={p.use_step} is past the stage's last step (pretrain.max_steps={last.max_steps}); "
            f"raise pretrain.max_steps or use a step up to {last.max_steps}."
        )
