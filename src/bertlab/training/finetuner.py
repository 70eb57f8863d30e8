"""The LightningModule: one HF sequence classifier, its metrics, its optimizer and schedule.

A training step is `self.model(**batch).loss` (HF picks cross-entropy or, for regression heads,
MSE from `config.problem_type`); the optimizer and schedule come from the config groups.
"""

import lightning as L
import torch
from omegaconf import DictConfig

from bertlab.optim.optimizer import build_optimizer
from bertlab.optim.schedules import build_scheduler
from bertlab.training.metrics import build_metrics, predictions


class DivergedError(RuntimeError):
    """The training loss became NaN or inf: the run cannot recover, so it stops at once."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"training diverged at step {step}: loss = {loss}")
        self.step = step


class FineTuner(L.LightningModule):
    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: DictConfig,
        schedule: DictConfig,
        metrics: list[str],
        problem: str,
        llrd: float = 1.0,
    ):
        super().__init__()
        self.model = model
        self.optimizer_cfg = optimizer
        self.schedule_cfg = schedule
        self.llrd = llrd
        self.problem = problem
        num_labels = model.config.num_labels
        self.val_metrics = build_metrics(metrics, num_labels, "val")
        # "test_last" or "test_best": which weights are being tested (set by the training script).
        self.test_prefix = "test"
        self.test_metrics = {p: build_metrics(metrics, num_labels, p) for p in ("test_last", "test_best")}
        self.test_metrics = torch.nn.ModuleDict(self.test_metrics)

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        if not torch.isfinite(loss):
            raise DivergedError(self.global_step, float(loss.detach()))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["labels"].shape[0])
        return loss

    def _evaluate(self, batch, metrics):
        labels = batch.pop("labels")
        logits = self.model(**batch).logits
        metrics.update(predictions(logits, self.problem), labels)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self):
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_metrics.reset()

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_metrics[self.test_prefix])

    def on_test_epoch_end(self):
        metrics = self.test_metrics[self.test_prefix]
        self.log_dict(metrics.compute())
        metrics.reset()

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_cfg, llrd=self.llrd)
        # Counts optimizer steps (gradient accumulation and max_steps included).
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(optimizer, self.schedule_cfg, total_steps)
        # "name": LearningRateMonitor logs each group as `lr/<group name>` (param_groups' `name`)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
