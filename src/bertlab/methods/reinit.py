"""Re-initialise the pooler and the top L encoder blocks (Zhang et al. 2021, section 5.2).

Exactly as the paper's code: Linear and Embedding weights ~ N(0, initializer_range), Linear
biases 0, LayerNorm weight 1 and bias 0. Everything below the top L blocks stays bit-identical
to the pretrained weights. The classifier head is new anyway and is left alone.

Blocks and pooler come from `anatomy.py`, for every encoder family: a block is a set of distinct
weights, so ALBERT's one shared layer group counts as one block (`reinit=1` re-draws the weights
all its layers share). A pooler that sits beside the base (DeBERTa's, new anyway) is re-drawn too.
"""

from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.model.anatomy import anatomy
from bertlab.model.init import init_module_


def check_reinit(depth, num_blocks: int | None = None, num_layers: int | None = None) -> None:
    """The rule for `reinit`: an integer from 0 (off) to the model's depth in blocks.

    The config check calls it before any model is known (`num_blocks` None: the upper bound is
    checked once the model's structure is, before its weights load); re-init calls it with the
    model. `num_layers` (the config's) differs from `num_blocks` where layers share weights (ALBERT)."""
    integer = isinstance(depth, int) and not isinstance(depth, bool)
    if integer and depth >= 0 and (num_blocks is None or depth <= num_blocks):
        return
    if num_blocks is None:
        raise ConfigError(f"reinit={depth} is invalid: it must be an integer from 0 (no re-init) to the model's depth.")
    shared = (
        ""
        if num_layers in (None, num_blocks)
        else f"; its {num_layers} layers share {num_blocks} block(s) of weights, and a block is what re-init draws afresh"
    )
    raise ConfigError(
        f"reinit={depth} is invalid: it must be an integer between 0 and the model's depth, "
        f"{num_blocks} for this model (0 = no re-init{shared})."
    )


def reinit_top_layers(model: nn.Module, depth: int, reinit_pooler: bool = True) -> list[str]:
    """Re-initialise the pooler (when `reinit_pooler`) and the top `depth` encoder blocks.

    Returns the names of the re-initialised submodules (for the run's log).
    """
    parts = anatomy(model)
    check_reinit(depth, parts.depth, getattr(model.config, "num_hidden_layers", None))
    std = model.config.initializer_range
    touched = []
    if reinit_pooler and parts.pooler is not None:
        init_module_(model.get_submodule(parts.pooler), std)
        touched.append(parts.pooler)
    for name in parts.blocks[parts.depth - depth :] if depth else ():
        init_module_(model.get_submodule(name), std)
        touched.append(name)
    return touched
