import logging
import os
from pathlib import Path

import pytest

from bertlab.core.hydra_speed import speed_up_hydra
from tests.helpers.families import ENCODER_FAMILIES

# the tests compose as a run does (a run installs it in its key check, before its first composition)
speed_up_hydra()

# Tests never touch the network or a W&B account.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# Under pytest-xdist (`make test` runs `-n auto`), each worker and every run it starts gets its share
# of the cores: torch's default of one thread per core in each of N workers would oversubscribe the
# machine N times over, and a thread pool that waits for its siblings is slower than one thread.
# Set before torch is imported (the variables are read when its thread pool starts); a subprocess
# inherits them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(_share))

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = REPO.parent / "shared" / "glue"


@pytest.fixture
def said(caplog):
    """The run's console lines (bertlab.core.lines.say: Python logging) said so far in this test,
    one per line: `said()`."""
    caplog.set_level(logging.INFO, logger="bertlab")

    def lines() -> str:
        text = "\n".join(r.getMessage() for r in caplog.records if r.name == "bertlab")
        caplog.clear()
        return text

    return lines


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random BERT with the packaged uncased vocabulary, saved once per session."""
    from bertlab.model.tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture
def tiny(tiny_bert_dir) -> list[str]:
    """Command-line overrides for a seconds-long `python train.py` run on the session's tiny random
    BERT: debug sizes, the local CSV log. The lr stays the default model's (`model=tiny`, as in
    e2e.TINY, would also set its own lr)."""
    return [f"model.name_or_path={tiny_bert_dir}", "model.name=tiny", "debug=fast"]


@pytest.fixture(scope="session")
def compose_train():
    """compose_train(*overrides, hydra=False): the config `python train.py <overrides>` runs, composed
    in-process from the packaged conf/train.yaml; hydra=True keeps the `hydra` node (launcher, sweep
    folder), which a plain compose drops."""
    from hydra import compose, initialize_config_dir

    from bertlab.core.paths import CONF_DIR

    def compose_train(*overrides: str, hydra: bool = False):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=hydra)

    return compose_train


@pytest.fixture
def shared_glue() -> Path:
    """The real GLUE RTE/MRPC files beside the repo; skipped (with a reason) where absent."""
    if not (SHARED_GLUE / "RTE" / "train.tsv").exists():
        pytest.skip(f"real GLUE data not found at {SHARED_GLUE}")
    return SHARED_GLUE


# Tiny random models of every supported encoder family (bertlab.model.tiny), saved once per session.


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


def pytest_collection_modifyitems(config, items):
    """The tests marked long (40 s or more each) first, then the other end-to-end tests (marked
    slow: seconds each), the unit tests last (milliseconds). With the tests shared among workers
    (`-n`, `--dist worksteal`: each worker starts on its own part of this order, and one that runs
    out takes the end of another's), a long test started late keeps one worker busy while the
    others idle: before this order, the 25-point kill test (about 160 s) often ran alone at the end.
    A stable sort: within each kind the files keep their order."""
    items.sort(key=lambda item: (item.get_closest_marker("long") is None, item.get_closest_marker("slow") is None))


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """Collecting imports torch, Lightning and transformers (the test modules import them): with
    Python's garbage collector paused meanwhile and what they made frozen after, as a run does
    (bertlab.core.gc_pause), collection takes about 1 s less per worker, and each later full
    collection walks only what the tests make, not the libraries' 800,000 objects."""
    from bertlab.core.gc_pause import collector_paused

    with collector_paused():
        return (yield)
