"""BERT's weight initialisation, used for a new classifier head (load.py) and by re-init
(methods/reinit.py): one rule for both, so a re-drawn block and a new head are drawn alike."""

import torch
from torch import nn

from bertlab.core.errors import ModelError


@torch.no_grad()
def init_module_(module: nn.Module, std: float) -> None:
    """BERT's initialisation for one module, applied to all of its submodules.

    Raises on a parameter no rule covers (a Conv1d, a custom embedding): left as it was, it
    would make a partly re-initialised block that the run reports as re-initialised."""
    done = set()
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            sub.weight.normal_(mean=0.0, std=std)
            done.add(id(sub.weight))
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            sub.bias.zero_()
            done.add(id(sub.bias))
        if "Norm" in type(sub).__name__:  # nn.LayerNorm, and norms of other names / without bias
            for name, value in (("weight", 1.0), ("bias", 0.0)):
                param = getattr(sub, name, None)
                if isinstance(param, nn.Parameter):
                    param.fill_(value)
                    done.add(id(param))
    left = [n for n, p in module.named_parameters() if id(p) not in done]
    if left:
        raise ModelError(
            f"cannot re-initialise {type(module).__name__}: no rule for {', '.join(left[:3])} "
            "(only Linear, Embedding and norm layers); use reinit=0 for this model."
        )
