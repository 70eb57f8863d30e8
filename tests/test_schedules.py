"""Schedules: every config against its transformers function, step by step, and under Lightning."""

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import (
    get_constant_schedule,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_hard_restarts_schedule_with_warmup,
    get_linear_schedule_with_warmup,
    get_polynomial_decay_schedule_with_warmup,
)

from bertlab.errors import ConfigError
from bertlab.schedules import build_scheduler, warmup_steps

CONF = Path(__file__).resolve().parents[1] / "conf" / "schedule"
TOTAL = 40
LRS = (1e-3, 2.5e-4)  # two groups, as under layer-wise LR decay

REFERENCES = {  # config name -> the transformers call it must equal (warmup ceil(0.1 * 40) = 4)
    "linear": lambda o: get_linear_schedule_with_warmup(o, 4, TOTAL),
    "constant": lambda o: get_constant_schedule(o),
    "constant_warmup": lambda o: get_constant_schedule_with_warmup(o, 4),
    "cosine": lambda o: get_cosine_schedule_with_warmup(o, 4, TOTAL, num_cycles=0.5),
    "cosine_restarts": lambda o: get_cosine_with_hard_restarts_schedule_with_warmup(o, 4, TOTAL, num_cycles=2),
    "polynomial": lambda o: get_polynomial_decay_schedule_with_warmup(o, 4, TOTAL, lr_end=1e-7, power=1.0),
}


def make_optimizer():
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    return torch.optim.AdamW([{"params": [p], "lr": lr} for p, lr in zip(params, LRS)], lr=LRS[0])


def lrs_seen(optimizer, scheduler, steps):
    """The LR of each group at each optimizer step, i.e. what the step actually uses."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        for g in optimizer.param_groups:
            g["params"][0].grad = torch.ones(2)
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
    seen.append([g["lr"] for g in optimizer.param_groups])  # after the last step
    return seen


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_config_matches_transformers_at_every_step(name):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert cfg.name == name
    ours = make_optimizer()
    theirs = make_optimizer()
    seen = lrs_seen(ours, build_scheduler(ours, cfg, TOTAL), TOTAL)
    assert seen == lrs_seen(theirs, REFERENCES[name](theirs), TOTAL)
    assert seen[0] == ([0.0, 0.0] if name != "constant" else list(LRS))
    assert seen[4] == list(LRS)  # warmup over after ceil(0.1 * 40) = 4 steps
    for step in seen:  # the groups keep their ratio (LLRD survives the schedule)
        assert step[1] == pytest.approx(step[0] * LRS[1] / LRS[0], abs=1e-18)


def test_linear_by_the_formula():
    # Independent of transformers: 0 -> lr over w steps, then lr -> 0 at step T.
    optimizer = make_optimizer()
    seen = lrs_seen(optimizer, build_scheduler(optimizer, {"name": "linear", "warmup_ratio": 0.1}, TOTAL), TOTAL)
    for k, (lr, _) in enumerate(seen):
        expected = LRS[0] * (k / 4 if k < 4 else (TOTAL - k) / (TOTAL - 4))
        assert lr == pytest.approx(expected, abs=1e-15)
    assert seen[-1][0] == 0.0


def test_warmup_steps_override_and_rounding():
    assert warmup_steps({"warmup_ratio": 0.1, "warmup_steps": 7}, 40) == 7
    assert warmup_steps({"warmup_ratio": 0.1, "warmup_steps": None}, 25) == 3  # ceil(2.5)
    assert warmup_steps({"warmup_ratio": 0.1}, 5) == 1  # ceil(0.5): any ratio > 0 warms up
    assert warmup_steps({"warmup_ratio": 0.0}, 40) == 0
    optimizer = make_optimizer()
    cfg = {"name": "linear", "warmup_ratio": 0.1, "warmup_steps": 10}
    seen = lrs_seen(optimizer, build_scheduler(optimizer, cfg, TOTAL), TOTAL)
    assert seen[5][0] == pytest.approx(LRS[0] / 2) and seen[10][0] == LRS[0]


def test_warmup_longer_than_training_warns():
    with pytest.warns(UserWarning, match="never reaches its peak"):
        build_scheduler(make_optimizer(), {"name": "linear", "warmup_steps": 50}, 10)


@pytest.mark.parametrize("cfg, total, match", [
    ({"name": "step"}, 10, "schedule.name='step'"),
    ({"name": "linear", "warmup_steps": -1}, 10, "schedule.warmup_steps=-1"),
    ({"name": "linear", "warmup_steps": 2.5}, 10, "schedule.warmup_steps=2.5"),
    ({"name": "linear", "warmup_ratio": 1.5}, 10, "schedule.warmup_ratio=1.5"),
    ({"name": "linear", "warmup_ratio": -0.1}, 10, "schedule.warmup_ratio=-0.1"),
    ({"name": "linear", "warmpu_ratio": 0.1}, 10, "unknown key"),
    ({"name": "linear"}, 0, "total_steps=0"),
    ({"name": "linear"}, math.inf, "total_steps=inf"),
    ({"name": "constant", "warmup_ratio": 0.1}, 10, "constant_warmup"),
    ({"name": "cosine", "num_cycles": 0}, 10, "schedule.num_cycles=0"),
    ({"name": "cosine_restarts", "num_cycles": 1.5}, 10, "schedule.num_cycles=1.5"),
    ({"name": "polynomial", "lr_end": 1.0}, 10, "schedule.lr_end=1.0"),
    ({"name": "polynomial", "power": -1.0}, 10, "schedule.power=-1.0"),
])
def test_invalid_configs_raise_config_error(cfg, total, match):
    with pytest.raises(ConfigError, match=match.replace(".", r"\.")) as err:
        build_scheduler(make_optimizer(), cfg, total)
    assert "valid" in str(err.value) or "use" in str(err.value)


def test_gradient_accumulation_under_lightning(tmp_path):
    """10 batches, accumulate 2 => 5 optimizer steps: the schedule spans exactly those 5 steps."""
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.seen = []

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def on_before_optimizer_step(self, optimizer):
            self.seen.append(optimizer.param_groups[0]["lr"])

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=1.0)
            total = self.trainer.estimated_stepping_batches
            scheduler = build_scheduler(optimizer, {"name": "linear", "warmup_ratio": 0.2}, total)
            self.total, self.scheduler = total, scheduler
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(20, 2)), batch_size=2)
    module = Tiny()
    trainer = L.Trainer(max_epochs=1, accumulate_grad_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        accelerator="cpu", devices=1)
    trainer.fit(module, data)
    assert module.total == 5 and trainer.global_step == 5
    # warmup ceil(0.2 * 5) = 1 step, then linear decay ending at 0 right after the 5th step
    assert module.seen == pytest.approx([0.0, 1.0, 0.75, 0.5, 0.25])
    assert module.scheduler.get_last_lr() == [0.0]
