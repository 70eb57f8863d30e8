"""The masked-LM model as a classifier: class scores = the masked-LM logits of the label words at the mask.

As LM-BFF's BertForPromptFinetuning / RobertaForPromptFinetuning (princeton-nlp/LM-BFF
src/models.py) and PET's MLM wrapper (timoschick/pet pet/wrapper.py, `mlm_train_step`):

- classification: logits[:, c] = MLM logit of label word c at the mask position; cross-entropy;
- regression (LM-BFF, STS-B): two label words are the poles, p = softmax over their two logits,
  the prediction is lb + (ub - lb) * p_high and the loss is KL(target || p) with the target's
  two-point distribution (1 - t, t), t = (y - lb) / (ub - lb). LM-BFF's code passes that target,
  probabilities, to `nn.KLDivLoss(log_target=True)`, which reads it as log-probabilities, and
  averages over both classes ('mean'); we compute the KL divergence the paper describes
  (probabilities, 'batchmean'), so our loss is the formula, not that slip.

The model is the family's own `*ForMaskedLM` with its class swapped for a subclass that adds the
prompt forward (`prompt_class`): parameter names, `base_model_prefix` and the head stay the
family's, so re-init (top blocks only: the masked-LM head is not a block, its decoder is never
re-drawn), LLRD (the head at the base lr, as a classifier), mixout (the base's Linears only: the
head and its decoder tied to the embeddings stay plain) and prior WD apply unchanged, and
`save_pretrained` writes a checkpoint any `AutoModelForMaskedLM` loads.

Only the mask position goes through the head: a forward hook on the base model keeps its hidden
state at the mask alone, so the vocabulary projection runs once per example rather than once per
token (what LM-BFF does by calling the base and the head apart, here for every family's head).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM
from transformers.modeling_outputs import SequenceClassifierOutput

from bertlab.core.errors import ModelError
from bertlab.core.lines import say
from bertlab.model.load import _quiet_transformers, load_config, resolve_model_path
from bertlab.pretrain.model import check_has_mlm_head, check_tied, head_line

# the keys of the HF config that carry the verbalizer into a saved run (config.json)
WORD_IDS_KEY, BOUNDS_KEY = "prompt_label_word_ids", "prompt_bounds"


class PromptMixin:
    """The prompt forward, mixed into the family's *ForMaskedLM class (prompt_class)."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, mask_pos=None, labels=None, **kwargs):
        word_ids = torch.as_tensor(self.config.prompt_label_word_ids, device=input_ids.device)
        scores = self.mask_scores(input_ids, attention_mask, token_type_ids, mask_pos)[:, word_ids]
        if self.config.problem_type == "regression":
            return self._regression(scores, labels)
        loss = None if labels is None else nn.functional.cross_entropy(scores.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=scores)

    def mask_scores(self, input_ids, attention_mask, token_type_ids, mask_pos) -> torch.Tensor:
        """The masked-LM logits over the vocabulary at each example's mask position: [batch, vocab]."""
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)

        def keep_mask_position(module, args, output):
            if isinstance(output, tuple):
                return (output[0][rows, mask_pos].unsqueeze(1), *output[1:])
            output["last_hidden_state"] = output["last_hidden_state"][rows, mask_pos].unsqueeze(1)
            return output

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # DistilBERT takes none
            inputs["token_type_ids"] = token_type_ids
        hook = getattr(self, self.base_model_prefix).register_forward_hook(keep_mask_position)
        try:
            logits = super().forward(**inputs).logits
        finally:
            hook.remove()
        return logits[:, 0, :]

    def _regression(self, scores, labels) -> SequenceClassifierOutput:
        low, high = self.config.prompt_bounds
        log_p = torch.log_softmax(scores.float(), dim=-1)  # [batch, 2]: log p(low pole), log p(high pole)
        prediction = torch.exp(log_p[:, 1:]) * (high - low) + low
        loss = None
        if labels is not None:
            t = ((labels.view(-1).float() - low) / (high - low)).clamp(0, 1)
            target = torch.stack([1 - t, t], dim=-1)
            loss = nn.functional.kl_div(log_p, target, reduction="batchmean")
        return SequenceClassifierOutput(loss=loss, logits=prediction)

    def save_pretrained(self, *args, **kwargs):
        """The family's save_pretrained as the family's class: config.json's `architectures` names
        a class transformers knows (it writes the instance's class name)."""
        prompt = self.__class__
        self.__class__ = prompt.__mro__[2]  # Prompt<Family> -> PromptMixin -> <Family>ForMaskedLM
        try:
            return self.save_pretrained(*args, **kwargs)
        finally:
            self.__class__ = prompt

    def mlm_loss(self, input_ids, attention_mask, labels) -> torch.Tensor:
        """The family's own masked-LM loss (PET's auxiliary language modelling), the hook-free forward."""
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss


_CLASSES: dict[type, type] = {}


def prompt_class(mlm_class: type) -> type:
    """`mlm_class` with the prompt forward (one subclass per family, made once)."""
    if mlm_class not in _CLASSES:
        _CLASSES[mlm_class] = type(f"Prompt{mlm_class.__name__}", (PromptMixin, mlm_class), {})
    return _CLASSES[mlm_class]


def as_prompt_model(model, word_ids: list[int], bounds: tuple[float, float] | None):
    model.__class__ = prompt_class(type(model))
    model.config.prompt_label_word_ids = list(word_ids)
    model.config.prompt_bounds = list(bounds) if bounds is not None else None
    return model


def load_prompt_model(name_or_path: str, num_labels: int, kind: str, dropout, word_ids: list[int], bounds, tokenizer):
    """The family's masked-LM model with the prompt forward, float32, training mode; says in one
    line whether the checkpoint had a masked-LM head (the packaged MiniLM has none: a fresh one,
    its decoder tied to the input embeddings) -> (model, that line)."""
    config = load_config(name_or_path, num_labels, kind, dropout)
    check_has_mlm_head(config, name_or_path)
    if tokenizer.mask_token_id is None:
        raise ModelError(
            f"model.name_or_path='{name_or_path}': its tokenizer has no mask token, so approach=prompt cannot "
            "put a mask slot in the template; use approach=finetune."
        )
    with _quiet_transformers():  # its per-key load table: what matters is the one line below
        model, info = AutoModelForMaskedLM.from_pretrained(
            resolve_model_path(name_or_path), config=config, dtype=torch.float32, output_loading_info=True
        )
    line = head_line(model, info["missing_keys"], name_or_path)
    say(f"model: {line}")
    model = as_prompt_model(model, word_ids, bounds)
    model.head_origin = line
    model.train()
    return model


def load_saved_prompt_model(directory) -> nn.Module:
    """A saved approach=prompt run's model (`<run_dir>/model`), in eval mode."""
    config = AutoConfig.from_pretrained(directory)
    word_ids = getattr(config, WORD_IDS_KEY, None)
    if word_ids is None:
        raise ModelError(
            f"{directory}: its config.json has no {WORD_IDS_KEY}; it was not saved by an approach=prompt run."
        )
    with _quiet_transformers():  # its load table and progress bar
        model = AutoModelForMaskedLM.from_pretrained(directory, config=config, dtype=torch.float32)
    check_tied(model)
    return as_prompt_model(model, word_ids, getattr(config, BOUNDS_KEY, None)).eval()
