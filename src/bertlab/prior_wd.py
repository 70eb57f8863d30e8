"""Pre-trained weight decay (`prior_wd=lambda`): decay toward the starting weights, not toward 0.

Before each optimizer step, for every parameter of the pretrained base model (embeddings,
encoder, pooler):

    p <- p - lr_group * lambda * (p - p0)

with p0 = the weights after re-init (the paper's code, DESIGN.md section 4) and lr_group the
learning rate the schedule (and LLRD) gives that parameter's group for this step. Two slips of
the paper's code are not copied: ordinary weight decay is left as configured (the two combine),
and the new classifier is not pulled toward its random init (its p0 would mean nothing).

Also unlike the paper's code, which took lambda from each group's weight decay (so biases and
LayerNorm weights, in no-decay groups, got none), every pretrained parameter is pulled: the
reason not to decay biases and norms toward 0 does not apply to decaying them toward their
pretrained values, and it is the penalty lambda/2 ||w - w0||^2 of the literature (Lee et al. 2020's
wdecay(w_pre)).

A Lightning callback rather than an optimizer wrapper: `on_before_optimizer_step` runs after
the gradients are ready and before the optimizer's update, once per optimizer step (after
gradient accumulation), with any optimizer; the group lr in force is read there.
"""

import lightning as L
import torch
from torch import nn


def pretrained_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters of the pretrained base model (not the new head), by name."""
    prefix = model.base_model_prefix + "."
    return {n: p for n, p in model.named_parameters() if p.requires_grad and n.startswith(prefix)}


class PriorWeightDecay(L.Callback):
    def __init__(self, model: nn.Module, strength: float):
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or strength < 0:
            raise ValueError(f"prior_wd={strength!r} must be a number >= 0")
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
