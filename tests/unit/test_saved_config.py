"""A run saved by an older bertlab: `bertlab evaluate` / `predict` read its bertlab.yaml, which lacks
the keys added since; each gets the value that leaves the run as it was (run/saved_run.py)."""

import pytest
from omegaconf import OmegaConf, open_dict

from bertlab.core.errors import ConfigError
from bertlab.run.checks import check_config
from bertlab.run.evaluate import without_training_stages
from bertlab.run.saved_run import SAVED_CONFIG, load_saved_config


def _saved(compose_train, folder, *overrides, drop=()):
    cfg = compose_train("model=tiny", "debug=fast", "seed=7", *overrides)
    with open_dict(cfg):
        for key in drop:
            group, _, name = key.rpartition(".")
            del (cfg[group] if group else cfg)[name]
    OmegaConf.save(cfg, folder / SAVED_CONFIG, resolve=True)
    return folder


def test_an_older_runs_config_gets_the_keys_added_since_at_their_off_values(compose_train, tmp_path):
    added = ("task.k_shot", "trainer.gradient_checkpointing", "init_seed", "order_seed")
    cfg = load_saved_config(_saved(compose_train, tmp_path, drop=added))
    assert cfg.task.k_shot is None and cfg.trainer.gradient_checkpointing is False
    assert (cfg.init_seed, cfg.order_seed) == (7, 7)  # `seed` stood for both
    check_config(without_training_stages(cfg))  # train.py's checks pass, as they did for the run


def test_a_saved_value_is_never_replaced(compose_train, tmp_path):
    folder = _saved(compose_train, tmp_path, "task.k_shot=4", "init_seed=3", "trainer.gradient_checkpointing=true")
    cfg = load_saved_config(folder)
    assert (cfg.task.k_shot, cfg.init_seed, cfg.order_seed, cfg.trainer.gradient_checkpointing) == (4, 3, 7, True)


def test_a_key_added_with_a_real_default_is_still_named_by_the_check(compose_train, tmp_path):
    # trainer.max_epochs is on (a number) in the packaged trainer: the old run's value is unknown
    cfg = load_saved_config(_saved(compose_train, tmp_path, drop=("trainer.max_epochs",)))
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs not set"):
        check_config(without_training_stages(cfg))
