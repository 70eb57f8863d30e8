"""`trainer.gradient_checkpointing=true`: transformers' own gradient checkpointing of the encoder
blocks (each block's activations are recomputed in the backward pass instead of kept): less
memory for a deep model on a small GPU, about a third more compute per step.

Non-reentrant (`use_reentrant=False`, torch's recommended mode): the reentrant one needs an input
that requires grad, which a frozen embedding under peft= does not give, and would then silently
pass no gradient to the adapters of the checkpointed blocks. Dropout draws the same masks in the
recomputation (torch restores the RNG state), so the gradients equal those without checkpointing.
"""

from torch import nn

from bertlab.core.errors import ConfigError


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """On the transformers model that runs the blocks: the classifier, or a head model's encoder."""
    encoder = model if hasattr(model, "gradient_checkpointing_enable") else getattr(model, "encoder", None)
    if encoder is None or not getattr(encoder, "supports_gradient_checkpointing", False):
        family = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ConfigError(
            f"trainer.gradient_checkpointing=true: transformers has no gradient checkpointing for a {family} "
            "model; use trainer.gradient_checkpointing=false."
        )
    encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
