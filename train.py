"""`python train.py [overrides]`: see README.md. The work is done in src/bertlab/train.py."""

import sys
from pathlib import Path

# Works from a fresh checkout too, before `pip install -e .` has put bertlab on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from bertlab.entry import main  # noqa: E402

if __name__ == "__main__":
    main()
