"""Trainer settings Lightning would reject late or silently reinterpret are config errors through
`python train.py`, before the model loads: one message with the key, the value and what is valid
on this machine. The machine-dependent rules are also tested with a GPU faked in-process."""

import pytest
import torch
from omegaconf import OmegaConf

from bertlab.core import devices
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.run import checks
from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message
from tests.helpers.e2e import TINY
from tests.helpers.inprocess import run_train

NO_GPU = not torch.cuda.is_available()

TRAINER_CASES = {
    # overrides: fragments of the one message
    "clip_negative": (
        ["trainer.gradient_clip_val=-1"],
        ["trainer.gradient_clip_val=-1 is invalid", "0 or null = no clipping"],
    ),
    "accumulate_zero": (
        ["trainer.accumulate_grad_batches=0"],
        ["trainer.accumulate_grad_batches=0 is invalid", ">= 1"],
    ),
    "precision_unknown": (
        ["trainer.precision=8"],
        ["trainer.precision=8 is unknown to Lightning", "valid here: auto, "],
    ),
    "seed_beyond_numpy": (["seed=4294967296"], ["seed=4294967296 is invalid", "2**32 - 1 = 4294967295"]),
    "limit_val_zero": (
        ["trainer.limit_val_batches=0"],
        ["trainer.limit_val_batches=0 is invalid", "fraction in (0, 1]"],
    ),
    "limit_test_above_one": (["trainer.limit_test_batches=1.5"], ["trainer.limit_test_batches=1.5 is invalid"]),
    "log_every_zero": (["trainer.log_every_n_steps=0"], ["trainer.log_every_n_steps=0 is invalid", ">= 1"]),
    "diagnostics_every_zero": (
        ["trainer.diagnostics_every_n_steps=0"],
        ["trainer.diagnostics_every_n_steps=0 is invalid"],
    ),
    "num_evals_zero": (["trainer.num_evals=0"], ["trainer.num_evals=0 is invalid"]),
    "deterministic_string": (
        ["trainer.deterministic=yes"],
        ["trainer.deterministic=yes is invalid; valid: true, false, warn."],
    ),
    "compile_unknown_backend": (["trainer.compile=nosuch"], ["trainer.compile=nosuch is invalid", "inductor"]),
    "max_steps_fraction": (["trainer.max_steps=1.5"], ["trainer.max_steps=1.5 is invalid", "integer >= 1"]),
    "progress_bar_string": (["trainer.enable_progress_bar=maybe"], ["trainer.enable_progress_bar=maybe is invalid"]),
    "accelerator_unknown": (["trainer.accelerator=gpus"], ["trainer.accelerator=gpus is unknown", "valid here: auto"]),
    "devices_beyond": (["trainer.devices=1000"], ["trainer.devices=1000 is invalid", "this machine has"]),
    # DDP over two CPU processes (issue 27): refused, not run on duplicated shards
    "devices_two_cpu": (
        ["trainer.accelerator=cpu", "trainer.devices=2"],
        ["trainer.devices=2 means 2 processes: a run trains on one device", "trainer.devices=1"],
    ),
}
if NO_GPU:  # what this machine lacks
    TRAINER_CASES |= {
        "accelerator_gpu": (
            ["trainer.accelerator=gpu"],
            ["trainer.accelerator=gpu: this machine has no GPU", "valid here: auto, cpu."],
        ),
        "accelerator_mps": (["trainer.accelerator=mps"], ["trainer.accelerator=mps: this machine has no mps"]),
        "accelerator_tpu": (["trainer.accelerator=tpu"], ["trainer.accelerator=tpu: this machine has no tpu"]),
        "fp16_mixed_on_cpu": (
            ["trainer.precision=16-mixed"],
            ["trainer.precision=16-mixed is not supported on a CPU", "silently train in bf16-mixed"],
        ),
    }


# through `python train.py` (seconds each): one case of each kind of rule; every case in-process below
E2E_CASES = ["clip_negative", "seed_beyond_numpy", "precision_unknown", "devices_beyond", "devices_two_cpu"] + (
    ["fp16_mixed_on_cpu"] if NO_GPU else []
)


@pytest.mark.parametrize("case", sorted(TRAINER_CASES))
def test_every_bad_trainer_setting_fails_the_config_check(case, compose_train):
    from bertlab.run.checks import check_config

    overrides, fragments = TRAINER_CASES[case]
    cfg = compose_train(*TINY, *overrides)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


@pytest.mark.slow
@pytest.mark.parametrize("case", E2E_CASES)
def test_bad_trainer_setting_is_one_clear_message_before_the_model_loads(tmp_path, case):
    overrides, fragments = TRAINER_CASES[case]
    # the model does not exist either: the trainer setting must be what is reported
    proc = run_train(*TINY, *overrides, "model.name_or_path=/nonexistent/model", f"hydra.run.dir={tmp_path}")
    assert_one_clear_message(proc, *fragments)
    assert "nonexistent" not in proc.stderr
    assert_nothing_half_written(tmp_path)


def test_every_trainer_key_has_a_rule():
    keys = set(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml"))
    assert keys == set(checks.TRAINER_RULES) | set(checks.MACHINE_KEYS)


def trainer_cfg(**trainer):
    base = OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")
    return OmegaConf.create({"trainer": OmegaConf.merge(base, trainer)})


class FakeCuda:
    """A CUDA accelerator with `count` devices (for the rules only; nothing runs on it)."""

    count = 2

    @classmethod
    def auto_device_count(cls):
        return cls.count


@pytest.fixture
def fake_gpu(monkeypatch):
    from lightning.pytorch.accelerators import CPUAccelerator

    monkeypatch.setattr(devices, "accelerators_here", lambda: {"cpu": CPUAccelerator, "cuda": FakeCuda})
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)


@pytest.mark.parametrize(
    "trainer, fragment",
    [
        (
            {"accelerator": "gpu", "precision": "bf16-mixed"},
            "trainer.precision=bf16-mixed is not available on this machine's cuda",
        ),
        ({"accelerator": "cuda", "precision": "bf16-true"}, "trainer.precision=bf16-true is not available"),
        (
            {"accelerator": "gpu", "devices": 3},
            "trainer.devices=3 is invalid on trainer.accelerator=cuda: this machine has 2",
        ),
        (
            {"accelerator": "gpu", "devices": [0, 2]},
            "trainer.devices=[0, 2] is invalid: this machine has 2 cuda devices",
        ),
    ],
)
def test_gpu_rules_with_a_gpu_that_lacks_bf16(fake_gpu, trainer, fragment):
    with pytest.raises(ConfigError) as err:
        checks.check_trainer(trainer_cfg(**trainer))
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "trainer",
    [
        {"accelerator": "gpu", "precision": "16-mixed"},
        {"accelerator": "cuda", "devices": [1]},
        {"accelerator": "gpu", "devices": 1},
    ],
)
def test_gpu_settings_the_gpu_has_pass(fake_gpu, trainer):
    checks.check_trainer(trainer_cfg(**trainer))


@pytest.mark.parametrize(
    "trainer, processes",
    [
        ({"accelerator": "cuda", "devices": [1, 0]}, 2),
        ({"accelerator": "gpu", "devices": -1}, 2),
        ({"accelerator": "gpu", "devices": "auto"}, 2),
        ({"accelerator": "gpu", "devices": 2}, 2),
    ],
)
def test_several_gpus_are_refused_with_one_message(fake_gpu, trainer, processes):
    """DDP would score padded, duplicated shards and write result.json once per process (issue 27)."""
    with pytest.raises(ConfigError) as err:
        checks.check_trainer(trainer_cfg(**trainer))
    message = str(err.value)
    assert f"trainer.devices={trainer['devices']} means {processes} processes" in message
    assert "DistributedSampler" in message and "hydra/launcher=gpus" in message


@pytest.mark.parametrize("devices", [2, -1])
def test_several_cpu_processes_are_refused(devices, monkeypatch):
    monkeypatch.setattr(checks.os, "cpu_count", lambda: 2)
    with pytest.raises(ConfigError, match=f"trainer.devices={devices} means 2 processes: a run trains on one device"):
        checks.check_trainer(trainer_cfg(accelerator="cpu", devices=devices))


def test_auto_accelerator_is_lightnings_choice():
    """Our public-API resolution of `auto` agrees with Lightning's own (private) rule on this machine."""
    from lightning.pytorch.trainer.connectors.accelerator_connector import _AcceleratorConnector

    assert devices.resolve_accelerator("auto") == _AcceleratorConnector._choose_auto_accelerator()
