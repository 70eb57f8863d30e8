"""The Adam family the paper compares: `adam_family` is the `_target_` of its optimizer configs.

Two switches span the family (`name` labels the run and fills in a switch its config leaves out):

- `bias_correction`: debiased Adam, or the original BERT optimizer's plain `m / (sqrt(v) + eps)`.
- `weight_decay_mode`: `decoupled` (AdamW, BERT's `AdamWeightDecay`) or `l2` (coupled into the
  gradient before the moments: `torch.optim.Adam(weight_decay=...)`).

With m_t = b1 m + (1-b1) g and v_t = b2 v + (1-b2) g^2 (g += wd p first in `l2` mode), a step is

    decoupled:  p <- p (1 - lr wd)
    all:        p <- p - lr c1 m_t / (sqrt(v_t) c2 + eps)

with c1 = 1/(1-b1^t), c2 = 1/sqrt(1-b2^t) when bias correction is on, c1 = c2 = 1 when off.
On: exactly `torch.optim.AdamW` / `torch.optim.Adam`, which `adam_family` returns.
Off + decoupled: BERT's `update = m/(sqrt(v)+eps) + wd p; p -= lr update`, which is the same
arithmetic because the decay term uses p from before the step in both (docs/design.md#bertadam).
Unlike the paper's `BertAdam`, gradient clipping and warmup are not inside the optimizer: the
Trainer clips and `schedules.py` warms up.
"""

import math

import torch

from bertlab.core.errors import ConfigError
from bertlab.core.values import full_key, is_number
from bertlab.optim.values import checked_number

# What each name means when its config leaves a switch out.
NAMES = {
    "bertadam": {"bias_correction": False, "weight_decay_mode": "decoupled"},
    "adamw": {"bias_correction": True, "weight_decay_mode": "decoupled"},
    "adam_l2": {"bias_correction": True, "weight_decay_mode": "l2"},
}
MODES = ("decoupled", "l2")


class AdamFamily(torch.optim.Optimizer):
    """Adam with switchable bias correction and weight-decay mode (formulas in the module doc).

    torch's Adam/AdamW always bias-correct (no flag, and faking it through `step` would make the
    checkpoints lie), so BERTAdam needs its own step. It is multi-tensor (`torch._foreach_*`),
    the same kernels in the same order as torch's foreach AdamW, minus the bias-correction work,
    and keeps torch's state names (`step`, `exp_avg`, `exp_avg_sq`). With bias correction on it
    reproduces torch's arithmetic, which the tests check.
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-6,
        weight_decay=0.0,
        bias_correction=False,
        weight_decay_mode="decoupled",
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
            weight_decay_mode=weight_decay_mode,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._step_group(group, params)
        return loss

    def _step_group(self, group, params):
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError("AdamFamily does not support sparse gradients")
            state = self.state[p]
            if not state:
                # Same layout as torch: a float32 step on the CPU, moments like the parameter.
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        lists = [params, [p.grad for p in params]] + [
            [self.state[p][k] for p in params] for k in ("exp_avg", "exp_avg_sq", "step")
        ]
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        grouped = torch.optim.Optimizer._group_tensors_by_device_and_dtype(lists)
        for (ps, grads, exp_avgs, exp_avg_sqs, steps), _ in grouped.values():
            torch._foreach_add_(steps, 1.0)
            if wd != 0:
                if group["weight_decay_mode"] == "decoupled":
                    torch._foreach_mul_(ps, 1 - lr * wd)
                else:  # l2: a new list, so the gradients the user sees stay untouched
                    grads = torch._foreach_add(grads, ps, alpha=wd)
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            if group["bias_correction"]:
                # Per tensor, as torch does: a parameter may have joined the group later.
                t = [s.item() for s in steps]
                debias = [moment_debias((beta1, beta2), k) for k in t]
                torch._foreach_div_(denom, [math.sqrt(d2) for _, d2 in debias])
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, exp_avgs, denom, [-lr / d1 for d1, _ in debias])
            else:
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, exp_avgs, denom, -lr)


def moment_debias(betas, step: float) -> tuple[float, float]:
    """(1 - b1^t, 1 - b2^t) at step t: Adam's first moment is divided by the first, its second by the
    second (the square root of it in the step). The one copy of the bias-correction formula: the
    update (AdamFamily), the factor in force (bias_correction_factor) and the diagnostics' debiased
    update sizes (callbacks/diagnostics.py) all read it here, beside the optimizer it belongs to."""
    beta1, beta2 = betas
    return 1 - beta1**step, 1 - beta2**step


def bias_correction_factor(optimizer: torch.optim.Optimizer) -> float:
    """sqrt(1 - b2^t) / (1 - b1^t) at the latest step t (t = 1 before any step); 1.0 when off.

    Debiased step = factor * BERTAdam step for the same moments when eps is negligible: about
    0.32 at t = 1 with BERT's betas, so BERTAdam's early steps are ~3x larger, rising to 1."""
    group = optimizer.param_groups[0]
    if not group.get("bias_correction", True):
        return 1.0
    t = max(
        (float(optimizer.state[p]["step"]) for p in group["params"] if "step" in optimizer.state.get(p, {})),
        default=1.0,
    )
    first, second = moment_debias(group["betas"], t)
    return math.sqrt(second) / first


def adam_family(
    params,
    name: str,
    lr: float = 1e-3,
    betas=(0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    bias_correction: bool | None = None,
    weight_decay_mode: str | None = None,
) -> torch.optim.Optimizer:
    """The `_target_` of conf/optimizer/{bertadam,adamw,adam_l2}.yaml: the family member the two
    switches pick (a switch left out takes `name`'s value in NAMES).

    Bias-corrected members are torch's own optimizers (foreach; fused when every parameter is on
    a GPU already), so `adamw` is `torch.optim.AdamW`; only steps without bias correction need
    `AdamFamily`. `lr` and `weight_decay` arrive checked by `build_optimizer`, which reads them for
    the parameter groups of every optimizer."""
    if name not in NAMES:
        raise ConfigError(
            f"{full_key('optimizer.name')}={name!r} is unknown; valid: {', '.join(NAMES)} (the Adam family's names); "
            f"another optimizer is another optimizer yaml with its own {full_key('optimizer._target_')}"
        )
    mode = NAMES[name]["weight_decay_mode"] if weight_decay_mode is None else weight_decay_mode
    if mode not in MODES:
        raise ConfigError(f"{full_key('optimizer.weight_decay_mode')}={mode!r} is unknown; valid: {', '.join(MODES)}")
    bias_correction = NAMES[name]["bias_correction"] if bias_correction is None else bias_correction
    if not isinstance(bias_correction, bool):
        raise ConfigError(f"{full_key('optimizer.bias_correction')}={bias_correction!r} is invalid; valid: true, false")
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise ConfigError(
            f"{full_key('optimizer.betas')}={betas!r} is invalid; valid: two numbers in [0, 1), e.g. [0.9, 0.999]"
        )
    if not all(is_number(b) and 0 <= b < 1 for b in betas):
        # the whole pair in the message: the user wrote a list, not one number
        raise ConfigError(
            f"{full_key('optimizer.betas')}={list(betas)} is invalid; valid: two numbers in [0, 1), e.g. [0.9, 0.999]"
        )
    betas = tuple(float(b) for b in betas)
    eps = checked_number("optimizer.eps", eps, lambda x: 0 < x < math.inf, "a number > 0")
    common = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if not bias_correction:
        return AdamFamily(params, bias_correction=False, weight_decay_mode=mode, **common)
    params = list(params)
    torch_cls = torch.optim.AdamW if mode == "decoupled" else torch.optim.Adam
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    fused = all(p.is_cuda and p.dtype.is_floating_point for p in tensors)
    optimizer = torch_cls(params, fused=fused or None, foreach=None if fused else True, **common)
    # Recorded so that `bias_correction_factor` and loggers read every Adam the same way.
    for group in optimizer.param_groups:
        group.setdefault("bias_correction", True)
    return optimizer
