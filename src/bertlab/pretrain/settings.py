"""The `pretrain` config node's rules: one message per bad value, naming the key, the value and the
fix, before any data or model loads (config/checks.py calls `check_pretrain`).

RULES has one rule per key of conf/pretrain/tapt.yaml (a test checks that none is left out); the
masking keys are masking.py's (MaskingSettings.check), the optimizer and schedule the optim/
builders', with their messages' keys put under `pretrain.`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError
from bertlab.optim.optimizer import check_optimizer
from bertlab.optim.schedules import check_schedule
from bertlab.pretrain.corpus import CORPORA
from bertlab.pretrain.masking import LONG_DOCUMENTS, MaskingSettings

STAGES = ("tapt", "dapt")
MAX_SEED = 2**32 - 1
MASKING_KEYS = (
    "mlm_probability",
    "mask_replace_prob",
    "random_replace_prob",
    "masking",
    "static_copies",
    "whole_word_mask",
)


def in_pretrain(err: ConfigError) -> ConfigError:
    """The optim/ builders name their keys optimizer.* / schedule.*: for the stage they are pretrain.*'s."""
    return ConfigError(re.sub(r"(?<![\w.])(optimizer|schedule)(?=[.=])", r"pretrain.\1", str(err)))


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at_least(low: int, what: str):
    def rule(value, key):
        if not _integer(value) or value < low:
            raise ConfigError(f"{key}={value} is invalid: it must be an integer >= {low} ({what}).")

    return rule


def _stages(value, key):
    stages = list(value) if not isinstance(value, str) and hasattr(value, "__iter__") else None
    if stages is None or any(s not in STAGES for s in stages) or len(set(stages)) != len(stages):
        raise ConfigError(
            f"{key}={value} is invalid: a list of distinct stages from {', '.join(STAGES)}, in the order they run "
            "(choose a preset instead: pretrain=none|tapt|dapt|dapt_tapt)."
        )


def _one_of(valid):
    def rule(value, key):
        if value not in valid:
            raise ConfigError(f"{key}={value} is invalid; valid: {', '.join(valid)}.")

    return rule


def _optional_path(value, key):
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{key}={value} is invalid: a path, or null.")


def _positive_number(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"{key}={value} is invalid: it must be a positive number.")


def _max_steps(value, key):
    if value not in (None, -1) and (not _integer(value) or value < 1):
        raise ConfigError(
            f"{key}={value} is invalid: an integer >= 1 (optimizer steps), or -1 for pretrain.max_epochs."
        )


def _seed(value, key):
    if not _integer(value) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{key}={value} is invalid: it must be an integer from 0 to 2**32 - 1.")


def _fraction(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(
            f"{key}={value} is invalid: the fraction of the documents held out for the MLM validation loss, "
            "strictly between 0 and 1 (e.g. 0.1)."
        )


def _clip(value, key):
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf
    ):
        raise ConfigError(f"{key}={value} is invalid: a number >= 0 (0 or null = no clipping).")


def _name(value, key):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}={value} is invalid: the option's label, a non-empty string (e.g. tapt).")


def _masking(value, key):  # one key of the masking group: checked together in check_pretrain
    return None


RULES = {
    "name": _name,
    "stages": _stages,
    "corpus": _one_of(CORPORA),
    "domain_corpus": _optional_path,
    "lr": _positive_number,
    "batch_size": _at_least(1, "blocks per optimizer step"),
    "eval_batch_size": _at_least(1, "held-out blocks per forward pass"),
    "max_epochs": lambda v, k: None,  # with max_steps below: only one of them is used
    "max_steps": _max_steps,
    "patience": _at_least(0, "validations without improvement before stopping; 0 = never stop early"),
    "num_evals_per_epoch": _at_least(1, "held-out validations per epoch"),
    "seed": _seed,
    "max_length": _at_least(3, "tokens per block, the special tokens included"),
    "long_documents": _one_of(LONG_DOCUMENTS),
    "held_out": _fraction,
    **{key: _masking for key in MASKING_KEYS},
    "gradient_clip_val": _clip,
    "cache_dir": _optional_path,
    "optimizer": lambda v, k: None,  # the optim/ builders' checks, in check_pretrain
    "schedule": lambda v, k: None,
}


def check_pretrain(p: DictConfig) -> None:
    """Every key of the pretrain node (also those of pretrain=none: a sweep runs them all)."""
    for key, value in p.items():
        rule = RULES.get(key)
        if rule is None:
            raise ConfigError(f"pretrain.{key} is not a key of the pretrain group; valid: {', '.join(RULES)}.")
        rule(value, f"pretrain.{key}")
    if p.max_steps in (None, -1):
        _at_least(1, "passes over the training blocks, when pretrain.max_steps=-1")(p.max_epochs, "pretrain.max_epochs")
    MaskingSettings.from_config(p)
    try:
        check_schedule(p.schedule, check_optimizer(p.optimizer))
    except ConfigError as err:
        raise in_pretrain(err) from None
    if "dapt" in p.stages and p.domain_corpus is not None:
        path = Path(p.domain_corpus).expanduser()
        if not path.exists():
            raise ConfigError(
                f"pretrain.domain_corpus={p.domain_corpus}: no such file or folder; give a .txt file (one document "
                "per line) or a folder of .txt files (one document per file), or null for the task's own corpus."
            )
