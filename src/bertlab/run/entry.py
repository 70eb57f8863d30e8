"""`python train.py` and `bertlab-train`: refuse unknown config keys first, then run the job.

The key check needs only Hydra; torch, Lightning and transformers take seconds to import, so
bertlab.run.app (which imports them) is imported only once the command line is known to be good.
"""

import sys

from bertlab.config.keys import check_command_line
from bertlab.core.paths import CONF_DIR


def main() -> float | None:
    # before Hydra composes: its own message for an unknown key suggests adding it with `+`
    check_command_line(sys.argv[1:], CONF_DIR)
    from bertlab.run.app import hydra_main

    return hydra_main()


if __name__ == "__main__":
    main()
