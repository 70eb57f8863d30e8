"""One whole fine-tuning run with the Hugging Face `Trainer`, configured as `run_glue.py`'s defaults
(the baseline of scripts/bench.py; run_glue.py itself is not vendored: no network here).

run_glue.py defaults modelled: `pad_to_max_length=True` (every example padded to
`max_seq_length=128` when tokenised, then `default_data_collator`), `per_device_eval_batch_size=8`,
final weights evaluated (no best-checkpoint selection), AdamW (`adamw_torch`). So that only the
padding policy and the framework differ, the run's other settings are this project's (lr, batch
size, epochs, warmup ratio, weight decay, Adam betas/eps, clipping, seed, 10 evaluations) and it
trains on the same splits of the same Hydra config as `python train.py <overrides>`.

    python -m scripts.hf_trainer_run --out result.json -- task=mrpc task.data_dir=... task.n_train=1000

(from the repository root, where `scripts` is a package)
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import (
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from bertlab.data.datamodule import tokenize
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.model.load import load_config, load_model
from bertlab.run.trainer import validation_interval
from scripts.bench_common import compose_cfg


class StepClock(TrainerCallback):
    """Unix time of the first step (start-up) and the seconds spent in training steps, from step
    begin to step end (forward, backward, optimizer step; the evaluations run after step end), so
    the samples/s compares like for like with bertlab's TrainThroughput (training batches only)."""

    def __init__(self):
        self.first_step_at = None
        self._began: float | None = None
        self.train_seconds = 0.0

    def on_step_begin(self, args, state, control, **kw):
        if self.first_step_at is None:
            self.first_step_at = time.time()
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.train_seconds += time.perf_counter() - self._began


def training_args(cfg, out_dir: str, **overrides) -> TrainingArguments:
    o = cfg.optimizer
    kw = dict(
        output_dir=out_dir,
        per_device_train_batch_size=cfg.data.batch_size,
        learning_rate=o.lr,
        weight_decay=o.weight_decay,
        adam_beta1=o.betas[0],
        adam_beta2=o.betas[1],
        adam_epsilon=o.eps,
        warmup_steps=cfg.schedule.warmup_ratio,
        lr_scheduler_type="linear",
        num_train_epochs=cfg.trainer.max_epochs,
        max_grad_norm=cfg.trainer.gradient_clip_val,
        seed=cfg.seed,
        optim="adamw_torch",
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=cfg.trainer.log_every_n_steps,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    kw.update(overrides)
    return TrainingArguments(**kw)


def metrics_fn(metric_names):
    def compute(pred):
        y = pred.label_ids
        p = pred.predictions.argmax(-1)
        out = {"accuracy": float((p == y).mean())}
        if "f1" in metric_names:
            tp, fp, fn = (
                int(((p == 1) & (y == 1)).sum()),
                int(((p == 1) & (y == 0)).sum()),
                int(((p == 0) & (y == 1)).sum()),
            )
            out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        return out

    return compute


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="write the figures here (JSON)")
    parser.add_argument("--work-dir", default="/tmp/bertlab-hf-trainer")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    args = parser.parse_args(argv)
    start = time.time()

    cfg = compose_cfg(args.overrides)
    task = cfg.task
    splits = make_splits(read_task(task), task, task.data_seed)
    model_config = load_config(cfg.model.name_or_path, len(task.labels), task.problem, cfg.model.dropout)
    set_seed(cfg.seed)
    tokenizer, model = load_model(cfg.model.name_or_path, model_config)
    # run_glue.py: padding="max_length" at tokenisation (pad_to_max_length=True, max_seq_length=128)
    data = {}
    for name, examples in splits.items():
        encoded = tokenize(examples, tokenizer, task.max_length, False)
        data[name] = [tokenizer.pad(e, padding="max_length", max_length=task.max_length) for e in encoded]
    steps = cfg.trainer.max_epochs * math.ceil(len(splits["train"]) / cfg.data.batch_size)
    clock = StepClock()
    trainer = Trainer(
        model=model,
        args=training_args(
            cfg, args.work_dir, eval_strategy="steps", eval_steps=validation_interval(len(splits["train"]), cfg)
        ),
        train_dataset=data["train"],
        eval_dataset=data["val"],
        data_collator=default_data_collator,
        compute_metrics=metrics_fn(list(task.metrics)),
        callbacks=[clock],
    )
    train_out = trainer.train()
    test = trainer.evaluate(data["test"], metric_key_prefix="test")
    record = {
        "main_metric": task.main_metric,
        "test": {k.removeprefix("test_"): v for k, v in test.items() if k.removeprefix("test_") in task.metrics},
        # training steps only, as bertlab's figure; the Trainer's own figure includes the 10 evaluations
        "train_samples_per_s": len(splits["train"]) * cfg.trainer.max_epochs / clock.train_seconds,
        "train_samples_per_s_wall": train_out.metrics.get("train_samples_per_second"),
        "steps": steps,
        "first_step_at": clock.first_step_at,
        "duration_s": time.time() - start,
        "padding_efficiency": float(
            np.mean([sum(e["attention_mask"]) / len(e["attention_mask"]) for e in data["train"]])
        ),
    }
    Path(args.out).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
