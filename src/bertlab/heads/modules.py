"""The heads that read the encoder's hidden states: `cls`, `mean`, `max`, `concat_last4`,
`layers_cnn`, `scalar_mix` (conf/head/). `head=pooler` is not here: it is the family's own HF head.

A head is an nn.Module built from the encoder's HF config (hidden size, depth, label count,
dropout, initializer range) and the keys of its head yaml; `forward(hidden_states, attention_mask)`
takes the encoder's `hidden_states` (embeddings output, then each layer's output: depth + 1
tensors of (batch, tokens, hidden)) and the attention mask, and returns the logits. Every head
ends as BERT's does: dropout, then one Linear to the labels (one output for regression).

A fork adds its own head as a class with this signature and a yaml naming it in `_target_`.
Its parameters are the model's head for LLRD, the diagnostics and mixout (anything outside the
encoder is: model/anatomy.py), so they get the head's lr and are never mixed out.
"""

import torch
from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.core.values import is_count, is_number
from bertlab.model.anatomy import HEAD_DROPOUT_KEYS
from bertlab.model.init import init_module_

# After the head's own keys, the family's encoder dropout: BERT's classifier uses
# `classifier_dropout` if set, else `hidden_dropout_prob` (DistilBERT: seq_classif_dropout, dropout).
CLASSIFIER_DROPOUT_KEYS = (*HEAD_DROPOUT_KEYS, "hidden_dropout_prob", "dropout")


def classifier_dropout(config, dropout: float | None) -> float:
    """`head.dropout`, or (null) the probability the family's own classifier would use."""
    if dropout is not None:
        if not is_number(dropout) or not 0 <= dropout < 1:
            raise ConfigError(
                f"head.dropout={dropout!r} is invalid; valid: a probability in [0, 1), or null (the model's "
                "own classifier dropout)"
            )
        return float(dropout)
    for key in CLASSIFIER_DROPOUT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return 0.1  # BERT's default


def _positive_int(value, key: str, what: str) -> int:
    if not is_count(value):  # the shared test; this group's messages are worded "; valid: ..."
        raise ConfigError(f"head.{key}={value!r} is invalid; valid: an integer >= 1 ({what})")
    return value


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens (attention mask 1), as sentence-transformers pools MiniLM."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def masked_max(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Max over the real tokens: padding is set to the dtype's lowest value first, so it never wins."""
    padding = attention_mask.unsqueeze(-1) == 0
    return hidden.masked_fill(padding, torch.finfo(hidden.dtype).min).max(1).values


class Head(nn.Module):
    """Dropout and the output Linear (`classifier`), on `features` features; BERT's init."""

    def __init__(self, config, features: int, dropout: float | None = None):
        super().__init__()
        self.dropout = nn.Dropout(classifier_dropout(config, dropout))
        self.classifier = nn.Linear(features, config.num_labels)
        self.std = config.initializer_range

    def reset_parameters(self) -> None:
        init_module_(self.classifier, self.std)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))


class ClsHead(Head):
    """`cls`: the last layer's [CLS] (first token), without the pooler."""

    def __init__(self, config, dropout: float | None = None):
        super().__init__(config, config.hidden_size, dropout)
        self.reset_parameters()

    def forward(self, hidden_states, attention_mask):
        return self.classify(hidden_states[-1][:, 0])


class MeanHead(Head):
    """`mean`: the last layer averaged over the real tokens ([CLS] and [SEP] included, padding not)."""

    def __init__(self, config, dropout: float | None = None):
        super().__init__(config, config.hidden_size, dropout)
        self.reset_parameters()

    def forward(self, hidden_states, attention_mask):
        return self.classify(masked_mean(hidden_states[-1], attention_mask))


class MaxHead(Head):
    """`max`: the last layer's per-feature maximum over the real tokens."""

    def __init__(self, config, dropout: float | None = None):
        super().__init__(config, config.hidden_size, dropout)
        self.reset_parameters()

    def forward(self, hidden_states, attention_mask):
        return self.classify(masked_max(hidden_states[-1], attention_mask))


def check_layers(layers: int, config) -> int:
    """`head.layers` against the model's depth (its transformer layers, not the embeddings)."""
    depth = config.num_hidden_layers
    if layers > depth:
        raise ConfigError(
            f"head.layers={layers} is invalid for this model: it has {depth} layers; valid: 1 to {depth} "
            f"(e.g. head.layers={depth})"
        )
    return layers


class ConcatLastHead(Head):
    """`concat_last4`: the [CLS] of the last `layers` layers, concatenated (top layer first).

    Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?", found concatenating the
    last four layers best among their layer choices (IMDb). Only transformer layers count, not the
    embeddings output, so a model needs at least `layers` of them (the 2-layer tiny model:
    head.layers=2)."""

    def __init__(self, config, layers: int = 4, dropout: float | None = None):
        self.layers = _positive_int(layers, "layers", "how many of the top layers' [CLS] to concatenate")
        check_layers(self.layers, config)
        super().__init__(config, config.hidden_size * self.layers, dropout)
        self.reset_parameters()

    def forward(self, hidden_states, attention_mask):
        return self.classify(torch.cat([h[:, 0] for h in hidden_states[::-1][: self.layers]], dim=-1))


class LayersCNNHead(Head):
    """`layers_cnn`: the [CLS] of every transformer layer, stacked, read by a small CNN, max-pooled.

    After Mozafari et al. 2019 ("A BERT-based transfer learning approach for hate speech detection
    in online social media", their BERT+CNN): a convolution whose window spans 3 layers and the
    whole hidden size, ReLU, max pooling, then the classifier. As the issue asks, it reads each
    layer's [CLS] vector (their model convolves every token of each layer). Sizes: kernel_size
    3 layers (theirs), `channels` 32 filters by default (a small head: 3 * hidden * 32 weights),
    zero padding of kernel_size // 2 so each layer is the centre of one window and a 2-layer
    model works; max pooling over the layer axis gives `channels` features."""

    def __init__(self, config, channels: int = 32, kernel_size: int = 3, dropout: float | None = None):
        channels = _positive_int(channels, "channels", "convolution filters")
        kernel_size = _positive_int(kernel_size, "kernel_size", "layers one filter reads")
        super().__init__(config, channels, dropout)
        self.conv = nn.Conv1d(config.hidden_size, channels, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        super().reset_parameters()
        # BERT's rule for a Linear (a convolution is one over each window): N(0, std), bias 0
        self.conv.weight.normal_(0.0, self.std)
        self.conv.bias.zero_()

    def forward(self, hidden_states, attention_mask):
        cls = torch.stack([h[:, 0] for h in hidden_states[1:]], dim=2)  # (batch, hidden, layers)
        return self.classify(torch.relu(self.conv(cls)).max(dim=2).values)


class ScalarMixHead(Head):
    """`scalar_mix`: ELMo's scalar mix (Peters et al. 2018, eq. 1), gamma * sum_j softmax(w)_j h_j
    over every hidden state (the embeddings output and each layer, as ELMo mixes its token layer
    too), with w = 0 (an even mix) and gamma = 1 to start, as AllenNLP's ScalarMix; then `pool`:
    `cls` (default: the mixed [CLS], so it differs from `cls` and `concat_last4` only in how the
    layers are combined) or `mean` (over the real tokens)."""

    POOLS = ("cls", "mean")

    def __init__(self, config, pool: str = "cls", dropout: float | None = None):
        if pool not in self.POOLS:
            raise ConfigError(f"head.pool={pool!r} is invalid; valid: {', '.join(self.POOLS)}")
        super().__init__(config, config.hidden_size, dropout)
        self.pool = pool
        self.layer_weights = nn.Parameter(torch.zeros(config.num_hidden_layers + 1))
        self.gamma = nn.Parameter(torch.ones(()))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.layer_weights.zero_()
        self.gamma.fill_(1.0)

    def forward(self, hidden_states, attention_mask):
        weights = torch.softmax(self.layer_weights, dim=0)
        mixed = self.gamma * sum(w * h for w, h in zip(weights, hidden_states, strict=True))
        features = mixed[:, 0] if self.pool == "cls" else masked_mean(mixed, attention_mask)
        return self.classify(features)
