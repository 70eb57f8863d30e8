"""Further pre-training corpora: what TAPT and DAPT read, and the leak test (validation and test
text never reaches the masked-language-model corpus)."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import Example, read_task
from bertlab.data.sampling import make_splits
from bertlab.pretrain.corpus import corpus_fingerprint, domain_corpus, read_documents, task_corpus

LEAKS = ("zqxleakval", "zqxleaktest")
WORDS = "apple river stone cloud amber violet orchard harbor lantern meadow".split()


def task_cfg(name: str, **overrides):
    cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    OmegaConf.set_struct(cfg, True)
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def leaked(texts: list[str]) -> list[str]:
    return [t for t in texts if any(token in t for token in LEAKS)]


# ---------------------------------------------------------------- the leak test, a pair task read from files


def write_rte(folder: Path, marks: dict[str, str] | None = None, copy: tuple[int, int] | None = None) -> None:
    """RTE-format train.tsv (40 rows) and dev.tsv (20 rows), every text unique; `marks` appends a
    token to the rows whose id it names ("train-7": the 8th training row); copy=(i, j): training
    row j gets the texts of row i (same label: the draw stays the same)."""
    marks = marks or {}

    def rows(pool: str, n: int):
        out = []
        for i in range(n):
            key = f"{pool}-{i}"
            mark = f" {marks[key]}" if key in marks else ""
            a = f"The {WORDS[i % 10]} report {key} says the {WORDS[(i + 3) % 10]} is near{mark}."
            b = f"Something {key} is near{mark}."
            out.append((a, b, "entailment" if i % 2 else "not_entailment"))
        return out

    train, dev = rows("train", 40), rows("dev", 20)
    if copy is not None:
        i, j = copy
        train[j] = (*train[i][:2], train[j][2])
    for name, data in (("train.tsv", train), ("dev.tsv", dev)):
        lines = ["index\tsentence1\tsentence2\tlabel"] + [f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(data)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def row_ids(examples: list[Example]) -> list[str]:
    return [e.text_a.split(" report ")[1].split(" ")[0] for e in examples]


@pytest.mark.parametrize("n_val", [10, None])  # val drawn from the training pool / val and test = dev halves
def test_validation_and_test_text_never_reach_the_task_corpus(tmp_path, n_val):
    task = task_cfg("rte", data_dir=str(tmp_path), n_train=10, n_val=n_val)
    write_rte(tmp_path)
    first = make_splits(read_task(task), task, task.data_seed)
    # plant a unique token in exactly the validation and test rows, then read and draw again: the
    # draw depends on the labels only, so the same rows are drawn, now carrying the tokens
    marks = {key: "zqxleakval" for key in row_ids(first["val"])}
    marks |= {key: "zqxleaktest" for key in row_ids(first["test"])}
    # and, where val is drawn from the training pool, a copy of a validation row's text in a row
    # left in the pool: identical text is validation text too
    copy = None
    if n_val is not None:
        val_row = int(row_ids(first["val"])[0].split("-")[1])
        drawn = set(row_ids(first["train"]) + row_ids(first["val"]))
        left = next(j for j in range(40) if f"train-{j}" not in drawn and j % 2 == val_row % 2)
        copy = (val_row, left)
    write_rte(tmp_path, marks, copy)
    splits = make_splits(read_task(task), task, task.data_seed)
    assert row_ids(splits["val"]) == row_ids(first["val"])
    assert all("zqxleakval" in e.text_a for e in splits["val"])
    assert all("zqxleaktest" in e.text_b for e in splits["test"])
    assert not leaked([e.text_a for e in splits["train"]])

    train = task_corpus(task, splits, "train")
    pool = task_corpus(task, splits, "train_pool")  # re-reads the files
    assert leaked(train) == [] and leaked(pool) == []
    assert len(train) == 10
    expected_pool = 40 - (n_val + 1 if n_val else 0)  # the training rows less the validation rows and the copy
    assert len(pool) == expected_pool
    assert set(train) <= set(pool)
    # a pair is one document, its two texts joined
    example = splits["train"][0]
    assert f"{example.text_a} {example.text_b}" in train


def test_a_training_example_with_evaluation_text_is_left_out_of_the_train_corpus():
    val, test = Example("seen in val", "zqxleakval", 0), Example("seen in test", None, 1)
    splits = {
        "train": [Example("kept", "pair", 0), Example(val.text_a, val.text_b, 1), Example(test.text_a, None, 0)],
        "val": [val],
        "test": [test],
    }
    assert task_corpus(task_cfg("rte"), splits, "train") == ["kept pair"]


def test_train_pool_takes_the_pools_it_is_given(tmp_path):
    task = task_cfg("rte", data_dir=str(tmp_path), n_train=10, n_val=10)
    write_rte(tmp_path)
    pools = read_task(task)
    splits = make_splits(pools, task, 0)
    assert task_corpus(task, splits, "train_pool", pools=pools) == task_corpus(task, splits, "train_pool")


# ---------------------------------------------------------------- BBC News: the articles outside every split


@pytest.fixture(scope="module")
def bbc():
    task = task_cfg("bbcnews")
    pools = read_task(task)
    return task, pools, make_splits(pools, task, task.data_seed)


def test_bbcnews_domain_corpus_is_the_articles_outside_every_split(bbc):
    task, pools, splits = bbc
    corpus = domain_corpus(None, task, splits)  # reads the corpus again
    assert len(corpus) == len(pools["train"]) - task.n_train - task.n_val == 1401
    used = {e.text_a.strip() for name in ("train", "val", "test") for e in splits[name]}
    assert not used & set(corpus)
    assert not {e.text_a.strip() for e in pools["dev"]} & set(corpus)  # the test pool, whole
    assert corpus == domain_corpus(None, task, splits, pools=pools)


def test_planted_bbcnews_validation_and_test_tokens_never_reach_any_corpus(bbc):
    task, pools, splits = bbc

    def planted(example: Example, token: str) -> Example:
        return Example(f"{example.text_a} {token}", None, example.label)

    val, test = {id(e) for e in splits["val"]}, {id(e) for e in splits["test"]}
    new_pools = {
        "train": [planted(e, "zqxleakval") if id(e) in val else e for e in pools["train"]],
        "dev": [planted(e, "zqxleaktest") if id(e) in test else e for e in pools["dev"]],
    }
    new_splits = make_splits(new_pools, task, task.data_seed)
    assert all("zqxleakval" in e.text_a for e in new_splits["val"])
    assert all("zqxleaktest" in e.text_a for e in new_splits["test"])
    for corpus in (
        domain_corpus(None, task, new_splits, pools=new_pools),
        task_corpus(task, new_splits, "train", pools=new_pools),
        task_corpus(task, new_splits, "train_pool", pools=new_pools),
    ):
        assert corpus and leaked(corpus) == []


def test_a_domain_folder_holding_the_tasks_own_evaluation_text_loses_it(bbc, tmp_path):
    task, _, splits = bbc
    for i, example in enumerate(splits["test"][:3] + splits["train"][:2]):
        (tmp_path / f"{i}.txt").write_text(example.text_a, encoding="utf-8")
    assert domain_corpus(str(tmp_path), task, splits) == [e.text_a.strip() for e in splits["train"][:2]]


# ---------------------------------------------------------------- domain corpus files and folders


def no_splits():
    return {"train": [], "val": [], "test": []}


def test_domain_corpus_from_a_file_one_document_per_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("  first document \n\n\nsecond one\n   \nfirst document\nthird\n", encoding="utf-8")
    texts = domain_corpus(str(path), task_cfg("rte"), no_splits())
    assert texts == ["first document", "second one", "third"]  # stripped, blanks and the duplicate gone


def test_domain_corpus_from_a_folder_one_document_per_txt_file(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("second\nstill the second\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufefffirst", encoding="utf-8")  # a byte-order mark is no text
    (tmp_path / "c.txt").write_text("  \n", encoding="utf-8")  # empty: skipped
    (tmp_path / "notes.md").write_text("not a document", encoding="utf-8")
    texts = domain_corpus(str(tmp_path), task_cfg("rte"), no_splits())
    assert texts == ["first", "second\nstill the second"]  # sorted by path: a.txt, b/2.txt


def test_domain_corpus_bad_input_messages(tmp_path):
    rte, splits = task_cfg("rte"), no_splits()
    with pytest.raises(ConfigError, match=r"pretrain\.domain_corpus=.*nowhere does not exist"):
        domain_corpus(str(tmp_path / "nowhere"), rte, splits)
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pretrain\.domain_corpus=.*empty\.txt: no documents"):
        domain_corpus(str(tmp_path / "empty.txt"), rte, splits)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match=r"folder without \.txt files"):
        domain_corpus(str(tmp_path / "folder"), rte, splits)
    (tmp_path / "latin.txt").write_bytes("fine\ncost \xa3 5\n".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"latin\.txt, line 2: byte 0xa3 \(byte \d+ of the line\) is not valid utf-8; .*convert it"
    ):
        read_documents(str(tmp_path / "latin.txt"))
    with pytest.raises(ConfigError, match=r"task 'rte' has no domain corpus.*pretrain\.domain_corpus=PATH"):
        domain_corpus(None, rte, splits)


def test_task_corpus_bad_input_messages():
    rte = task_cfg("rte")
    with pytest.raises(ConfigError, match=r"pretrain\.corpus=dev is invalid; valid: train, train_pool"):
        task_corpus(rte, no_splits(), "dev")
    with pytest.raises(ConfigError, match=r"pretrain\.corpus=train gives no text for task 'rte'"):
        task_corpus(rte, no_splits(), "train")


def test_corpus_fingerprint_is_content_and_order():
    a = corpus_fingerprint(["one", "two"])
    assert len(a) == 64 and int(a, 16) >= 0
    assert a == corpus_fingerprint(["one", "two"])
    assert a != corpus_fingerprint(["two", "one"])
    assert corpus_fingerprint(["ab"]) != corpus_fingerprint(["a", "b"])
    assert corpus_fingerprint([]) != corpus_fingerprint([""])


def test_a_token_task_gives_its_sentences_as_documents():
    from bertlab.problems.token_classification.reader import TaggedSentence

    splits = {
        "train": [TaggedSentence(("EU", "rejects", "German", "call"), (1, 0, 2, 0))],
        "val": [TaggedSentence(("Peter", "Blackburn"), (3, 4))],
        "test": [],
    }
    assert task_corpus(None, splits, "train") == ["EU rejects German call"]
