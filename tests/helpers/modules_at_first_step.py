"""`python tests/helpers/modules_at_first_step.py OUT [train.py arguments]`: `python train.py [arguments]`,
except that at the first training batch it writes to OUT (JSON) the names in `sys.modules` and the
garbage collector's state, and exits (code 0): what a run has imported by the time it trains, and
whether the collector is on again with the imports frozen (tests/e2e/test_startup.py).

The hook sits on TrainThroughput, which records the first training batch (`startup_s`); importing
it first changes no module's presence, only the order of the imports.
"""

import gc
import json
import os
import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[2:]
    from bertlab.callbacks.throughput import TrainThroughput

    def on_train_batch_start(self, *_):
        collector = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
        out.write_text(json.dumps({"modules": sorted(sys.modules), "collector": collector}))
        os._exit(0)  # nothing after the first step matters here

    TrainThroughput.on_train_batch_start = on_train_batch_start
    sys.argv = [str(REPO / "train.py"), *args]
    runpy.run_path(str(REPO / "train.py"), run_name="__main__")


if __name__ == "__main__":
    main()
