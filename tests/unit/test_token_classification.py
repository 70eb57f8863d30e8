"""Token classification: the CoNLL/JSONL readers, sub-word label alignment, seqeval metrics,
sampling, the token cache key and the config rules (fixtures: tests/fixtures/conll2003, tokens)."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from seqeval import metrics as seqeval
from seqeval.scheme import IOB1, IOB2

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import token_cache
from bertlab.data.sampling import make_splits
from bertlab.problems.token_classification.encoder import IGNORE, TagEncoder, align_labels, continuation_tags
from bertlab.problems.token_classification.metrics import build_tag_metrics, seqeval_scores, tag_baseline
from bertlab.problems.token_classification.reader import infer_labels, read_tagged
from tests.helpers.families import ENCODER_FAMILIES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONLL = FIXTURES / "conll2003"
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


@pytest.fixture
def task(compose_train):
    def task(*overrides, name="conll2003"):
        cfg = compose_train(f"task={name}", *overrides)
        return cfg.task

    return task


def conll_task(task, tmp_path=None, **files):
    """The conll2003 task on the fixture files, or on `files` ({name: text}) written to tmp_path."""
    if files:
        for name in ("train.txt", "valid.txt", "test.txt"):
            (tmp_path / name).write_text(files.get(name, (CONLL / name).read_text()))
    return task(f"task.data_dir={tmp_path if files else CONLL}")


# ---------------------------------------------------------------- readers


def test_conll_files_are_read_as_sentences_without_docstart(task):
    pools = read_tagged(conll_task(task))
    assert {k: len(v) for k, v in pools.items()} == {"train": 24, "dev": 10, "test": 10}
    first = pools["train"][0]
    lines = (CONLL / "train.txt").read_text().split("\n\n")[1].splitlines()  # after -DOCSTART-
    assert first.tokens == tuple(line.split()[0] for line in lines)
    assert [NER[t] for t in first.tags] == [line.split()[3] for line in lines]
    assert all("-DOCSTART-" not in s.tokens for pool in pools.values() for s in pool)


def test_tag_column_picks_the_column(task):
    t = conll_task(task)
    with open_dict(t):
        t.tag_column, t.labels, t.tag_scheme = 2, None, None  # chunk tags, inferred
    pools = read_tagged(t)
    assert t.labels[0] == "O" and "B-NP" in t.labels and "B-PER" not in t.labels
    assert len(pools["train"]) == 24


def test_jsonl_files_with_inferred_labels(task):
    t = task(
        f"task.data_dir={FIXTURES / 'tokens'}", "task.train_file=train.jsonl", "task.dev_file=dev.jsonl", name="tokens"
    )
    pools = read_tagged(t)
    assert set(pools) == {"train", "dev"} and len(pools["train"]) == 20
    # O first, then by type, B- before I- (the fixture's MISC entities are single words: no I-MISC)
    assert list(t.labels) == ["O", "B-LOC", "I-LOC", "B-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert infer_labels({"I-PER", "O", "B-PER", "B-LOC"}) == ["O", "B-LOC", "B-PER", "I-PER"]
    row = json.loads((FIXTURES / "tokens" / "train.jsonl").read_text().splitlines()[0])
    assert [t.labels[i] for i in pools["train"][0].tags] == row["tags"]


def test_a_line_with_other_columns_names_file_and_line(task, tmp_path):
    text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n\n"
    with pytest.raises(DataError, match=r"train.txt, line 4: 3 columns, the file's first word line has 4"):
        read_tagged(conll_task(task, tmp_path, **{"train.txt": text}))


def test_a_tag_outside_the_labels_names_file_line_tag_and_valid_tags(task, tmp_path):
    text = "EU NNP B-NP B-ORG\nrejects VBZ B-VP B-ORGG\n\n"
    with pytest.raises(DataError) as err:
        read_tagged(conll_task(task, tmp_path, **{"valid.txt": text}))
    message = str(err.value)
    assert "valid.txt, line 2: tag 'B-ORGG'" in message and str(NER) in message


def test_tag_column_out_of_range(task, tmp_path):
    t = conll_task(task, tmp_path, **{"train.txt": "EU B-ORG\n\n"})
    with pytest.raises(ConfigError, match="task.tag_column=3 is out of range.*has 2 columns"):
        read_tagged(t)


def test_iob1_data_read_as_iob2_is_refused(task, tmp_path):
    iob1 = "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\n"
    with pytest.raises(DataError, match="follows 'O', which IOB2 does not allow.*task.tag_scheme=IOB1"):
        read_tagged(conll_task(task, tmp_path, **{"train.txt": iob1}))
    t = conll_task(task, tmp_path, **{name: iob1 for name in ("train.txt", "valid.txt", "test.txt")})
    with open_dict(t):
        t.tag_scheme = "IOB1"
    assert read_tagged(t)["train"][0].tags == (NER.index("I-ORG"), 0)


def test_jsonl_with_unequal_lengths(task, tmp_path):
    (tmp_path / "train.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n')
    (tmp_path / "dev.jsonl").write_text('{"tokens": ["a"], "tags": ["O"]}\n')
    t = task(f"task.data_dir={tmp_path}", "task.train_file=train.jsonl", "task.dev_file=dev.jsonl", name="tokens")
    with pytest.raises(DataError, match=r"train.jsonl, line 1: .*got 2 words and 1 tags"):
        read_tagged(t)


# ---------------------------------------------------------------- label alignment


def test_align_labels_by_hand():
    # [CLS] new york ##er ##s went [SEP]: words 0 "new", 1 "yorkers" (3 pieces), 2 "went"
    word_ids = [None, 0, 1, 1, 1, 2, None]
    tags = (NER.index("B-LOC"), NER.index("B-PER"), 0)
    assert align_labels(word_ids, tags, None) == [IGNORE, 5, 1, IGNORE, IGNORE, 0, IGNORE]
    continuation = continuation_tags(NER)
    assert align_labels(word_ids, tags, continuation) == [IGNORE, 5, 1, 2, 2, 0, IGNORE]  # B-PER -> I-PER
    assert align_labels([None, 0, 0, None], (NER.index("I-ORG"),), continuation) == [IGNORE, 4, 4, IGNORE]


def test_label_all_pieces_needs_the_inside_tag():
    with pytest.raises(ConfigError, match="'I-PER', which is not in task.labels"):
        continuation_tags(["O", "B-PER"])


def test_encoder_labels_first_pieces_and_all_pieces_on_train_only(tiny_bert_dir):
    from transformers import AutoTokenizer

    from bertlab.problems.token_classification.reader import TaggedSentence

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    words = ("Grobbelaar", "met", "Kaliningrad")
    assert len(tokenizer.tokenize("Grobbelaar")) > 1 and len(tokenizer.tokenize("Kaliningrad")) > 1
    sentence = TaggedSentence(words, (NER.index("B-PER"), 0, NER.index("B-LOC")))
    first = TagEncoder(tokenizer, 64, NER, label_all_pieces=False).encode([sentence], "train")[0]
    every = TagEncoder(tokenizer, 64, NER, label_all_pieces=True)
    all_train, all_val = every.encode([sentence], "train")[0], every.encode([sentence], "val")[0]
    pieces = [len(tokenizer.tokenize(w)) for w in words]
    expected_first = [IGNORE]
    expected_all = [IGNORE]
    for n, tag in zip(pieces, sentence.tags):
        expected_first += [tag] + [IGNORE] * (n - 1)
        expected_all += [tag] + [continuation_tags(NER)[tag]] * (n - 1)
    assert first["labels"] == expected_first + [IGNORE] == all_val["labels"]
    assert all_train["labels"] == expected_all + [IGNORE]
    assert len(first["labels"]) == len(first["input_ids"])
    assert every.cache_tag("train") != every.cache_tag("val")


def test_truncation_drops_the_words_beyond_max_length(tiny_bert_dir):
    from transformers import AutoTokenizer

    from bertlab.problems.token_classification.reader import TaggedSentence

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    row = TagEncoder(tokenizer, 5, NER, False).encode([TaggedSentence(("a",) * 10, (0,) * 10)], "val")[0]
    assert len(row["input_ids"]) == 5 and sum(label != IGNORE for label in row["labels"]) == 3


def test_collator_pads_labels_with_ignore(tiny_bert_dir):
    from transformers import AutoTokenizer

    from bertlab.problems.token_classification.reader import TaggedSentence

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    encoder = TagEncoder(tokenizer, 64, NER, False)
    rows = encoder.encode([TaggedSentence(("a",), (0,)), TaggedSentence(("a", "b", "c"), (0, 1, 2))], "val")
    batch = encoder.collate(rows)
    assert batch["labels"].shape == batch["input_ids"].shape == (2, 5)
    assert batch["labels"][0].tolist() == [IGNORE, 0, IGNORE, IGNORE, IGNORE]


# ---------------------------------------------------------------- metrics against seqeval


CASES = [
    # gold, predicted (word level)
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["B-PER", "I-PER", "O", "B-LOC"], ["I-PER", "I-PER", "O", "O"]),  # I- start: strict IOB2 drops it
    (["B-ORG", "I-ORG", "I-ORG", "O"], ["B-ORG", "I-ORG", "B-ORG", "O"]),  # split entity
    (["O", "B-MISC", "O", "B-LOC"], ["O", "B-MISC", "I-MISC", "B-LOC"]),
]
IOB1_CASES = [
    (["I-PER", "I-PER", "O", "I-LOC"], ["I-PER", "I-PER", "O", "I-LOC"]),
    (["I-PER", "B-PER", "O", "I-LOC"], ["I-PER", "I-PER", "O", "I-LOC"]),  # two adjacent PERs vs one
    (["I-ORG", "I-ORG", "O", "O"], ["I-ORG", "O", "O", "I-MISC"]),
]


@pytest.mark.parametrize("scheme,cases,ref", [("IOB2", CASES, IOB2), ("IOB1", IOB1_CASES, IOB1), (None, CASES, None)])
def test_scores_are_seqevals(scheme, cases, ref):
    y_true, y_pred = [list(g) for g, _ in cases], [list(p) for _, p in cases]
    kw = {} if ref is None else {"mode": "strict", "scheme": ref}
    got = seqeval_scores(y_true, y_pred, scheme)
    assert got["entity_f1"] == pytest.approx(seqeval.f1_score(y_true, y_pred, **kw))
    assert got["entity_precision"] == pytest.approx(seqeval.precision_score(y_true, y_pred, **kw))
    assert got["entity_recall"] == pytest.approx(seqeval.recall_score(y_true, y_pred, **kw))
    assert got["token_accuracy"] == pytest.approx(seqeval.accuracy_score(y_true, y_pred))


def test_iob2_case_by_hand():
    # gold entities: PER, LOC | PER, LOC | ORG | MISC, LOC = 7; predicted (strict IOB2): PER, LOC | none
    # (I- starts) | ORG (2 words), ORG (1) | MISC (2 words), LOC = 6; correct: PER, LOC, LOC = 3
    got = seqeval_scores([list(g) for g, _ in CASES], [list(p) for _, p in CASES], "IOB2")
    assert got["entity_precision"] == pytest.approx(3 / 6) and got["entity_recall"] == pytest.approx(3 / 7)
    # conlleval's lenient rule counts case 2's I-PER I-PER as a PER: 7 predicted, 4 correct
    lenient = seqeval_scores([list(g) for g, _ in CASES], [list(p) for _, p in CASES], None)
    assert lenient["entity_precision"] == pytest.approx(4 / 7) and lenient["entity_recall"] == pytest.approx(4 / 7)
    assert got["token_accuracy"] == pytest.approx(12 / 16)


def test_metric_scores_only_labelled_positions_across_batches():
    index = {tag: i for i, tag in enumerate(NER)}
    metrics = build_tag_metrics(["entity_f1", "token_accuracy"], NER, "IOB2", "val")
    y_true, y_pred = [], []
    for batch in (CASES[:2], CASES[2:]):
        target = torch.full((len(batch), 9), IGNORE)
        preds = torch.randint(0, len(NER), (len(batch), 9))  # noise at ignored positions
        for row, (gold, pred) in enumerate(batch):
            positions = [1, 2, 4, 7]  # first pieces, scattered as sub-words would leave them
            target[row, positions] = torch.tensor([index[t] for t in gold])
            preds[row, positions] = torch.tensor([index[t] for t in pred])
            y_true.append(list(gold))
            y_pred.append(list(pred))
        metrics.update(preds, target)
    got = {k: float(v) for k, v in metrics.compute().items()}
    assert got["val/entity_f1"] == pytest.approx(seqeval.f1_score(y_true, y_pred, mode="strict", scheme=IOB2))
    assert got["val/token_accuracy"] == pytest.approx(seqeval.accuracy_score(y_true, y_pred))


def test_baseline_tags_everything_with_the_majority_tag():
    train = [(0, 0, 1), (0, 5)]
    test = [(1, 2, 0), (0, 0)]
    scores = tag_baseline(["entity_f1", "token_accuracy"], NER, "IOB2", train, test)
    assert scores == {"test/entity_f1": 0.0, "test/token_accuracy": pytest.approx(3 / 5)}


# ---------------------------------------------------------------- sampling, cache key, config


def test_sampling_random_by_data_seed_val_from_valid_test_whole(task):
    t = conll_task(task)
    with open_dict(t):
        t.n_train, t.n_val = 10, 4
    pools = read_tagged(t)
    splits = make_splits(pools, t, 0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "val": 4, "test": 10}
    assert all(s in pools["dev"] for s in splits["val"]) and splits["test"] == pools["test"]
    assert make_splits(pools, t, 0) == splits and make_splits(pools, t, 1)["train"] != splits["train"]
    with open_dict(t):
        t.n_val = 11
    with pytest.raises(ConfigError, match="task.n_val=11 is more than the 10 examples in the dev pool"):
        make_splits(pools, t, 0)


def test_cache_key_changes_with_the_alignment(task):
    pools = read_tagged(conll_task(task))
    keys = {token_cache.cache_key("fp", pools["train"], 64, False, tag) for tag in ("", "a", "b")}
    assert len(keys) == 3
    relabelled = [type(s)(s.tokens, tuple(0 for _ in s.tags)) for s in pools["train"]]
    assert token_cache.cache_key("fp", relabelled, 64, False) != token_cache.cache_key("fp", pools["train"], 64, False)


@pytest.mark.parametrize(
    "override,message",
    [
        ("task.tag_scheme=BIO", "task.tag_scheme=BIO is invalid; valid: IOB1, IOB2"),
        ("task.tag_column=0", "task.tag_column=0 is invalid"),
        ("task.label_all_pieces=yes", "task.label_all_pieces=yes is invalid"),
        ("task.sampling=paper", "task.sampling=paper reproduces"),
        ("reinit_pooler=true", "reinit_pooler=true does not apply to token classification"),
        ("task.metrics=[accuracy]", "task.metrics: 'accuracy' does not apply to token_classification"),
    ],
)
def test_bad_values_are_one_message(compose_train, override, message):
    from bertlab.problems.metrics import check_metrics
    from bertlab.run.checks import check_config

    cfg = compose_train("task=conll2003", "task.data_dir=x", override)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
        check_metrics(list(cfg.task.metrics), cfg.task.main_metric, cfg.task.problem)


def test_token_problem_on_a_sequence_task_names_the_missing_keys(compose_train):
    from bertlab.run.checks import check_config

    cfg = compose_train("task=rte", "task.problem=token_classification")
    with pytest.raises(ConfigError, match="needs task.tag_column.*start from task=tokens"):
        check_config(cfg)


def test_the_token_head_is_the_classifier_for_every_method(tiny_bert_dir):
    from bertlab.model.anatomy import anatomy
    from bertlab.model.load import load_config, load_model
    from bertlab.optim.param_groups import param_groups
    from bertlab.problems.token_classification import TOKEN_CLASSIFICATION

    config = load_config(str(tiny_bert_dir), 9, "token_classification")
    _, model = load_model(str(tiny_bert_dir), config, auto_class=TOKEN_CLASSIFICATION.auto_class)
    parts = anatomy(model)
    assert type(model).__name__ == "BertForTokenClassification" and parts.pooler is None
    assert {parts.block_of(n) for n, _ in model.named_parameters() if n.startswith("classifier.")} == {"classifier"}
    groups = param_groups(model, lr=1.0, weight_decay=0.01, llrd=0.5)
    lrs = {g["name"].split("/")[0]: g["lr"] for g in groups}
    assert lrs == {"head": 1.0, "layer_1": 0.5, "layer_0": 0.25, "embeddings": 0.125}
    head = {id(p) for g in groups if g["name"].startswith("head/") for p in g["params"]}
    assert head == {id(p) for n, p in model.named_parameters() if n.startswith("classifier.")}


# ---------------------------------------------------------------- the hub path (a stand-in for load_dataset)


def test_hub_copy_in_eriktks_conll2003_shape(task, monkeypatch):
    import datasets

    ner = datasets.Sequence(datasets.ClassLabel(names=NER))
    pos = datasets.Sequence(datasets.ClassLabel(names=["NNP", "VBZ", "."]))
    features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "pos_tags": pos, "ner_tags": ner}
    )
    rows = {
        "tokens": [["-DOCSTART-"], ["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]],
        "pos_tags": [[0], [0, 1, 0, 0], [0, 0]],
        "ner_tags": [[0], [3, 0, 7, 0], [1, 2]],
    }
    calls = []

    def load_dataset(path, name):
        calls.append((path, name))
        split = datasets.Dataset.from_dict(rows, features=features)
        return datasets.DatasetDict({"train": split, "validation": split, "test": split})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    t = task()  # data_dir null: the hub
    pools = read_tagged(t)
    assert calls == [("eriktks/conll2003", None)]
    assert {k: len(v) for k, v in pools.items()} == {"train": 2, "dev": 2, "test": 2}  # -DOCSTART- dropped
    assert pools["train"][0].tokens == ("EU", "rejects", "German", "call") and pools["train"][0].tags == (3, 0, 7, 0)
    with open_dict(t):
        t.tag_column = 2  # chunk_tags: not in this copy
    with pytest.raises(ConfigError, match="task.tag_column=2: the hub copy eriktks/conll2003 has no such tag column"):
        read_tagged(t)


def test_hub_unreachable_is_one_message(task, monkeypatch):
    import datasets

    def load_dataset(path, name):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(
        DataError, match="Cannot load task 'conll2003'.*point task.data_dir at a folder holding train.txt"
    ):
        read_tagged(task())


def test_every_family_has_a_token_head_the_methods_find(tiny_family_dirs):
    from bertlab.methods.reinit import reinit_top_layers
    from bertlab.model.anatomy import anatomy
    from bertlab.model.load import load_config, load_model
    from bertlab.problems.token_classification import TOKEN_CLASSIFICATION

    for family in ENCODER_FAMILIES:  # the decoder among the fixtures is refused before any model loads
        path = tiny_family_dirs[family]
        config = load_config(str(path), 5, "token_classification")
        _, model = load_model(str(path), config, auto_class=TOKEN_CLASSIFICATION.auto_class)
        parts = anatomy(model)
        head = {n for n, _ in model.named_parameters() if parts.block_of(n) == "classifier"}
        assert head and all(n.startswith("classifier.") for n in head), (family, head)
        assert reinit_top_layers(model, 1) == [parts.blocks[-1]], family  # no pooler to re-draw


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["augment=eda_offline"], "augment=eda_offline is for sequence tasks"),
        (["distill=self"], "distill=self is for sequence tasks"),
        (["head=mean"], "head=mean reads one vector per example"),
    ],
)
def test_sequence_only_choices_are_refused_for_token_tasks(compose_train, overrides, message):
    from bertlab.run.checks import check_config

    cfg = compose_train("task=conll2003", f"task.data_dir={FIXTURES / 'conll2003'}", *overrides)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
