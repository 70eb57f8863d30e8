"""The encoder and a head of modules.py as one sequence classifier that the rest of bertlab
treats like a HF one: `forward(**batch)` returns `.loss` and `.logits`; `.config` is the
encoder's (num_labels, problem_type); the encoder sits at `model.<base_model_prefix>` (`bert`,
`roberta`, ...) and the head at `model.head`, so model/anatomy.py finds the blocks and counts the
head as the classifier (LLRD's head lr, the diagnostics' `classifier`, never mixed out), and
re-init, mixout and pre-trained weight decay work unchanged.

Saved (`save_weights=true`) as a HF encoder folder (config.json, model.safetensors, loadable by
AutoModel) whose config.json also names the head under `bertlab_head` (its `_target_` and keys),
plus `head.safetensors` with the head's weights. `heads.build.load_head_model(dir)` rebuilds either kind of
saved run, this one or a `head=pooler` run (a plain HF classifier).
"""

from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_KEY = "bertlab_head"  # config.json: the head's `_target_` and keys (absent: the family's own head)
HEAD_WEIGHTS = "head.safetensors"


class HeadModel(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module, head_cfg: dict):
        super().__init__()
        self.base_model_prefix = encoder.base_model_prefix
        setattr(self, self.base_model_prefix, encoder)  # parameter names as the HF classifier's: bert.encoder...
        self.head = head
        self.head_cfg = dict(head_cfg)  # `_target_` and keys, for save_pretrained
        self.config = encoder.config

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.base_model_prefix)

    def forward(
        self, input_ids=None, attention_mask=None, labels=None, output_hidden_states=None, **inputs
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs["inputs_embeds"].shape[:2]
            device = input_ids.device if input_ids is not None else inputs["inputs_embeds"].device
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, return_dict=True, **inputs
        )
        logits = self.head(out.hidden_states, attention_mask)
        # the loss HF's own classifiers compute (cross-entropy, or MSE for one output)
        loss = ForSequenceClassificationLoss(labels, logits, self.config) if labels is not None else None
        # the hidden states when asked, as a HF classifier gives them (aux=label_similarity reads the last)
        hidden_states = out.hidden_states if output_hidden_states else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def save_pretrained(self, directory) -> None:
        directory = Path(directory)
        with _head_named(self):
            self.encoder.save_pretrained(directory)
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in self.head.state_dict().items()}, directory / HEAD_WEIGHTS
        )


@contextmanager
def _head_named(model: HeadModel):
    setattr(model.config, HEAD_KEY, model.head_cfg)
    try:
        yield
    finally:
        delattr(model.config, HEAD_KEY)


def save_config(model: nn.Module, directory) -> None:
    """config.json alone (a peft= run's save: the weights are its adapter's), naming the head of a
    HeadModel as its save_pretrained does, so that the run can be rebuilt with the same head."""
    if isinstance(model, HeadModel):
        with _head_named(model):
            model.config.save_pretrained(directory)
    else:
        model.config.save_pretrained(directory)


def drop_head_key(config) -> dict | None:
    """Take `bertlab_head` off a loaded config (a run that starts from a saved head run must not
    carry the old head's name into its own saves); its value, or None."""
    head_cfg = getattr(config, HEAD_KEY, None)
    if hasattr(config, HEAD_KEY):
        delattr(config, HEAD_KEY)
    return head_cfg
