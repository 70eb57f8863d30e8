"""approach=prompt end to end through `python train.py`, on tiny models WITH a masked-LM head built
from a config (model/tiny.py, masked_lm=True): BERT on the packaged BBC News (then `bertlab
predict`, `evaluate` and `report` on the saved run), RoBERTa on a pair task of one's own in JSONL
(its <mask> token, byte-level BPE label words with a leading space; demonstrations=similar, PET's
auxiliary loss and every method of the paper at once), and a regression task of one's own (TSV)."""

import json
import subprocess

import pytest
import transformers

from bertlab.model.tiny import write_tiny
from tests.helpers.e2e import python, run_train

pytestmark = pytest.mark.slow
FAST = ["debug=fast", "trainer.enable_progress_bar=false", "logger=csv", "approach=prompt"]


def bertlab(*args: str) -> subprocess.CompletedProcess:
    return python("-c", "import sys; from bertlab.cli import main; sys.exit(main())", *args)


def bpe_with_words(words: list[str]):
    """RoBERTa's byte-level BPE over single bytes (model/tiny.py) plus the merges that make
    ' word' (with its leading space, as 'Ġword') one token for each of `words`."""
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
    merges = []
    for word in words:
        piece = "Ġ" + word
        current = piece[0]
        for char in piece[1:]:
            merges.append((current, char))
            current += char
            vocab.setdefault(current, len(vocab))
    return transformers.RobertaTokenizer(vocab=vocab, merges=merges)


def test_bert_prompt_run_then_predict_evaluate_report(tmp_path):
    model_dir = write_tiny("bert", tmp_path / "tiny_mlm", masked_lm=True)
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m",
        *FAST,
        f"model.name_or_path={model_dir}",
        "model.name=tiny",
        "model.lr=1e-3",
        "save_weights=true",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = sweep / "0"
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "ok"
    assert record["settings"]["approach"] == "prompt"
    assert record["head"] == "kept the checkpoint's masked-LM head (decoder tied to the input embeddings)"
    assert "model: kept the checkpoint's masked-LM head" in proc.stdout
    assert set(record["metrics"]) >= {"val/accuracy", "test_last/accuracy", "test_best/accuracy"}
    saved = json.loads((run_dir / "model" / "config.json").read_text())
    assert saved["architectures"] == ["BertForMaskedLM"] and len(saved["prompt_label_word_ids"]) == 5

    texts = tmp_path / "new.csv"
    texts.write_text("text\nshares fell on the stock market\nthe striker scored twice\n")
    predicted = bertlab("predict", str(run_dir), "--input", str(texts), "--out", "-")
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.splitlines()
    assert lines[0].startswith("text,prediction,prob_business") and len(lines) == 3

    evaluated = bertlab("evaluate", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    best = record["metrics"]["test_best/accuracy"]
    assert f"test/accuracy                {best:.4f}" in evaluated.stdout  # the saved weights score as the run did

    report = bertlab("report", str(sweep))
    assert report.returncode == 0, report.stderr
    assert (sweep / "report.md").is_file()


def test_roberta_pair_task_of_ones_own_with_demonstrations_aux_loss_and_the_methods(tmp_path):
    model_dir = write_tiny(
        "roberta", tmp_path / "tiny_roberta", masked_lm=True, tokenizer=bpe_with_words(["bad", "good"])
    )
    data = tmp_path / "data"
    data.mkdir()
    for name, n in (("train.jsonl", 24), ("dev.jsonl", 12)):
        rows = [
            {"first": f"review {i} of the film", "second": f"it was seen {i} times", "verdict": ["neg", "pos"][i % 2]}
            for i in range(n)
        ]
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_train(
        *FAST,
        f"model.name_or_path={model_dir}",
        "model.name=tiny",
        "task=csv",
        f"task.data_dir={data}",
        "task.train_file=train.jsonl",
        "task.dev_file=dev.jsonl",
        "task.text_fields=[first,second]",
        "task.label_field=verdict",
        "task.template='{text_a}. {text_b|lower_first}: {mask}.'",
        "task.label_words=[bad,good]",
        "approach.demonstrations=similar",
        "approach.aux_mlm_weight=1e-4",
        "optimizer=bertadam",
        "reinit=1",
        "llrd=0.9",
        "mixout=0.1",
        "prior_wd=0.01",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "ok", record.get("error")
    assert record["head"].startswith("kept the checkpoint's masked-LM head")
    assert record["global_steps"] == 4


def test_label_word_of_several_pieces_is_refused_before_training(tmp_path):
    model_dir = write_tiny("roberta", tmp_path / "tiny_roberta", masked_lm=True, tokenizer=bpe_with_words(["good"]))
    data = tmp_path / "data"
    data.mkdir()
    rows = "".join("text\tlabel\n" if i == 0 else f"row {i}\t{i % 2}\n" for i in range(41))
    (data / "train.tsv").write_text(rows)
    (data / "dev.tsv").write_text(rows)
    proc = run_train(
        *FAST,
        f"model.name_or_path={model_dir}",
        "task=csv",
        f"task.data_dir={data}",
        "task.train_file=train.tsv",
        "task.dev_file=dev.tsv",
        "task.text_fields=[text]",
        "task.label_field=label",
        "task.template='{text_a} It was {mask}.'",
        "task.label_words=[bad,good]",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode != 0
    assert (
        "the label word 'bad' is not one token of this model's vocabulary: it became the pieces ['Ġ', 'b', 'a', 'd']"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_regression_task_of_ones_own_between_two_poles(tmp_path):
    model_dir = write_tiny("bert", tmp_path / "tiny_mlm", masked_lm=True)
    data = tmp_path / "data"
    data.mkdir()
    rows = "a\tb\tscore\n" + "".join(f"a man plays {i}\ta man is playing {i}\t{i % 6 * 0.8:.1f}\n" for i in range(30))
    (data / "train.tsv").write_text(rows)
    (data / "dev.tsv").write_text(rows)
    proc = run_train(
        *FAST,
        f"model.name_or_path={model_dir}",
        "model.name=tiny",
        "task=csv",
        "task.problem=regression",
        "task.metrics=[pearson,spearman]",
        "task.main_metric=spearman",
        f"task.data_dir={data}",
        "task.train_file=train.tsv",
        "task.dev_file=dev.tsv",
        "task.text_fields=[a,b]",
        "task.label_field=score",
        "task.template='{text_a}{mask}, {text_b|lower_first}'",
        "task.label_words=[no,yes]",
        "task.score_range=[0,5]",
        "approach.demonstrations=random",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "ok", record.get("error")
    assert "test_best/spearman" in record["metrics"]
