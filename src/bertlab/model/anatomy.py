"""One description of a sequence classifier's anatomy, for every encoder family.

Re-init, LLRD, mixout, pre-trained weight decay and the diagnostics all ask the same questions
(which parameters are the embeddings, which block is a parameter in, where is the pooler, what is
the new head), so they are answered here once, from the model's structure rather than from
per-family parameter names:

    base        the pretrained encoder, `model.<base_model_prefix>` (bert, roberta, distilbert, ...)
    blocks      the transformer blocks, input to output: the base's one outermost nn.ModuleList
                (bert.encoder.layer, distilbert.transformer.layer, deberta.encoder.layer, ...)
    pooler      a module named `pooler`, in the base (BERT, ALBERT: pretrained) or beside it
                (DeBERTa: new), or None (RoBERTa, ELECTRA, DistilBERT)
    embeddings  the rest of the base: the embeddings and the parts shared by every block
                (ELECTRA's embeddings_project, ALBERT's embedding_hidden_mapping_in, DeBERTa's
                relative-position embeddings)
    classifier  everything else: the task head (classifier, RoBERTa's dense + out_proj,
                DistilBERT's pre_classifier)

A block is a set of distinct weights. ALBERT runs one shared block (per layer group) for all its
layers, so its blocks are its layer groups (`num_hidden_groups`, usually 1): `reinit=1`
re-initialises the shared weights of every layer, and LLRD gives each group one lr.

Families: bidirectional encoders, i.e. those transformers gives a masked-LM head. Decoders (GPT-2,
Llama, XLNet, ...) and encoder-decoders (T5, BART) are refused before any weight loads: they pool
the last token and need a pad token set, and no result of the paper carries over to them. So is
an encoder whose blocks are not one list (XLM's parallel lists, Funnel's two stacks), rather than
have a method guess. A new family whose base holds one list of blocks needs nothing here.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from bertlab.core.errors import ModelError

EXAMPLES = "bert, roberta, xlm-roberta, distilbert, electra, albert, deberta-v2, mpnet, ..."

# Each family's config names for its dropout probabilities (DistilBERT's are its own): those of
# the encoder (model.dropout sets them) and those of the head (mixout turns every dropout off).
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout")
HEAD_DROPOUT_KEYS = ("classifier_dropout", "seq_classif_dropout")


@dataclass(frozen=True)
class Anatomy:
    base: str  # the base model's attribute name (= parameter-name prefix)
    blocks: tuple[str, ...]  # module names of the blocks, input to output
    pooler: str | None  # module name of the pooler, or None
    # a wrapper's prefix of the classifier's names (peft); a parameter outside it is the wrapper's
    # own input-side one (prefix tuning's virtual tokens), counted with the embeddings
    outside: str | None = None

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def block_of(self, param_name: str) -> str:
        """`embeddings`, `layer_<i>`, `pooler` or `classifier`: the block a parameter is in."""
        for index, block in enumerate(self.blocks):
            if param_name.startswith(block + "."):
                return f"layer_{index}"
        if self.pooler is not None and param_name.startswith(self.pooler + "."):
            return "pooler"
        if self.outside is not None and not param_name.startswith(self.outside):
            return "embeddings"
        return "embeddings" if param_name.startswith(self.base + ".") else "classifier"

    def in_base(self, param_name: str) -> bool:
        """Part of the pretrained encoder (not the head, nor a pooler that sits beside the base)."""
        return param_name.startswith(self.base + ".")


def block_order(block: str) -> tuple[int, int]:
    """Sort key for the names `block_of` gives, input to output: embeddings, layer_0, layer_1, ...,
    pooler, classifier."""
    if block == "embeddings":
        return (0, 0)
    if block.startswith("layer_"):
        return (1, int(block[len("layer_") :]))
    return (2, 0 if block == "pooler" else 1)


def check_family(config, name_or_path: str) -> None:
    """Refuse, from the config alone, a model that is not a bidirectional encoder."""
    family = config.model_type
    if getattr(config, "is_encoder_decoder", False) or family not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        kind = (
            "an encoder-decoder"
            if getattr(config, "is_encoder_decoder", False)
            else "not a bidirectional encoder (a decoder / causal language model)"
        )
        raise ModelError(
            f"model.name_or_path='{name_or_path}' is a {family} model, {kind}; bertlab fine-tunes "
            f"bidirectional encoders (a family with a masked-LM head: {EXAMPLES}). Use one of those."
        )


def skeleton(config, auto_class=AutoModelForSequenceClassification) -> nn.Module:
    """The classifier `config` describes, on the meta device: its structure, no weights, ~no time.
    `auto_class`: the task problem's head (a token classifier's anatomy is the same, less the pooler)."""
    with torch.device("meta"):
        return auto_class.from_config(config)


def inner_model(model: nn.Module) -> tuple[nn.Module, str]:
    """The transformers model, and the prefix of its names in `model`: a peft wrapper (methods/
    peft_tuning.py) holds it at `base_model.model`, with the adapters inside it and a prefix
    encoder beside it; any other model is its own."""
    get_base = getattr(model, "get_base_model", None)
    if get_base is None:
        return model, ""
    inner = get_base()
    path = next(name for name, module in model.named_modules() if module is inner)
    return inner, f"{path}."


def anatomy(model: nn.Module) -> Anatomy:
    """The anatomy of a HF sequence classifier (a loaded one or a `skeleton`), also when peft wraps it:
    the names are then the wrapper's (`base_model.model.bert.encoder.layer.0...`), and what lies
    beside the classifier in the wrapper (prefix tuning's prompt encoder) counts as `embeddings`."""
    inner, prefix = inner_model(model)
    if prefix:
        parts = anatomy(inner)
        return Anatomy(
            base=prefix + parts.base,
            blocks=tuple(prefix + b for b in parts.blocks),
            pooler=prefix + parts.pooler if parts.pooler else None,
            outside=prefix,
        )
    base_name = model.base_model_prefix
    base = getattr(model, base_name, None)
    if base is None:
        raise ModelError(f"{type(model).__name__} has no base model `{base_name}`; bertlab cannot find its encoder.")
    lists = {n: m for n, m in base.named_modules() if isinstance(m, nn.ModuleList) and n}
    # outermost lists only: ALBERT's albert_layers or MobileBERT's ffn sit inside a block
    outer = [n for n in lists if not any(n.startswith(other + ".") for other in lists if other != n)]
    if len(outer) != 1:
        raise ModelError(
            f"{type(model).__name__} ({model.config.model_type}): bertlab finds its transformer blocks as one "
            f"list of modules, but it has {len(outer)} ({', '.join(outer) or 'none'}); this family is not "
            f"supported (supported: {EXAMPLES})."
        )
    container = f"{base_name}.{outer[0]}"
    blocks = tuple(f"{container}.{i}" for i in range(len(lists[outer[0]])))
    pooler = None
    for name in (f"{base_name}.pooler", "pooler"):
        module = model.get_submodule(name) if _has(model, name) else None
        if module is not None and any(True for _ in module.parameters()):
            pooler = name
            break
    return Anatomy(base=base_name, blocks=blocks, pooler=pooler)


def _has(model: nn.Module, name: str) -> bool:
    try:
        return model.get_submodule(name) is not None
    except AttributeError:
        return False


def blocks_by_param(model: nn.Module) -> dict[str, str]:
    """Parameter name -> block, for every parameter of `model`."""
    parts = anatomy(model)
    return {name: parts.block_of(name) for name, _ in model.named_parameters()}
