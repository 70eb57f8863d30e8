"""The entry points besides `python train.py`: `bertlab.train(overrides)` and `bertlab.predict(run_dir,
texts)` from Python, `bertlab train [overrides]` and `bertlab --version` on the command line."""

import json
import logging
import os
import subprocess
import sys
from importlib import metadata

import pytest

import bertlab
from bertlab.core.errors import ConfigError, DataError
from tests.helpers.e2e import REPO, TINY, results_under, run_train, train_env
from tests.helpers.inprocess import run_train as run_in_process


def process_state() -> dict:
    """What a run must leave as it found it, for the next call in the same process."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    root = logging.getLogger()
    return {
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "root_handlers": list(root.handlers),
        "root_level": root.level,
        "bertlab_logger": (logging.getLogger("bertlab").handlers[:], logging.getLogger("bertlab").level),
        "global_hydra": GlobalHydra.instance().is_initialized(),
        "hydra_config": HydraConfig.initialized(),
    }


@pytest.mark.slow
def test_train_twice_in_one_process_gives_the_numbers_of_a_train_py_process(tmp_path):
    overrides = [*TINY, "optimizer=bertadam", "reinit=1", "seed=3"]
    proc = run_train(*overrides, f"hydra.run.dir={tmp_path / 'process'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = results_under(tmp_path / "process")["."]

    import wandb

    before = process_state()
    records = [bertlab.train([*overrides, f"hydra.run.dir={tmp_path / name}"]) for name in ("first", "second")]
    assert process_state() == before
    assert wandb.run is None
    for name, record in zip(("first", "second"), records):
        assert record == json.loads((tmp_path / name / "result.json").read_text())  # what it returns is the file
        assert record["status"] == "ok" and record["run_dir"] == str(tmp_path / name)
        assert record["metrics"] == expected["metrics"]  # the same numbers, exactly
        assert record["global_steps"] == expected["global_steps"]
        assert record["diagnostics"] == expected["diagnostics"]  # gradient norms, update sizes
        assert (record["settings"], record["overrides"]) == (expected["settings"], expected["overrides"])
        assert record["pid"] == os.getpid()
        # the command line's files: Hydra's config and overrides, the metrics, the log of the console lines
        hydra_files = sorted(p.name for p in (tmp_path / name / ".hydra").iterdir())
        assert hydra_files == ["config.yaml", "hydra.yaml", "overrides.yaml"]
        assert (tmp_path / name / ".hydra" / "config.yaml").read_text() == (
            tmp_path / "process" / ".hydra" / "config.yaml"
        ).read_text()
        log = (tmp_path / name / "app.log").read_text()
        assert f"run directory: {tmp_path / name}" in log and "test_best/accuracy" in log
        assert (tmp_path / name / "metrics.csv").read_text().splitlines()[0] == (
            (tmp_path / "process" / "metrics.csv").read_text().splitlines()[0]
        )
    # the second run's log holds its own lines only: the first run's handler was closed, not left on the root
    assert str(tmp_path / "first") not in (tmp_path / "second" / "app.log").read_text()


@pytest.mark.slow
def test_the_in_process_helper_has_the_shape_of_a_train_py_process(tmp_path):
    """tests/helpers/inprocess.py's run_train: the returncode, the error line and the console lines
    of `python train.py`, for a good run and a run that fails its checks."""
    bad = [*TINY, "reinit=7"]
    process = run_train(*bad, f"hydra.run.dir={tmp_path / 'process'}")
    inside = run_in_process(*bad, f"hydra.run.dir={tmp_path / 'inside'}")
    assert process.returncode == inside.returncode == 1
    line = (
        "error (failed): reinit=7 is invalid: it must be an integer between 0 and the model's depth, 2 for this model"
    )
    assert line in process.stderr and line in inside.stderr and "Traceback" not in inside.stderr
    assert inside.record["status"] == "failed" and inside.record == results_under(tmp_path / "inside")["."]
    assert f"run directory: {tmp_path / 'inside'}" in inside.stdout

    good = run_in_process(*TINY, f"hydra.run.dir={tmp_path / 'good'}")
    assert good.returncode == 0 and good.record["status"] == "ok", good.stderr[-3000:]
    assert "test_best/accuracy" in good.stdout and f"run folder: {tmp_path / 'good'}" in good.stdout

    unknown = run_in_process(*TINY, "reinitt=3")
    assert unknown.returncode == 1 and unknown.record is None
    assert unknown.stderr.startswith("error: reinitt=3: unknown config key 'reinitt'")
    with pytest.raises(TypeError, match="needs a process"):
        run_in_process("-m", *TINY, "seed=0,1")


def test_a_bad_override_raises_the_command_lines_config_error(tmp_path):
    run_dir = tmp_path / "run"
    cases = {
        # (overrides, a fragment of the message)
        "unknown key": (["reinitt=3"], "reinitt=3: unknown config key 'reinitt'; nothing reads it"),
        "unknown option": (["model=nonexistent"], "Could not find 'model/nonexistent'"),
        "a sweep": (["seed=0,1"], "Ambiguous value for argument 'seed=0,1'"),
    }
    for overrides, fragment in cases.values():
        with pytest.raises(ConfigError) as err:
            bertlab.train([*overrides, f"hydra.run.dir={run_dir}"])
        assert fragment in str(err.value)
        assert not run_dir.exists()  # refused before Hydra made the folder
    with pytest.raises(ConfigError, match=r"takes a list of overrides, e.g. \['seed=1'\]"):
        bertlab.train("seed=1")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match="hydra.run.dir"):  # the run folder check, without an exit
        bertlab.train([*TINY, f"hydra.run.dir={tmp_path / 'a_file' / 'run'}"])


@pytest.mark.slow
def test_a_run_failing_its_checks_raises_once_its_record_is_written(tmp_path):
    with pytest.raises(ConfigError, match="reinit=7 is invalid") as err:
        bertlab.train([*TINY, "reinit=7", f"hydra.run.dir={tmp_path}"])
    record = results_under(tmp_path)["."]
    assert record["status"] == "failed" and record["error"] == str(err.value)


@pytest.mark.slow
def test_predict_gives_the_records_bertlab_predict_writes(tmp_path, capsys):
    from bertlab.cli import main as bertlab_cli

    record = bertlab.train([*TINY, "save_weights=true", f"hydra.run.dir={tmp_path / 'run'}"])
    texts = ["stocks fell sharply in early trading", "the striker scored twice", "a new phone was launched"]
    predictions = bertlab.predict(record["run_dir"], texts)

    rows = tmp_path / "texts.jsonl"
    rows.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    capsys.readouterr()
    assert bertlab_cli(["predict", str(tmp_path / "run"), "--input", str(rows), "--out", "-"]) == 0
    written = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert predictions == written  # the same records, in order
    labels = ["business", "entertainment", "politics", "sports", "tech"]
    for text, prediction in zip(texts, predictions):
        assert prediction["text"] == text and prediction["prediction"] in labels
        assert list(prediction["probabilities"]) == labels
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    # the other forms of a text, and what is not one
    assert bertlab.predict(tmp_path / "run", [{"text": texts[0], "id": 7}])[0] == {**predictions[0], "id": 7}
    with pytest.raises(DataError, match=r"texts\[1\] is \('a', 'b'\); the run's task reads 1 text\(s\)"):
        bertlab.predict(tmp_path / "run", ["fine", ("a", "b")])
    with pytest.raises(DataError, match=r"texts\[0\]: no key 'text'"):
        bertlab.predict(tmp_path / "run", [{"body": "x"}])
    with pytest.raises(ConfigError, match="takes a list of texts"):
        bertlab.predict(tmp_path / "run", "one text")
    with pytest.raises(DataError, match=r"texts\[0\]"):
        bertlab.predict(tmp_path / "run", [""])  # an empty text, as a file's empty cell


@pytest.mark.slow
def test_bertlab_train_is_train_py_with_its_flags(tmp_path):
    """`bertlab train` takes what `python train.py` takes, -m included; its key check and exit code too."""
    command = [sys.executable, "-m", "bertlab", "train"]
    bad = subprocess.run([*command, "reinitt=3"], cwd=REPO, env=train_env(), capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: reinitt=3: unknown config key 'reinitt'")
    sweep = subprocess.run(
        [*command, "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path}"],
        cwd=REPO,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert sorted(r["settings"]["seed"] for r in results_under(tmp_path).values()) == [0, 1]


def test_version_is_the_installed_distributions(capsys):
    from bertlab.cli import main as bertlab_cli

    with pytest.raises(SystemExit) as done:
        bertlab_cli(["--version"])
    assert done.value.code == 0
    assert (
        capsys.readouterr().out.strip() == f"bertlab {metadata.version('bertlab')}" == f"bertlab {bertlab.__version__}"
    )
