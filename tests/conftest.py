import os
from pathlib import Path

import pytest

# Tests never touch the network or a W&B account.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = REPO.parent / "shared" / "glue"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random BERT with the packaged uncased vocabulary, saved once per session."""
    from bertlab.tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture
def shared_glue() -> Path:
    """The real GLUE RTE/MRPC files beside the repo; skipped (with a reason) where absent."""
    if not (SHARED_GLUE / "RTE" / "train.tsv").exists():
        pytest.skip(f"real GLUE data not found at {SHARED_GLUE}")
    return SHARED_GLUE
