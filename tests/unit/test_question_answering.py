"""Question answering: the SQuAD JSON/JSONL/hub readers and their bad input, windows and answer
positions on hand cases, post-processing on hand cases (answers across window boundaries
included), EM/F1 against the official SQuAD v1.1 formula, the baseline and the config rules
(fixtures: tests/fixtures/squad, tests/fixtures/qa)."""

import collections
import json
import re
import string
from pathlib import Path

import pytest
import torch

from bertlab.core.errors import ConfigError, DataError, ModelError
from bertlab.data import token_cache
from bertlab.data.sampling import make_splits
from bertlab.problems.question_answering.encoder import QAEncoder
from bertlab.problems.question_answering.metrics import best_answer, build_qa_metrics, qa_baseline, squad_scores
from bertlab.problems.question_answering.reader import QAExample, read_squad

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SQUAD = FIXTURES / "squad"
COLOURS = "red blue green black white brown pink gold gray orange purple silver yellow violet cyan"


@pytest.fixture
def task(compose_train):
    def task(*overrides, name="squad"):
        return compose_train(f"task={name}", *overrides).task

    return task


@pytest.fixture
def tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert_dir))


def example(answer: str, context: str = COLOURS, qid: str = "q") -> QAExample:
    return QAExample(qid, "what?", context, (answer,), (context.index(answer),))


# ---------------------------------------------------------------- reading


def test_squad_json_and_the_same_questions_as_jsonl(task):
    pools = read_squad(task(f"task.data_dir={SQUAD}"))
    assert {k: len(v) for k, v in pools.items()} == {"train": 27, "dev": 10}
    first = pools["train"][0]
    assert (first.id, first.question, first.answers, first.starts) == (
        "tr0001",
        "In what country is Normandy located?",
        ("France",),
        (104,),
    )
    assert first.text_a == first.question and first.text_b == first.context and first.label is first
    assert pools["dev"][0].answers == ("the solid Earth", "solid Earth")  # every gold answer of a dev question
    jsonl = read_squad(
        task(
            "task.data_dir=" + str(FIXTURES / "qa"), "task.train_file=train.jsonl", "task.dev_file=dev.jsonl", name="qa"
        )
    )
    for pool in ("train", "dev"):
        assert [(e.question, e.context, e.answers, e.starts) for e in jsonl[pool]] == [
            (e.question, e.context, e.answers, e.starts) for e in pools[pool]
        ]


def write_squad(tmp_path, mutate) -> Path:
    data = json.loads((SQUAD / "train-v1.1.json").read_text())
    mutate(data)
    (tmp_path / "train-v1.1.json").write_text(json.dumps(data))
    (tmp_path / "dev-v1.1.json").write_text((SQUAD / "dev-v1.1.json").read_text())
    return tmp_path


def test_an_answer_start_off_its_text_names_file_and_question(task, tmp_path):
    def shift(data):
        data["data"][1]["paragraphs"][0]["qas"][2]["answers"][0]["answer_start"] += 1

    folder = write_squad(tmp_path, shift)
    with pytest.raises(
        DataError, match=r"train-v1.1.json, question id tr0008: answer '60%' is not at its answer_start"
    ):
        read_squad(task(f"task.data_dir={folder}"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["data"][0]["paragraphs"][0].pop("context"), r"data\[0\].paragraphs\[0\]: expected a 'context'"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].pop("id"), r"paragraphs\[0\].qas\[1\]: expected a 'id'"),
        (
            lambda d: d["data"][2]["paragraphs"][0]["qas"][0].update(answers=[]),
            "question id tr0010: the question has no answer .*SQuAD v1.1",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="104"),
            r"qas\[0\]: 'answer_start' must be a int; found '104'",
        ),
    ],
)
def test_fields_that_do_not_match_are_one_message(task, tmp_path, mutate, message):
    folder = write_squad(tmp_path, mutate)
    with pytest.raises(DataError, match=message):
        read_squad(task(f"task.data_dir={folder}"))


def test_jsonl_bad_rows_name_file_line_and_id(task, tmp_path):
    good = (FIXTURES / "qa" / "train.jsonl").read_text().splitlines()
    (tmp_path / "dev.jsonl").write_text((FIXTURES / "qa" / "dev.jsonl").read_text())
    rows = [json.loads(line) for line in good]
    rows[3].pop("context")
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    t = task(f"task.data_dir={tmp_path}", "task.train_file=train.jsonl", "task.dev_file=dev.jsonl", name="qa")
    with pytest.raises(DataError, match=r"train.jsonl, line 4: expected a JSON object with id, question, context"):
        read_squad(t)
    rows = [json.loads(line) for line in good]
    rows[4]["answers"]["text"] = ["Rolo"]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=r"train.jsonl, line 5 \(question id t5\): answer 'Rolo' is not at"):
        read_squad(t)


def test_hub_copy_in_rajpurkar_squad_shape(task, monkeypatch):
    import datasets

    row = {"id": ["h1"], "title": ["T"], "context": ["Paris is in France."], "question": ["Where is Paris?"]}
    row["answers"] = [{"text": ["France"], "answer_start": [12]}]
    calls = []

    def load_dataset(path, name):
        calls.append((path, name))
        split = datasets.Dataset.from_dict(row)
        return datasets.DatasetDict({"train": split, "validation": split})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    pools = read_squad(task())  # data_dir null: the hub
    assert calls == [("rajpurkar/squad", None)]
    assert pools["train"] == [QAExample("h1", "Where is Paris?", "Paris is in France.", ("France",), (12,))]


def test_hub_unreachable_is_one_message(task, monkeypatch):
    import datasets

    def load_dataset(path, name):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError, match="Cannot load task 'squad' .rajpurkar/squad.*train-v1.1.json and dev-v1.1.json"):
        read_squad(task())


def test_sampling_is_random_questions_by_data_seed(task):
    t = task(f"task.data_dir={SQUAD}", "task.n_train=10", "task.n_val=5")
    pools = read_squad(t)
    splits = make_splits(pools, t, 0)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [10, 5, 10]  # n_val from train, dev = test
    assert not {e.id for e in splits["train"]} & {e.id for e in splits["val"]}
    assert [e.id for e in make_splits(pools, t, 0)["train"]] == [e.id for e in splits["train"]]
    assert [e.id for e in make_splits(pools, t, 1)["train"]] != [e.id for e in splits["train"]]


# ---------------------------------------------------------------- windows


def test_windows_overlap_by_doc_stride_and_label_answers_by_hand(tokenizer):
    """max_length 16, stride 4: window 0 holds red..purple (words 0-10), window 1 gold..cyan (7-14)."""
    encoder = QAEncoder(tokenizer, 16, 4)
    crossing, inside, last = example("orange purple silver"), example("brown pink"), example("cyan")
    rows = encoder.encode([crossing, inside, last], "train")
    assert len(rows) == 6  # two windows per question
    assert tokenizer.convert_ids_to_tokens(rows[1]["input_ids"])[4:8] == ["gold", "gray", "orange", "purple"]
    positions = [(r["start_positions"], r["end_positions"]) for r in rows]
    # crossing the end of window 0: [CLS] there, whole in window 1 ([CLS] what ? [SEP] gold gray orange ...)
    assert positions[0:2] == [(0, 0), (6, 8)]
    assert positions[2:4] == [(9, 10), (0, 0)]  # brown pink: window 0 only
    assert positions[4:6] == [(0, 0), (11, 12)]  # cyan = cy ##an, both pieces
    for row, ex in zip(rows, [crossing, crossing, inside, inside, last, last]):
        s, e = row["start_positions"], row["end_positions"]
        if s:
            assert tokenizer.decode(row["input_ids"][s : e + 1]) == ex.answers[0]


def test_answer_tokens_matches_run_qa_on_every_position(tokenizer):
    """Every answer of every length in the colour context, one window: the span decodes to it."""
    words = COLOURS.split()[:12]
    context = " ".join(words)
    encoder = QAEncoder(tokenizer, 64, 8)
    for i in range(len(words)):
        for j in range(i, len(words)):
            ex = example(" ".join(words[i : j + 1]), context)
            (row,) = encoder.encode([ex], "train")
            assert (row["start_positions"], row["end_positions"]) == (4 + i, 4 + j)


def test_evaluation_windows_keep_their_map_here_not_in_the_batch(tokenizer):
    encoder = QAEncoder(tokenizer, 16, 4)
    examples = [example("cyan"), example("red")]
    items = encoder.encode(examples, "val")
    assert [i["feature_index"] for i in items] == [0, 1, 2, 3]
    items = encoder.remember("val", examples, items)
    assert all(set(i) == {"input_ids", "token_type_ids", "attention_mask", "feature_index"} for i in items)
    windows = encoder.windows["val"]
    assert windows.example_index == [0, 0, 1, 1]
    offsets = windows.offset_mapping[0]
    assert offsets[:4] == [None] * 4 and offsets[-1] is None  # [CLS] what ? [SEP] ... [SEP]
    assert COLOURS[slice(*offsets[4])] == "red"
    batch = encoder.collate(items)
    assert batch["feature_index"].tolist() == [0, 1, 2, 3] and batch["input_ids"].shape == (4, 16)


def test_cache_key_tells_training_from_evaluation_windows(tokenizer):
    encoder = QAEncoder(tokenizer, 16, 4)
    assert encoder.cache_tag("train") != encoder.cache_tag("val") == encoder.cache_tag("test")
    assert QAEncoder(tokenizer, 16, 5).cache_tag("val") != encoder.cache_tag("val")
    key = token_cache.cache_key("fp", [example("red")], 16, False, encoder.cache_tag("val"))
    assert key != token_cache.cache_key("fp", [example("blue")], 16, False, encoder.cache_tag("val"))


def test_slow_tokenizer_and_long_question_are_one_message(tokenizer):
    class SlowTokenizer:  # transformers 5 has no slow BERT tokenizer left to load
        is_fast = False

    with pytest.raises(ModelError, match="only fast tokenizers give; SlowTokenizer is a slow one"):
        QAEncoder(SlowTokenizer(), 16, 4)
    long = QAExample("long1", "what " * 12 + "?", COLOURS, ("red",), (0,))
    with pytest.raises(DataError, match="question id long1: the question leaves .* raise task.max_length"):
        QAEncoder(tokenizer, 16, 4).encode([example("red"), long], "train")


# ---------------------------------------------------------------- post-processing


def logits(n: int, peaks: dict[int, float]) -> torch.Tensor:
    out = torch.zeros(n)
    for i, v in peaks.items():
        out[i] = v
    return out


def test_best_answer_by_hand():
    context = "aa bb cc dd"
    spans = [None, (0, 2), (3, 5), (6, 8), (9, 11), None]
    starts, ends = logits(6, {0: 9.0, 2: 5.0, 3: 1.0}), logits(6, {5: 9.0, 1: 4.0, 3: 3.0})
    # [CLS]/[SEP] (None) are no candidates; end 1 is before start 2; the best valid pair is 2..3
    assert best_answer([0], [starts], [ends], [spans], context, 20, 30) == "bb cc"
    assert best_answer([0], [starts], [ends], [spans], context, 20, 1) == "bb"  # 2..2 (5 + 0) beats 3..3 (1 + 3)
    # n_best_size 1: start 0 ([CLS]) and end 5 ([SEP]) only: no candidate at all
    assert best_answer([0], [starts], [ends], [spans], context, 1, 30) == ""


def test_an_answer_across_a_window_boundary_is_taken_whole_from_the_next_window():
    """Context "aa bb cc dd", window 0 tokens aa bb cc, window 1 cc dd (stride 1). The answer "cc dd"
    crosses window 0's end: window 0 can only offer "cc" (its end token is not there)."""
    context = "aa bb cc dd"
    w0, w1 = [None, (0, 2), (3, 5), (6, 8), None], [None, (6, 8), (9, 11), None]
    starts = [logits(5, {3: 4.0}), logits(4, {1: 4.0})]
    ends = [logits(5, {3: 2.0}), logits(4, {2: 3.0})]
    assert best_answer([0, 1], starts, ends, [w0, w1], context, 20, 30) == "cc dd"
    assert best_answer([0], starts, ends, [w0, w1], context, 20, 30) == "cc"


def test_metric_collects_windows_across_batches_and_scores_each_question_once(tokenizer):
    """Logits that peak at the gold span in the window holding it: every question exact."""
    encoder = QAEncoder(tokenizer, 16, 4)
    examples = [example("orange purple silver", qid="a"), example("brown pink", qid="b"), example("cyan", qid="c")]
    items = encoder.remember("test", examples, encoder.encode(examples, "test"))
    gold = dict(enumerate(encoder.encode(examples, "train")))  # the same windows, labelled
    metrics = build_qa_metrics(["exact_match", "answer_f1"], encoder, 20, 30, "test_best")
    for batch_items in (items[4:], items[:4]):  # any order, any batching
        batch = encoder.collate(batch_items)
        n, length = batch["input_ids"].shape
        start, end = torch.zeros(n, length), torch.zeros(n, length)
        for row, f in enumerate(batch["feature_index"].tolist()):
            s, e = gold[f]["start_positions"], gold[f]["end_positions"]
            if s:
                start[row, s], end[row, e] = 10.0, 10.0
        metrics.update(batch["feature_index"], batch["attention_mask"], start, end)
    assert {k: float(v) for k, v in metrics.compute().items()} == {
        "test_best/exact_match": 1.0,
        "test_best/answer_f1": 1.0,
    }


# ---------------------------------------------------------------- EM / F1: the official SQuAD v1.1 formula


def normalize_answer(s):
    """SQuAD v1.1's evaluate-v1.1.py, verbatim."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_f1(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_em(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


CASES = [
    ("France", ["France"]),
    ("the France.", ["France"]),  # articles and punctuation are normalised away
    ("in France", ["France"]),
    ("Denmark, Iceland", ["Denmark, Iceland and Norway"]),
    ("solid Earth", ["the solid Earth", "solid Earth"]),  # the best over the gold answers
    ("rocks", ["the solid Earth", "mineralogical composition"]),
    ("", ["Cologne"]),
    ("1.8 million residents", ["1.8 million"]),
]


def test_scores_are_the_official_formula():
    preds = [p for p, _ in CASES]
    examples = [QAExample(str(i), "q", " ".join(g), tuple(g), tuple([0] * len(g))) for i, (_, g) in enumerate(CASES)]
    em = sum(max(official_em(p, g) for g in gs) for p, gs in CASES) / len(CASES)
    f1 = sum(max(official_f1(p, g) for g in gs) for p, gs in CASES) / len(CASES)
    scores = squad_scores(preds, examples)
    assert scores["exact_match"] == pytest.approx(em, abs=1e-6) and scores["answer_f1"] == pytest.approx(f1, abs=1e-6)
    assert (em, round(f1, 4)) == (3 / 8, round((1 + 1 + 2 / 3 + 2 * 0.5 * 1 / (0.5 + 1) + 1 + 0 + 0 + 0.8) / 8, 4))


def test_baseline_is_the_first_k_context_words():
    train = [example("red"), example("red blue green"), example("brown pink")]  # median answer: 2 words
    test = [example("red blue"), example("green")]
    scores = qa_baseline(["exact_match", "answer_f1"], train, test)
    assert scores == {"test/exact_match": pytest.approx(0.5), "test/answer_f1": pytest.approx((1 + 0) / 2)}


# ---------------------------------------------------------------- config rules


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.doc_stride=200", "task.doc_stride=200 is invalid with task.max_length=384.*less than 192"),
        ("task.doc_stride=-1", "task.doc_stride=-1 is invalid: an integer >= 0"),
        ("task.max_answer_length=0", "task.max_answer_length=0 is invalid: an integer >= 1"),
        ("task.n_best_size=two", "task.n_best_size=two is invalid"),
        ("task.sampling=paper", "task.sampling=paper reproduces"),
        ("reinit_pooler=true", "reinit_pooler=true does not apply to question answering"),
        ("augment=eda_offline", "augment=eda_offline is for sequence tasks"),
        ("distill=self", "distill=self is for sequence tasks"),
        ("head=mean", "head=mean reads one vector per example"),
        ("task.metrics=[accuracy]", "task.metrics: 'accuracy' does not apply to question_answering"),
    ],
)
def test_bad_values_are_one_message(compose_train, override, message):
    from bertlab.problems.metrics import check_metrics
    from bertlab.run.checks import check_config

    cfg = compose_train("task=squad", "task.data_dir=x", override)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
        check_metrics(list(cfg.task.metrics), cfg.task.main_metric, cfg.task.problem)


def test_qa_problem_on_a_sequence_task_names_the_missing_keys(compose_train):
    from bertlab.run.checks import check_config

    cfg = compose_train("task=rte", "task.problem=question_answering")
    with pytest.raises(ConfigError, match="needs task.doc_stride.*start from task=qa"):
        check_config(cfg)


def test_the_qa_head_is_the_classifier_for_every_method(tiny_bert_dir):
    from bertlab.methods.reinit import reinit_top_layers
    from bertlab.model.anatomy import anatomy
    from bertlab.model.load import load_config, load_model
    from bertlab.optim.param_groups import param_groups
    from bertlab.problems.question_answering import QUESTION_ANSWERING

    config = load_config(str(tiny_bert_dir), 2, "question_answering")
    _, model = load_model(str(tiny_bert_dir), config, auto_class=QUESTION_ANSWERING.auto_class)
    parts = anatomy(model)
    assert type(model).__name__ == "BertForQuestionAnswering" and parts.pooler is None
    assert model.qa_outputs.out_features == 2
    assert {parts.block_of(n) for n, _ in model.named_parameters() if n.startswith("qa_outputs.")} == {"classifier"}
    groups = param_groups(model, lr=1.0, weight_decay=0.01, llrd=0.5)
    head = {id(p) for g in groups if g["name"].startswith("head/") for p in g["params"]}
    assert head == {id(p) for n, p in model.named_parameters() if n.startswith("qa_outputs.")}
    assert reinit_top_layers(model, 1) == [parts.blocks[-1]]  # no pooler to re-draw
