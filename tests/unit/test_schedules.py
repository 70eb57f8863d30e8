"""Schedules: every config against its transformers function, step by step, and under Lightning."""

import math

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

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.optim.schedules import build_scheduler, warmup_steps

CONF = CONF_DIR / "schedule"
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


@pytest.mark.parametrize(
    ("warmup", "total"), [(0, 1), (0, 40), (1, 1), (4, 40), (9, 96), (10, 10), (40, 40), (12, 10), (3, 7), (0, 0)]
)
def test_the_default_linear_schedule_is_transformers_own_at_every_step(warmup, total):
    """`linear_schedule_with_warmup` (ours: transformers' schedules would import peft, which
    tests/e2e/test_startup.py checks a default run does not) equals
    `transformers.get_linear_schedule_with_warmup` bit for bit: warmup 0, a warmup as long as the
    run or longer, a one-step run, the paper's RTE-1k (9 of 96), and steps past the end; and the
    scheduler's state, as a checkpoint keeps it, loads into the other's."""
    from bertlab.optim.schedules import linear_schedule_with_warmup

    ours, theirs = make_optimizer(), make_optimizer()
    mine, reference = (
        linear_schedule_with_warmup(ours, warmup, total),
        get_linear_schedule_with_warmup(theirs, warmup, total),
    )
    assert lrs_seen(ours, mine, total + 3) == lrs_seen(theirs, reference, total + 3)  # ==: the same floats
    assert mine.lr_lambdas[0].keywords == reference.lr_lambdas[0].keywords
    resumed = linear_schedule_with_warmup(make_optimizer(), warmup, total)
    resumed.load_state_dict(reference.state_dict())
    assert resumed.last_epoch == reference.last_epoch and resumed.get_last_lr() == reference.get_last_lr()


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


@pytest.mark.parametrize(
    "cfg, total, match",
    [
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
    ],
)
def test_invalid_configs_raise_config_error(cfg, total, match):
    with pytest.raises(ConfigError, match=match.replace(".", r"\.")) as err:
        build_scheduler(make_optimizer(), cfg, total)
    assert "valid" in str(err.value) or "use" in str(err.value)


class LrProbe:
    """The LR of every parameter group at each optimizer step, read just before the step."""

    def __init__(self):
        import lightning as L

        probe = self

        class Callback(L.Callback):
            def on_before_optimizer_step(self, trainer, module, optimizer):
                probe.seen.append([g["lr"] for g in optimizer.param_groups])
                probe.base = [g["initial_lr"] for g in optimizer.param_groups]

        self.seen, self.base, self.callback = [], None, Callback()


# schedule=constant has no warmup (asking for one is a config error, tested above)
WARMUPS = [
    (name, warmup)
    for name in sorted(REFERENCES)
    for warmup in ("ratio", "steps")
    if (name, warmup) != ("constant", "steps")
]


@pytest.mark.slow
@pytest.mark.parametrize("name,warmup", WARMUPS)
def test_every_schedule_through_the_lightning_module_with_gradient_accumulation(name, warmup, tiny_bert_dir, tmp_path):
    """The real FineTuner (configure_optimizers), 24 batches with accumulate 2 => 12 optimizer steps,
    LLRD groups: at every optimizer step each group's lr is its base lr times the transformers
    schedule's multiplier for that step, with the schedule spanning exactly the 12 steps."""
    import lightning as L

    from bertlab.data.datamodule import FewSampleDataModule
    from bertlab.data.readers import Example
    from bertlab.model.load import load_config, load_model
    from bertlab.training.finetuner import FineTuner

    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    if name != "constant":
        cfg.warmup_ratio, cfg.warmup_steps = (0.25, None) if warmup == "ratio" else (0.0, 2)
    optimizer_cfg = OmegaConf.create({"name": "adamw", "lr": 1e-3, "weight_decay": 0.01})
    tokenizer, model = load_model(str(tiny_bert_dir), load_config(str(tiny_bert_dir), 2, "classification"))
    examples = [Example(f"text number {i}", None, i % 2) for i in range(48)]
    data = FewSampleDataModule(
        {"train": examples, "val": examples[:4], "test": examples[:4]},
        tokenizer,
        max_length=16,
        regression=False,
        batch_size=2,
        eval_batch_size=4,
    )
    probe = LrProbe()
    trainer = L.Trainer(
        max_epochs=1,
        accumulate_grad_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        callbacks=[probe.callback],
    )
    trainer.fit(FineTuner(model, optimizer_cfg, cfg, ["accuracy"], "classification", llrd=0.5), datamodule=data)

    total, warm = 12, (3 if warmup == "ratio" else 2)  # ceil(0.25 * 12) = 3
    assert trainer.global_step == total and len(probe.seen) == total
    assert len(set(probe.base)) == 4  # head, layer_1, layer_0, embeddings: lr * 0.5^k
    reference = {
        "linear": lambda o: get_linear_schedule_with_warmup(o, warm, total),
        "constant": lambda o: get_constant_schedule(o),
        "constant_warmup": lambda o: get_constant_schedule_with_warmup(o, warm),
        "cosine": lambda o: get_cosine_schedule_with_warmup(o, warm, total, num_cycles=0.5),
        "cosine_restarts": lambda o: get_cosine_with_hard_restarts_schedule_with_warmup(o, warm, total, num_cycles=2),
        "polynomial": lambda o: get_polynomial_decay_schedule_with_warmup(o, warm, total, lr_end=1e-7, power=1.0),
    }[name]
    param = torch.nn.Parameter(torch.zeros(1))
    theirs = torch.optim.SGD([param], lr=1e-3)
    schedule = reference(theirs)
    for step, lrs in enumerate(probe.seen):
        multiplier = theirs.param_groups[0]["lr"] / 1e-3
        assert lrs == pytest.approx([base * multiplier for base in probe.base], rel=1e-12, abs=1e-15), (step, lrs)
        theirs.step()
        schedule.step()


def test_a_schedule_function_named_by_target_gets_the_warmup_it_takes():
    """Any function (optimizer, num_warmup_steps[, num_training_steps], **kwargs) is a schedule:
    here one without num_training_steps, and the config's other keys as its kwargs."""
    from transformers import get_inverse_sqrt_schedule

    cfg = {
        "_target_": "transformers.get_inverse_sqrt_schedule",
        "_partial_": True,
        "name": "inverse_sqrt",
        "warmup_ratio": 0.1,
        "timescale": 7,
    }
    ours, theirs = make_optimizer(), make_optimizer()
    seen = lrs_seen(ours, build_scheduler(ours, cfg, TOTAL), TOTAL)
    assert seen == lrs_seen(theirs, get_inverse_sqrt_schedule(theirs, 4, timescale=7), TOTAL)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"_target_": "transformers.get_nope_schedule"}, "schedule._target_='transformers.get_nope_schedule' cannot"),
        ({"timescal": 7}, "did you mean schedule.timescale?"),
        ({"num_warmup_steps": 3}, "schedule.num_warmup_steps=3 cannot be set"),
    ],
)
def test_a_bad_schedule_target_or_argument_is_one_config_error(change, fragment):
    cfg = {"_target_": "transformers.get_inverse_sqrt_schedule", "name": "inverse_sqrt", **change}
    with pytest.raises(ConfigError, match="valid|drop") as err:
        build_scheduler(make_optimizer(), cfg, TOTAL)
    assert fragment in str(err.value)
