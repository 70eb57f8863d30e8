"""Which Linear layers of the encoder blocks an adapter wraps (LoRA, IA3), for every encoder family.

peft keeps a table of target names per model type (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`)
that lacks DistilBERT (`q_lin`, `v_lin`) and matches module names anywhere in the model (`dense`
is also RoBERTa's head and BERT's pooler). Here the targets are found in the blocks that
model/anatomy.py finds, and handed to peft as one regular expression over the blocks only:

    query_value  the attention's query and value projections (the LoRA paper's W_q, W_v; peft's
                 default for BERT, RoBERTa, ELECTRA and DeBERTa-v2)
    attention    every Linear of the attention (query, key, value and its output projection)
    all          every Linear of the block (attention and feed-forward)
    [names]      Linears named relative to a block, e.g. [attention.self.query, output.dense]

A projection's role is read from the last part of its name, in the names the families use
(`QUERY`, `KEY`, `VALUE`); the feed-forward output (IA3's l_ff) from its shape, the one Linear of
a block that narrows (intermediate size -> hidden size), whatever its name.
"""

import re

from torch import nn

from bertlab.core.errors import ConfigError, ModelError
from bertlab.model.anatomy import anatomy

# the last part of a projection's name, per family: BERT/RoBERTa/ELECTRA/ALBERT, DistilBERT,
# DeBERTa-v2, MPNet-style q/k/v
QUERY = ("query", "q_lin", "query_proj", "q_proj", "q")
KEY = ("key", "k_lin", "key_proj", "k_proj", "k")
VALUE = ("value", "v_lin", "value_proj", "v_proj", "v")
TARGET_SETS = ("query_value", "attention", "all")


def block_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The Linear layers of the first encoder block, by name relative to the block (every block
    of an encoder has the same ones)."""
    first = model.get_submodule(anatomy(model).blocks[0])
    return {name: m for name, m in first.named_modules() if isinstance(m, nn.Linear)}


def _by_role(linears: dict[str, nn.Linear], roles: tuple[str, ...], what: str, family: str) -> list[str]:
    found = [name for name in linears if name.rsplit(".", 1)[-1] in roles]
    if not found:
        raise ModelError(
            f"a {family} block has no {what} projection bertlab can name (its Linears: {', '.join(linears)}); "
            "name the targets yourself, e.g. peft.targets=[attention.self.query]."
        )
    return found


def feed_forward_output(model: nn.Module) -> list[str]:
    """The block's feed-forward output Linear(s): those that narrow (in_features > out_features)."""
    linears = block_linears(model)
    found = [name for name, m in linears.items() if m.in_features > m.out_features]
    if len(found) != 1:
        raise ModelError(
            f"a {model.config.model_type} block has {len(found)} narrowing Linears ({', '.join(found) or 'none'}); "
            "bertlab finds the feed-forward output as the only one."
        )
    return found


def target_names(model: nn.Module, targets) -> list[str]:
    """Block-relative names of the Linears `targets` (a TARGET_SETS name or a list of names) selects."""
    linears = block_linears(model)
    family = model.config.model_type
    if targets == "query_value":
        return _by_role(linears, QUERY, "query", family) + _by_role(linears, VALUE, "value", family)
    if targets == "attention":
        found = [n for n in linears if any(part in ("attention", "attn") for part in n.split("."))]
        if not found:
            raise ModelError(f"a {family} block has no Linear under an `attention` module: name the targets yourself.")
        return found
    if targets == "all":
        return list(linears)
    unknown = [name for name in targets if name not in linears]
    if unknown:
        raise ConfigError(
            f"peft.targets={list(targets)}: {', '.join(unknown)} is not a Linear of a {family} block; "
            f"its Linears: {', '.join(linears)} (or use {', '.join(TARGET_SETS)})."
        )
    return list(targets)


def ia3_targets(model: nn.Module) -> tuple[list[str], list[str]]:
    """IA3's targets as the paper has them (Liu et al. 2022, l_k, l_v, l_ff): the key and value
    projections, and the feed-forward output, whose input (the intermediate activation) IA3 scales;
    and that last one alone, peft's `feedforward_modules`. peft's own table for BERT, RoBERTa and
    DeBERTa-v2 names `output.dense`, which also matches the attention's output projection: scaling
    its input channels is a rescaling of the values' channels that l_v already does, so it is left out."""
    linears = block_linears(model)
    family = model.config.model_type
    feed_forward = feed_forward_output(model)
    return _by_role(linears, KEY, "key", family) + _by_role(
        linears, VALUE, "value", family
    ) + feed_forward, feed_forward


def blocks_regex(model: nn.Module, names: list[str]) -> str:
    """One regular expression that peft full-matches against module names: `names` in every block,
    nothing outside the blocks (not the head, not the pooler)."""
    blocks = anatomy(model).blocks
    container = blocks[0].rsplit(".", 1)[0]  # e.g. bert.encoder.layer
    return rf"{re.escape(container)}\.\d+\.({'|'.join(re.escape(n) for n in names)})"
