"""Download the models and GLUE tasks of a sweep for offline compute nodes; same as `bertlab prepare`.

python scripts/prepare.py --model bert-large-uncased --task rte mrpc stsb cola --out /shared/bertlab-cache
"""

import sys

from bertlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
