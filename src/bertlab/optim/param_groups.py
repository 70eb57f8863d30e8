"""Optimizer parameter groups: weight decay on/off by name, and layer-wise LR decay (LLRD).

No weight decay on biases and normalisation weights (the BERT recipe): by name (`NO_DECAY`) and,
for norms with uninformative names, by module class (any class whose name contains "Norm");
`no_decay_ids` is that one rule, also used by pre-trained weight decay. With LLRD d (the paper's
section 5.3) the learning rate falls with depth from the output:

    head (classifier, pooler)                   lr
    top block (layer_{L-1})                     lr * d
    layer_{i}                                   lr * d^(L-i)
    embeddings                                  lr * d^(L+1)

Blocks come from `anatomy.py`, so every supported encoder family gets the same groups (ALBERT:
one group per shared layer group). `optimizer.head_lr_mult` m multiplies the head's lr (the
classifier and the pooler, LLRD's top group: lr * m), with or without LLRD. Only trainable
parameters are grouped: under peft= (methods/peft_tuning.py) an adapter of block i takes block i's lr.
"""

import torch

from bertlab.core.errors import ConfigError, ModelError
from bertlab.core.values import full_key, is_number
from bertlab.model.anatomy import anatomy

# IA3's vectors (peft's `ia3_l`) are multiplicative scales that start at 1, as LayerNorm's gains:
# decay would pull them toward 0, i.e. toward switching the scaled channels off, not toward the
# pretrained model (HF's Trainer, which decides by name like this, would decay them)
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight", "ia3_l")


def no_decay_ids(model: torch.nn.Module) -> set[int]:
    """ids of the parameters that get no weight decay: biases and normalisation weights."""
    # Also by module type, for norms whose names say nothing (nn.Sequential, custom RMSNorm ...).
    ids = {id(p) for m in model.modules() if "Norm" in type(m).__name__ for p in m.parameters(recurse=False)}
    return ids | {id(p) for n, p in model.named_parameters() if any(k in n for k in NO_DECAY)}


def check_llrd(llrd) -> None:
    """The rule for `llrd`, for the config check and for `param_groups` alike."""
    if not is_number(llrd) or not 0 < llrd <= 1:
        raise ConfigError(f"llrd={llrd!r} is invalid: layer-wise lr decay must be in (0, 1] (1.0 = off).")


def _head_or_block(block: str) -> str:
    # anatomy's block names; the pooler and the classifier share the head's lr
    return "head" if block in ("pooler", "classifier") else block


def param_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, llrd: float = 1.0, head_lr_mult: float = 1.0
) -> list[dict]:
    """Every trainable parameter in exactly one group; each group has `name`, `params`, `lr`,
    `weight_decay`. Names are `{depth}/decay` and `{depth}/no_decay`, with depth `all` when
    llrd == 1 and head_lr_mult == 1; else `head` and, with llrd == 1, `all` for the rest, or
    with LLRD `layer_{i}` and `embeddings`. Empty groups are dropped."""
    check_llrd(llrd)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = no_decay_ids(model)
    if llrd == 1 and head_lr_mult == 1:
        depth_of, lr_of = (lambda n: "all"), {"all": lr}
    else:
        try:
            parts = anatomy(model)
        except (AttributeError, ModelError) as err:  # not a HF classifier, or no single list of blocks
            key = f"llrd={llrd}" if llrd != 1 else f"{full_key('optimizer.head_lr_mult')}={head_lr_mult}"
            raise ConfigError(
                f"{key} needs the model's encoder blocks and head, but {type(model).__name__} "
                f"has none that bertlab can find ({err}); use llrd=1 and {full_key('optimizer.head_lr_mult')}=1.0 for this model"
            ) from None
        lr_of = {"head": lr * head_lr_mult}
        if llrd == 1:
            lr_of["all"] = lr
            depth_of = lambda n: "head" if _head_or_block(parts.block_of(n)) == "head" else "all"  # noqa: E731
        else:
            top = parts.depth  # L, the number of blocks
            lr_of.update({f"layer_{i}": lr * llrd ** (top - i) for i in reversed(range(top))})
            lr_of["embeddings"] = lr * llrd ** (top + 1)
            depth_of = lambda n: _head_or_block(parts.block_of(n))  # noqa: E731

    groups: dict[str, dict] = {}
    # Ordered from the output down, so the logged groups read like the table above.
    for depth in lr_of:
        for kind, wd in (("decay", weight_decay), ("no_decay", 0.0)):
            groups[f"{depth}/{kind}"] = {
                "name": f"{depth}/{kind}",
                "params": [],
                "lr": lr_of[depth],
                "weight_decay": wd,
            }
    for name, p in named:
        kind = "no_decay" if id(p) in no_decay else "decay"
        groups[f"{depth_of(name)}/{kind}"]["params"].append(p)
    return [g for g in groups.values() if g["params"]]
