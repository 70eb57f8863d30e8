"""Pre-trained weight decay (`prior_wd=lambda`): decay toward the starting weights, not toward 0.

Before each optimizer step, for every pretrained parameter that gets weight decay:

    p <- p - lr_group * lambda * (p - p0)

with p0 = the weights after re-init (as the paper's code) and lr_group the learning rate the
schedule (and LLRD) gives that parameter's group for this step.

Which parameters, as the official code (revisit-bert-finetuning's PriorWD, which pulls each
parameter with the weight decay of its own group): those of the pretrained base model (embeddings,
blocks, a pooler inside the base) that get weight decay. Biases and normalisation weights, the
no-decay group, are not pulled; `param_groups.no_decay_ids` is the one rule for both. Two slips of
the official code are not copied: ordinary weight decay is left as configured (the two combine),
and the new classifier is not pulled toward its random init (its p0 would mean nothing).

A Lightning callback rather than an optimizer wrapper: `on_before_optimizer_step` runs after
the gradients are ready and before the optimizer's update, once per optimizer step (after
gradient accumulation), with any optimizer; the group lr in force is read there.
"""

import lightning as L
import torch
from torch import nn

from bertlab.core.errors import ConfigError
from bertlab.core.values import is_number
from bertlab.model.anatomy import anatomy
from bertlab.optim.param_groups import no_decay_ids


def pretrained_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters of the pretrained base model (not the new head) that get weight
    decay, by name."""
    parts, no_decay = anatomy(model), no_decay_ids(model)
    return {n: p for n, p in model.named_parameters() if p.requires_grad and parts.in_base(n) and id(p) not in no_decay}


def check_prior_wd(strength) -> None:
    """The rule for `prior_wd`, for the config check and for `PriorWeightDecay` alike."""
    if not is_number(strength, finite=True) or strength < 0:  # worded with repr, as mixout's
        raise ConfigError(
            f"prior_wd={strength!r} is invalid: pre-trained weight decay must be a number >= 0 (0 = off)."
        )


class PriorWeightDecay(L.Callback):
    def __init__(self, model: nn.Module, strength: float):
        check_prior_wd(strength)
        self.strength = float(strength)
        # p0, taken now: after re-init, before any step (and before a resumed run loads weights)
        params = pretrained_parameters(model)
        self._prior = {id(p): p.detach().clone() for p in params.values()}
        self.names = sorted(params)

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.strength == 0:
            return
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if id(p) in self._prior]
            if not params:
                continue
            priors = []
            for p in params:
                prior = self._prior[id(p)]
                if prior.device != p.device or prior.dtype != p.dtype:
                    # once: the model moved to its device after this callback was built
                    prior = self._prior[id(p)] = prior.to(device=p.device, dtype=p.dtype)
                priors.append(prior)
            # multi-tensor ops: one pass over the group, no per-parameter Python arithmetic
            diffs = torch._foreach_sub(params, priors)
            torch._foreach_add_(params, diffs, alpha=-group["lr"] * self.strength)


def prior_wd_callback(model, strength: float):
    """conf/callbacks/default.yaml's `prior_wd` entry: PriorWeightDecay toward the weights after
    re-init (the model the run gives by argument name), or None when `strength` (prior_wd) is 0."""
    if strength <= 0:
        return None
    return PriorWeightDecay(model, strength)
