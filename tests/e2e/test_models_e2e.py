"""Model families, checkpoint dtypes, classifier heads and lengths through `python train.py`."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertlab.model.tiny import write_tiny
from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message
from tests.helpers.families import ENCODER_FAMILIES
from tests.helpers.inprocess import run_train

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow

FAST = ["debug=fast", "trainer.enable_progress_bar=false"]
METHODS = ["reinit=1", "llrd=0.9", "mixout=0.1", "prior_wd=0.01"]


def hf(path) -> list[str]:
    return ["model=hf", f"model.name_or_path={path}"]


def result(run_dir) -> dict:
    return json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_every_encoder_family_trains_with_every_method(tmp_path, tiny_family_dirs, family):
    proc = run_train(*hf(tiny_family_dirs[family]), *FAST, *METHODS, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = result(tmp_path)
    assert record["status"] == "ok" and record["global_steps"] == 4
    diagnostics = record["diagnostics"]
    num_blocks = 1 if family == "albert" else 2  # ALBERT: one shared layer group
    layers = [f"layer_{i}" for i in range(num_blocks)]
    assert list(diagnostics["relative_change"])[: num_blocks + 1] == ["embeddings", *layers]
    # LLRD: one lr per block, falling from the head to the embeddings
    peak = diagnostics["peak_lr"]
    depths = ["head", *reversed(layers), "embeddings"]
    lrs = [max(v for k, v in peak.items() if k.startswith(d + "/")) for d in depths]
    assert lrs == sorted(lrs, reverse=True) and len(set(lrs)) == len(lrs)


def test_a_decoder_is_refused_before_its_weights_load(tmp_path, tiny_family_dirs):
    proc = run_train(*hf(tiny_family_dirs["gpt2"]), *FAST, f"hydra.run.dir={tmp_path}")
    assert_one_clear_message(proc, "is a gpt2 model, not a bidirectional encoder", "bertlab fine-tunes bidirectional")
    assert "model:" not in proc.stdout  # the line load_model prints: the weights never loaded
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_checkpoint_trains_in_float32(tmp_path, dtype):
    path = write_tiny("bert", tmp_path / "model", dtype=getattr(torch, dtype))
    assert json.loads((path / "config.json").read_text())["dtype"] == dtype
    proc = run_train(*hf(path), *FAST, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = result(tmp_path / "run")
    assert record["param_dtype"] == "float32" and record["precision"] == "32-true"


def test_a_classifier_of_another_label_count_gets_a_new_head_in_one_line(tmp_path, tiny_family_dirs):
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_family_dirs["roberta"]), num_labels=3)
    model.save_pretrained(str(tmp_path / "mnli"))
    AutoTokenizer.from_pretrained(str(tiny_family_dirs["roberta"])).save_pretrained(str(tmp_path / "mnli"))
    proc = run_train(*hf(tmp_path / "mnli"), *FAST, f"hydra.run.dir={tmp_path / 'run'}")  # bbcnews: 5 classes
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = "model: new classifier head (5 labels): the checkpoint's head has 3 labels"
    assert line in proc.stdout.splitlines()
    said = proc.stdout + proc.stderr
    assert "LOAD REPORT" not in said and "MISMATCH" not in said and "incompatible to the `id2label`" not in said
    assert result(tmp_path / "run")["head"] == line.removeprefix("model: ")


def pair_task(folder) -> list[str]:
    folder.mkdir(parents=True)
    rows = "a,b,label\n" + "".join(f"the cat sat {i},on the mat {i},{'yes' if i % 2 else 'no'}\n" for i in range(12))
    (folder / "train.csv").write_text(rows)
    (folder / "dev.csv").write_text(rows)
    return [
        "task=csv",
        f"task.data_dir={folder}",
        "task.train_file=train.csv",
        "task.dev_file=dev.csv",
        "task.text_fields=[a,b]",
        "task.label_field=label",
        "task.n_train=8",
        "task.n_val=4",
        "task.n_test=null",
    ]


LENGTH_CASES = {
    # name: (model, pair task?, max_length, fragments)
    "single_too_short": (
        "bert",
        False,
        2,
        ["task.max_length=2 is invalid for this model and task (one text)", "valid is 3 to 512"],
    ),
    "pair_too_short": (
        "bert",
        True,
        4,
        [
            "task.max_length=4 is invalid for this model and task (a pair of texts)",
            "valid is 5 to 512",
            "3 special tokens",
        ],
    ),
    "roberta_pair_too_short": ("roberta", True, 5, ["task.max_length=5", "(a pair of texts): valid is 6 to 512"]),
    "beyond_positions": ("bert", False, 513, ["task.max_length=513", "valid is 3 to 512", "bert's 512 positions"]),
    # 514 rows of position embeddings, positions start at 2: 512 tokens
    "roberta_beyond_positions": (
        "roberta",
        True,
        513,
        ["task.max_length=513", "valid is 6 to 512", "roberta's 512 positions"],
    ),
}


@pytest.mark.parametrize("case", sorted(LENGTH_CASES))
def test_max_length_outside_what_the_model_holds_is_one_message(tmp_path, tiny_family_dirs, case):
    family, pair, max_length, fragments = LENGTH_CASES[case]
    task = pair_task(tmp_path / "data") if pair else []  # the default task, bbcnews: one text
    proc = run_train(
        *hf(tiny_family_dirs[family]),
        *FAST,
        *task,
        f"task.max_length={max_length}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert_one_clear_message(proc, *fragments)
    assert "model:" not in proc.stdout  # refused before the weights load
    assert_nothing_half_written(tmp_path / "run")
