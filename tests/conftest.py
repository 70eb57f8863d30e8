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
    from bertlab.model.tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture
def shared_glue() -> Path:
    """The real GLUE RTE/MRPC files beside the repo; skipped (with a reason) where absent."""
    if not (SHARED_GLUE / "RTE" / "train.tsv").exists():
        pytest.skip(f"real GLUE data not found at {SHARED_GLUE}")
    return SHARED_GLUE


# Tiny random models of every supported encoder family (bertlab.model.tiny), saved once per session.
ENCODER_FAMILIES = ("bert", "roberta", "distilbert", "electra", "albert", "deberta-v2")


@pytest.fixture(scope="session")
def tiny_family_dirs(tmp_path_factory) -> dict[str, Path]:
    from bertlab.model.tiny import write_tiny

    root = tmp_path_factory.mktemp("tiny_families")
    return {family: write_tiny(family, root / family) for family in ENCODER_FAMILIES + ("gpt2",)}


@pytest.fixture(params=ENCODER_FAMILIES)
def tiny_family(request, tiny_family_dirs):
    """(family, a 2-label classifier of that family with its saved base weights)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    path = str(tiny_family_dirs[request.param])
    return request.param, AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
