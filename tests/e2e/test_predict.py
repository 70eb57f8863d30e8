"""`bertlab predict` and `bertlab evaluate` on a run's saved weights (run/predict.py, evaluate.py, saved_run.py)."""

import csv
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from bertlab.core.errors import DataError
from bertlab.data.readers import read_unlabelled
from bertlab.run.predict import prediction_record, write_records
from bertlab.run.saved_run import SavedRunError, load_saved_config, saved_model_dir
from tests.helpers.e2e import TINY, python, results_under, run_train


def bertlab(*args: str) -> subprocess.CompletedProcess:
    return python("-m", "bertlab.cli", *args)


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
    # umask 027 (the group reads, others nothing): the saved files must say so, not transformers' 0600
    proc = run_train(*TINY, "save_weights=true", f"hydra.run.dir={run_dir}", preexec_fn=lambda: os.umask(0o027))
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


@pytest.mark.slow
def test_saved_weights_follow_the_umask(saved_run):
    """Every file of model/ is readable as the umask says, like result.json (issue 27: weights were 0600)."""
    run_dir, _ = saved_run
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (run_dir / "model").iterdir() if p.is_file()}
    assert "model.safetensors" in modes and "README.md" in modes
    assert modes == dict.fromkeys(modes, 0o640)
    assert stat.S_IMODE((run_dir / "result.json").stat().st_mode) == 0o640


@pytest.mark.slow
def test_the_model_card_says_task_data_settings_and_metrics_with_seeds(saved_run):
    run_dir, result = saved_run
    card = (run_dir / "model" / "README.md").read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "library_name: transformers" in front and "pipeline_tag: text-classification" in front
    assert "- bbcnews" in front and "base_model" not in front  # the tiny model is a local folder
    assert body.startswith("\n# bbcnews: tiny fine-tuned with bertlab")
    settings = result["settings"]
    assert f"training seed {settings['seed']}, data seed {settings['data_seed']}" in body
    for key, value in result["metrics"].items():
        assert f"| {key} | {value:.4f} |" in body
    assert f"at step {result['best_step']} of {result['global_steps']}" in body
    assert f"| optimizer | {settings['optimizer']} |" in body
    sizes = result["split_sizes"]
    assert f"| examples: train / val / test | {sizes['train']} / {sizes['val']} / {sizes['test']} |" in body
    assert "python train.py " + " ".join(result["overrides"]) in body
    assert result["world_size"] == 1  # one process trained (several are refused: test_trainer_settings_e2e)


class FakeHub:
    """huggingface_hub.HfApi's two calls that push makes, recorded (no network)."""

    calls: list = []

    def __init__(self, endpoint=None):
        self.endpoint = endpoint

    def create_repo(self, repo_id, **kwargs):
        FakeHub.calls.append(("create_repo", repo_id, kwargs))
        return f"{self.endpoint}/{repo_id}"

    def upload_folder(self, folder_path, repo_id, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        FakeHub.calls.append(("upload_folder", repo_id, files))


@pytest.fixture
def online_hub(monkeypatch):
    """The hub reachable and a token present, its API stubbed: push's own logic, no network."""
    import huggingface_hub
    from huggingface_hub import constants

    from bertlab.run import push

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(push, "unreachable", lambda url: None)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls = []
    return FakeHub


def push_command(capsys, *args) -> tuple[int, str, str]:
    from bertlab.cli import main

    code = main(["push", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_push_uploads_the_model_folder_with_its_card(saved_run, online_hub, capsys):
    run_dir, _ = saved_run
    code, out, err = push_command(capsys, run_dir, "--repo-id", "someone/tiny-bbcnews")
    assert code == 0, err
    (create, repo_id, kwargs), (upload, repo, files) = online_hub.calls
    assert (create, repo_id, kwargs["exist_ok"], kwargs["private"]) == (
        "create_repo",
        "someone/tiny-bbcnews",
        True,
        False,
    )
    assert upload == "upload_folder" and repo == "someone/tiny-bbcnews"
    assert {"README.md", "config.json", "model.safetensors", "bertlab.yaml"} <= set(files)
    assert out.strip().endswith("/someone/tiny-bbcnews")


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, fragment",
    [
        ("offline", "the Hugging Face hub is offline here (HF_HUB_OFFLINE=1): nothing was uploaded"),
        ("unreachable", "is unreachable from here (no answer within 5 s): nothing was uploaded"),
        ("no_token", "no Hugging Face token: log in with `hf auth login`"),
        ("bad_repo_id", "--repo-id 'not/a/repo' is not a hub repo id"),
        ("refused", "the hub refused the upload to someone/x (401 Client Error: Unauthorized); log in with"),
    ],
)
def test_push_that_cannot_upload_is_one_message(saved_run, online_hub, monkeypatch, capsys, case, fragment):
    import httpx
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    from bertlab.run import push

    repo_id = "not/a/repo" if case == "bad_repo_id" else "someone/x"
    if case == "offline":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    elif case == "unreachable":
        monkeypatch.setattr(push, "unreachable", lambda url: "no answer within 5 s")
    elif case == "no_token":
        monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    elif case == "refused":

        def refuse(self, repo_id, **kwargs):
            response = httpx.Response(401, request=httpx.Request("POST", "https://hub.example/api/repos/create"))
            raise HfHubHTTPError("401 Client Error: Unauthorized", response=response)

        monkeypatch.setattr(FakeHub, "create_repo", refuse)
    code, out, err = push_command(capsys, saved_run[0], "--repo-id", repo_id)
    assert code == 2 and out == ""
    assert err.startswith("bertlab push: ") and err.count("\n") == 1, err
    assert fragment in err, err
    assert not [c for c in online_hub.calls if c[0] == "upload_folder"]


def test_save_run_model_writes_files_the_umask_lets_others_read(tiny_bert_dir, tmp_path):
    """In-process, in seconds: transformers' save_pretrained alone leaves model.safetensors at 0600."""
    from omegaconf import OmegaConf
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertlab.run.saved_run import save_run_model

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    cfg = OmegaConf.create({"task": {"problem": "classification", "labels": ["no", "yes"]}})
    mask = os.umask(0o022)
    try:
        save_run_model(cfg, model, tokenizer, tmp_path)
    finally:
        os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in modes
    assert modes == dict.fromkeys(modes, 0o644)


def test_a_card_names_a_hub_base_model_and_the_last_weights_when_never_validated():
    from omegaconf import OmegaConf

    from bertlab.run.model_card import model_card

    record = {
        "task": "rte",
        "settings": {"model": "bert-base-uncased", "seed": 3, "data_seed": 0, "head": "pooler"},
        "metrics": {"test_best/accuracy": 0.5, "test_last/accuracy": 0.5},
        "best_step": None,
        "global_steps": 12,
        "overrides": ["task=rte", "seed=3"],
    }
    saved = OmegaConf.create(
        {"model": {"name_or_path": "google-bert/bert-base-uncased"}, "task": {"problem": "classification"}}
    )
    card = model_card(record, saved)
    assert "base_model: google-bert/bert-base-uncased" in card
    assert "The last weights (step 12)" in card and "training seed 3, data seed 0" in card
    assert "    python train.py task=rte seed=3" in card
    saved.model.name_or_path = "packaged:minilm"
    assert "base_model" not in model_card(record, saved)
