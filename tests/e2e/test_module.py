import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from bertlab.data.datamodule import FewSampleDataModule
from bertlab.data.readers import Example
from bertlab.model.load import load_config, load_model
from bertlab.training.finetuner import FineTuner

# every test here fits the FineTuner with a Lightning Trainer (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow

OPT = OmegaConf.create(
    {
        "name": "adamw",
        "lr": 1e-3,
        "betas": [0.9, 0.999],
        "eps": 1e-6,
        "weight_decay": 0.01,
        "bias_correction": True,
        "weight_decay_mode": "decoupled",
    }
)
SCHED = OmegaConf.create({"name": "linear", "warmup_ratio": 0.1, "warmup_steps": None})


def tiny_setup(tiny_bert_dir):
    tokenizer, model = load_model(str(tiny_bert_dir), load_config(str(tiny_bert_dir), 2, "classification"))
    examples = [Example(f"text number {i}", None, i % 2) for i in range(8)]
    data = FewSampleDataModule(
        {"train": examples, "val": examples, "test": examples},
        tokenizer,
        max_length=16,
        regression=False,
        batch_size=4,
        eval_batch_size=8,
    )
    return model, data


class ModeProbe(L.Callback):
    def __init__(self):
        self.train_modes, self.val_modes = [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.train_modes.append(all(m.training for m in module.model.modules()))

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self.val_modes.append(any(m.training for m in module.model.modules()))


def test_dropout_is_on_while_training_and_off_while_validating(tiny_bert_dir):
    # from_pretrained returns eval mode and Lightning keeps submodule modes (docs/design.md#dropout-and-training-mode)
    model, data = tiny_setup(tiny_bert_dir)
    assert all(m.training for m in model.modules())
    probe = ModeProbe()
    trainer = L.Trainer(
        max_steps=4,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[probe],
    )
    trainer.fit(FineTuner(model, OPT, SCHED, ["accuracy"], "classification"), datamodule=data)
    assert probe.train_modes == [True] * 4  # including the steps right after each validation
    assert probe.val_modes == [False, False]


def test_training_step_learns_and_schedule_steps_per_optimizer_step(tiny_bert_dir):
    model, data = tiny_setup(tiny_bert_dir)
    module = FineTuner(model, OPT, SCHED, ["accuracy"], "classification")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(
        max_steps=10,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=data)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "classifier.weight" in changed and "bert.embeddings.word_embeddings.weight" in changed
    # linear schedule over the 10 optimizer steps: the lr has decayed to 0 at the end
    assert trainer.lr_scheduler_configs[0].scheduler.get_last_lr()[0] == 0.0
