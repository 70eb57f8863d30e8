"""init_seed and order_seed (Dodge et al. 2020), through the run's own fit step (run/fit.py
train_and_test) up to the moment training starts: init_seed alone decides the starting weights
(the new head, the re-initialised block), order_seed alone the batch order and the RNG that
dropout draws from; `seed` sets both; the config check and result.json's settings."""

import lightning as L
import pytest
import torch

from bertlab.core.errors import ConfigError
from bertlab.core.record import settings
from bertlab.run.checks import check_config
from bertlab.run.fit import Run, task_splits, train_and_test


class Started(Exception):
    """Raised by the stand-in for Trainer.fit: the state at the start of training is captured."""


@pytest.fixture
def at_start(monkeypatch, compose_train, tiny_bert_dir, tmp_path):
    """at_start(*overrides) -> what the run holds when Trainer.fit is called: the starting
    weights, the first epoch's training batches and the next draw of the global torch RNG."""

    def fake_fit(trainer, module, datamodule=None, ckpt_path=None):
        datamodule.setup("fit")
        batches = [batch["input_ids"].tolist() for batch in datamodule.train_dataloader()]
        weights = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
        raise Started({"weights": weights, "batches": batches, "rng": torch.rand(4).tolist()})

    monkeypatch.setattr(L.Trainer, "fit", fake_fit)

    def capture(*overrides: str) -> dict:
        cfg = compose_train(
            f"model.name_or_path={tiny_bert_dir}",
            "model.name=tiny",
            "debug=fast",
            "logger=none",
            "resume=false",
            "reinit=1",  # the top block re-initialised: init_seed's too
            "head=cls",  # a head of ours (heads/), new weights
            *overrides,
        )
        check_config(cfg)
        data = task_splits(cfg)
        with pytest.raises(Started) as started:
            train_and_test(cfg, data, Run(tmp_path / "_".join(overrides), "run"))
        return started.value.args[0]

    return capture


def same_weights(a: dict, b: dict, part: str) -> bool:
    keys = [k for k in a["weights"] if part in k]
    assert keys, part
    return all(torch.equal(a["weights"][k], b["weights"][k]) for k in keys)


NEW_HEAD = "classifier"  # head=cls's new layers
REINIT = "encoder.layer.1."  # the top block of the 2-layer tiny BERT, reinit=1
PRETRAINED = "encoder.layer.0."  # loaded as saved, whatever the seeds


def test_same_init_seed_other_order_seed_same_start_other_batches_and_dropout(at_start):
    a, b = at_start("init_seed=7", "order_seed=1"), at_start("init_seed=7", "order_seed=2")
    assert same_weights(a, b, NEW_HEAD) and same_weights(a, b, REINIT) and same_weights(a, b, PRETRAINED)
    assert sorted(map(str, a["batches"])) != [] and a["batches"] != b["batches"]
    assert a["rng"] != b["rng"]  # dropout's masks come from this generator


def test_other_init_seed_same_order_seed_other_start_same_batches_and_dropout(at_start):
    a, b = at_start("init_seed=7", "order_seed=1"), at_start("init_seed=8", "order_seed=1")
    assert not same_weights(a, b, NEW_HEAD) and not same_weights(a, b, REINIT)
    assert same_weights(a, b, PRETRAINED)
    assert a["batches"] == b["batches"]
    assert a["rng"] == b["rng"]


def test_seed_sets_both(at_start, compose_train):
    a, b = at_start("seed=3"), at_start("init_seed=3", "order_seed=3", "seed=9")
    assert same_weights(a, b, NEW_HEAD) and a["batches"] == b["batches"] and a["rng"] == b["rng"]
    cfg = compose_train("seed=5", "order_seed=6")
    assert (cfg.init_seed, cfg.order_seed) == (5, 6)
    assert {k: settings(cfg)[k] for k in ("seed", "init_seed", "order_seed")} == {
        "seed": 5,
        "init_seed": 5,
        "order_seed": 6,
    }


@pytest.mark.parametrize("key,value", [("init_seed", -1), ("order_seed", 2**32), ("init_seed", "x")])
def test_a_bad_seed_is_one_message_naming_the_key(compose_train, key, value):
    cfg = compose_train(f"{key}={value}")
    with pytest.raises(ConfigError, match=rf"^{key}={value} is invalid: it must be an integer from 0"):
        check_config(cfg)
