"""`python train.py` and `bertlab-train`: refuse unknown config keys first, then run the job.

The key check needs only Hydra; torch, Lightning and transformers take seconds to import, so
bertlab.run.app (which imports them) is imported only once the command line is known to be good.
"""

import sys
from contextlib import contextmanager

from bertlab.config.keys import NOT_COMPOSED, check_command_line
from bertlab.core.paths import CONF_DIR


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
    # before Hydra composes: its own message for an unknown key suggests adding it with `+`
    mode = check_command_line(sys.argv[1:], CONF_DIR)
    from bertlab.run.app import hydra_main

    with hydra_mode_known(mode):
        return hydra_main()


if __name__ == "__main__":
    main()
