"""Knowledge injection (`features.fusion`): the side features of data/features.py fused into the
classifier (Ostendorff et al. 2019, malteos/pytorch-bert-document-classification `models.py`,
ExtraBertMultiClassifier).

Each numeric feature vector is projected (Linear, then tanh) and each categorical feature
embedded (one nn.Embedding per column; index 0 = a category unseen in training); then:

- `last_layer`: the projected features are concatenated with the pooled text representation the
  output Linear reads (the family's pooled [CLS], or the head's features with head=...), and the
  output Linear reads both. Written as the sum it equals, W [x; f] + b = (W_x x + b) + W_f f: the
  output Linear stays where it is (its weights, names and saved files unchanged) and a forward hook
  adds W_f f. Ostendorff et al. put a 2-layer MLP on the concatenation instead of one Linear; we
  keep each family's (and each head's) own output layer, so that `features.fusion` composes with
  `head=`, and the feature side carries the non-linearity (the tanh projection).
- `embedding`: the features projected to the token embeddings' width (the hidden size; ELECTRA's
  and ALBERT's smaller embedding_size) (numeric: Linear; categorical: embeddings of that width),
  summed, and added to every token's input embedding (a forward hook on the word embeddings), so
  every layer sees them.

The features reach the module through the batch (`feature_numeric`, `feature_categorical`): a
forward pre-hook on the model takes them out of the keyword arguments (HF models refuse unknown
ones) and holds the encoded features for that one forward; a forward hook clears them after it,
so another pass through the encoder (aux=mlm, aux=label_similarity's label descriptions) runs
without them. A forward of a fused model without its features is an error, never a silent zero.

The module sits on the model as `model.feature_fusion`: outside the encoder, so model/anatomy.py
counts it as the head (LLRD's head lr, never mixed out); saved beside the model (`features.json`:
the scaler's statistics and the fusion; `features.safetensors`: its weights) and rebuilt by
`load_fusion` for `bertlab predict` and `evaluate`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bertlab.core.errors import ModelError
from bertlab.data.features import CATEGORICAL_KEY, NUMERIC_KEY, FeatureScaler
from bertlab.model.init import init_module_

ATTRIBUTE = "feature_fusion"
STATE_FILE, WEIGHTS_FILE = "features.json", "features.safetensors"


class FeatureFusion(nn.Module):
    def __init__(self, scaler: FeatureScaler, fusion: str, embedding_size: int, dim: int, num_labels: int, std: float):
        super().__init__()
        self.scaler, self.fusion, self.dim = scaler, fusion, dim
        width = embedding_size if fusion == "embedding" else dim
        n = scaler.numeric_count
        self.numeric = nn.Linear(n, width) if n else None
        self.categorical = nn.ModuleList(nn.Embedding(size, width) for size in scaler.vocab_sizes)
        # last_layer: W_f of the output layer, the features' share of the logits; it reads the
        # concatenation of the projected numeric group and one embedding per categorical column
        groups = (1 if n else 0) + len(self.categorical)
        self.output = nn.Linear(width * groups, num_labels, bias=False) if fusion == "last_layer" else None
        init_module_(self, std)  # BERT's init: N(0, initializer_range), biases 0
        self.current: torch.Tensor | None = None  # the encoded features of the forward under way

    def encode(self, numeric: torch.Tensor | None, categorical: torch.Tensor | None) -> torch.Tensor:
        parts = []
        if self.numeric is not None:
            if numeric is None:
                raise ModelError(
                    f"the model was trained with numeric side features ({self._names()}); the batch has none."
                )
            projected = self.numeric(numeric.to(self.numeric.weight.dtype))
            parts.append(projected if self.fusion == "embedding" else torch.tanh(projected))
        if len(self.categorical):
            if categorical is None:
                raise ModelError(
                    f"the model was trained with categorical side features ({self._names()}); the batch has none."
                )
            parts += [table(categorical[:, i]) for i, table in enumerate(self.categorical)]
        if self.fusion == "embedding":
            return torch.stack(parts).sum(0)  # one vector of hidden size per example
        return torch.cat(parts, dim=-1)

    def _names(self) -> str:
        return ", ".join(self.scaler.names)

    def config(self) -> dict:
        return {"fusion": self.fusion, "dim": self.dim, "scaler": self.scaler.state()}


def output_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The Linear that turns the pooled representation into the logits: the last Linear outside the
    encoder with num_labels outputs (BERT's `classifier`, RoBERTa's and ELECTRA's
    `classifier.out_proj`, DistilBERT's and DeBERTa's `classifier`, a head's `head.classifier`)."""
    prefix = model.base_model_prefix + "."
    found = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
        and not name.startswith(prefix)
        and m.out_features == model.config.num_labels
        and not name.startswith(ATTRIBUTE)
    ]
    if not found:
        raise ModelError(
            f"features.fusion=last_layer: {type(model).__name__} has no output Linear with {model.config.num_labels} "
            "outputs outside its encoder to concatenate the features before; use features.fusion=embedding."
        )
    return found[-1]


def attach_fusion(model: nn.Module, scaler: FeatureScaler, fusion: str, dim: int) -> FeatureFusion:
    """Put a FeatureFusion on `model` and the hooks that feed it; returns it."""
    config = model.config
    # the token embeddings' width: the hidden size, or ELECTRA's / ALBERT's smaller embedding_size
    embeddings = getattr(model, model.base_model_prefix).get_input_embeddings()  # a HeadModel's too
    width = embeddings.embedding_dim
    module = FeatureFusion(scaler, fusion, width, dim, config.num_labels, config.initializer_range)
    module.to(next(model.parameters()).device)
    setattr(model, ATTRIBUTE, module)

    def take_features(_, args, kwargs):
        numeric, categorical = kwargs.pop(NUMERIC_KEY, None), kwargs.pop(CATEGORICAL_KEY, None)
        if numeric is None and categorical is None:
            raise ModelError(
                f"this model fuses side features ({module._names()}, features.fusion={fusion}); "
                "its input must carry them (predict: the task's feature columns)."
            )
        module.current = module.encode(numeric, categorical)
        return args, kwargs

    def clear(*_):
        module.current = None

    model.register_forward_pre_hook(take_features, with_kwargs=True)
    model.register_forward_hook(clear)
    if fusion == "last_layer":
        _, linear = output_linear(model)

        def add_feature_logits(_, inputs, output):
            if module.current is None:
                return output
            features = module.output(module.current).to(output.dtype)
            # RoBERTa-style heads may keep a token axis; the features are per example
            return output + (features.unsqueeze(1) if output.dim() == 3 else features)

        linear.register_forward_hook(add_feature_logits)
    else:

        def add_to_embeddings(_, inputs, output):
            if module.current is None:
                return output
            return output + module.current.to(output.dtype).unsqueeze(1)

        embeddings.register_forward_hook(add_to_embeddings)
    return module


def fusion_of(model: nn.Module) -> FeatureFusion | None:
    return getattr(model, ATTRIBUTE, None)


def save_fusion(model: nn.Module, folder: Path) -> None:
    module = fusion_of(model)
    if module is None:
        return
    (Path(folder) / STATE_FILE).write_text(json.dumps(module.config(), indent=1))
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, Path(folder) / WEIGHTS_FILE)


def load_fusion(model: nn.Module, folder: Path) -> FeatureFusion | None:
    """A saved run's fusion on its loaded model (None when the run had no side features)."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    module = attach_fusion(model, FeatureScaler.from_state(saved["scaler"]), saved["fusion"], saved["dim"])
    module.load_state_dict(load_file(Path(folder) / WEIGHTS_FILE))
    return module
