"""Which accelerator and precision a run gets: `auto` and `gpu` resolved as Lightning resolves them,
and the precisions this machine's accelerator runs.

The one resolver: the config check (run/checks.py), the fine-tuning Trainer (TRAINER_RULES'
accelerator row, run/trainer.py), the pre-training stage's Trainer (pretrain/stage.py) and the
record's device (run/trainer.py accelerator) all call it, so `auto` is resolved the same way each
time. It sits in core/ because pre-training, below run/, builds a Trainer too.
"""

import importlib.util
import typing

from bertlab.core.errors import ConfigError


def accelerators_here() -> dict[str, type]:
    """Lightning's accelerators that this machine has, by name."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    here = {}
    for name in sorted(AcceleratorRegistry.available_accelerators()):
        cls = AcceleratorRegistry[name]["accelerator"]
        try:
            available = cls.is_available()
        except Exception:  # e.g. tpu without torch_xla: not here
            available = False
        if available:
            here[name] = cls
    return here


# Lightning's order for `accelerator=auto` (its private _select_auto_accelerator), built here from
# the accelerators' public is_available() so that a Lightning release that renames the private
# helper does not break the check; tests/e2e/test_trainer_settings_e2e.py compares the two.
AUTO_ORDER = ("tpu", "mps", "cuda")


def resolve_accelerator(value) -> str:
    """The accelerator Lightning will use for trainer.accelerator (`auto` and `gpu` resolved as
    Lightning resolves them), or a ConfigError when this machine does not have it.

    The one resolver: the check here, the fine-tuning Trainer (TRAINER_RULES' accelerator row,
    run/trainer.py), the pre-training stage's Trainer (pretrain/stage.py) and the record's device
    (run/trainer.py accelerator) all call it, so `auto` is resolved the same way each time. It lives
    here, not in run/, because the check runs first and config/ does not import run/'s Trainer code."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    here = accelerators_here()
    valid_here = ", ".join(["auto"] + (["gpu"] if {"cuda", "mps"} & set(here) else []) + list(here))
    known = {"auto", "gpu", *AcceleratorRegistry.available_accelerators()}
    if not isinstance(value, str) or value not in known:
        raise ConfigError(f"trainer.accelerator={value} is unknown; valid here: {valid_here}.")
    if value == "auto":
        return next((name for name in AUTO_ORDER if name in here), "cpu")
    resolved = next((n for n in ("cuda", "mps") if n in here), None) if value == "gpu" else value
    if resolved not in here:
        what = "GPU (CUDA or MPS)" if value == "gpu" else value
        raise ConfigError(
            f"trainer.accelerator={value}: this machine has no {what} that Lightning can use; valid here: {valid_here}."
        )
    return resolved


PRECISION_ALIASES = {
    16: "16-mixed",
    "16": "16-mixed",
    32: "32-true",
    "32": "32-true",
    64: "64-true",
    "64": "64-true",
    "bf16": "bf16-mixed",
}  # Lightning's legacy names


def precisions_here(accelerator: str) -> list[str]:
    """The precisions (Lightning's names) that run as asked on this accelerator of this machine."""
    # Private, kept: Lightning's own list of precision names (a Literal type); it has no public one,
    # and a copy here would go stale when a release adds a precision.
    from lightning.fabric.connector import _PRECISION_INPUT_STR

    valid = list(typing.get_args(_PRECISION_INPUT_STR))
    if accelerator != "cuda" or importlib.util.find_spec("transformer_engine") is None:
        valid = [p for p in valid if not p.startswith("transformer-engine")]
    if accelerator == "cpu":  # Lightning runs 16-mixed on a CPU as bf16-mixed, with a warning
        valid.remove("16-mixed")
    if accelerator == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            valid = [p for p in valid if not p.startswith("bf16")]
    if accelerator == "mps":  # no float64 on Apple GPUs
        valid.remove("64-true")
    return valid


def resolve_precision(configured) -> str:
    """What the Trainer gets for trainer.precision: `auto` is bf16 mixed precision on GPUs that
    support it, full precision elsewhere."""
    if configured != "auto":
        return configured
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"
