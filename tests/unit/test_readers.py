"""Readers: each GLUE file format, the hub path, the BBC corpus, the csv task, and their errors."""

import hashlib
import re
from collections import Counter
from pathlib import Path

import datasets
import pytest
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import BBC_DEV_FRACTION, Example, read_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCHEMA = {
    "name",
    "source",
    "hub_name",
    "hub_config",
    "data_dir",
    "train_file",
    "dev_file",
    "text_fields",
    "label_field",
    "labels",
    "problem",
    "metrics",
    "main_metric",
    "max_length",
    "n_train",
    "n_val",
    "data_seed",
}


def task_cfg(name: str, **overrides):
    """conf/task/<name>.yaml, struct like Hydra's, with overrides (a missing key fails as in Hydra)."""
    cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    OmegaConf.set_struct(cfg, True)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def glue_fixture(name: str, folder: str, **overrides):
    return task_cfg(name, data_dir=str(FIXTURES / "glue" / folder), **overrides)


@pytest.mark.parametrize("name", ["bbcnews", "rte", "mrpc", "stsb", "cola", "sst2", "qnli", "qqp", "mnli", "csv"])
def test_every_task_config_has_the_schema(name):
    cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    assert SCHEMA <= set(cfg.keys())
    assert cfg.name == name
    if cfg.problem == "regression":
        assert cfg.labels is None and set(cfg.metrics) == {"pearson", "spearman"}
    assert cfg.main_metric in cfg.metrics


def test_csv_config_demands_the_data_description():
    cfg = OmegaConf.load(CONF_DIR / "task" / "csv.yaml")
    for key in ("data_dir", "train_file", "dev_file", "text_fields", "label_field"):
        assert OmegaConf.is_missing(cfg, key), key


# ------------------------------------------------------------ GLUE, original file format

# task, folder, (n train, n dev), first training example, train label counts by name
GLUE_CASES = [
    (
        "rte",
        "RTE",
        (8, 2),
        Example(
            "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44.",
            "Christopher Reeve had an accident.",
            1,
        ),
        {"entailment": 5, "not_entailment": 3},
    ),
    (
        "mrpc",
        "MRPC",
        (6, 2),
        Example(
            'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .',
            'Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting his evidence .',
            1,
        ),
        {"1": 4, "0": 2},
    ),
    ("stsb", "STS-B", (7, 3), Example("A plane is taking off.", "An air plane is taking off.", 5.0), None),
    (
        "cola",
        "CoLA",
        (7, 3),
        Example("Our friends won't buy this analysis, let alone the next one we propose.", None, 1),
        {"1": 4, "0": 3},
    ),
    ("sst2", "SST-2", (8, 3), Example("hide new secretions from the parental units ", None, 0), {"0": 5, "1": 3}),
    (
        "qnli",
        "QNLI",
        (6, 2),
        Example(
            "When did the third Digimon series begin?",
            "Unlike the two seasons before it and most of the seasons that followed, Digimon Tamers takes a darker "
            "and more realistic approach to its story featuring Digimon who do not reincarnate after their deaths "
            "and more complex character development in the original Japanese.",
            1,
        ),
        {"not_entailment": 3, "entailment": 3},
    ),
    (
        "qqp",
        "QQP",
        (5, 3),
        Example(
            "How is the life of a math student? Could you describe your own experiences?",
            "Which level of prepration is enough for the exam jlpt5?",
            0,
        ),
        {"0": 3, "1": 2},
    ),
    (
        "mnli",
        "MNLI",
        (7, 3),
        Example(
            "Conceptually cream skimming has two basic dimensions - product and geography.",
            "Product and geography are what make cream skimming work. ",
            2,
        ),
        {"neutral": 2, "entailment": 3, "contradiction": 2},
    ),
]


@pytest.mark.parametrize("name, folder, sizes, first, counts", GLUE_CASES, ids=[c[0] for c in GLUE_CASES])
def test_glue_fixture_parses(name, folder, sizes, first, counts):
    task = glue_fixture(name, folder)
    pools = read_task(task)
    assert (len(pools["train"]), len(pools["dev"])) == sizes
    assert pools["train"][0] == first
    if counts is None:
        assert all(isinstance(e.label, float) for pool in pools.values() for e in pool)
    else:
        assert Counter(task.labels[e.label] for e in pools["train"]) == counts


def test_glue_quotes_are_text_and_cola_dev_has_no_header():
    cola = read_task(glue_fixture("cola", "CoLA"))
    assert cola["dev"][0] == Example('"Hello," said John.', None, 1)  # QUOTE_NONE, first line is data
    mnli = read_task(glue_fixture("mnli", "MNLI"))  # dev_matched.tsv has 4 more label columns than train
    assert mnli["dev"][-1].label == 0 and mnli["dev"][0].text_b.startswith("The Government Executive articles")
    sts = read_task(glue_fixture("stsb", "STS-B"))
    assert [e.label for e in sts["dev"]] == [0.5, 1.6, 2.2]


def test_real_rte(shared_glue):
    task = task_cfg("rte", data_dir=str(shared_glue / "RTE"))
    pools = read_task(task)
    assert len(pools["train"]) == 2490 and len(pools["dev"]) == 277
    assert Counter(e.label for e in pools["train"]) == {0: 1249, 1: 1241}
    assert Counter(e.label for e in pools["dev"]) == {0: 146, 1: 131}
    assert pools["train"][0] == Example(
        "No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons of Mass Destruction Found in Iraq.", 1
    )


def test_real_mrpc(shared_glue):
    # The shared MRPC train.tsv has 3,667 pairs (3,668 lines with the header; the official GLUE
    # copy has 3,668 pairs). The BOM must not hide the first column name.
    pools = read_task(task_cfg("mrpc", data_dir=str(shared_glue / "MRPC")))
    assert len(pools["train"]) == 3667 and len(pools["dev"]) == 408
    assert Counter(e.label for e in pools["train"]) == {1: 2473, 0: 1194}
    assert Counter(e.label for e in pools["dev"]) == {1: 279, 0: 129}


# ------------------------------------------------------------ Hugging Face hub path


def fake_hub(monkeypatch, splits: dict[str, dict], label_feature):
    calls = []

    def load_dataset(path, name):
        calls.append((path, name))
        features = {column: datasets.Value("string") for column in next(iter(splits.values())) if column != "label"}
        features = datasets.Features({**features, "label": label_feature})
        return datasets.DatasetDict({s: datasets.Dataset.from_dict(d, features=features) for s, d in splits.items()})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_mnli_maps_labels_by_name(monkeypatch):
    # The hub's MNLI order is entailment, neutral, contradiction; the files' (and ours) differs.
    feature = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])
    rows = {"premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"], "label": [0, 1, 2]}
    calls = fake_hub(monkeypatch, {"train": rows, "validation_matched": rows, "validation_mismatched": rows}, feature)
    task = task_cfg("mnli")
    pools = read_task(task)
    assert calls == [("nyu-mll/glue", "mnli")]
    assert [task.labels[e.label] for e in pools["dev"]] == ["entailment", "neutral", "contradiction"]
    assert pools["train"][1] == Example("p1", "h1", task.labels.index("neutral"))


def test_hub_mrpc_and_stsb(monkeypatch):
    feature = datasets.ClassLabel(names=["not_equivalent", "equivalent"])  # the files say 0 / 1
    rows = {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 0]}
    fake_hub(monkeypatch, {"train": rows, "validation": rows}, feature)
    pools = read_task(task_cfg("mrpc"))
    assert pools["train"] == [Example("a", "c", 1), Example("b", "d", 0)]

    fake_hub(
        monkeypatch,
        {"train": {"sentence": ["x", "z"], "label": [1, 0]}, "validation": {"sentence": ["y"], "label": [0]}},
        datasets.ClassLabel(names=["unacceptable", "acceptable"]),
    )
    assert read_task(task_cfg("cola"))["dev"] == [Example("y", None, 0)]

    rows = {"sentence1": ["a"], "sentence2": ["b"], "label": [3.8]}
    fake_hub(monkeypatch, {"train": rows, "validation": rows}, datasets.Value("float32"))
    assert read_task(task_cfg("stsb"))["train"][0].label == pytest.approx(3.8)


def test_hub_unreachable_says_what_to_do(monkeypatch):
    def offline(path, name):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"unreachable.*task\.data_dir=/path/to/glue_data/RTE"):
        read_task(task_cfg("rte"))


def test_hub_offline_for_real():
    # conftest sets HF_HUB_OFFLINE=1: the real `datasets` fails fast and the message is ours.
    with pytest.raises(DataError, match=r"task\.data_dir=/path/to/glue_data/STS-B"):
        read_task(task_cfg("stsb", hub_name="bertlab-tests/never-cached"))


# ------------------------------------------------------------ BBC News


@pytest.fixture(scope="module")
def bbc():
    task = task_cfg("bbcnews")
    return task, read_task(task)


def test_bbc_classes_dedup_and_held_out_dev(bbc):
    from bertlab.core.paths import bbcnews_dir

    task, pools = bbc
    folders = sorted(p.name for p in bbcnews_dir().iterdir() if p.is_dir())
    assert folders == list(task.labels) == ["business", "entertainment", "politics", "sports", "tech"]
    everything = pools["train"] + pools["dev"]
    assert len(everything) == 2127  # 2,225 files less 98 exact duplicates
    assert len({e.text_a for e in everything}) == 2127
    per_class = Counter(e.label for e in everything)
    assert per_class == {0: 503, 1: 369, 2: 403, 3: 505, 4: 347}
    dev = Counter(e.label for e in pools["dev"])
    assert dev == {c: round(n * BBC_DEV_FRACTION) for c, n in per_class.items()}
    assert len(pools["dev"]) == 426 and len(pools["train"]) == 1701
    assert all(e.text_b is None and e.text_a == e.text_a.strip() for e in everything)


def test_bbc_latin1_article_and_title(bbc):
    _, pools = bbc
    everything = pools["train"] + pools["dev"]
    assert everything[0].text_a.startswith("Ad sales boost Time Warner profit\n\nQuarterly profits")
    from bertlab.core.paths import bbcnews_dir

    raw = (bbcnews_dir() / "sports" / "199.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    matches = [e for e in everything if e.text_a == raw.decode("latin-1").strip()]
    assert len(matches) == 1 and "£" in matches[0].text_a and matches[0].label == 3


def test_bbc_dev_is_fixed(bbc):
    task, pools = bbc
    again = read_task(task_cfg("bbcnews", n_train=50, data_seed=7))  # nothing here moves the held-out set
    assert again == pools
    # Pinned: a change of BBC_DEV_SEED or of the carving would silently change the test set.
    digest = hashlib.sha256("\0".join(e.text_a for e in pools["dev"]).encode()).hexdigest()
    assert digest[:16] == "10b879fafc2d6daa"
    assert [e.text_a.split("\n")[0] for e in pools["dev"][:2]] == [
        "Yukos unit buyer faces loan claim",
        "Ask Jeeves tips online ad revival",
    ]


def test_bbc_labels_must_match_folders():
    with pytest.raises(
        DataError, match=r"label 'sports'.*task\.labels=\['business', 'entertainment', 'politics', 'sport', 'tech'\]"
    ):
        read_task(task_cfg("bbcnews", labels=["business", "entertainment", "politics", "sport", "tech"]))


# ------------------------------------------------------------ csv task


def csv_task(train_file, dev_file, text_fields, label_field, **overrides):
    values = dict(
        data_dir=str(FIXTURES / "csv"),
        train_file=train_file,
        dev_file=dev_file,
        text_fields=text_fields,
        label_field=label_field,
    )
    return task_cfg("csv", **{**values, **overrides})


def test_csv_with_quoting_and_inferred_labels():
    task = csv_task("train.csv", "dev.csv", ["review"], "sentiment")
    pools = read_task(task)
    assert list(task.labels) == ["neg", "pos"]  # inferred, sorted, written back
    assert len(pools["train"]) == 10 and len(pools["dev"]) == 4
    assert pools["train"][0] == Example("A warm, funny film; I loved it.", None, 1)
    assert pools["train"][2].text_a == 'The so-called "twist" was obvious.'
    assert pools["train"][6].text_a == "Beautifully shot,\nbut the script is thin."


def test_jsonl_pairs_with_integer_labels():
    task = csv_task("train.jsonl", "dev.jsonl", ["premise", "hypothesis"], "label", labels=[0, 1, 2])
    pools = read_task(task)
    assert pools["train"][1] == Example("A man sleeps.", "A man is running.", 2)
    assert [e.label for e in pools["dev"]] == [0, 2, 1]


def test_tsv_regression():
    pools = read_task(csv_task("train.tsv", "dev.tsv", ["text"], "rating", problem="regression"))
    assert [e.label for e in pools["train"]] == [4.5, 1.0, 3.0, 5.0]
    assert pools["dev"][1].text_a == 'Quite "good" really.'


def test_inferred_integer_labels_sort_numerically(tmp_path):
    rows = "text\tlabel\n" + "".join(f"t{i}\t{i}\n" for i in (10, 2, 1, 0))
    (tmp_path / "train.tsv").write_text(rows)
    (tmp_path / "dev.tsv").write_text(rows)
    task = csv_task("train.tsv", "dev.tsv", ["text"], "label", data_dir=str(tmp_path))
    pools = read_task(task)
    assert list(task.labels) == ["0", "1", "2", "10"] and pools["train"][0].label == 3


# ------------------------------------------------------------ errors


def test_unknown_source():
    with pytest.raises(ConfigError, match=r"task\.source=tfds is unknown; valid: glue, bbcnews, csv"):
        read_task(task_cfg("rte", source="tfds"))


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match=r"task\.data_dir=.*nowhere is not a folder.*train\.tsv"):
        read_task(task_cfg("rte", data_dir=str(tmp_path / "nowhere")))


def test_missing_file_lists_what_is_there():
    with pytest.raises(
        DataError, match=r"task\.dev_file=dev\.tsv is not in .*MNLI; files there: dev_matched\.tsv, train\.tsv"
    ):
        read_task(glue_fixture("mnli", "MNLI", dev_file="dev.tsv"))


def test_wrong_columns_name_expected_and_found():
    # RTE's columns asked of the QNLI files
    with pytest.raises(
        DataError, match=r"no column \['sentence1', 'sentence2'\].*found: \['index', 'question', 'sentence', 'label'\]"
    ):
        read_task(glue_fixture("rte", "QNLI"))


def test_label_not_declared_names_file_line_and_labels():
    # MNLI's labels asked of the RTE files: 'not_entailment' is not an MNLI class
    with pytest.raises(
        DataError,
        match=r"RTE/train\.tsv, line 2: label 'not_entailment' .*task\.labels=\['contradiction', 'entailment', 'neutral'\]",
    ):
        read_task(glue_fixture("mnli", "RTE", dev_file="dev.tsv", label_field="label"))


def write_qqp(tmp_path, train_rows: str) -> str:
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    (tmp_path / "train.tsv").write_text(header + train_rows)
    (tmp_path / "dev.tsv").write_text(header + "1\t1\t2\tA?\tB?\t0\n")
    return str(tmp_path)


def test_empty_text_names_file_and_line(tmp_path):
    data_dir = write_qqp(tmp_path, "1\t1\t2\tA?\tB?\t0\n2\t3\t4\tC?\t \t1\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: the text in field 'question2' is empty"):
        read_task(task_cfg("qqp", data_dir=data_dir))


def test_short_row_is_an_error_not_skipped(tmp_path):
    data_dir = write_qqp(tmp_path, "1\t1\t2\tA?\tB?\t0\n2\t3\t4\tC? broken\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: 4 fields, the header has 6"):
        read_task(task_cfg("qqp", data_dir=data_dir))


def test_regression_label_must_be_a_number():
    with pytest.raises(DataError, match=r"label 'pos' in field 'sentiment' is not a number"):
        read_task(csv_task("train.csv", "dev.csv", ["review"], "sentiment", problem="regression"))


def test_text_fields_count():
    with pytest.raises(ConfigError, match=r"task\.text_fields=\['a', 'b', 'c'\] is invalid"):
        read_task(csv_task("train.csv", "dev.csv", ["a", "b", "c"], "sentiment"))


# ------------------------------------------------------------ labels, encodings, empty files


def write_files(tmp_path, train: str | bytes, dev: str, suffix: str = "tsv") -> str:
    for name, content in ((f"train.{suffix}", train), (f"dev.{suffix}", dev)):
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(tmp_path)


@pytest.mark.parametrize(
    "suffix, train, line, shown",
    [
        ("tsv", "text\tlabel\na\tpos\nb\t\nc\tneg\n", 3, ""),
        ("tsv", "text\tlabel\na\tpos\nb\t   \nc\tneg\n", 3, ""),
        ("csv", 'text,label\na,pos\nb,""\nc,neg\n', 3, ""),
        ("jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n', 2, " (null)"),
    ],
)
def test_an_empty_label_is_never_a_class(tmp_path, suffix, train, line, shown):
    dev = {"tsv": "text\tlabel\nd\tpos\n", "csv": "text,label\nd,pos\n", "jsonl": '{"text": "d", "label": "pos"}\n'}[
        suffix
    ]
    task = csv_task(
        f"train.{suffix}", f"dev.{suffix}", ["text"], "label", data_dir=write_files(tmp_path, train, dev, suffix)
    )
    with pytest.raises(
        DataError, match=rf"train\.{suffix}, line {line}: the label in field 'label' is empty{re.escape(shown)};"
    ):
        read_task(task)


def test_an_empty_glue_label_is_named_with_declared_labels(tmp_path):
    data_dir = write_qqp(tmp_path, "1\t1\t2\tA?\tB?\t0\n2\t3\t4\tC?\tD?\t\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: the label in field 'is_duplicate' is empty"):
        read_task(task_cfg("qqp", data_dir=data_dir))


def test_hub_labels_of_a_single_class_are_named(monkeypatch):
    feature = datasets.ClassLabel(names=["not_equivalent", "equivalent"])
    fake_hub(
        monkeypatch,
        {
            "train": {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 1]},
            "validation": {"sentence1": ["a"], "sentence2": ["c"], "label": [0]},
        },
        feature,
    )
    with pytest.raises(DataError, match=r"nyu-mll/glue/mrpc train: the training examples have only the class '1'"):
        read_task(task_cfg("mrpc"))


def test_labels_with_stray_spaces_are_the_same_class(tmp_path):
    data_dir = write_files(tmp_path, "text,label\na,pos\nb,pos \nc, neg\n", "text,label\nd,neg\n", "csv")
    task = csv_task("train.csv", "dev.csv", ["text"], "label", data_dir=data_dir)
    assert [e.label for e in read_task(task)["train"]] == [1, 1, 0] and list(task.labels) == ["neg", "pos"]


def test_a_stsb_score_that_is_not_finite(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    (tmp_path / "train.tsv").write_text(header + "0\tg\tf\t2012\t0\ts\ts\tA.\tB.\t4.0\n")
    (tmp_path / "dev.tsv").write_text(header + "0\tg\tf\t2012\t0\ts\ts\tA.\tB.\tNaN\n")
    with pytest.raises(DataError, match=r"dev\.tsv, line 2: label 'NaN' in field 'score' is not a finite number"):
        read_task(task_cfg("stsb", data_dir=str(tmp_path)))


@pytest.mark.parametrize(
    "encoding, text, line", [("latin-1", "café", 2), ("cp1252", "“quoted”", 2), ("utf-16", "naïve", 1)]
)  # utf-16: its BOM is byte 1
def test_task_encoding_reads_other_encodings(tmp_path, encoding, text, line):
    (tmp_path / "train.tsv").write_bytes(f"text\tlabel\n{text}\tpos\nb\tneg\n".encode(encoding))
    (tmp_path / "dev.tsv").write_bytes("text\tlabel\nd\tpos\n".encode(encoding))
    with pytest.raises(
        DataError,
        match=rf"train\.tsv, line {line}: byte 0x.. \(byte \d+ of the line\) is not valid "
        r"utf-8; .*task\.encoding=latin-1",
    ):
        read_task(csv_task("train.tsv", "dev.tsv", ["text"], "label", data_dir=str(tmp_path)))
    task = csv_task("train.tsv", "dev.tsv", ["text"], "label", data_dir=str(tmp_path), encoding=encoding)
    assert read_task(task)["train"][0].text_a == text


def test_utf8_with_a_byte_order_mark_is_read_as_before(tmp_path):
    data_dir = write_files(tmp_path, "\ufefftext\tlabel\na\tpos\nb\tneg\n", "\ufefftext\tlabel\nd\tpos\n")
    assert read_task(csv_task("train.tsv", "dev.tsv", ["text"], "label", data_dir=data_dir))["dev"][0].text_a == "d"


def test_blank_lines_are_no_rows(tmp_path):
    # a trailing empty line in a TSV was "0 fields, the header has 2"
    data_dir = write_files(tmp_path, "text\tlabel\na\tpos\n\nb\tneg\n\n", "text\tlabel\nd\tpos\n")
    assert len(read_task(csv_task("train.tsv", "dev.tsv", ["text"], "label", data_dir=data_dir))["train"]) == 2


def test_a_file_without_a_header_row_that_is_empty(tmp_path):
    (tmp_path / "train.tsv").write_text("")
    (tmp_path / "dev.tsv").write_text("src\t1\t\tA sentence.\n")
    with pytest.raises(DataError, match=r"train\.tsv is empty; task\.train_file must name a file"):
        read_task(task_cfg("cola", data_dir=str(tmp_path)))
