"""The masked-LM model of a pre-training stage: loaded with its head (or a fresh one, said in one
line), saved so that fine-tuning loads it like any checkpoint.

Three things transformers does not do by itself here:

- A checkpoint without masked-LM head weights (the packaged MiniLM, a sentence-transformers
  export: its loss starts above ln V) silently gets a randomly initialised head. We say so in
  one line (`head` in result.json), and a checkpoint that lacks encoder weights is an error, as
  in model/load.py.
- `*ForMaskedLM` builds the base model without its pooler (BertForMaskedLM passes
  add_pooling_layer=False), so a saved stage has no pooler weights and the fine-tuning
  classifier would silently start from a random pooler. `save_stage_model` writes the pooler of
  the stage's starting checkpoint into the saved weights, under the names the classifier loads.
  A family whose classifier has no pretrained pooler (RoBERTa, ELECTRA, DistilBERT; DeBERTa's
  pooler is new in the classifier) has nothing to carry.
- The decoder shares its weight with the input embeddings (tie_word_embeddings); `check_tied`
  verifies it, after loading and after a save and reload (the tests do the latter per family).
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_FOR_PRETRAINING_MAPPING_NAMES,
)

from bertlab.core.atomic import follow_umask
from bertlab.core.errors import ModelError
from bertlab.model.anatomy import EXAMPLES, anatomy, skeleton
from bertlab.model.load import _quiet_transformers, resolve_model_path


def check_has_mlm_head(config, name_or_path: str) -> None:
    """A family transformers gives no masked-LM class cannot be pre-trained further: one message."""
    family = config.model_type
    if getattr(config, "is_encoder_decoder", False) or family not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ModelError(
            f"model.name_or_path='{name_or_path}' is a {family} model, which has no masked-LM head class in "
            f"transformers (no *ForMaskedLM), so further pre-training cannot run on it; use pretrain=none, "
            f"or a bidirectional encoder ({EXAMPLES})."
        )


def check_has_nsp_head(config, label: str):
    """The pre-training class of a family with a next-sentence head (BERT's BertForPreTraining),
    or one message: RoBERTa, DistilBERT, ELECTRA and DeBERTa were pre-trained without NSP, and
    ALBERT's head predicts sentence order, another task."""
    import inspect

    name = MODEL_FOR_PRETRAINING_MAPPING_NAMES.get(config.model_type)
    cls = getattr(transformers, name, None) if name else None
    if cls is None or "next_sentence_label" not in inspect.signature(cls.forward).parameters:
        raise ModelError(
            f"pretrain.objective=mlm_nsp: model.name_or_path='{label}' is a {config.model_type} model, whose "
            "pre-training class has no next-sentence head (BERT's BertForPreTraining has one; RoBERTa dropped "
            "NSP); use pretrain.objective=mlm."
        )
    return cls


def load_mlm_model(name_or_path: str, seed: int, label: str | None = None, objective: str = "mlm"):
    """(tokenizer, masked-LM model in float32 and training mode, one line on the head).

    `seed` draws a fresh head's weights, so a stage is reproducible. `label` names the model in
    messages (the previous stage's output is loaded by path, but was asked for as model.name_or_path).
    objective mlm_nsp: the family's *ForPreTraining (masked-LM and next-sentence heads, and the pooler
    the NSP head reads)."""
    label = label or name_or_path
    path = resolve_model_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path)
    except OSError as err:
        raise ModelError(f"model.name_or_path='{label}' cannot be loaded: {str(err).splitlines()[0]}") from None
    check_has_mlm_head(config, label)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.mask_token is None:
        raise ModelError(
            f"model.name_or_path='{label}': its tokenizer has no mask token, so it cannot be trained as a "
            "masked language model; use pretrain=none."
        )
    torch.manual_seed(seed)
    model_class = check_has_nsp_head(config, label) if objective == "mlm_nsp" else AutoModelForMaskedLM
    with _quiet_transformers():  # its per-key load table: what matters is said in one line
        model, info = model_class.from_pretrained(path, config=config, dtype=torch.float32, output_loading_info=True)
    model.train()
    line = head_line(model, [k for k in info["missing_keys"] if not _nsp_key(k)], label)
    if objective == "mlm_nsp":
        nsp_new = [k for k in info["missing_keys"] if _nsp_key(k)]
        line += (
            f"; new next-sentence head ({label} has no weights for it)"
            if nsp_new
            else "; kept the checkpoint's next-sentence head"
        )
    return tokenizer, model, line


def _nsp_key(key: str) -> bool:
    return "seq_relationship" in key


def head_line(model, missing_keys, label: str) -> str:
    prefix = model.base_model_prefix + "."
    encoder_missing = sorted(k for k in missing_keys if k.startswith(prefix) and ".pooler." not in k)
    if encoder_missing:
        raise ModelError(
            f"model.name_or_path='{label}': the checkpoint lacks {len(encoder_missing)} encoder weights of a "
            f"{model.config.model_type} model (e.g. {', '.join(encoder_missing[:3])}); it is not a "
            f"{model.config.model_type} checkpoint or is incomplete."
        )
    head = sorted(k for k in missing_keys if not k.startswith(prefix))
    tied = "tied to the input embeddings" if check_tied(model) else "not tied (the model's config unties it)"
    if not head:
        return f"kept the checkpoint's masked-LM head (decoder {tied})"
    return f"new masked-LM head: {label} has no weights for it ({len(head)} missing, e.g. {head[0]}); decoder {tied}"


def check_tied(model) -> bool:
    """Whether the decoder shares the input embeddings' weight; a model whose config asks for the
    tie and does not have it is an error (its decoder would train apart from the embeddings)."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    tied = out is not None and out.weight.data_ptr() == inp.weight.data_ptr()
    wants = getattr(model.config, "tie_word_embeddings", True)
    if wants and not tied:
        raise ModelError(
            f"{type(model).__name__}: the masked-LM decoder is not tied to the input embeddings although "
            "its config sets tie_word_embeddings; this checkpoint cannot be pre-trained further as is."
        )
    return tied


def pretrained_pooler(name_or_path: str) -> dict[str, torch.Tensor]:
    """The pooler weights of `name_or_path` as the sequence classifier names them ({} when its
    classifier has no pooler, or the checkpoint has none)."""
    path = resolve_model_path(name_or_path)
    config = AutoConfig.from_pretrained(path, num_labels=2)
    parts = anatomy(skeleton(config))
    if parts.pooler is None or not parts.in_base(parts.pooler + ".x"):
        return {}  # none, or one that sits beside the base (DeBERTa): new in every classifier
    from transformers import AutoModel

    with _quiet_transformers():
        base, info = AutoModel.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    inner = parts.pooler.removeprefix(parts.base + ".")
    if any(k.startswith(inner + ".") for k in info["missing_keys"]):
        return {}  # the checkpoint has no pooler: the classifier draws a new one anyway
    return {f"{parts.pooler}.{k}": v.detach().clone() for k, v in base.get_submodule(inner).state_dict().items()}


def save_stage_model(model, tokenizer, folder: Path, pooler: dict[str, torch.Tensor]) -> None:
    """save_pretrained plus the carried pooler weights, in one weights file set."""
    check_tied(model)
    state = {**model.state_dict(), **pooler}
    with _quiet_transformers():  # its progress bar
        model.save_pretrained(str(folder), state_dict=state)
    tokenizer.save_pretrained(str(folder))
    follow_umask(folder)  # transformers writes the weights 0600; the cache is shared between runs
