"""Bad input files, one class at a time, through every reader that the class applies to (data/fields.py
is the shared rule): one BertlabError naming the file and line (or the example's id), the bad value
and the fix, raised while reading, before any model loads. In-process: the readers are called
directly on configs composed as `python train.py` composes them (test_bad_input_e2e.py runs the
command line itself).
"""

import copy
import json
import re

import pytest

from bertlab.core.errors import BertlabError, ConfigError, DataError
from bertlab.problems.question_answering.reader import QAExample
from bertlab.problems.registry import problem_of
from bertlab.run.checks import check_config

# ---------------------------------------------------------------- one small, valid task per reader
# reader -> (task overrides, {file: rows}); a row is a dict (JSON line / JSON question), a list of
# cells (CSV/TSV, the header first) or a list of "word tag" lines (CoNLL: a sentence)

CSV_ROWS = [["text", "label"], ["the cat sat", "pos"], ["a dull film", "neg"], ["fine work", "pos"]]
TAGGED = [["EU B-ORG", "rejects O", "Paris B-LOC"], ["Bonn B-LOC", "said O"]]
QUESTION = {
    "id": "q1",
    "question": "Where?",
    "context": "In France today.",
    "answers": {"text": ["France"], "answer_start": [3]},
}
CHOICE = {"context": "Fish live", "endings": ["in trees", "in water", "on roofs"], "answer": 1}


def _squad(questions):
    qas = [
        {
            "id": q["id"],
            "question": q["question"],
            "answers": [
                {"text": t, "answer_start": s} for t, s in zip(q["answers"]["text"], q["answers"]["answer_start"])
            ],
        }
        for q in questions
    ]
    return {"data": [{"title": "t", "paragraphs": [{"context": questions[0]["context"], "qas": qas}]}]}


READERS = {
    "csv.csv": (["task=csv", "task.text_fields=[text]", "task.label_field=label"], "csv", CSV_ROWS),
    "csv.tsv": (["task=csv", "task.text_fields=[text]", "task.label_field=label"], "tsv", CSV_ROWS),
    "csv.jsonl": (
        ["task=csv", "task.text_fields=[text]", "task.label_field=label"],
        "jsonl",
        [{"text": t, "label": y} for t, y in CSV_ROWS[1:]],
    ),
    "tokens.txt": (["task=tokens", "task.tag_column=1"], "txt", TAGGED),
    "tokens.jsonl": (
        ["task=tokens"],
        "jsonl",
        [{"tokens": [w.split()[0] for w in s], "tags": [w.split()[1] for w in s]} for s in TAGGED],
    ),
    "choices.jsonl": (
        ["task=choices", "task.ending_fields=[endings]", "task.num_choices=3", "task.label_field=answer"],
        "jsonl",
        [CHOICE, {**CHOICE, "answer": 2}],
    ),
    "choices.csv": (
        ["task=choices", "task.ending_fields=[e0,e1,e2]", "task.num_choices=3", "task.label_field=answer"],
        "csv",
        [["context", "e0", "e1", "e2", "answer"], ["Fish live", "in trees", "in water", "on roofs", "1"]],
    ),
    "qa.jsonl": (["task=qa"], "jsonl", [QUESTION, {**QUESTION, "id": "q2"}]),
    "qa.json": (["task=qa"], "json", [QUESTION, {**QUESTION, "id": "q2"}]),
}


def render(kind: str, rows) -> str:
    if kind == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if kind == "json":
        return json.dumps(_squad(rows), ensure_ascii=False)
    if kind == "txt":
        return "\n\n".join("\n".join(sentence) for sentence in rows) + "\n"
    sep = "," if kind == "csv" else "\t"
    return "".join(sep.join(cells) + "\n" for cells in rows)


@pytest.fixture(scope="module")
def composed(compose_train):
    """composed(reader, *overrides) -> a fresh copy of the reader's task config (composing costs
    ~0.3 s, so each is composed once per module)."""
    cache = {}

    def composed(reader, *overrides):
        if (reader, overrides) not in cache:
            suffix = reader.split(".")[1]
            cache[reader, overrides] = compose_train(
                *READERS[reader][0],
                "task.data_dir=.",
                f"task.train_file=train.{suffix}",
                f"task.dev_file=dev.{suffix}",
                *overrides,
            )
        return copy.deepcopy(cache[reader, overrides])

    return composed


@pytest.fixture
def read(composed, tmp_path):
    """read(reader, train=None, *overrides) -> pools: the reader's valid task with the training file
    replaced by `train` (text, or bytes)."""

    def read(reader, train=None, *overrides):
        _, kind, rows = READERS[reader]
        suffix = reader.split(".")[1]
        good = render(kind, rows)
        (tmp_path / f"train.{suffix}").write_bytes(train if isinstance(train, bytes) else (train or good).encode())
        (tmp_path / f"dev.{suffix}").write_text(good)
        cfg = composed(reader, *overrides)
        cfg.task.data_dir = str(tmp_path)
        return problem_of(cfg.task).read(cfg.task)

    return read


def refused(read, reader, train, *fragments, overrides=(), error=DataError):
    with pytest.raises(error) as caught:
        read(reader, train, *overrides)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------- decoding: file, line, the option that fixes it


@pytest.mark.parametrize("reader", sorted(READERS))
def test_another_encoding_names_file_line_and_the_option_that_reads_it(read, reader):
    """Every reader: a Latin-1 byte is one message with the file, the line and task.encoding, and
    task.encoding=latin-1 then reads the file (QA/token JSONL and SQuAD JSON gave a traceback)."""
    good = render(*READERS[reader][1:])
    bad = good.replace("France", "Fran\u00e7e").replace("Fish", "Fi\u00e7h").replace("the cat", "th\u00e9 cat")
    bad = bad.replace("EU", "\u00c9U")
    assert bad != good
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if any(ord(c) > 127 for c in text))
    refused(read, reader, bad.encode("latin-1"), "train.", f"line {line}: byte 0x", "not valid utf-8", "task.encoding=")
    assert read(reader, bad.encode("latin-1"), "task.encoding=latin-1")["train"]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_byte_order_mark_and_crlf_line_ends_read_as_plain_utf8(read, reader):
    """A BOM was the first word of a CoNLL file ('\\ufeffEU', silently) and broke QA/token JSON."""
    good = render(*READERS[reader][1:])
    plain = read(reader, good)["train"]
    assert read(reader, b"\xef\xbb\xbf" + good.encode())["train"] == plain
    assert read(reader, good.replace("\n", "\r\n").encode())["train"] == plain


# ---------------------------------------------------------------- fields: presence, type, emptiness

# reader -> a function that breaks one text field of the second training example with `value`
BREAK_TEXT = {
    "csv.jsonl": lambda v: [{"text": "a", "label": "pos"}, {"text": v, "label": "neg"}],
    "tokens.jsonl": lambda v: [
        {"tokens": ["EU", "x"], "tags": ["B-ORG", "O"]},
        {"tokens": ["EU", v], "tags": ["B-ORG", "O"]},
    ],
    "choices.jsonl": lambda v: [CHOICE, {**CHOICE, "endings": ["a", v, "c"]}],
    "qa.jsonl": lambda v: [QUESTION, {**QUESTION, "id": "q2", "question": v}],
}


@pytest.mark.parametrize(
    "value", [None, "", "   ", 5, True, ["a"]], ids=["null", "empty", "blank", "int", "bool", "list"]
)
@pytest.mark.parametrize("reader", sorted(BREAK_TEXT))
def test_a_text_that_is_null_empty_or_not_a_string_is_refused(read, reader, value):
    """A JSON null, '' or 5 became the text 'None', '' (a word with no token, its tag never scored)
    or '5' in token, CSV and multiple-choice JSONL."""
    rows = BREAK_TEXT[reader](value)
    message = refused(read, reader, render("jsonl", rows), "train.jsonl, line 2")
    assert ("is empty" if isinstance(value, str) else "must be a string") in message


@pytest.mark.parametrize("label", [None, True, 1.5, {"x": 1}, ["pos"]], ids=["null", "bool", "float", "object", "list"])
def test_a_class_label_that_is_no_name_is_refused_not_made_a_class(read, label):
    """With task.labels inferred, `true` or 1.5 became a class of its own ("True", "1.5")."""
    rows = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c", "label": label}]
    message = refused(read, "csv.jsonl", render("jsonl", rows), "train.jsonl, line 3", "field 'label'")
    assert ("empty (null)" if label is None else "must be a class name") in message


@pytest.mark.parametrize("tag", [None, True, ["O"]], ids=["null", "bool", "list"])
def test_a_tag_that_is_no_name_is_refused(read, tag):
    rows = [{"tokens": ["EU", "x"], "tags": ["B-ORG", "O"]}, {"tokens": ["EU", "y"], "tags": ["B-ORG", tag]}]
    refused(read, "tokens.jsonl", render("jsonl", rows), "train.jsonl, line 2 (word 2)", "field 'tags'")


@pytest.mark.parametrize(
    "answer",
    ["\u00b2", "\u0661", "+1", " 1.0", 1.0, True, None, "-1", 3],
    ids=["superscript_2", "arabic_1", "plus_1", "text_1.0", "float", "bool", "null", "minus_1", "3"],
)
@pytest.mark.parametrize("reader", ["choices.jsonl", "choices.csv"])
def test_a_choice_label_is_an_ascii_integer_in_range(read, reader, answer):
    """'²' passed str.isdigit() and then int() gave a traceback; '١' (Arabic-Indic one) was read as 1."""
    if reader == "choices.csv":
        if not isinstance(answer, str):
            pytest.skip("a CSV cell is always text")
        train = render("csv", [READERS[reader][2][0], ["Fish live", "in trees", "in water", "on roofs", answer]])
    else:
        train = render("jsonl", [CHOICE, {**CHOICE, "answer": answer}])
    refused(read, reader, train, "train.", "line 2", "field 'answer'", "0 to 2")


# ---------------------------------------------------------------- rows and schemas


@pytest.mark.parametrize("reader", ["csv.csv", "csv.tsv", "choices.csv"])
def test_a_row_with_more_fields_than_the_header_is_refused(read, reader):
    """A long row silently dropped its last fields (an unquoted comma shifted the label)."""
    header, *rows = READERS[reader][2]
    long_row = [*rows[0][:-1], "extra", rows[0][-1]]
    train = render(reader.split(".")[1], [header, *rows, long_row])
    refused(read, reader, train, f"line {len(rows) + 2}: {len(header) + 1} fields, the header has {len(header)}")


@pytest.mark.parametrize(
    "tags, fragment",
    [
        (["1", "0"], "tag '1' is not an IOB2 tag"),  # integer tags under a named scheme: seqeval failed mid-run
        (["B-ORG", "E-ORG"], "tag 'E-ORG' is not an IOB2 tag"),  # another scheme's prefix
        (["ORG", "O"], "tag 'ORG' is not an IOB2 tag"),
        (["B-", "O"], "tag 'B-' is not an IOB2 tag"),
        (["I-ORG", "O"], "tag 'I-ORG' follows 'O'"),  # an I- with no B- (this check existed)
    ],
)
@pytest.mark.parametrize("reader", ["tokens.txt", "tokens.jsonl"])
def test_tags_that_break_the_tag_scheme_are_refused_while_reading(read, reader, tags, fragment):
    sentence = ["EU", "rejects"]
    if reader == "tokens.txt":
        train = render("txt", [[f"{w} {t}" for w, t in zip(sentence, tags)]])
    else:
        train = render("jsonl", [{"tokens": sentence, "tags": tags}])
    refused(read, reader, train, "train.", "line 1 (word", fragment, "task.tag_scheme")
    if not fragment.endswith("'O'"):  # the fix the message names reads past the scheme (to dev's other tags)
        with pytest.raises(DataError) as caught:
            read(reader, train, "task.tag_scheme=null")
        assert "dev." in str(caught.value) and "IOB2" not in str(caught.value)


def test_labels_the_scheme_does_not_know_are_refused(read):
    refused(
        read,
        "tokens.jsonl",
        None,
        "task.labels=",
        "tag 'X' is not an IOB2 tag",
        overrides=["task.labels=[O,B-ORG,B-LOC,X]"],
        error=ConfigError,
    )


@pytest.mark.parametrize(
    "reader, labels",
    [("csv.csv", "[pos,neg,pos]"), ("csv.csv", "[pos,neg,'pos ']"), ("tokens.jsonl", "[O,B-ORG,B-LOC,O]")],
)
def test_a_duplicate_in_task_labels_is_refused_by_the_config_check(composed, reader, labels):
    """A duplicate class was accepted: never a target, an output of the model all the same."""
    with pytest.raises(ConfigError, match="lists '(pos|O)' twice"):
        check_config(composed(reader, f"task.labels={labels}"))


# ---------------------------------------------------------------- question answering


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"answers": {"text": ["  "], "answer_start": [2]}}, "the answer in field 'answers.text' is empty"),
        ({"answers": {"text": ["France"], "answer_start": [-1]}}, "integer answer_start >= 0"),
        ({"id": None}, "'id' must be a"),
        ({"id": ""}, "'id' must be a non-empty string"),
        ({"id": "q1"}, "the id 'q1' is the id of another question too"),
        ({"context": None}, "the text in field 'context' must be a string"),
    ],
)
@pytest.mark.parametrize("reader", ["qa.jsonl", "qa.json"])
def test_a_question_with_a_bad_field_is_refused(read, reader, change, fragment):
    if reader == "qa.json" and "context" in change:
        pytest.skip("SQuAD JSON's context belongs to the paragraph, checked as a string there")
    kind = READERS[reader][1]
    train = render(kind, [QUESTION, {**QUESTION, "id": "q2", **change}])
    refused(read, reader, train, "train.", fragment)


@pytest.mark.parametrize(
    "context, answer, start, fragment",
    [
        ("\u200b\u200b", "\u200b", 0, "gives no token"),  # was ValueError: 1 is not in list
        ("In \u200b France", "\u200b", 3, "covers no token"),  # was labelled with the tokens around it
    ],
)
def test_an_answer_that_maps_to_no_token_is_named(context, answer, start, fragment):
    from transformers import AutoTokenizer

    from bertlab.core.paths import minilm_dir
    from bertlab.problems.question_answering.encoder import QAEncoder

    encoder = QAEncoder(AutoTokenizer.from_pretrained(str(minilm_dir())), 64, None)
    with pytest.raises(DataError, match=f"question id q7: .*{fragment}"):
        encoder.encode([QAExample("q7", "Where?", context, (answer,), (start,))], "train")


# ---------------------------------------------------------------- the commands beside train.py


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("task.max_length=0", "task.max_length=0 is invalid"),
        ("data.eval_batch_size=0", "data.eval_batch_size=0 is invalid"),
        ("task.labels=[a,b,a]", "lists 'a' twice"),
        ("seed=-1", "seed=-1 is invalid"),
    ],
)
def test_evaluate_runs_train_checks_on_its_overrides(compose_train, tmp_path, override, fragment):
    """`bertlab evaluate RUN key=value` gave a traceback where train.py refuses the value."""
    from omegaconf import OmegaConf

    from bertlab.run.evaluate import evaluate

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = compose_train(
        "model=tiny",
        "task=csv",
        "task.data_dir=x",
        "task.train_file=t.csv",
        "task.dev_file=d.csv",
        "task.text_fields=[text]",
        "task.label_field=label",
        "task.labels=[a,b]",
    )
    (model / "bertlab.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    with pytest.raises(BertlabError, match=fragment.replace("[", r"\[")):
        evaluate(tmp_path, [override])


def test_predict_names_its_own_encoding_option_and_reads_with_it(tmp_path):
    """`bertlab predict` said task.encoding=..., which it does not take; it has --encoding."""
    from bertlab.data.readers import read_unlabelled

    path = tmp_path / "in.csv"
    path.write_bytes("text\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"in.csv, line 2: byte 0xe9 .*--encoding latin-1") as caught:
        read_unlabelled(path, ["text"])
    assert "task.encoding" not in str(caught.value)
    ((_, example),) = read_unlabelled(path, ["text"], "latin-1")
    assert example.text_a == "caf\u00e9 au lait"
    with pytest.raises(ConfigError, match="--encoding=nosuch is not an encoding"):
        read_unlabelled(path, ["text"], "nosuch")


def test_evaluate_checks_no_stage_a_re_test_does_not_run(compose_train):
    """A student of a teacher folder deleted since is still re-tested: its distill keys are not checked."""
    from omegaconf import OmegaConf

    from bertlab.run.evaluate import without_training_stages

    cfg = compose_train("model=tiny", "distill=self", "distill.teacher=/gone", "augment=eda_offline")
    OmegaConf.set_struct(cfg, True)
    check_config(without_training_stages(cfg))
    with pytest.raises(ConfigError, match="distill.teacher"):
        check_config(cfg)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (
            '{"task": "rte", "label": 0, "original": {"text_a": "a"}, "text_a": "caf\u00e9"}\n'.encode("latin-1"),
            "line 1: byte 0xe9 (byte 72 of the line) is not valid utf-8; the file must be UTF-8",
        ),
        (
            b'{"task": "rte", "label": 0, "original": {"text_a": "a"}, "text_a": null}\n',
            "line 1: the paraphrase in field 'text_a' must be a string; found null",
        ),
    ],
    ids=["latin1", "null_paraphrase"],
)
def test_a_back_translation_file_follows_the_rule(tmp_path, content, fragment):
    """augment.file gave a UnicodeDecodeError traceback, and a null paraphrase trained as 'None'."""
    from omegaconf import OmegaConf

    from bertlab.data.backtranslate import read_paraphrases

    path = tmp_path / "bt.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(fragment)):
        read_paraphrases(path, OmegaConf.create({"name": "rte"}))


@pytest.mark.parametrize("value", ["1_000", "\u0661", "\u00b2", "0x1f", True, None, "nan", "-inf", [1.0]])
def test_a_regression_score_is_a_plain_finite_number(value):
    """float() read '1_000' as 1000.0 and an Arabic-Indic digit as its value, silently."""
    from bertlab.data import fields

    with pytest.raises(DataError, match="train.csv, line 2: (label|the label) .*field 'score'"):
        if value is None:
            fields.class_label(value, "train.csv, line 2", "score")
        fields.score(value, "train.csv, line 2", "score")
    assert [fields.score(v, "w", "score") for v in ("3.8", " -1e-2", ".5", "+2", 4, 1.5)] == [
        3.8,
        -0.01,
        0.5,
        2.0,
        4,
        1.5,
    ]
