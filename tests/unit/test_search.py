"""The search's bookkeeping (bertlab/sweep/search.py): Hydra's sweep syntax to Optuna's
distributions, trial overrides that Hydra reads back to the same values, and the study's guard."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.sweep import search
from bertlab.sweep.folders import SEARCH_SWEEPER


def space(params: dict[str, str], *arguments: str) -> search.Space:
    return search.search_space(params, list(arguments), config_loader=None)


def test_hydra_sweep_syntax_maps_to_optuna_distributions_as_hydra_optuna_sweeper_does():
    got = space(
        {
            "optimizer.lr": "tag(log, interval(1e-5, 1e-4))",
            "schedule.warmup_ratio": "interval(0.0, 0.2)",
            "reinit": "range(0, 7)",
            "optimizer": "choice(adamw, bertadam)",
            "data.batch_size": "8,16",
        },
        "model=tiny",
    )
    assert got.params == {
        "optimizer.lr": FloatDistribution(1e-5, 1e-4, log=True),
        "schedule.warmup_ratio": FloatDistribution(0.0, 0.2),
        "reinit": IntDistribution(0, 6),  # range's end is excluded, as in Hydra's grid
        "optimizer": CategoricalDistribution(["adamw", "bertadam"]),
        "data.batch_size": CategoricalDistribution([8, 16]),
    }
    assert got.fixed == ["model=tiny"]


@pytest.mark.parametrize(
    ("params", "arguments"),
    [
        ({"task.data_seed": "13,21,42,87,100"}, []),  # what protocol=lmbff puts in the sweeper's params
        ({}, ["seed=range(5)"]),
        ({}, ["order_seed=0,1"]),
        ({}, ["init_seed=choice(0,1)"]),
    ],
)
def test_a_search_over_seeds_or_data_splits_is_refused(params, arguments):
    # a seed or a data split is a replicate, not a setting: the search would report its luckiest draw
    with pytest.raises(ConfigError, match="a lucky draw, not a setting"):
        space({"optimizer.lr": "interval(1e-5, 1e-4)", **params}, *arguments)
    assert space({"optimizer.lr": "interval(1e-5, 1e-4)"}, "seed=3").fixed == ["seed=3"]  # one seed is fine


def test_the_command_line_replaces_a_preset_param():
    got = space({"optimizer.lr": "interval(1e-5, 1e-4)", "reinit": "range(0, 7)"}, "reinit=2", "optimizer.lr=0.1,0.2")
    assert got.params == {"optimizer.lr": CategoricalDistribution([0.1, 0.2])}
    assert got.fixed == ["reinit=2"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "nothing to search"),
        ({"optimizer.lr": "tag(log, interval(0, 1e-4))"}, "a log scale needs a start > 0"),
        ({"optimizer.lr": "interval(1e-4, 1e-5)"}, "the interval is empty"),
    ],
)
def test_a_bad_space_is_one_message(params, message):
    with pytest.raises(ConfigError, match=message):
        space(params)


@pytest.mark.parametrize("value", [3.1622776601683795e-05, 1e-05, 0.1, 7, True, False, None, "adamw"])
def test_a_trial_value_reads_back_the_same_through_hydras_parser(value):
    override = search.as_override("x", value)
    parsed = OverridesParser.create().parse_override(override).value()
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("maximise", 3, 1), "hydra.sweeper.direction=maximise: use maximize or minimize"),
        (("maximize", 0, 1), "hydra.sweeper.n_trials=0: needs an integer >= 1"),
        (("maximize", 3, 1.5), "hydra.sweeper.n_jobs=1.5: needs an integer >= 1"),
    ],
)
def test_bad_settings_are_one_message(args, message):
    with pytest.raises(ConfigError, match=message):
        search.check_settings(*args)


def test_a_study_resumes_only_for_the_same_search(tmp_path):
    lr = space({"optimizer.lr": "interval(1e-5, 1e-4)"}, "model=tiny")
    study = search.open_study(tmp_path, None, "s", lr, "maximize", None)
    study.tell(study.ask(lr.params), 0.5)
    again = search.open_study(tmp_path, None, "s", lr, "maximize", None)
    assert len(again.trials) == 1 and (tmp_path / search.DB_FILE).is_file()
    other = space({"optimizer.lr": "interval(1e-5, 1e-3)"}, "model=tiny")
    with pytest.raises(ConfigError, match="holds the study 's' of another search \\(its params differ"):
        search.open_study(tmp_path, None, "s", other, "maximize", None)
    with pytest.raises(ConfigError, match="its direction differ"):
        search.open_study(tmp_path, None, "s", lr, "minimize", None)


def test_a_folder_of_job_folders_without_the_study_is_refused(tmp_path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "result.json").write_text('{"status": "ok", "overrides": ["seed=0"]}')
    with pytest.raises(ConfigError, match="holds 1 job folders but no study 's'"):
        search.open_study(tmp_path, None, "s", space({"reinit": "0,1"}), "maximize", None)
    assert not (tmp_path / search.DB_FILE).exists()


def test_trial_value_is_the_returned_metric_only_for_an_ok_run(tmp_path):
    (tmp_path / "result.json").write_text('{"status": "ok"}')
    assert search.trial_value(0.75, tmp_path) == (0.75, "ok")
    assert search.trial_value(float("nan"), tmp_path)[0] is None
    (tmp_path / "result.json").write_text('{"status": "diverged"}')
    assert search.trial_value(None, tmp_path) == (None, "diverged")
    assert search.trial_value(None, tmp_path / "absent") == (None, "no result.json")


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml")))
def test_every_preset_searches_keys_the_config_has(preset, compose_train):
    cfg = compose_train(f"hparams_search={preset}", hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == SEARCH_SWEEPER and cfg.hydra.mode.name == "MULTIRUN"
    found = space(dict(sweeper.params))  # every value in Hydra's sweep syntax
    for key in found.params:
        assert OmegaConf.select(cfg, key) is not None, f"{preset}: {key} is no key of the config"
    search.check_settings(sweeper.direction, sweeper.n_trials, sweeper.n_jobs)


def test_the_rte_preset_searches_lr_warmup_and_reinit_on_rte(compose_train):
    cfg = compose_train("hparams_search=rte_lr_warmup_reinit", hydra=True)
    assert cfg.task.name == "rte"
    assert space(dict(cfg.hydra.sweeper.params)).params == {
        "optimizer.lr": FloatDistribution(1e-5, 1e-4, log=True),
        "schedule.warmup_ratio": FloatDistribution(0.0, 0.2),
        "reinit": IntDistribution(0, 6),
    }


def test_a_searched_key_the_config_lacks_is_one_message_before_any_trial(compose_train):
    cfg = compose_train("hparams_search=lr_warmup")
    search.check_keys(space({"optimizer.lr": "interval(0.1, 0.2)", "schedule.warmup_steps": "0,10"}), cfg)
    with pytest.raises(ConfigError, match="optimizer.lrr: no such config key"):
        search.check_keys(space({"optimizer.lrr": "interval(0.1, 0.2)"}), cfg)
    assert search.lowest(
        space({"optimizer.lr": "interval(0.1, 0.2)", "reinit": "range(2, 5)", "data.batch_size": "16,8"})
    ) == {
        "optimizer.lr": 0.1,
        "reinit": 2,
        "data.batch_size": 16,
    }
