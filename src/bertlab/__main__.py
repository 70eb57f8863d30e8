"""`python -m bertlab ...` = the `bertlab` command (cli.py)."""

import sys

from bertlab.cli import main

sys.exit(main())
