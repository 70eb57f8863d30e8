"""Mixout (Lee et al., ICLR 2020): `mixout=p` mixes each pretrained Linear toward its target weights.

In training, each forward pass draws a Bernoulli(1 - p) mask and uses

    W_mix = (mask * W + (1 - mask) * W0 - p * W0) / (1 - p)  =  W0 + mask * (W - W0) / (1 - p)

so E[W_mix] = W: a kept unit uses its current weights (rescaled around W0), a mixed-out unit its
target W0. In eval mode, and for p = 0, the layer is exactly `nn.Linear` with W. As in the
authors' code (bloodwass/mixout) the mask is drawn per input unit and shared by every output row,
the analogue of dropout on the layer's inputs; the gradient is autograd's exact one (the authors'
hand-written backward leaves out the 1/(1-p) factor). As in the paper's code, every nn.Dropout is
set to 0 when mixout is on.

Target W0 = the weights when mixout is applied, i.e. after re-init (`bertlab.run.fit` applies it
after `reinit_top_layers`). Which layers: every nn.Linear of the pretrained base model (`bertlab.model.anatomy`:
embeddings side, blocks, and the pooler where it is part of the base, as BERT's and ALBERT's).
The new head (classifier, DistilBERT's pre_classifier, DeBERTa's pooler) stays plain Linears: it
has no pretrained weights, and mixing it toward its random init is the same slip as the paper
code's pre-trained weight decay on the classifier (docs/design.md#official-code-slips-not-copied).
"""

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.core.values import is_number
from bertlab.model.anatomy import DROPOUT_KEYS, HEAD_DROPOUT_KEYS, anatomy


def mix(weight: torch.Tensor, target: torch.Tensor, p: float) -> torch.Tensor:
    """One mixout draw of `weight` toward `target` with mix probability p (0 <= p < 1)."""
    # one keep/mix decision per input unit (column), shared by all output rows
    keep = torch.empty_like(weight[:1]).bernoulli_(1 - p)
    return target + keep * (weight - target) / (1 - p)


class MixLinear(nn.Linear):
    """An nn.Linear whose weight mixes toward the buffer `target` in training mode.

    Built from an existing Linear with `from_linear`, sharing its `weight` and `bias` Parameters,
    so parameter names (and LLRD groups, optimizer state, `save_pretrained`) are unchanged. The
    target is a non-persistent buffer: it moves with `.to(device)` but stays out of state dicts,
    so saved weights load back into a plain HF model.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.0):
        # meta: the real Parameters are attached by `from_linear`, nothing is allocated here
        super().__init__(in_features, out_features, bias=bias, device="meta")
        self.p = p

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float) -> "MixLinear":
        mixed = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, p=p)
        mixed.weight = linear.weight
        mixed.bias = linear.bias
        mixed.register_buffer("target", linear.weight.detach().clone(), persistent=False)
        mixed.train(linear.training)
        return mixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, mix(self.weight, self.target, self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mixout={self.p}"


def check_mixout(p) -> None:
    """The rule for `mixout`, for the config check and for `apply_mixout` alike."""
    if not is_number(p) or not 0 <= p < 1:  # worded with repr: the value's type is the usual mistake
        raise ConfigError(f"mixout={p!r} is invalid: the mix probability must be in [0, 1) (0 = off).")


def apply_mixout(model: nn.Module, p: float) -> list[str]:
    """Replace every Linear of `model`'s pretrained base with a MixLinear(p) and set dropout to 0.

    p = 0 changes nothing. Returns the names of the wrapped Linears."""
    check_mixout(p)
    if p == 0:
        return []
    base_name = anatomy(model).base  # the pretrained encoder, whatever the family calls it
    base = getattr(model, base_name)
    wrapped = []
    for parent_name, parent in list(base.named_modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, child_name, MixLinear.from_linear(child, p))
                wrapped.append(".".join(n for n in (base_name, parent_name, child_name) if n))
    # The whole model, classifier dropout included, as the paper's code does; BERT's attention
    # reads its dropout probability from the nn.Dropout module, so this covers it too.
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    for key in DROPOUT_KEYS + HEAD_DROPOUT_KEYS:
        if getattr(model.config, key, None) is not None:
            setattr(model.config, key, 0.0)  # so the saved config tells the truth
    return wrapped
