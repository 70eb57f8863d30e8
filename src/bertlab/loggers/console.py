"""What a run prints: the resolved config, the run folder and device, a line per validation.

The lines go through Python logging on rank zero (core/lines.py `say`), so the run's log file
(`<run_dir>/app.log`) holds what the console showed.

The console is for the researcher: the config the run used, where its files go, how it is
going. The libraries' own chatter (Lightning's tips and settings echo, W&B's banners, a known
deprecation inside Lightning) is silenced at its source, each by name, so that their genuine
warnings and errors still show. The classifier head line is load_model's (model/load.py).
"""

import logging
import os
import warnings

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from omegaconf import DictConfig, OmegaConf

from bertlab.core.lines import say

# Lightning's informational lines all go through this logger (rank_zero_info): the device
# report ("GPU available: ...", "TPU available: ..."), the litlogger tip, the echo of settings we
# passed ("`Trainer(limit_val_batches=1.0)` was configured so ..."), "`Trainer.fit` stopped".
# Its warnings do not: they are Python warnings (rank_zero_warn), and stay visible.
LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")

# (message regex, category, module regex): each a known warning that is not the user's to act on.
KNOWN_WARNINGS = (
    # Lightning 2.6 builds torch's LeafSpec, deprecated in torch 2.10; Lightning's to fix, not ours
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
)

# The config tree's order: what a run is about first; the top-level scalars (seed, reinit, ...) last.
CONFIG_ORDER = ("task", "model", "head", "optimizer", "schedule", "trainer", "data", "logger")


def quiet_libraries() -> None:
    """Silence the known library noise by name; everything else (warnings, errors) still shows.

    Called once per job (the launchers may run jobs in fresh processes); repeating it is harmless.
    """
    for name in LIGHTNING_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def wandb_settings(mode: str) -> dict:
    """wandb.Settings for the run: no version banner, history or summary table (quiet); offline,
    nothing at all (silent), since our own `W&B:` line already says where the run is and how to
    sync it. Online keeps W&B's run URL. W&B's own warnings and errors show either way."""
    return {"quiet": True, "silent": mode != "online"}


def print_config(cfg: DictConfig, accelerator: str) -> None:
    """The resolved config as a tree, then the run folder and the device (`accelerator`: what the
    Trainer runs on, run/trainer.py): once, at the start.

    In a multirun only the first job prints the tree (Hydra prints each job's overrides); every
    job prints its folder. Never raises: a key that cannot be resolved is shown unresolved, and
    check_config then reports it.
    """
    from hydra.core.hydra_config import HydraConfig

    run_dir, first_job = None, True
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        run_dir = hydra_cfg.runtime.output_dir
        first_job = hydra_cfg.job.get("num") in (None, 0)
    if first_job:
        from rich.console import Console

        # rendered to text (a path stays one string to copy: no 80-column wrap), then logged like
        # every other line, so the log file holds the config too (without the terminal's colours)
        console = Console(width=10_000, color_system=None)
        with console.capture() as tree:
            console.print(config_tree(cfg))
        say("\n".join(line.rstrip() for line in tree.get().splitlines()))
    if run_dir is not None:
        say(f"run folder: {run_dir}")
    say(f"device: {device(accelerator)}")


def config_tree(cfg: DictConfig):
    """A Rich tree: one branch per config group, its YAML inside (lightning-hydra-template's
    print_config_tree); the top-level scalars together in one branch. The YAML is plain Text, not
    the template's highlighted Syntax: print_config renders without colours (the lines go to the
    log), and highlighting them anyway took half of the print's 0.05 s of every run's start-up."""
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree("config", style="dim", guide_style="dim")
    groups = [k for k in CONFIG_ORDER if k in cfg] + [k for k in cfg if isinstance(cfg.get(k), DictConfig)]
    groups = list(dict.fromkeys(groups))
    scalars = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in groups])
    for label, node in [*((k, cfg[k]) for k in groups), ("top level", scalars)]:
        branch = tree.add(label, style="dim", guide_style="dim")
        branch.add(Text(_yaml(node).rstrip()))  # a long path (task.data_dir) wraps, not cut at the width
    return tree


def _yaml(node: DictConfig) -> str:
    """One key per line, a list on one line (`labels: [business, tech]`): a shorter tree."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    try:
        plain = OmegaConf.to_container(node, resolve=True)
    except Exception:  # e.g. an interpolation to a `???` key: shown as written, check_config names it
        plain = OmegaConf.to_container(node, resolve=False)
    return yaml.dump(plain, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=10_000)


def device(accelerator: str) -> str:
    """The device line (Lightning's "GPU available / TPU available" pair is silenced): a GPU run
    names the first visible GPU."""
    import torch

    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
        return f"cuda ({torch.cuda.get_device_name(0)}{where})"
    return accelerator


class ValidationLines(L.Callback):
    """One line per validation: the step, the validation metrics, and whether they are the best
    so far (KeepBestWeights', which runs before this callback, is the one that counts)."""

    def __init__(self, best):
        self.best = best

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        best = "  (best so far)" if self.best.best_step == trainer.global_step else ""
        say(f"validation at step {trainer.global_step}/{trainer.estimated_stepping_batches}: {shown}{best}")


class StepProgressBar(RichProgressBar):
    """Lightning's Rich bar without what does not apply here: "Epoch 1/-2" when the run is
    counted in steps (max_epochs=-1), and the logger's version id (`v_num`) beside the metrics."""

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs < 0:
            return f"Epoch {current_epoch}"
        return super()._get_train_description(current_epoch)

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict:
        items = super().get_metrics(trainer, module)
        items.pop("v_num", None)
        return items


def console_callbacks(best, progress_bar: bool) -> list[L.Callback]:
    """conf/callbacks/default.yaml's `console` entry: a line per validation (after keep-best: it says
    "best so far"), and the progress bar only when `progress_bar` (trainer.enable_progress_bar:
    Lightning refuses a progress bar callback otherwise)."""
    callbacks: list[L.Callback] = [ValidationLines(best)]
    if progress_bar:
        callbacks.append(StepProgressBar())
    return callbacks
