"""Re-initialise the pooler and the top L encoder blocks (Zhang et al. 2021, section 5.2).

Exactly as the paper's code: Linear and Embedding weights ~ N(0, initializer_range), Linear
biases 0, LayerNorm weight 1 and bias 0. Everything below the top L blocks stays bit-identical
to the pretrained weights. The classifier head is new anyway and is left alone.
"""

import torch
from torch import nn

from bertlab.errors import ConfigError


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a HF BERT-style classifier (`<base>.encoder.layer`)."""
    base = getattr(model, model.base_model_prefix)
    return base.encoder.layer


def check_reinit(num_layers: int, depth: int) -> None:
    if depth < 0 or depth > num_layers:
        raise ConfigError(
            f"reinit={depth} is invalid: it must be between 0 and the model's depth, "
            f"{num_layers} for this model (0 = no re-init)."
        )


@torch.no_grad()
def init_module_(module: nn.Module, std: float) -> None:
    """BERT's initialisation for one module, applied to all of its submodules."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            sub.weight.normal_(mean=0.0, std=std)
        if isinstance(sub, nn.Linear) and sub.bias is not None:
            sub.bias.zero_()
        if isinstance(sub, nn.LayerNorm):
            sub.weight.fill_(1.0)
            sub.bias.zero_()


def reinit_top_layers(model: nn.Module, depth: int, reinit_pooler: bool = True) -> list[str]:
    """Re-initialise the pooler (when `reinit_pooler`) and the top `depth` encoder blocks.

    Returns the names of the re-initialised submodules (for the run's log).
    """
    layers = encoder_layers(model)
    check_reinit(len(layers), depth)
    std = model.config.initializer_range
    base_name = model.base_model_prefix
    base = getattr(model, base_name)
    touched = []
    if reinit_pooler and getattr(base, "pooler", None) is not None:
        init_module_(base.pooler, std)
        touched.append(f"{base_name}.pooler")
    for index in range(len(layers) - depth, len(layers)):
        init_module_(layers[index], std)
        touched.append(f"{base_name}.encoder.layer.{index}")
    return touched
