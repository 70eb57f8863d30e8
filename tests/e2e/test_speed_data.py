"""What the speed work touches: dynamic padding and length grouping change no per-example output
(attention masks right), the token cache is keyed by everything the encodings depend on, the
length-grouped order keeps the resumable loader's protocol, and a run records its start-up time
and padding efficiency. (The foreach BERTAdam vs the reference formula: tests/unit/test_optim.py.)"""

import json
import random

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertlab.data import token_cache
from bertlab.data.datamodule import FewSampleDataModule, tokenize
from bertlab.data.length_grouping import LengthGroupedShuffle, epoch_batches, padding_efficiency
from bertlab.data.readers import Example
from tests.helpers.e2e import TINY, run_train

WORDS = "the a cat dog sat on mat bank river money market stock runs quickly slowly over under".split()


def make_examples(n: int, pairs: bool, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 2, 3, 8, 20, 40])))

    return [Example(sentence(), sentence() if pairs else None, rng.randrange(2)) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_pair(tiny_bert_dir):
    """The tiny BERT's tokenizer and a 2-label classifier in eval mode."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2).eval()
    return tokenizer, model


def logits_by_example(model, collate, encoded, batches, drop=("labels",)) -> dict[int, torch.Tensor]:
    out = {}
    with torch.no_grad():
        for batch in batches:
            inputs = collate([{k: v for k, v in encoded[i].items() if k not in drop} for i in batch])
            logits = model(**inputs).logits
            out.update(zip(batch, logits))
    return out


@pytest.mark.parametrize("pairs", [False, True])
def test_dynamic_padding_and_length_grouping_match_full_padding(tiny_pair, pairs):
    tokenizer, model = tiny_pair
    examples = make_examples(40, pairs)
    max_length = 64
    dm = FewSampleDataModule(
        {"train": examples}, tokenizer, max_length, False, batch_size=8, eval_batch_size=8, seed=3, group_by_length=True
    )
    dm.setup()
    encoded = dm.encoded["train"]
    lengths = [len(e["input_ids"]) for e in encoded]
    assert len(set(lengths)) > 5 and max(lengths) <= max_length  # really ragged, some truncated

    from transformers import DataCollatorWithPadding

    full = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    reference = logits_by_example(model, full, encoded, [[i] for i in range(len(encoded))])
    alone = logits_by_example(model, dm.collate, encoded, [[i] for i in range(len(encoded))])
    random_batches = logits_by_example(model, dm.collate, encoded, epoch_batches(lengths, 8, False, seed=3))
    grouped = epoch_batches(lengths, 8, True, seed=3)
    grouped_out = logits_by_example(model, dm.collate, encoded, grouped)
    for i in range(len(encoded)):
        for other in (alone, random_batches, grouped_out):
            torch.testing.assert_close(other[i], reference[i], atol=1e-5, rtol=1e-4)

    # the datamodule's training loader yields exactly the length-grouped batches measured above
    loader_batches = [b["input_ids"] for b in dm.train_dataloader()]
    assert len(loader_batches) == len(grouped)
    for tensor, batch in zip(loader_batches, grouped):
        assert tensor.shape == (len(batch), max(lengths[i] for i in batch))  # padded to its longest only
        assert tensor[0, : lengths[batch[0]]].tolist() == encoded[batch[0]]["input_ids"]


def test_evaluation_batches_are_sorted_by_length_and_score_as_the_dataset_order(tiny_pair):
    """Val/test loaders run longest first (little padding); every example once, same metrics."""
    from bertlab.problems.metrics import build_metrics, predictions

    tokenizer, model = tiny_pair
    examples = make_examples(45, pairs=True, seed=1)
    dm = FewSampleDataModule({"val": examples}, tokenizer, 64, False, batch_size=8, eval_batch_size=8)
    dm.setup()
    lengths = [len(e["input_ids"]) for e in dm.encoded["val"]]
    batches = list(dm.val_dataloader())
    widths = [b["input_ids"].shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True) and widths[0] == max(lengths)
    assert sum(b["input_ids"].shape[0] for b in batches) == len(examples)
    sorted_pad = sum(b["attention_mask"].sum() for b in batches) / sum(b["attention_mask"].numel() for b in batches)
    plain = padding_efficiency(lengths, [list(range(i, min(i + 8, 45))) for i in range(0, 45, 8)])
    assert sorted_pad > plain

    def scores(loader_batches):
        metrics = build_metrics(["accuracy", "f1"], 2, "val")
        with torch.no_grad():
            for b in loader_batches:
                labels = b.pop("labels")
                metrics.update(predictions(model(**b).logits, "classification"), labels)
        return {k: float(v) for k, v in metrics.compute().items()}

    in_order = [dm.collate(dm.encoded["val"][i : i + 8]) for i in range(0, 45, 8)]
    assert scores(batches) == pytest.approx(scores(in_order))


def test_length_grouped_order_is_a_seeded_resumable_permutation():
    rng = random.Random(0)
    lengths = [rng.randint(3, 128) for _ in range(1003)]
    e0 = epoch_batches(lengths, 16, True, seed=1, epoch=0)
    assert sorted(i for b in e0 for i in b) == list(range(1003))
    assert [len(b) for b in e0[:-1]] == [16] * (len(e0) - 1) and len(e0[-1]) == 1003 % 16  # partial last
    assert e0 == epoch_batches(lengths, 16, True, seed=1, epoch=0)
    assert e0 != epoch_batches(lengths, 16, True, seed=1, epoch=1)
    assert e0 != epoch_batches(lengths, 16, True, seed=2, epoch=0)
    grouped = padding_efficiency(lengths, e0)
    plain = padding_efficiency(lengths, epoch_batches(lengths, 16, False, seed=1))
    assert grouped > 0.9 > plain > padding_efficiency(lengths, e0, pad_to=128)
    # batch order is shuffled, not longest-first within each mega-batch (no curriculum)
    longest = [max(lengths[i] for i in b) for b in e0[:-1]]
    assert longest != sorted(longest, reverse=True)
    # mid-epoch resume (resumable_loader protocol): skipping `start` samples continues the same order
    sampler = LengthGroupedShuffle(lengths, 16, seed=1)
    sampler.start = 5 * 16
    assert list(sampler) == [i for b in e0[5:] for i in b]


def test_padding_efficiency_arithmetic():
    assert padding_efficiency([2, 4, 4, 4], [[0, 1], [2, 3]]) == pytest.approx(14 / 16)
    assert padding_efficiency([2, 4], [[0, 1]], pad_to=8) == pytest.approx(6 / 16)


def test_token_cache_key_changes_with_tokenizer_length_and_data(tiny_bert_dir):
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    examples = make_examples(10, pairs=True)
    fp = token_cache.tokenizer_fingerprint(tok)
    key = token_cache.cache_key(fp, examples, 128, False)
    assert key == token_cache.cache_key(
        token_cache.tokenizer_fingerprint(AutoTokenizer.from_pretrained(tiny_bert_dir)), examples, 128, False
    )
    cased = AutoTokenizer.from_pretrained(tiny_bert_dir, do_lower_case=False)
    extended = AutoTokenizer.from_pretrained(tiny_bert_dir)
    extended.add_tokens(["bertlabtoken"])
    others = {
        "cased tokenizer": token_cache.cache_key(token_cache.tokenizer_fingerprint(cased), examples, 128, False),
        "changed vocab": token_cache.cache_key(token_cache.tokenizer_fingerprint(extended), examples, 128, False),
        "max_length": token_cache.cache_key(fp, examples, 64, False),
        "regression": token_cache.cache_key(fp, examples, 128, True),
        "another example": token_cache.cache_key(fp, examples[:-1] + [Example("x", "y", 0)], 128, False),
        "a label": token_cache.cache_key(
            fp, examples[:-1] + [Example(examples[-1].text_a, examples[-1].text_b, 1 - examples[-1].label)], 128, False
        ),
        "pair boundary": token_cache.cache_key(fp, [Example("a b", "c", 0)], 128, False),
    }
    assert token_cache.cache_key(fp, [Example("a", "b c", 0)], 128, False) != others["pair boundary"]
    assert key not in others.values() and len(set(others.values())) == len(others)


def test_datamodule_reuses_the_cache_and_retokenises_on_change(tiny_bert_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    splits = {"train": make_examples(12, False, seed=1), "val": make_examples(5, False, seed=2)}

    def setup(max_length, tokenizer=tok):
        dm = FewSampleDataModule(splits, tokenizer, max_length, False, 4, 4, token_cache_dir=str(tmp_path))
        dm.setup()
        return dm

    first = setup(16)
    assert first.cache_hits == {"train": False, "val": False}
    assert len(list(tmp_path.glob("*.pt"))) == 2 and not list(tmp_path.glob("*.tmp"))  # no temp left over
    second = setup(16)
    assert second.cache_hits == {"train": True, "val": True}
    assert second.encoded == first.encoded == {n: tokenize(e, tok, 16, False) for n, e in splits.items()}
    longer = setup(64)  # another max_length: tokenised again, and really longer
    assert longer.cache_hits == {"train": False, "val": False}
    assert max(len(e["input_ids"]) for e in longer.encoded["train"]) > 16
    cased = setup(16, AutoTokenizer.from_pretrained(tiny_bert_dir, do_lower_case=False))
    assert cased.cache_hits == {"train": False, "val": False}
    # a torn entry is ignored and rewritten
    for path in tmp_path.glob("*.pt"):
        path.write_bytes(b"torn")
    again = setup(16)
    assert again.cache_hits == {"train": False, "val": False} and again.encoded == first.encoded
    assert setup(16).cache_hits == {"train": True, "val": True}


def test_cache_off_writes_nothing(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    dm = FewSampleDataModule({"train": make_examples(4, False)}, tok, 16, False, 2, 2, token_cache_dir=None)
    dm.setup()
    assert dm.cache_hits == {"train": False} and not list(tmp_path.rglob("*.pt"))


@pytest.mark.slow
def test_run_records_startup_padding_efficiency_and_uses_the_cache(tmp_path):
    cache = tmp_path / "tokens"
    proc = run_train(
        *TINY,
        "task.max_length=128",
        "data.group_by_length=true",
        f"data.token_cache={cache}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "ok"
    assert 0 < result["startup_s"] < 120
    assert 0 < result["padding_efficiency"] <= 1
    assert result["model_tflops_per_s"] > 0 and result["mfu"] is None  # no known peak for a CPU
    assert result["token_cache_hits"] == {"train": False, "val": False, "test": False}
    assert len(list(cache.glob("*.pt"))) == 3


def test_flop_count_matches_the_transformer_estimate(tiny_bert_dir):
    from types import SimpleNamespace

    from bertlab.callbacks.throughput import TrainThroughput

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    cb = TrainThroughput()
    trainer = SimpleNamespace(precision="32-true", strategy=SimpleNamespace(root_device=torch.device("cpu")))
    cb.on_fit_start(trainer, SimpleNamespace(model=model))
    n = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    c = model.config
    batch = {"input_ids": torch.ones(4, 10, dtype=torch.long), "attention_mask": torch.ones(4, 10, dtype=torch.long)}
    cb.on_train_batch_start(trainer, None, batch, 0)
    cb.on_train_batch_end(trainer, None, None, batch, 0)
    assert cb.flops == 4 * (6 * n * 10 + 12 * c.num_hidden_layers * c.hidden_size * 10 * 10)
    assert cb.model_tflops_per_s > 0 and cb.mfu is None and cb.padding_efficiency == 1.0
