"""Model selection like the paper: validate a few times, keep the best weights in memory.

Validation runs every `val_check_interval` batches and, as in the paper's code (run_glue.py,
`global_step == t_total`), at the last step too, so the last weights are always a candidate.

Lightning's ModelCheckpoint writes every improvement to disk; for a sweep of bert-large runs
that is hundreds of MB per save and per job for weights that are thrown away at the end, so the
best weights are kept as a CPU copy instead (saving the final model is a separate option).
"""

import copy

import lightning as L
import torch


class BestWeights:
    """The best-scoring weights so far, as a CPU copy, and the score and step they had.

    The one copy of keep-the-best: fine-tuning's KeepBestWeights (the highest validation metric) and
    the further pre-training stage's MaskedLM (pretrain/stage.py: the lowest held-out loss, starting
    from `score=inf` so that a NaN loss is never kept) both keep theirs here. A strict comparison
    keeps the earliest of equal scores; NaN never beats a score. It lives here, beside the callback,
    because pretrain/ may import callbacks/ (the stage's own callbacks come from Lightning and here)."""

    def __init__(self, mode: str = "max", score: float | None = None):
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r}: max or min")
        self.mode = mode
        self.score = score
        self.step: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def improves(self, score: float) -> bool:
        if self.score is None:
            return True
        return score > self.score if self.mode == "max" else score < self.score

    def offer(self, score: float, step: int, module: torch.nn.Module) -> bool:
        """Keep `module`'s weights when `score` improves on the best so far; whether it did."""
        if not self.improves(score):
            return False
        self.score, self.step = score, step
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        return True

    def restore(self, module: torch.nn.Module) -> bool:
        """Load the best weights into `module`; False when none was kept."""
        if self.state is None:
            return False
        module.load_state_dict(self.state)
        return True


class KeepBestWeights(L.Callback):
    def __init__(self, monitor: str):
        self.monitor = monitor
        self.best = BestWeights("max")
        self.best_metrics: dict[str, float] = {}
        self.validations = 0  # how many validations ran (result.json)
        self.validated_step: int | None = None  # the step of the latest validation

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args) -> None:
        # Lightning's fixed interval stops short of the last step when it does not divide the run.
        # `should_stop` makes the fit loop validate after this batch (as early stopping does) and
        # then stop, which it would at this step anyway; the validation is logged like the others.
        if trainer.global_step >= trainer.estimated_stepping_batches and self.validated_step != trainer.global_step:
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.validations += 1
        self.validated_step = trainer.global_step
        score = trainer.callback_metrics.get(self.monitor)
        if score is None:
            return
        # ">" keeps the earliest of equal scores; NaN never counts as an improvement.
        if self.best.offer(float(score), trainer.global_step, module):
            self.best_metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}

    # the best's score, step and weights, by the names result.json, the console and resume read
    @property
    def best_score(self) -> float | None:
        return self.best.score

    @property
    def best_step(self) -> int | None:
        return self.best.step

    @property
    def best_state(self) -> dict[str, torch.Tensor] | None:
        return self.best.state

    def restore(self, module: L.LightningModule) -> bool:
        """Load the best weights into `module`; False when no validation ever ran."""
        return self.best.restore(module)

    def state_dict(self) -> dict:
        # Saved in resume checkpoints so a resumed run still knows its best so far.
        return {
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "best_metrics": copy.deepcopy(self.best_metrics),
            "validations": self.validations,
            "validated_step": self.validated_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best.score, self.best.step, self.best.state = state["best_score"], state["best_step"], state["best_state"]
        self.best_metrics = state["best_metrics"]
        self.validations = state.get("validations", 0)
        self.validated_step = state.get("validated_step")
