"""`bertlab predict` and `bertlab evaluate` on a run's saved weights (run/predict.py, evaluate.py, saved_run.py)."""

import csv
import io
import json
import subprocess
import sys

import pytest
from e2e import REPO, TINY, results_under, run_train, train_env

from bertlab.core.errors import DataError
from bertlab.data.readers import read_unlabelled
from bertlab.run.predict import prediction_record, write_records
from bertlab.run.saved_run import SavedRunError, load_saved_config, saved_model_dir


def bertlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bertlab.cli", *args],
        cwd=REPO,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_rows_keep_every_column_and_need_the_text_fields(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,sentence1,sentence2\n7,"A, b",C\n')
    ((row, example),) = read_unlabelled(path, ["sentence1", "sentence2"])
    assert row == {"id": "7", "sentence1": "A, b", "sentence2": "C"}
    assert (example.text_a, example.text_b) == ("A, b", "C")
    with pytest.raises(DataError) as err:
        read_unlabelled(path, ["sentence1", "hypothesis"])
    assert str(err.value) == (
        f"{path}, line 2: no column 'hypothesis', which the run's task reads "
        "(task.text_fields=['sentence1', 'hypothesis']); columns found: ['id', 'sentence1', 'sentence2']."
    )


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("e.jsonl", "", "has no rows to predict"),
        ("h.csv", "text\n", "has no rows to predict"),
        ("x.jsonl", '{"text": ""}\n', "x.jsonl, line 1: the text in field 'text' is empty."),
        ("b.jsonl", "{oops\n", "b.jsonl, line 1: not valid JSON"),
        ("l.tsv", "text\t\xe9\n", None),  # latin-1 bytes below
    ],
)
def test_bad_input_files_get_one_message(tmp_path, name, content, message):
    path = tmp_path / name
    if message is None:
        path.write_bytes(b"text\nabc \xe9\n")
        message = "is not valid utf-8"
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        read_unlabelled(path, ["text"])
    with pytest.raises(DataError, match="does not exist"):
        read_unlabelled(tmp_path / "absent.csv", ["text"])


def test_outputs_in_each_format():
    records = [prediction_record({"id": "1", "text": "a\tb"}, [0.25, 0.75], ["neg", "pos"])]
    assert records[0]["prediction"] == "pos"
    out = io.StringIO()
    write_records(records, out, ".csv", ["neg", "pos"])
    assert list(csv.DictReader(io.StringIO(out.getvalue()))) == [
        {"id": "1", "text": "a\tb", "prediction": "pos", "prob_neg": "0.25", "prob_pos": "0.75"}
    ]
    out = io.StringIO()
    write_records(records, out, ".tsv", ["neg", "pos"])
    assert out.getvalue().splitlines() == ["id\ttext\tprediction\tprob_neg\tprob_pos", "1\ta\\\tb\tpos\t0.25\t0.75"]
    out = io.StringIO()
    write_records(records, out, ".jsonl", ["neg", "pos"])
    assert json.loads(out.getvalue()) == {**records[0], "probabilities": {"neg": 0.25, "pos": 0.75}}
    assert prediction_record({"t": "x"}, [3.5], None) == {"t": "x", "prediction": 3.5}  # regression: the score


def test_a_run_without_saved_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(SavedRunError, match="has no saved weights .* re-run it with save_weights=true"):
        saved_model_dir(tmp_path)
    with pytest.raises(SavedRunError, match="is not a folder"):
        saved_model_dir(tmp_path / "nothing")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny bbcnews run with save_weights=true: its folder and result.json."""
    run_dir = tmp_path_factory.mktemp("saved") / "run"
    proc = run_train(*TINY, "save_weights=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, results_under(run_dir)["."]


@pytest.mark.slow
def test_overrides_set_keys_of_the_saved_config(saved_run, tmp_path):
    run_dir, _ = saved_run
    cfg = load_saved_config(run_dir / "model", ["task.n_test=null", "data.eval_batch_size=4", "task.labels=[a,b]"])
    assert cfg.task.n_test is None and cfg.data.eval_batch_size == 4 and list(cfg.task.labels) == ["a", "b"]
    from bertlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'task.n_tset'"):
        load_saved_config(run_dir / "model", ["task.n_tset=3"])
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert list(config["id2label"].values()) == ["business", "entertainment", "politics", "sports", "tech"]


@pytest.mark.slow
def test_evaluate_gives_the_runs_own_test_metrics(saved_run):
    from bertlab.run.evaluate import evaluate

    run_dir, result = saved_run
    metrics = evaluate(run_dir)
    assert metrics == {"test/accuracy": pytest.approx(result["metrics"]["test_best/accuracy"], abs=1e-6)}


@pytest.mark.slow
def test_evaluate_rebuilds_a_run_with_another_head(tmp_path):
    """A head of bertlab.heads (not the family's HF classifier) is saved and rebuilt by evaluate."""
    from bertlab.run.evaluate import evaluate

    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "head=mean", "save_weights=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(run_dir)["."]
    assert result["settings"]["head"] == "mean"
    metrics = evaluate(run_dir)
    assert metrics == {"test/accuracy": pytest.approx(result["metrics"]["test_best/accuracy"], abs=1e-6)}


def split_files(saved_run, tmp_path):
    """The run's test split, as the user would give it to predict: one file per format."""
    from bertlab.data.readers import read_task
    from bertlab.data.sampling import make_splits

    cfg = load_saved_config(saved_run[0] / "model")
    test = make_splits(read_task(cfg.task), cfg.task, cfg.task.data_seed)["test"]
    rows = [{"n": str(i), "text": e.text_a} for i, e in enumerate(test)]
    files = {}
    for suffix in (".csv", ".tsv", ".jsonl"):
        path = files[suffix] = tmp_path / f"test{suffix}"
        with open(path, "w", newline="") as f:
            if suffix == ".jsonl":
                f.writelines(json.dumps(r) + "\n" for r in rows)
            else:
                kw = {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "escapechar": "\\"} if suffix == ".tsv" else {}
                writer = csv.DictWriter(f, ["n", "text"], **kw)
                writer.writeheader()
                writer.writerows({k: v.replace("\t", " ").replace("\n", " ") for k, v in r.items()} for r in rows)
    return [e.label for e in test], files, list(cfg.task.labels)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_predictions_score_the_runs_test_accuracy(saved_run, tmp_path, suffix):
    from bertlab.run.predict import predict

    run_dir, result = saved_run
    gold, files, labels = split_files(saved_run, tmp_path)
    out = predict(run_dir, files[suffix])
    assert out == files[suffix].with_name(f"test.predictions{suffix}")
    if suffix == ".jsonl":
        predicted = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(sum(p["probabilities"].values()) == pytest.approx(1) for p in predicted)
    else:
        predicted = list(csv.DictReader(open(out, newline=""), delimiter="," if suffix == ".csv" else "\t"))
        assert all(sum(float(p[f"prob_{label}"]) for label in labels) == pytest.approx(1) for p in predicted)
    assert [p["n"] for p in predicted] == [str(i) for i in range(len(gold))]  # in the input's order
    accuracy = sum(labels[y] == p["prediction"] for y, p in zip(gold, predicted)) / len(gold)
    # TSV: tabs and newlines in the texts became spaces, which the tokenizer ignores as well
    assert accuracy == pytest.approx(result["metrics"]["test_best/accuracy"])


@pytest.mark.slow
def test_the_commands_bad_input_gets_one_message_and_exit_code_2(saved_run, tmp_path):
    run_dir, _ = saved_run
    (tmp_path / "in.csv").write_text("title,body\nA,B\n")
    (tmp_path / "latin.csv").write_bytes("text\nthe caf\u00e9 opened\n".encode("latin-1"))
    cases = [
        (("predict", str(run_dir), "--input", str(tmp_path / "in.csv")), "no column 'text'"),
        (("predict", str(tmp_path), "--input", str(tmp_path / "in.csv")), "re-run it with save_weights=true"),
        (("predict", str(run_dir), "--input", str(tmp_path / "none.csv")), "does not exist"),
        (("predict", str(run_dir), "--input", str(tmp_path / "in.csv"), "--out", "x.xlsx"), "unknown format '.xlsx'"),
        (("evaluate", str(tmp_path)), "re-run it with save_weights=true"),
        (("evaluate", str(run_dir), "task.nope=1"), "unknown config key 'task.nope'"),
        # train.py's checks on evaluate's overrides (a traceback before), and predict's own encoding option
        (("evaluate", str(run_dir), "task.max_length=0"), "task.max_length=0 is invalid"),
        (("evaluate", str(run_dir), "data.eval_batch_size=-1"), "data.eval_batch_size=-1 is invalid"),
        (("predict", str(run_dir), "--input", str(tmp_path / "latin.csv")), "--encoding latin-1"),
    ]
    for args, message in cases:
        proc = bertlab(*args)
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"bertlab {args[0]}: "), proc.stderr
    proc = bertlab("predict", str(run_dir), "--input", str(tmp_path / "latin.csv"), "--encoding", "latin-1")
    assert proc.returncode == 0, proc.stderr[-2000:]  # the option the message names works
    assert "caf\u00e9" in (tmp_path / "latin.predictions.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_predict_to_stdout(saved_run, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "the match ended in a draw"}\n')
    proc = bertlab("predict", str(saved_run[0]), "--input", str(tmp_path / "in.jsonl"), "--out", "-")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()  # the model's load line goes to stderr
    assert json.loads(line)["prediction"] in ("business", "entertainment", "politics", "sports", "tech")


def test_batched_probabilities_equal_one_example_at_a_time(tiny_bert_dir):
    """Length-sorted, padded batches give each pair the probabilities of its own unpadded forward pass."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertlab.data.readers import Example
    from bertlab.run.predict import infer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    examples = [Example("a short one", "yes", 0), Example("a much longer premise " * 5, "and its hypothesis", 0)]
    examples += [Example("medium sized text here", "no", 0)]
    batched = infer(model, tokenizer, examples, max_length=32, batch_size=2)
    for example, probs in zip(examples, batched):
        alone = tokenizer(example.text_a, example.text_b, truncation=True, max_length=32, return_tensors="pt")
        with torch.no_grad():
            expected = model(**alone).logits.softmax(-1)[0].tolist()
        assert probs == pytest.approx(expected, abs=1e-5)


def test_a_regression_model_gives_its_score(tiny_bert_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertlab.data.readers import Example
    from bertlab.run.predict import infer

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=1, problem_type="regression"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    ((score,),) = infer(model, tokenizer, [Example("one sentence", "another", 0)], max_length=32, batch_size=8)
    with torch.no_grad():
        expected = model(**tokenizer("one sentence", "another", return_tensors="pt")).logits[0, 0].item()
    assert score == pytest.approx(expected, abs=1e-6)  # the raw output, no softmax
