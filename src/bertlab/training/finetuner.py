"""The LightningModule: one HF classifier (sequence or token: problems/), its metrics, its optimizer and schedule.

A training step is `self.model(**batch).loss` (HF picks cross-entropy or, for regression heads,
MSE from `config.problem_type`); the optimizer and schedule come from the config groups.

The order of operations in one training step (one optimizer step, accumulate_grad_batches=1),
as Lightning 2.6 runs it (loops/training_epoch_loop.py, loops/optimization/automatic.py,
plugins/precision/precision.py, core/module.py). Callbacks run in the order of the list that
conf/callbacks/default.yaml gives (run/fit.py's build_callbacks builds them), each before the LightningModule's hook of the same name.

 0. on_train_batch_start: TrainThroughput starts its clock (callbacks/throughput.py),
    LearningRateMonitor logs the lrs, ResumeCheckpoint restores the RNG states on the first
    batch of a resumed run (callbacks/resume.py).
 1. LightningModule.optimizer_step calls `optimizer.step(closure)`; the optimizer (optim/adam.py)
    runs the closure before its update, and the closure runs 2-6:
 2. forward and loss: `training_step` below (under autocast when precision is mixed; side
    features are fused by the model's hooks, heads/fusion.py; a distillation student mixes in
    the teacher's soft labels, methods/distill.py; approach=prompt with approach.aux_mlm_weight > 0
    mixes in PET's masked-LM loss on an unlabeled batch, prompt/aux_mlm.py; an auxiliary objective
    adds its weighted loss, methods/auxiliary.py); a NaN/inf loss raises DivergedError here, before any gradient.
 3. zero_grad: `optimizer_zero_grad` (on the first batch of an accumulation window).
 4. backward: `LightningModule.backward`, i.e. `loss.backward()` (on_before_backward and
    on_after_backward around it; none of ours).
 5. on_before_optimizer_step, once per optimizer step: TrainingDiagnostics logs gradient norms
    and keeps the peak lrs (callbacks/diagnostics.py), then PriorWeightDecay pulls the weights
    toward their starting values with this step's group lr (methods/prior_wd.py).
 6. gradient clipping: `configure_gradient_clipping` -> `clip_gradients`, by the Trainer's
    gradient_clip_val (trainer.gradient_clip_val, passed by run/trainer.py; 0 or null: none).
    So the diagnostics' gradient norms are from before clipping.
 7. the optimizer's update, with the clipped gradients (optim/adam.py: AdamFamily.step, or the
    torch.optim.AdamW/Adam that build_optimizer returns when bias correction is on).
 8. the schedule step: the fit loop calls `lr_scheduler_step` -> `scheduler.step()` (the
    LambdaLR of optim/schedules.py, interval "step" in configure_optimizers below): the lr
    of the next step.
 9. on_train_batch_end: KeepBestWeights asks for a validation at the last step, TrainThroughput
    stops its clock, TrainingDiagnostics logs the update sizes, ResumeCheckpoint saves on SIGTERM.
10. a validation when one is due (val_check_interval, run/trainer.py); on_validation_end:
    KeepBestWeights keeps the best weights, then ResumeCheckpoint saves (callbacks/keep_best.py).

With gradient accumulation, a batch that does not complete the window runs the closure directly:
2 and 4 (3 on the window's first batch), no hooks of 5, no optimizer or schedule step. With
precision=16-mixed, Lightning runs the closure, unscales the gradients, then 5-7: the same order.
"""

import lightning as L
import torch
from omegaconf import DictConfig

from bertlab.methods.auxiliary import INDEX_KEY, aux_of
from bertlab.optim.optimizer import build_optimizer
from bertlab.optim.schedules import build_scheduler
from bertlab.problems.metrics import build_metrics, evaluate_logits


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
        problem: str,  # the task Problem's kind (problems/problem.py): the default evaluation's predictions
        llrd: float = 1.0,
        distill=None,
        metrics_factory=None,
        evaluate_batch=None,
        extra_loss=None,
        aux_weight: float = 0.0,
    ):
        super().__init__()
        self.model = model
        self.optimizer_cfg = optimizer
        self.schedule_cfg = schedule
        self.llrd = llrd
        self.problem = problem
        # distillation (methods/distill.py): (logits, teacher_logits, task_loss) -> the loss; None = off
        self.distill = distill
        # (model, batch, metrics): the task problem's own evaluation step (problems/: its Problem's
        # `evaluate`); None, for those building a FineTuner by hand: `problem`'s predictions vs the labels
        self.evaluate_batch = evaluate_batch or evaluate_logits(problem)
        # (model, loss, global step) -> the loss with the approach's own term (approach=prompt's
        # auxiliary masked-LM loss, prompt/aux_mlm.py); None = the task loss alone
        self.extra_loss = extra_loss
        # the auxiliary objective's weight (methods/auxiliary.py); the objective is model.aux_objective
        self.aux_weight = aux_weight
        num_labels = model.config.num_labels
        # metrics_factory(prefix): the task problem's own metrics (problems/); default GLUE's
        build = metrics_factory or (lambda prefix: build_metrics(metrics, num_labels, prefix))
        self.val_metrics = build("val")
        # "test_last" or "test_best": which weights are being tested (set by run/fit.py).
        self.test_prefix = "test"
        self.test_metrics = {p: build(p) for p in ("test_last", "test_best")}
        self.test_metrics = torch.nn.ModuleDict(self.test_metrics)

    def training_step(self, batch, batch_idx):
        teacher_logits = batch.pop("teacher_logits", None)  # present in a distillation student's batches
        index = batch.pop(INDEX_KEY, None)  # the examples' positions: aux=mlm's masks
        aux = aux_of(self.model)
        hidden = {"output_hidden_states": True} if aux is not None and aux.needs_hidden_states else {}
        output = self.model(**batch, **hidden)
        loss = output.loss
        if self.distill is not None:  # the soft labels' term mixed into the task loss
            loss = self.distill(output.logits, teacher_logits, loss)
        if self.extra_loss is not None:
            loss = self.extra_loss(self.model, loss, self.global_step)
        if aux is not None:  # after the task's forward: the fusion hooks have cleared their features
            aux_loss = aux(self.model, {**batch, INDEX_KEY: index}, output, self.current_epoch)
            self.log("train/aux_loss", aux_loss, batch_size=batch["input_ids"].shape[0])
            loss = loss + self.aux_weight * aux_loss
        if not torch.isfinite(loss):
            raise DivergedError(self.global_step, float(loss.detach()))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def _evaluate(self, batch, metrics):
        self.evaluate_batch(self.model, batch, metrics)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self):
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.log_steps_done()
        self.val_metrics.reset()

    def log_steps_done(self):
        """Log these metrics at the number of optimizer steps done, the step the console and
        result.json's best_step name. Lightning would log a validation at one less: it logs before it
        counts the step that triggered it (training_epoch_loop.py, `_batches_that_stepped`). A logged
        `step` is Lightning's public way to set the step of the row (LoggerConnector.log_metrics), and
        every logger (metrics.csv, W&B's trainer/global_step, TensorBoard, MLflow) records that step."""
        self.log("step", float(self.trainer.global_step), logger=True)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_metrics[self.test_prefix])

    def on_test_epoch_end(self):
        metrics = self.test_metrics[self.test_prefix]
        self.log_dict(metrics.compute())
        self.log_steps_done()  # the test rows, at the run's last step
        metrics.reset()

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_cfg, llrd=self.llrd)
        # Counts optimizer steps (gradient accumulation and max_steps included).
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = build_scheduler(optimizer, self.schedule_cfg, total_steps)
        # "name": LearningRateMonitor logs each group as `lr/<group name>` (param_groups' `name`)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
