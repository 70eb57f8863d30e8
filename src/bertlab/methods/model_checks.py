"""The config against the chosen model, before its weights load: what its config and tokenizer
alone can refuse, in seconds (the rest of the config is checked in checks.py, before any model)."""

from transformers import AutoModelForSequenceClassification

from bertlab.methods.peft_tuning import check_peft_model
from bertlab.methods.reinit import check_reinit
from bertlab.model.anatomy import anatomy, check_family, skeleton
from bertlab.model.lengths import check_max_length


def check_before_weights(
    name_or_path: str,
    config,
    tokenizer,
    max_length: int,
    pair: bool,
    reinit: int,
    auto_class=AutoModelForSequenceClassification,
    peft=None,
) -> None:
    """What the config and tokenizer alone can refuse, in seconds, before the weights load: the
    model family, `reinit` against its blocks, `task.max_length` against its positions, and the
    `peft` method against the family (its targets, the prefix)."""
    check_family(config, name_or_path)
    structure = skeleton(config, auto_class)  # meta device: the model's structure without its weights
    check_reinit(reinit, anatomy(structure).depth, getattr(config, "num_hidden_layers", None))
    check_max_length(max_length, tokenizer, structure, pair)
    if peft is not None:
        check_peft_model(peft, structure, max_length)
