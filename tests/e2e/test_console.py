"""What a run prints: the config tree, one line per validation, and none of the libraries' noise."""

import io
import warnings

import pytest
from omegaconf import OmegaConf

from bertlab.loggers.console import config_tree, quiet_libraries
from bertlab.loggers.run_csv import RunFolderCSVLogger
from tests.helpers.e2e import run_train

# Each a line the console used to carry that the researcher can do nothing with (issue 14).
NOISE = (
    "GPU available",  # Lightning's device pair: one `device:` line of ours instead
    "TPU available",
    "litlogger",  # Lightning's tip
    "was configured so",  # Lightning echoing limit_val_batches=1.0
    "exists and is not empty",  # the CSV logger on a fresh run folder (Hydra's .hydra/ is there)
    "LeafSpec",  # a torch deprecation inside Lightning
    "`Trainer.fit` stopped",
    "v_num",  # the logger's version id beside the metrics
    "Epoch 1/-",  # a step-counted run's max_epochs=-1
    "LOAD REPORT",  # transformers' weight-load table
)


def assert_quiet_console(proc) -> None:
    said = proc.stdout + proc.stderr
    for noise in NOISE:
        assert noise not in said, (noise, said[-3000:])
    lines = proc.stdout.splitlines()
    assert lines[0] == "config" and "├── task" in lines and "├── optimizer" in lines, proc.stdout[:2000]
    assert any(line.startswith("model: new classifier head") for line in lines)  # load_model's one line
    assert sum(line.startswith("validation at step ") for line in lines) == 2  # num_evals=2 (debug=fast)
    assert any(line.startswith("run folder: ") for line in lines) and any(line.startswith("device: ") for line in lines)


@pytest.fixture
def tiny(tiny_bert_dir):
    return [f"model.name_or_path={tiny_bert_dir}", "model.name=tiny", "debug=fast"]


@pytest.mark.slow
def test_run_console_is_the_config_and_the_run_not_library_noise(tmp_path, tiny):
    proc = run_train(*tiny, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet_console(proc)
    assert proc.stderr.strip() == "", proc.stderr[-3000:]  # nothing left to warn about in a clean run


@pytest.mark.slow
def test_wandb_offline_console_has_no_wandb_banners(tmp_path, tiny):
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": None}
    proc = run_train(*tiny, "logger=wandb", f"hydra.run.dir={tmp_path}", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet_console(proc)
    # banners, the history and summary tables, the anonymous-setting warning Lightning's call caused
    # (W&B's lines start with `wandb:`; the config tree's logger entry `wandb:` is indented under `logger`)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert not [line for line in lines if line.lstrip().startswith("wandb:") and "──" not in line], lines[-40:]
    assert len(list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))) == 1  # it still logs


def test_config_tree_shows_an_unresolvable_key_as_written():
    cfg = OmegaConf.create({"model": {"name": "${model.name_or_path}", "name_or_path": "???"}, "seed": 0})
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(config_tree(cfg))
    text = console.export_text()
    assert "name: ${model.name_or_path}" in text and "name_or_path: ???" in text and "seed: 0" in text


def test_known_noise_is_silenced_and_genuine_warnings_are_not():
    from lightning.pytorch.utilities._pytree import _tree_flatten
    from lightning.pytorch.utilities.rank_zero import rank_zero_warn

    with warnings.catch_warnings(record=True) as caught:
        quiet_libraries()
        _tree_flatten(1)  # builds torch's deprecated LeafSpec
        rank_zero_warn("a genuine Lightning warning")
        warnings.warn("a genuine warning", UserWarning, stacklevel=1)
    said = [str(w.message) for w in caught]
    assert not any("LeafSpec" in s for s in said), said
    assert "a genuine Lightning warning" in said and "a genuine warning" in said


def test_csv_logger_never_warns_about_the_run_folder(tmp_path):
    (tmp_path / ".hydra").mkdir()  # what Hydra writes before the run starts
    (tmp_path / "job.log").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = RunFolderCSVLogger(str(tmp_path)).experiment
    assert writer.metrics_file_path == str(tmp_path / "metrics.csv") and not caught, [str(w.message) for w in caught]
    # an earlier attempt's file: a fresh run replaces it, a resumed one continues it (test_metrics_file.py),
    # neither with Lightning's "Previous log files ... will be deleted"
    (tmp_path / "metrics.csv").write_text("step\n0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = RunFolderCSVLogger(str(tmp_path)).experiment
    assert not caught, [str(w.message) for w in caught]
    assert not (tmp_path / "metrics.csv").exists()
