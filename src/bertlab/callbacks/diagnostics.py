"""What the optimizer and the methods do to the model, logged as the run goes and kept for result.json.

Every `every_n_steps` optimizer steps, and at steps 1, 2, 4, 8 and 16, where BERTAdam's oversized
early steps are (`trainer.diagnostics_every_n_steps`):

    optim/bias_correction        sqrt(1 - b2^t) / (1 - b1^t) in force; 1.0 without bias correction
    optim/update_size/<block>    mean |c1 m / (c2 sqrt(v) + eps)| over the block's parameters: the
                                 step per unit lr, with the bias correction in force (paper Fig. 2-3)
    grad_norm/<block>            L2 norm of the block's gradients, before clipping

At the end of training (paper Fig. 8):

    diag/relative_change/<block> ||W_end - W_start|| / ||W_start|| over the block's parameters,
                                 W_start = the weights after re-init

Blocks: `embeddings`, `layer_<i>` (encoder blocks), `pooler`, `classifier` (the head), as
`anatomy.py` finds them for every encoder family.
The learning rate of each parameter group is logged by Lightning's LearningRateMonitor (as
`lr/<group>`); this callback only keeps each group's peak lr for result.json. `summary()` is
what goes into result.json under `diagnostics`.

Cost: nothing on steps that are not logged except reading the group lrs; on a logged step, one
multi-tensor pass over the Adam state and the gradients. The starting weights are one CPU copy.
"""

import math
from collections import defaultdict

import lightning as L
import torch
from torch import nn

from bertlab.model.anatomy import block_order, blocks_by_param
from bertlab.optim.adam import bias_correction_factor, moment_debias

EARLY_STEPS = (1, 2, 4, 8, 16)  # always logged: where bias correction matters most (paper Fig. 2-3)


def _ordered(values: dict[str, float]) -> dict[str, float]:
    """Input to output (anatomy's block order)."""
    return {b: values[b] for b in sorted(values, key=block_order)}


def bias_correction_in_force(group: dict, step: float) -> tuple[float, float]:
    """(c1, c2) of a step t: 1/(1-b1^t), 1/sqrt(1-b2^t) with bias correction, else (1, 1)."""
    if not group.get("bias_correction", True) or step < 1:
        return 1.0, 1.0
    first, second = moment_debias(group["betas"], step)
    return 1 / first, 1 / math.sqrt(second)


@torch.no_grad()
def update_sizes(optimizer: torch.optim.Optimizer, block_of_param: dict[int, str]) -> dict[str, float]:
    """Mean |c1 m / (c2 sqrt(v) + eps)| per block, from an Adam-style state (empty if none)."""
    totals, counts = defaultdict(float), defaultdict(int)
    for group in optimizer.param_groups:
        params = [p for p in group["params"] if "exp_avg" in optimizer.state.get(p, {})]
        if not params or "betas" not in group:
            continue
        states = [optimizer.state[p] for p in params]
        corrections = [bias_correction_in_force(group, float(s["step"])) for s in states]
        denom = torch._foreach_sqrt([s["exp_avg_sq"] for s in states])
        torch._foreach_mul_(denom, [c2 for _, c2 in corrections])
        torch._foreach_add_(denom, group["eps"])
        ratios = torch._foreach_div([s["exp_avg"] for s in states], denom)
        # float64 accumulation: a float32 L1 sum over a 30M-element embedding drifts by ~0.3%
        l1 = torch.stack(torch._foreach_norm(ratios, 1, dtype=torch.float64)).tolist()
        for p, size, (c1, _) in zip(params, l1, corrections):
            block = block_of_param.get(id(p), "classifier")
            totals[block] += c1 * size
            counts[block] += p.numel()
    return _ordered({b: totals[b] / counts[b] for b in totals})


@torch.no_grad()
def grad_norms(params_by_block: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """L2 norm of the gradients of each block (blocks without gradients are left out)."""
    out = {}
    for block, params in params_by_block.items():
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            norms = torch._foreach_norm(grads, 2, dtype=torch.float64)
            out[block] = float(torch.linalg.vector_norm(torch.stack(norms)))
    return _ordered(out)


@torch.no_grad()
def relative_change(model: nn.Module, start: dict[str, torch.Tensor]) -> dict[str, float]:
    """||W - W_start|| / ||W_start|| per block, over the parameters in `start`."""
    diff, ref = defaultdict(float), defaultdict(float)
    block_of = blocks_by_param(model)
    for name, p in model.named_parameters():
        if name not in start:
            continue
        w0 = start[name].double()
        w = p.detach().to("cpu", torch.float64)
        block = block_of[name]
        diff[block] += float((w - w0).pow(2).sum())
        ref[block] += float(w0.pow(2).sum())
    return _ordered({b: math.sqrt(diff[b]) / math.sqrt(ref[b]) if ref[b] > 0 else math.inf for b in diff})


class TrainingDiagnostics(L.Callback):
    def __init__(self, model: nn.Module, every_n_steps: int):
        # no default here: trainer.diagnostics_every_n_steps (conf/trainer/default.yaml) is the one
        self.every_n_steps = max(1, int(every_n_steps))
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.start = {n: p.detach().to("cpu", copy=True) for n, p in named}
        block_of = blocks_by_param(model)
        self._block_of_param = {id(p): block_of[n] for n, p in named}
        self._params_by_block = defaultdict(list)
        for n, p in named:
            self._params_by_block[block_of[n]].append(p)
        self.peak_lr: dict[str, float] = {}
        self.update_size_first: dict[str, float] = {}
        self.update_size_last: dict[str, float] = {}
        self.bias_correction_first: float | None = None
        self.bias_correction_last: float | None = None
        self.grad_norm: dict[str, float] = {}
        self.grad_norm_step: int | None = None
        self.relative_change: dict[str, float] = {}
        self.train_ended = False  # on_train_end ran (run/fit.py calls it when Lightning did not)
        self._last_step = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._total_steps = trainer.estimated_stepping_batches  # read once, not on every step

    def _is_log_step(self, step: int, trainer) -> bool:
        total = getattr(self, "_total_steps", math.inf)
        final = math.isfinite(total) and step >= total
        return step in EARLY_STEPS or step % self.every_n_steps == 0 or final

    @staticmethod
    def _log(trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        step = trainer.global_step + 1  # the step about to be taken
        for i, group in enumerate(optimizer.param_groups):
            name = group.get("name", f"pg{i + 1}")
            self.peak_lr[name] = max(self.peak_lr.get(name, 0.0), float(group["lr"]))
        if self._is_log_step(step, trainer):
            self.grad_norm = grad_norms(self._params_by_block)
            self.grad_norm_step = step
            self._log(trainer, {f"grad_norm/{b}": v for b, v in self.grad_norm.items()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last_step or not self._is_log_step(step, trainer):
            return  # no optimizer step since the last call (accumulation), or not a log step
        self._last_step = step
        optimizer = trainer.optimizers[0]
        sizes = update_sizes(optimizer, self._block_of_param)
        factor = _bias_correction_factor(optimizer)
        if self.bias_correction_first is None:
            self.bias_correction_first, self.update_size_first = factor, sizes
        self.bias_correction_last, self.update_size_last = factor, sizes
        metrics = {f"optim/update_size/{b}": v for b, v in sizes.items()}
        if factor is not None:
            metrics["optim/bias_correction"] = factor
        self._log(trainer, metrics)

    def on_train_end(self, trainer, pl_module) -> None:
        self.train_ended = True
        self.relative_change = relative_change(pl_module.model, self.start)
        self._log(trainer, {f"diag/relative_change/{b}": v for b, v in self.relative_change.items()})

    # Kept in resume checkpoints (resume.py), so a resumed run still reports its first steps;
    # the starting weights are not: they are rebuilt, identically, when the run restarts.
    _STATE = (
        "peak_lr",
        "update_size_first",
        "update_size_last",
        "bias_correction_first",
        "bias_correction_last",
        "grad_norm",
        "grad_norm_step",
        "_last_step",
    )

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        for key in self._STATE:
            if key in state:
                setattr(self, key, state[key])

    def summary(self) -> dict:
        return {
            "peak_lr": self.peak_lr,
            "bias_correction": {"first": self.bias_correction_first, "last": self.bias_correction_last},
            "update_size": {"first": self.update_size_first, "last": self.update_size_last},
            "grad_norm": self.grad_norm,
            "grad_norm_step": self.grad_norm_step,
            "relative_change": self.relative_change,
        }


def _bias_correction_factor(optimizer) -> float | None:
    """optim.bias_correction_factor for Adam-style optimizers, None for others."""
    if "betas" not in optimizer.param_groups[0]:
        return None
    return bias_correction_factor(optimizer)
