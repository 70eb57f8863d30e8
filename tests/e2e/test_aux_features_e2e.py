"""`python train.py` end to end under debug=fast, one run per option: aux=mlm, aux=label_similarity,
features=last_layer (feature columns, then predict and evaluate on the saved run) and
features=embedding (a JSONL feature file keyed by id); a bad feature file stops the run before
training with one message."""

import json

import pytest

from tests.helpers.e2e import TINY, python, run_train

pytestmark = pytest.mark.slow


def write_task(folder, n=40):
    """A csv task of two classes whose rows carry a numeric and a categorical feature and an id."""
    folder.mkdir()
    for name, start in (("train", 0), ("dev", 1000)):
        with open(folder / f"{name}.jsonl", "w") as f:
            for i in range(start, start + n):
                label = i % 2
                row = {"id": i, "text": f"{'good' if label else 'bad'} words number {i}", "label": label}
                f.write(json.dumps({**row, "size": i % 7 + label, "kind": "ab"[i % 3 == 0]}) + "\n")
    with open(folder / "vectors.jsonl", "w") as f:
        for i in [*range(n), *range(1000, 1000 + n)]:
            f.write(json.dumps({"id": i, "features": [i % 5, (i % 2) * 1.5]}) + "\n")
    return [
        "task=csv", f"task.data_dir={folder}", "task.train_file=train.jsonl", "task.dev_file=dev.jsonl",
        "task.text_fields=[text]", "task.label_field=label",
    ]  # fmt: skip


def result(run_dir):
    return json.loads((run_dir / "result.json").read_text())


@pytest.mark.parametrize("option", ["mlm", "label_similarity"])
def test_aux_option_end_to_end(tmp_path, option):
    done = run_train(*TINY, f"aux={option}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-3000:]
    r = result(tmp_path / "run")
    assert r["status"] == "ok" and r["settings"]["aux"] == option and r["aux"]["name"] == option
    assert r["global_steps"] <= 8  # debug=fast stays fast
    with open(tmp_path / "run" / "metrics.csv") as f:
        assert "train/aux_loss" in f.readline()
    if option == "mlm":
        assert "aux=mlm: new masked-LM head" in done.stdout and "decoder tied" in done.stdout


def test_last_layer_fusion_end_to_end_then_predict_and_evaluate(tmp_path):
    task = write_task(tmp_path / "data")
    run = tmp_path / "run"
    done = run_train(
        *TINY, *task, "task.feature_fields={size: numeric, kind: categorical}", "features=last_layer",
        "save_weights=true", f"hydra.run.dir={run}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r = result(run)
    assert r["status"] == "ok" and r["settings"]["fusion"] == "last_layer"
    assert r["features"]["names"] == ["size", "kind"] and r["features"]["vocab"] == [["a", "b"]]
    assert (run / "model" / "features.json").is_file()
    rows = tmp_path / "new.jsonl"
    rows.write_text(json.dumps({"text": "good words", "size": 3, "kind": "a"}) + "\n")
    cli = ["-m", "bertlab.cli"]
    out = python(*cli, "predict", str(run), "--input", str(rows), "--out", "-")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["prediction"] in ("0", "1")
    rows.write_text(json.dumps({"text": "good words", "size": "big", "kind": "a"}) + "\n")
    bad = python(*cli, "predict", str(run), "--input", str(rows), "--out", "-")
    assert bad.returncode != 0 and f"{rows}, line 1: the feature 'size' is 'big', not a number" in bad.stderr
    assert "Traceback" not in bad.stderr
    evaluated = python(*cli, "evaluate", str(run))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f"{r['metrics']['test_best/accuracy']:.4f}" in evaluated.stdout


def test_embedding_fusion_with_a_feature_file_end_to_end(tmp_path):
    task = write_task(tmp_path / "data")
    vectors = tmp_path / "data" / "vectors.jsonl"
    run = tmp_path / "run"
    done = run_train(
        *TINY, *task, f"task.feature_file={vectors}", "task.id_field=id", "features=embedding", f"hydra.run.dir={run}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = result(run)
    assert r["status"] == "ok" and r["features"]["names"] == ["file[0]", "file[1]"]


def test_a_bad_feature_file_stops_the_run_with_one_message(tmp_path):
    task = write_task(tmp_path / "data")
    vectors = tmp_path / "data" / "vectors.jsonl"
    lines = vectors.read_text().splitlines()
    lines[2] = json.dumps({"id": 2, "features": [1.0]})
    vectors.write_text("\n".join(lines) + "\n")
    done = run_train(
        *TINY,
        *task,
        f"task.feature_file={vectors}",
        "task.id_field=id",
        "features=last_layer",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert done.returncode != 0
    assert f"{vectors}, line 3: 1 feature values, but {vectors}, line 1 has 2" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
