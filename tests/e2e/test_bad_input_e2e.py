"""Bad input through `python train.py`: one clear message (key, bad value, what is valid), exit
code 1, no traceback, and nothing half-written (no checkpoint; a complete result.json saying failed).
"""

import pytest

from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message, csv_task
from tests.helpers.e2e import TINY
from tests.helpers.inprocess import run_train


# Unknown config-group names: Hydra's own message lists the valid ones.
@pytest.mark.slow
@pytest.mark.parametrize("group", ["task", "model", "optimizer", "schedule"])
def test_unknown_group_name_lists_the_valid_ones(tmp_path, group):
    proc = run_train(*TINY, f"{group}=nosuch", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, f"Could not find '{group}/nosuch'", f"Available options in '{group}'")
    assert_nothing_half_written(tmp_path / "run")


CONFIG_CASES = {
    # overrides: fragments the message must hold (key=value and what is valid)
    "reinit_negative": (["reinit=-1"], ["reinit=-1 is invalid", "from 0"]),
    "llrd_zero": (["llrd=0"], ["llrd=0 is invalid", "(0, 1]"]),
    "llrd_above_one": (["llrd=1.5"], ["llrd=1.5 is invalid", "(0, 1]"]),
    "mixout_one_or_more": (["mixout=1.5"], ["mixout=1.5 is invalid", "[0, 1)"]),
    "mixout_negative": (["mixout=-0.1"], ["mixout=-0.1 is invalid", "[0, 1)"]),
    "lr_zero": (["optimizer.lr=0"], ["optimizer.lr=0 is invalid", "positive"]),
    "lr_negative": (["optimizer.lr=-2e-5"], ["optimizer.lr=-2e-05 is invalid", "positive"]),
    "batch_size_zero": (["data.batch_size=0"], ["data.batch_size=0 is invalid", "positive"]),
    "batch_size_negative": (["data.batch_size=-8"], ["data.batch_size=-8 is invalid", "positive"]),
    "n_train_larger_than_data": (["task.n_train=100000"], ["task.n_train=100000 is more than", "valid: 1 to"]),
    "n_train_fewer_than_classes": (["task.n_train=3"], ["task.n_train=3 is less than the 5 classes"]),
    # model=hf's name is an interpolation of the missing path: still one message naming the key
    "hf_model_without_path": (["model=hf"], ["model.name_or_path must be set", "model.name_or_path=..."]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value_is_one_clear_message(tmp_path, case):
    overrides, fragments = CONFIG_CASES[case]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path}")
    assert_one_clear_message(proc, *fragments)
    assert_nothing_half_written(tmp_path)


@pytest.mark.slow
def test_config_errors_come_before_the_model_is_loaded(tmp_path):
    # the model does not exist either: the config error must be the one reported
    proc = run_train(*TINY, "model.name_or_path=/nonexistent/model", "optimizer.lr=0", f"hydra.run.dir={tmp_path}")
    assert_one_clear_message(proc, "optimizer.lr=0")
    assert "nonexistent" not in proc.stderr


@pytest.mark.slow
def test_model_neither_local_nor_reachable_says_how_to_prepare_a_copy(tmp_path):
    proc = run_train(*TINY, "model=hf", "model.name_or_path=no-such-org/no-such-bert", f"hydra.run.dir={tmp_path}")
    assert_one_clear_message(
        proc,
        "model.name_or_path='no-such-org/no-such-bert' cannot be loaded",
        "the Hugging Face hub is unreachable from here (offline)",
        "bertlab prepare",
        "model.name_or_path=DIR",
    )
    assert_nothing_half_written(tmp_path)


@pytest.mark.slow
def test_csv_task_without_label_column_names_the_key(tmp_path):
    overrides = [o for o in csv_task(tmp_path / "data") if not o.startswith("task.label_field")]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "task.label_field must be set", "task.label_field=...")
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_missing_data_folder(tmp_path):
    overrides = csv_task(tmp_path / "data") + [f"task.data_dir={tmp_path / 'nowhere'}"]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, f"task.data_dir={tmp_path / 'nowhere'} is not a folder")
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_data_folder_without_a_split_file(tmp_path):
    proc = run_train(*TINY, *csv_task(tmp_path / "data", dev=None), f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "task.dev_file=dev.csv is not in", "files there: train.csv")
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_data_with_the_wrong_columns(tmp_path):
    overrides = csv_task(tmp_path / "data", train="sentence,label\nthe cat sat,pos\na dull film,neg\n")
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "train.csv, line 2: no column ['text']", "columns found: ['sentence', 'label']")
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_label_the_task_does_not_declare(tmp_path):
    overrides = csv_task(tmp_path / "data", dev="text,label\ngood,pos\nso-so,meh\n") + ["task.labels=[neg,pos]"]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "dev.csv, line 3: label 'meh'", "task.labels=['neg', 'pos']")
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_empty_text_field(tmp_path):
    overrides = csv_task(tmp_path / "data", train='text,label\nthe cat sat,pos\n"  ",neg\n')
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "train.csv, line 3: the text in field 'text' is empty")
    assert_nothing_half_written(tmp_path / "run")


def test_unloadable_model_message_tells_offline_from_no_such_model(tmp_path, monkeypatch):
    from bertlab.model.load import _why_unloadable

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    online = _why_unloadable(
        "no-such-org/no-such-bert", OSError("no-such-org/no-such-bert is not a valid model identifier")
    )
    assert "the Hugging Face hub has no such model" in online and "bertlab prepare" in online
    cut_off = _why_unloadable("org/bert", OSError("We couldn't connect to 'https://huggingface.co' to load the files"))
    assert "unreachable from here (offline)" in cut_off
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "unreachable" in _why_unloadable("org/bert", OSError("anything"))
    assert "holds no model config" in _why_unloadable(str(tmp_path), OSError("no config.json"))
    missing = _why_unloadable(str(tmp_path / "no-model"), OSError("Repo id must be in the form 'namespace/repo_name'"))
    assert f"there is no folder {tmp_path / 'no-model'}" in missing


# The newer readers (token, QA) on the command line: one message, exit 1, before the model loads
# (the in-process classes are in test_bad_input.py; these two guard the path to the terminal).
NEWER_READER_CASES = {
    "token_jsonl_latin1": (
        ["task=tokens", "task.train_file=train.jsonl", "task.dev_file=train.jsonl"],
        "train.jsonl",
        '{"tokens": ["Caf\u00e9", "EU"], "tags": ["O", "B-ORG"]}\n'.encode("latin-1"),
        ["train.jsonl, line 1: byte 0xe9", "task.encoding="],
    ),
    "qa_blank_answer": (
        ["task=qa", "task.train_file=train.jsonl", "task.dev_file=train.jsonl"],
        "train.jsonl",
        b'{"id": "q1", "question": "Where?", "context": "In France.", "answers": {"text": [" "], "answer_start": [2]}}\n',
        ["train.jsonl, line 1 (question id q1): the answer in field 'answers.text' is empty"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(NEWER_READER_CASES))
def test_a_bad_file_of_the_newer_readers_is_one_message(tmp_path, case):
    overrides, name, content, fragments = NEWER_READER_CASES[case]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_bytes(content)
    proc = run_train(*TINY, *overrides, f"task.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, *fragments)
    assert_nothing_half_written(tmp_path / "run")
