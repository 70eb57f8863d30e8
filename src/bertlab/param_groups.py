"""Optimizer parameter groups: weight decay on/off by name, and layer-wise LR decay (LLRD).

No weight decay on biases and normalisation weights (the BERT recipe): by name (`NO_DECAY`) and,
for norms with uninformative names, by module class (any class whose name contains "Norm"). With LLRD d (paper,
section 4 of DESIGN.md) the learning rate falls with depth from the output:

    head (classifier, pooler, anything outside embeddings/encoder)  lr
    encoder.layer.{L-1} (top block)                                  lr * d
    encoder.layer.{i}                                                lr * d^(L-i)
    embeddings                                                       lr * d^(L+1)

Layers are found by name, so any HF encoder with `embeddings` / `encoder.layer.N` / `pooler`
naming works (BERT, RoBERTa, ELECTRA, XLM-R, ...; DistilBERT's `transformer.layer.N` too).
"""

import re

import torch

from bertlab.errors import ConfigError

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
_LAYER = re.compile(r"(?:^|\.)(?:encoder|transformer)\.layer\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")


def _depth_name(param_name: str) -> str:
    match = _LAYER.search(param_name)
    if match:
        return f"layer_{match.group(1)}"
    return "embeddings" if _EMBEDDINGS.search(param_name) else "head"


def param_groups(model: torch.nn.Module, lr: float, weight_decay: float, llrd: float = 1.0) -> list[dict]:
    """Every trainable parameter in exactly one group; each group has `name`, `params`, `lr`,
    `weight_decay`. Names are `{depth}/decay` and `{depth}/no_decay`, with depth `all` when
    llrd == 1, else `head`, `layer_{i}` or `embeddings`. Empty groups are dropped."""
    if isinstance(llrd, bool) or not isinstance(llrd, (int, float)) or not 0 < llrd <= 1:
        raise ConfigError(f"llrd={llrd!r} is out of range; valid: 0 < llrd <= 1 (1 = no layer-wise decay)")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # Also by module type, for norms whose names say nothing (nn.Sequential, custom RMSNorm ...).
    norm_params = {id(p) for m in model.modules() if "Norm" in type(m).__name__
                   for p in m.parameters(recurse=False)}
    if llrd == 1:
        depth_of, lr_of = (lambda n: "all"), {"all": lr}
    else:
        layers = {int(m.group(1)) for n, _ in named if (m := _LAYER.search(n))}
        if not layers:
            raise ConfigError(
                f"llrd={llrd} needs encoder blocks named 'encoder.layer.N', but {type(model).__name__} "
                "has none; use llrd=1 for this model")
        top = max(layers) + 1  # L, the number of blocks
        lr_of = {"head": lr}
        lr_of.update({f"layer_{i}": lr * llrd ** (top - i) for i in reversed(range(top))})
        lr_of["embeddings"] = lr * llrd ** (top + 1)
        depth_of = _depth_name

    groups: dict[str, dict] = {}
    # Ordered from the output down, so the logged groups read like the table above.
    for depth in lr_of:
        for kind, wd in (("decay", weight_decay), ("no_decay", 0.0)):
            groups[f"{depth}/{kind}"] = {"name": f"{depth}/{kind}", "params": [], "lr": lr_of[depth],
                                         "weight_decay": wd}
    for name, p in named:
        kind = "no_decay" if id(p) in norm_params or any(k in name for k in NO_DECAY) else "decay"
        groups[f"{depth_of(name)}/{kind}"]["params"].append(p)
    return [g for g in groups.values() if g["params"]]
