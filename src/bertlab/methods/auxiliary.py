"""Auxiliary objectives (`aux=`): a second loss beside the task's, on the same training batch.

    loss = task loss + aux.weight * auxiliary loss

- `aux=mlm`: PET's auxiliary language modelling (Schick & Schuetze 2021, timoschick/pet
  pet/wrapper.py, `lm_training`): masked-LM on the training text. PET mixes
  alpha * task + (1 - alpha) * MLM with alpha = 0.9999 on a separate unlabelled batch; here the
  batch is the labelled one (the task's own training text, as the issue asks) and the mix is
  written as task + weight * MLM, the same gradient direction with weight = (1 - alpha) / alpha
  (the default 1e-4 is PET's). The masks are pretrain/masking.py's (transformers'
  DataCollatorForLanguageModeling: 15% of the non-special tokens, of those 80% mask token, 10%
  random, 10% unchanged), one per (run seed, example, epoch): a resumed run masks as an unbroken one
  and a mask never depends on the batch an example lands in. The masked copy runs through the
  classifier's own encoder (shared, not a copy) and the family's masked-LM head: the checkpoint's
  own with its decoder tied to the input embeddings, or a new one where the checkpoint has none
  (the packaged MiniLM); one line says which (pretrain/model.py's `head_line`).
- `aux=label_similarity`: the example's embedding e (mean of the encoder's last layer over its
  real tokens, as sentence-transformers pools MiniLM) scores higher against its own label's
  description than against every other label's. The descriptions d_k (task.label_descriptions,
  default the label names) are embedded the same way by the same encoder at every step, so both
  sides train:

      L = mean over the batch of  -log( exp(cos(e, d_y) / t) / sum_k exp(cos(e, d_k) / t) )

  a cross-entropy over the labels with cosine scores at temperature t (aux.temperature).

The objective sits on the model as `model.aux_objective` (outside the encoder: anatomy counts it
as the head, so its parameters get the head's lr and are never mixed out); it is taken off before
the model is saved (run/saved_run.py): prediction needs only the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.core.values import check_number, check_positive, check_probability
from bertlab.problems.registry import problem_of

AUX_OPTIONS = ("none", "mlm", "label_similarity")
ATTRIBUTE = "aux_objective"
INDEX_KEY = "example_index"  # a training item's position in its split (the data module adds it): its masks' key


def check_aux(cfg) -> None:
    """The `aux` group's rule, before any data or model loads."""
    aux, task = cfg.aux, cfg.task
    name = aux.get("name")
    if name not in AUX_OPTIONS:
        raise ConfigError(f"aux={name} is unknown; valid: {', '.join(AUX_OPTIONS)}.")
    if name == "none":
        return
    check_number(aux.weight, "aux.weight", "it must be a number >= 0 (0 = the task loss alone)", low=0)
    problem = problem_of(task)
    if not problem.sequence:
        raise ConfigError(
            f"aux={name} is for sequence tasks (classification, regression); task.problem={task.problem} does not "
            "support it: drop aux= (the default, aux=none)."
        )
    if name == "mlm":
        for key in ("mlm_probability", "mask_replace_prob", "random_replace_prob"):
            check_probability(aux[key], f"aux.{key}", "it must be a number from 0 to 1", high_open=False)
        if aux.mlm_probability == 0:
            raise ConfigError("aux.mlm_probability=0 masks nothing, so the auxiliary loss is empty; the usual is 0.15.")
        if aux.mask_replace_prob + aux.random_replace_prob > 1:
            raise ConfigError(
                f"aux.mask_replace_prob + aux.random_replace_prob = {aux.mask_replace_prob + aux.random_replace_prob} "
                "is more than 1; they are shares of the masked tokens (the rest stay unchanged), e.g. 0.8 and 0.1."
            )
    if name == "label_similarity":
        if not problem.classifies_texts:
            raise ConfigError(
                f"aux=label_similarity needs classes to describe; task.problem={task.problem} has none: use aux=mlm "
                "or aux=none."
            )
        check_positive(aux.temperature, "aux.temperature", "it must be a number > 0 (e.g. 0.05)")
        if task.get("labels") is not None:  # a csv task's labels may be inferred later: label_descriptions() again
            label_descriptions(task)


def label_descriptions(task) -> list[str]:
    """task.label_descriptions, one non-empty text per label in task.labels order; default the names."""
    labels = [str(label) for label in task.labels]
    given = task.get("label_descriptions")
    if given is None:
        return labels
    given = list(given) if not isinstance(given, str) else [given]
    if len(given) != len(labels):
        raise ConfigError(
            f"task.label_descriptions has {len(given)} text(s), task.labels has {len(labels)} ({labels}); give one "
            "description per label, in task.labels order, or null for the label names."
        )
    for label, text in zip(labels, given):
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"task.label_descriptions: the description of '{label}' is {text!r}; it must be a text.")
    return given


def label_similarity_loss(
    examples: torch.Tensor, descriptions: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """-log softmax over the labels of cos(e, d_k) / t, at the example's label; mean over the batch."""
    dtype = torch.promote_types(examples.dtype, torch.float32)  # half precision under autocast: not for a softmax
    scores = F.normalize(examples.to(dtype), dim=-1) @ F.normalize(descriptions.to(dtype), dim=-1).T
    return F.cross_entropy(scores / temperature, labels)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class LabelSimilarity(nn.Module):
    needs_hidden_states = True

    def __init__(self, tokenizer, descriptions: list[str], temperature: float, max_length: int):
        super().__init__()
        self.temperature = float(temperature)
        encoded = tokenizer(descriptions, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        self.keys = list(encoded.keys())
        for key, value in encoded.items():  # moved with the model; not saved
            self.register_buffer(f"desc_{key}", value, persistent=False)

    def forward(self, model, batch: dict, output, epoch: int) -> torch.Tensor:
        encoder = getattr(model, model.base_model_prefix)
        inputs = {key: getattr(self, f"desc_{key}") for key in self.keys}
        described = masked_mean(encoder(**inputs).last_hidden_state, inputs["attention_mask"])
        example = masked_mean(output.hidden_states[-1], batch["attention_mask"])
        return label_similarity_loss(example, described, batch["labels"], self.temperature)


class MaskedLM(nn.Module):
    needs_hidden_states = False

    def __init__(self, mlm_model: nn.Module, encoder: nn.Module, masker, special_ids: set[int]):
        super().__init__()
        prefix = mlm_model.base_model_prefix
        setattr(mlm_model, prefix, encoder)  # the classifier's encoder, shared: one set of weights
        if getattr(mlm_model.config, "tie_word_embeddings", True) and mlm_model.get_output_embeddings() is not None:
            mlm_model.get_output_embeddings().weight = encoder.get_input_embeddings().weight
        # the head's modules are this module's (the optimizer, the device moves); the masked-LM model
        # itself is kept outside the module tree, or the shared encoder would be registered twice
        self.head = nn.ModuleDict({name: child for name, child in mlm_model.named_children() if name != prefix})
        self._mlm = [mlm_model]
        self.masker = masker
        self.special_ids = special_ids

    def mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, index: torch.Tensor, epoch: int):
        """(masked input ids, labels: -100 where not masked); each row masked from its real tokens alone."""
        masked, labels = input_ids.clone(), torch.full_like(input_ids, -100)
        for row in range(input_ids.shape[0]):
            real = attention_mask[row].bool()
            ids = input_ids[row][real].tolist()
            block = {
                "index": int(index[row]),
                "input_ids": ids,
                "special_tokens_mask": [int(t in self.special_ids) for t in ids],
            }
            row_ids, row_labels = self.masker.mask_block(block, copy=epoch)
            masked[row, real] = row_ids.to(masked.device)
            labels[row, real] = row_labels.to(labels.device)
        return masked, labels

    def forward(self, model, batch: dict, output, epoch: int) -> torch.Tensor:
        masked, labels = self.mask(batch["input_ids"], batch["attention_mask"], batch[INDEX_KEY], epoch)
        if not (labels != -100).any():  # a batch of very short texts may draw no mask: no term, not NaN
            return output.loss.new_zeros(())
        extra = {k: batch[k] for k in ("token_type_ids",) if k in batch}
        return self._mlm[0](input_ids=masked, attention_mask=batch["attention_mask"], labels=labels, **extra).loss


def attach_aux(cfg, model: nn.Module, tokenizer, name_or_path: str, labels) -> dict:
    """Put the objective of cfg.aux on `model` (none: nothing); result.json's `aux` record."""
    aux = cfg.aux
    if aux.name == "none":
        return {"name": "none"}
    if aux.name == "label_similarity":
        descriptions = label_descriptions(cfg.task)  # again: a csv task's labels are known only now
        setattr(model, ATTRIBUTE, LabelSimilarity(tokenizer, descriptions, aux.temperature, cfg.task.max_length))
        return {"name": aux.name, "weight": aux.weight, "descriptions": descriptions}
    from bertlab.pretrain.masking import Masker, MaskingSettings
    from bertlab.pretrain.model import load_mlm_model

    _, mlm_model, line = load_mlm_model(name_or_path, cfg.seed)
    settings = MaskingSettings(
        mlm_probability=aux.mlm_probability,
        mask_replace_prob=aux.mask_replace_prob,
        random_replace_prob=aux.random_replace_prob,
    )
    encoder = getattr(model, model.base_model_prefix)
    setattr(
        model,
        ATTRIBUTE,
        MaskedLM(mlm_model, encoder, Masker(tokenizer, settings, cfg.seed), set(tokenizer.all_special_ids)),
    )
    say(f"aux=mlm: {line}")
    return {"name": aux.name, "weight": aux.weight, "head": line}


def aux_of(model: nn.Module):
    return getattr(model, ATTRIBUTE, None)
