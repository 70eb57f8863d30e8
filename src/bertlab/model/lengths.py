"""`task.max_length` against the model, checked from its config and tokenizer before weights load.

Too small, and truncation leaves a single text only its special tokens, while a pair too long to
cut is passed through whole (the tokenizer only warns); too large, and the first long batch
indexes past the position embeddings, mid-training. The valid range:

    lowest   the special tokens of one text (or of a pair) + 1 token of each text
    highest  the absolute position embeddings' rows, less RoBERTa-style offsets (positions that
             start after the pad id: 514 rows hold 512 tokens), and the tokenizer's
             `model_max_length` when it sets one; no bound for a model without absolute positions
             (DeBERTa-v3) and a tokenizer without one
"""

from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.model.anatomy import anatomy

UNSET = 1e29  # transformers' VERY_LARGE_INTEGER (1e30): the tokenizer sets no maximum


def position_limit(skeleton: nn.Module) -> int | None:
    """Tokens the absolute position embeddings hold, or None when the model has none."""
    base = getattr(skeleton, anatomy(skeleton).base)
    limits = []
    for name, module in base.named_modules():
        if isinstance(module, nn.Embedding) and "position" in name.rsplit(".", 1)[-1]:
            offset = module.padding_idx + 1 if module.padding_idx is not None else 0
            limits.append(module.num_embeddings - offset)
    return min(limits) if limits else None


def length_range(tokenizer, skeleton: nn.Module, pair: bool) -> tuple[int, int | None, str]:
    """(lowest, highest or None, why the highest) for `task.max_length`."""
    lowest = tokenizer.num_special_tokens_to_add(pair=pair) + (2 if pair else 1)
    bounds = []
    positions = position_limit(skeleton)
    if positions is not None:
        bounds.append((positions, f"{skeleton.config.model_type}'s {positions} positions"))
    if tokenizer.model_max_length < UNSET:
        bounds.append(
            (int(tokenizer.model_max_length), f"the tokenizer's model_max_length {tokenizer.model_max_length}")
        )
    if not bounds:
        return lowest, None, "no position limit"
    return lowest, *min(bounds)


def check_max_length(max_length: int, tokenizer, skeleton: nn.Module, pair: bool) -> None:
    lowest, highest, why = length_range(tokenizer, skeleton, pair)
    if lowest <= max_length and (highest is None or max_length <= highest):
        return
    kind = "a pair of texts" if pair else "one text"
    valid = f"{lowest} to {highest}" if highest is not None else f"at least {lowest}"
    most = f"; at most {why}" if highest is not None else ""
    raise ConfigError(
        f"task.max_length={max_length} is invalid for this model and task ({kind}): valid is {valid} "
        f"({tokenizer.num_special_tokens_to_add(pair=pair)} special tokens + at least 1 token of "
        f"{'each text' if pair else 'the text'}{most})."
    )
