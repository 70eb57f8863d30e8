"""`python train.py` and `bertlab-train`: refuse unknown config keys first, then run the job.

The key check needs only Hydra; torch, Lightning and transformers take seconds to import, so
bertlab.run.app (which imports them) is imported only once the command line is known to be good.
What the check composed saves start-up after it (docs/speed.md): Hydra is handed its mode, and a
run that logs to W&B imports W&B before the heavy libraries.
"""

import os
import sys
from contextlib import contextmanager

from bertlab.config.keys import NOT_COMPOSED, check_command_line
from bertlab.core.gc_pause import collector_paused
from bertlab.core.paths import CONF_DIR

# wandb.init imports this module (Run._detect_and_apply_job_inputs, every run); see import_wandb_first
WANDB_INIT_IMPORTS = "wandb.sdk.launch.inputs.internal"


def logs_to_wandb(composition) -> bool:
    """Whether the run will start a W&B run, as far as the check's composition tells: a `logger.wandb`
    entry of bertlab's (conf/logger/wandb.yaml), not disabled (its mode, else WANDB_MODE), and no
    `logger.*` key override (the composition lacks those: when one is given, nothing is imported early)."""
    if composition is NOT_COMPOSED or any(k == "logger" or k.startswith("logger.") for k in composition.key_overrides):
        return False
    wandb = (composition.config.get("logger") or {}).get("wandb")
    if not isinstance(wandb, dict) or wandb.get("_target_") != "bertlab.loggers.build.wandb_logger":
        return False
    return (wandb.get("mode") or os.environ.get("WANDB_MODE")) != "disabled"


def import_wandb_first(composition) -> None:
    """A W&B run imports WANDB_INIT_IMPORTS before torch, Lightning and transformers.

    Its pydantic models read their attribute docstrings through inspect.getmodule, which walks
    sys.modules once per class: after the ~4,000 modules of torch, Lightning and transformers,
    that import took 1.0 s of CPU inside wandb.init, before them 0.17 s (2-core CPU, 2026-12-07).
    The order changes nothing else: the run imports wandb anyway. A wandb that moved the module
    is imported later, as before.
    """
    if logs_to_wandb(composition):
        try:
            __import__(WANDB_INIT_IMPORTS)
        except ImportError:
            pass


@contextmanager
def hydra_mode_known(mode):
    """Hand Hydra the `hydra.mode` the key check has just composed, while the app runs.

    Before it composes the config to run, @hydra.main composes the whole config once more only to
    read `hydra.mode` (Hydra.get_mode, which answers None when that composition fails): 0.1 s of
    CPU per job on 2 cores, a third of the composing (docs/speed.md). The key check's composition
    gives the same answer: only a config file or a `hydra.mode=` override sets the mode, and the
    check composes with both. Private, kept: Hydra 1.3 has no public way to pass the mode;
    tests/test_startup_compose.py checks that the run composes twice and that the mode is Hydra's.
    """
    if mode is NOT_COMPOSED:  # no composition to reuse: Hydra reads the mode itself
        yield
        return
    from hydra._internal.hydra import Hydra

    own = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: mode
    try:
        yield
    finally:
        Hydra.get_mode = own


def main() -> float | None:
    with collector_paused():  # the imports' garbage collection, about 1 s on 2 cores (core/gc_pause.py)
        # before Hydra composes: its own message for an unknown key suggests adding it with `+`
        composition = check_command_line(sys.argv[1:], CONF_DIR)
        import_wandb_first(composition)
        from bertlab.run.app import hydra_main

    with hydra_mode_known(NOT_COMPOSED if composition is NOT_COMPOSED else composition.mode):
        return hydra_main()


if __name__ == "__main__":
    main()
