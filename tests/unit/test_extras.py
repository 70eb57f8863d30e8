"""Options whose packages are an extra (core/extras.py): with the extra missing (its module hidden
in-process), choosing the option stops before any work with one message naming the pip command;
the table agrees with pyproject.toml's extras."""

import re
import sys

import pytest
from omegaconf import OmegaConf

from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.extras import EXTRAS, HUB_TASK, check_extras, require
from bertlab.core.paths import CONF_DIR
from tests.helpers.e2e import REPO, TINY


def hide(monkeypatch, *modules: str) -> None:
    """As if the packages were not installed: an import (and find_spec) of a module set to None fails.

    Hydra scans its plugins once per process, at the first composition, and registers their configs
    (hydra/launcher/submitit_slurm, ...) then: scanned while submitit is hidden, this worker's later
    tests would never see them. So the scan happens first, with everything installed."""
    from hydra.core.plugins import Plugins

    Plugins.instance()
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def pip_command(extra: str) -> str:
    return f'pip install "bertlab[{extra}]"'


@pytest.mark.parametrize(
    "overrides, hidden, option, extra",
    [
        (["logger=tensorboard"], "tensorboard", "logger=tensorboard", "loggers"),
        (["-m", "logger=csv,mlflow"], "mlflow", "logger=mlflow", "loggers"),
        (["logger=many", "~logger.tensorboard"], "mlflow", "logger=mlflow", "loggers"),
        (["hparams_search=lr_warmup"], "optuna", "hparams_search=lr_warmup", "search"),
        (["hydra/launcher=gpus"], "ray", "hydra/launcher=gpus", "sweeps"),
        (["hydra/launcher=slurm"], "submitit", "hydra/launcher=slurm", "sweeps"),
    ],
)
def test_an_option_without_its_extra_is_one_message_naming_pip(monkeypatch, overrides, hidden, option, extra):
    hide(monkeypatch, hidden)
    arguments = [o for o in overrides if o != "-m"]
    with pytest.raises(ConfigError) as err:
        check_overrides([*TINY, *arguments], CONF_DIR)
    message = str(err.value)
    assert message.startswith(f"{option} needs bertlab's `{extra}` extra ({hidden} not installed)"), message
    assert pip_command(extra) in message


def test_the_command_line_without_such_options_needs_no_extra(monkeypatch):
    hide(monkeypatch, *(m for _, modules in EXTRAS.values() for m in modules))
    check_overrides([*TINY, "logger=csv", "augment=eda_offline"], CONF_DIR)


def test_train_py_stops_before_hydra_with_one_line(monkeypatch, capsys, tmp_path):
    """Through the entry point (train.py's main): exit 1, one line, no run folder."""
    from bertlab.run import entry

    hide(monkeypatch, "tensorboard")
    monkeypatch.setattr(sys, "argv", ["train.py", *TINY, "logger=tensorboard", f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and pip_command("loggers") in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_logger_of_a_config_file_is_checked_in_the_job_too(monkeypatch):
    """A logger chosen by a config of the user's own (not the command line): check_config's logger check."""
    from bertlab.loggers.choice import check_logger

    hide(monkeypatch, "tensorboard")
    logger = OmegaConf.load(CONF_DIR / "logger" / "tensorboard.yaml")
    with pytest.raises(ConfigError, match="logger=tensorboard needs bertlab's `loggers` extra"):
        check_logger(logger)


def test_a_hub_task_without_datasets_says_which_extra(monkeypatch):
    from bertlab.data.hub import load_hub

    hide(monkeypatch, "datasets")
    task = OmegaConf.create({"name": "rte", "hub_name": "nyu-mll/glue", "hub_config": "rte"})
    with pytest.raises(ConfigError, match=r"Hugging Face hub \(task.data_dir unset\) needs bertlab's `hub` extra"):
        load_hub(task, "a GLUE folder")


def test_eda_with_wordnet_and_prepare_name_the_augment_extra(monkeypatch, tmp_path):
    from bertlab.data.synonyms import WordNetSynonyms, download_wordnet

    hide(monkeypatch, "nltk")
    with pytest.raises(ConfigError, match=r"augment.wordnet_dir needs bertlab's `augment` extra \(nltk"):
        WordNetSynonyms(tmp_path)
    with pytest.raises(ConfigError, match=r"bertlab prepare --wordnet needs bertlab's `augment` extra"):
        download_wordnet(tmp_path)
    hide(monkeypatch, "sacremoses")
    with pytest.raises(ConfigError, match=r"--backtranslate needs bertlab's `augment` extra \(sacremoses"):
        require("bertlab prepare --backtranslate")


def test_the_table_names_extras_pyproject_has_and_all_holds_them():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    named = {extra for extra, _ in EXTRAS.values()}
    assert named <= set(extras)
    assert extras["all"] == [f"bertlab[{','.join(sorted(named, key=list(extras).index))}]"]
    assert "bertlab[all]" in extras["dev"]
    base = {re.split(r"[<>=!~\[ ;]", requirement)[0] for requirement in project["dependencies"]}
    optional = {"ray", "hydra-submitit-launcher", "optuna", "tensorboard", "mlflow-skinny", "nltk"}
    optional |= {"sentencepiece", "sacremoses", "datasets"}
    assert base & optional == set()  # in an extra, not the base install
    assert HUB_TASK in EXTRAS


def test_every_option_installed_here_passes():
    """make install installs every extra: nothing is refused in the development venv."""
    check_extras(list(EXTRAS))
