"""Sweep pieces that need no cluster and no network: the SLURM submission a sweep would make, the
`bertlab prepare` cache (downloads faked) read back offline, the sweep summary, sweep folders."""

import json
import os
from pathlib import Path

import pytest
from hydra.utils import instantiate

from tests.helpers.e2e import REPO, results_under, run_train


def test_slurm_launcher_submits_one_gpu_per_array_task(tmp_path, monkeypatch, compose_train):
    import submitit.slurm.slurm as slurm

    cfg = compose_train(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=90",
        "hydra.launcher.array_parallelism=2",
        f"hydra.sweep.dir={tmp_path}",
        hydra=True,
    )
    assert cfg.hydra.launcher.max_num_timeout > 0  # requeued on preemption / timeout
    submitted = {}

    class Submitted(Exception):
        pass

    def capture(executor, command):  # stands in for `sbatch`
        submitted["script"] = executor._make_submission_file_text(command, "uid")
        raise Submitted

    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", staticmethod(lambda: 1))  # "srun is here"
    monkeypatch.setattr(slurm.SlurmExecutor, "_submit_command", capture)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Submitted):
        launcher.launch([["seed=0"], ["seed=1"], ["seed=2"]], initial_job_idx=0)
    script = submitted["script"]
    for line in (
        "--array=0-2%2",
        "--gpus-per-node=1",
        "--ntasks-per-node=1",
        "--partition=gpu",
        "--time=90",
        "--mem=32GB",
        "--signal=USR2@120",
        f"--output={tmp_path}/.submitit/",
    ):
        assert f"#SBATCH {line}" in script, (line, script)


def test_gpus_launcher_config_composes(compose_train):
    launcher = compose_train(
        "hydra/launcher=gpus", "hydra.launcher.gpus=4", "hydra.launcher.address=auto", hydra=True
    ).hydra.launcher
    assert launcher._target_.endswith("GpusLauncher")
    assert (launcher.gpus, launcher.gpus_per_job, launcher.address, launcher.max_retries) == (4, 1, "auto", 0)


def test_sweeps_started_in_the_same_second_get_distinct_folders(compose_train):
    first, second = (str(compose_train(hydra=True).hydra.sweep.dir) for _ in range(2))
    assert first != second and first.startswith("multirun/")


def test_a_job_whose_worker_died_is_recorded_as_failed(tmp_path):
    from bertlab.sweep.folders import summary_lines
    from hydra_plugins.bertlab_launchers.gpus_launcher import record_crash

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "result.json").write_text(json.dumps({"status": "ok", "overrides": ["seed=0"]}))
    (tmp_path / "1" / ".hydra").mkdir(parents=True)
    (tmp_path / "2" / ".hydra").mkdir(parents=True)  # died before anything: still counted
    record_crash(tmp_path / "1", ["seed=1"], RuntimeError("OOM killer"))
    assert json.loads((tmp_path / "1" / "result.json").read_text())["status"] == "failed"
    lines, all_ok = summary_lines(tmp_path)
    assert not all_ok
    assert lines[0] == f"sweep {tmp_path}: 3 jobs, 1 succeeded, 1 failed, 1 no result.json"
    assert "OOM killer" in lines[1]


class FakeLabel:
    def __init__(self, names):
        self.names = names


class FakeSplit(dict):
    """What `datasets` returns for one split: columns by name and the label's class names."""

    def __init__(self, columns, names):
        super().__init__(columns)
        self.features = {"label": FakeLabel(names)}


def fake_glue(name, config):
    assert (name, config) == ("nyu-mll/glue", "rte")
    names = ["entailment", "not_entailment"]
    rows = [(f"premise {i} with a\ttab", f"hypothesis {i}", i % 2) for i in range(40)]
    columns = {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "label": [r[2] for r in rows]}
    return {"train": FakeSplit(columns, names), "validation": FakeSplit(columns, names)}


@pytest.mark.slow
def test_prepare_then_an_offline_run_reads_the_cache(tmp_path, tiny_bert_dir, monkeypatch, capsys):
    import datasets
    import huggingface_hub

    from bertlab.cli import main

    def fake_snapshot(repo_id, local_dir, ignore_patterns):
        assert repo_id == "google-bert/bert-large-uncased" and "*.h5" in ignore_patterns
        Path(local_dir).mkdir(parents=True)
        for f in Path(tiny_bert_dir).iterdir():
            (Path(local_dir) / f.name).write_bytes(f.read_bytes())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(datasets, "load_dataset", fake_glue)
    cache = tmp_path / "cache"
    assert main(["prepare", "--model", "bert-large-uncased", "--task", "rte", "--out", str(cache)]) == 0
    model_dir, rte_dir = cache / "models/google-bert/bert-large-uncased", cache / "glue/RTE"
    header, first = (rte_dir / "train.tsv").read_text().splitlines()[:2]
    assert header == "sentence1\tsentence2\tlabel" and first == "premise 0 with a tab\thypothesis 0\tentailment"

    run_dir = tmp_path / "run"
    assert f"model=bert-large-uncased model.name_or_path={model_dir}" in capsys.readouterr().out
    proc = run_train(
        "task=rte",
        f"task.data_dir={rte_dir}",
        "model=bert-large-uncased",
        f"model.name_or_path={model_dir}",
        "debug=fast",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(run_dir)["."]
    assert result["status"] == "ok" and result["settings"]["model"] == "bert-large-uncased"
    assert result["split_sizes"]["train"] == 16


def test_prepare_rejects_a_task_that_is_not_glue(tmp_path, capsys):
    from bertlab.cli import main

    assert main(["prepare", "--task", "bbcnews", "--out", str(tmp_path)]) == 2
    assert "not a GLUE task" in capsys.readouterr().err


@pytest.mark.parametrize(
    "script, runs, swept",
    [
        ("bias_correction.sh", 100, {"optimizer": ["bertadam", "adamw"]}),
        ("reinit.sh", 140, {"reinit": [str(n) for n in range(7)]}),
        (
            "longer_training.sh",
            200,
            {"trainer.max_steps": ["200", "400", "800", "1600", "3200"], "trainer.max_epochs": ["-1"]},
        ),
    ],
)
def test_paper_sweep_scripts_compose(script, runs, swept, compose_train):
    """Each script's command line (printed instead of run) expands to the paper's runs, and its
    first job composes into a valid config."""
    import itertools
    import os
    import shlex
    import subprocess

    from hydra.core.override_parser.overrides_parser import OverridesParser

    env = {**os.environ, "PYTHON": "echo", "GLUE": "/data/glue_data", "TASK": "mrpc"}
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "sweeps" / script), "hydra/launcher=gpus"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    args = shlex.split(out)
    assert args[:2] == ["train.py", "-m"] and args[-1] == "hydra/launcher=gpus"
    overrides = OverridesParser.create().parse_overrides(args[2:])
    values = {
        o.get_key_element(): list(o.sweep_string_iterator())
        if o.is_sweep_override()
        else [o.get_value_element_as_str()]
        for o in overrides
    }
    assert len(list(itertools.product(*values.values()))) == runs
    assert all(values[key] == expected for key, expected in swept.items())
    assert len(values["seed"]) in (20, 50)
    cfg = compose_train(*(f"{key}={choices[0]}" for key, choices in values.items()), hydra=True)
    assert cfg.task.name == "mrpc" and cfg.task.data_dir == "/data/glue_data/MRPC"
    assert cfg.model.name == "bert-large-uncased" and cfg.hydra.sweep.dir.startswith("multirun/paper/")


def test_a_job_folder_is_taken_by_a_file_a_folder_that_is_no_run_or_another_users_folder(tmp_path, monkeypatch):
    from bertlab.sweep import folders

    (tmp_path / "0").mkdir()  # free: empty
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / ".hydra").mkdir()  # a job's (Hydra writes .hydra/ first): the grid guard's case
    (tmp_path / "2").write_text("x")
    (tmp_path / "3").symlink_to(tmp_path / "nowhere")
    theirs = tmp_path / "4"
    theirs.mkdir()
    real_access = os.access
    monkeypatch.setattr(folders.os, "access", lambda p, mode: Path(p) != theirs and real_access(p, mode))
    assert [folders.blocked_place(tmp_path / n) for n in "01"] == [None, None]
    assert folders.blocked_place(tmp_path / "5") is None  # absent: Hydra creates it
    assert folders.blocked_place(tmp_path / "2") == "is a file, not a folder"
    assert folders.blocked_place(tmp_path / "3") == "is a broken link"
    assert folders.blocked_place(theirs) == f"cannot be written by this user (owner uid {theirs.stat().st_uid})"
    message = folders.blocked_places([tmp_path / str(n) for n in range(6)])
    assert message.startswith("3 job folders of this sweep are taken: ") and "Nothing was run" in message


def test_a_dead_jobs_record_that_cannot_be_written_does_not_end_the_gpus_sweep(tmp_path):
    """record_crash raised FileExistsError out of the launcher: the sweep ended without a summary."""
    from hydra_plugins.bertlab_launchers.gpus_launcher import record_crash

    (tmp_path / "1").write_text("a file where job 1's folder goes")
    record_crash(tmp_path / "1", ["seed=1"], RuntimeError("FileExistsError in the worker"))
    assert (tmp_path / "1").read_text() == "a file where job 1's folder goes"
