"""When to stop pre-training: a stage's model saved every `pretrain.save_every_n_steps` optimizer steps,
and fine-tuning from one of them (`pretrain.use_step=N`) without running the stage again.

xuyige/BERT4doc-Classification further pre-trains for 100k steps and fine-tunes from the checkpoints
saved every 10k to find the best length; here the saved models live inside the stage's cache entry
(`<entry>/steps/<N>/`, written with the entry, so published atomically with it), so

    python train.py -m pretrain=tapt pretrain.save_every_n_steps=10 pretrain.use_step=10,20,30,40

trains the stage once (save_every_n_steps is in the stage's key; use_step is not) and fine-tunes from
four points of it; `bertlab report` plots the downstream metric against `pretrain.use_step`.

A saved step holds the weights as they were at that step (not the best held-out weights, which are
the stage's own result). With dapt_tapt, use_step picks a step of the last stage.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from bertlab.core.errors import ConfigError
from bertlab.pretrain.model import save_stage_model

STEPS_DIR = "steps"


def step_folder(stage_folder: str | Path, step: int) -> Path:
    return Path(stage_folder) / STEPS_DIR / str(step)


class SaveEveryNSteps(L.Callback):
    """Saves the stage's model (with the carried pooler) at every multiple of `every` steps."""

    def __init__(self, folder: Path, every: int, tokenizer, pooler: dict):
        self.folder, self.every, self.tokenizer, self.pooler = Path(folder), every, tokenizer, pooler
        self.saved: list[int] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step > 0 and step % self.every == 0 and step not in self.saved:
            save_stage_model(module.model, self.tokenizer, step_folder(self.folder, step), self.pooler)
            self.saved.append(step)


def use_saved_step(stage_folder: str | Path, record: dict, step: int) -> str:
    """The folder of the model saved at `step`, or one message naming the steps that were saved."""
    folder = step_folder(stage_folder, step)
    if (folder / "config.json").is_file():
        return str(folder)
    saved = record.get("saved_steps") or []
    why = (
        f"it ran {record.get('steps')} steps" + (" and stopped early" if record.get("stopped_early") else "")
        if record.get("steps") is not None
        else "it saved none"
    )
    raise ConfigError(
        f"pretrain.use_step={step}: the stage saved its model at steps {saved or 'none'} ({why}); choose one of "
        "them, or raise pretrain.max_steps / set pretrain.patience=0 so that the stage reaches that step."
    )
