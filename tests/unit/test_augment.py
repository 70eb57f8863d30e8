"""augment=eda and augment=backtranslation (data/eda.py, data/augment.py, data/backtranslate.py,
data/synonyms.py): EDA's edit counts against eda.py's rule, determinism per data seed, never an
empty sentence, the training split only, the pair-task choice, the missing-WordNet message, and the
back-translation pipeline with tiny random Marian models."""

import json
import random
import string
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bertlab import cli
from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import CONF_DIR
from bertlab.data import eda as eda_module
from bertlab.data.augment import augment_train, check_augment
from bertlab.data.eda import STOP_WORDS, eda, edits, random_deletion
from bertlab.data.readers import Example
from bertlab.data.synonyms import TableSynonyms, WordNetSynonyms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# 20 distinct non-stop words, each with one single-word synonym of its own
WORDS = [f"w{c}" for c in string.ascii_lowercase[:20]]
SYNONYMS = TableSynonyms({w: [f"s{w}"] for w in WORDS})
SENTENCE = " ".join(WORDS)


def augment_config(name="eda", **overrides):
    config = OmegaConf.load(CONF_DIR / "augment" / f"{name}.yaml")
    for key, value in overrides.items():
        config[key] = value
    return config


def task_config(**overrides):
    return OmegaConf.create(
        {"name": "toy", "data_seed": 0, "problem": "classification", "labels": ["no", "yes"], **overrides}
    )


def one_op(op, num_aug=6, **rates):
    return eda(SENTENCE, random.Random(1), num_aug, operations=(op,), synonyms=SYNONYMS, **rates)


def test_edit_count_rule_is_edas():
    """n = max(1, int(alpha * words)), as eda.py: at least one edit, truncated, not rounded."""
    assert [edits(0.1, n) for n in (1, 9, 10, 19, 20)] == [1, 1, 1, 1, 2]
    assert edits(0.25, 20) == 5 and edits(0.05, 10) == 1 and edits(0.3, 7) == 2


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.25, 0.5])
def test_synonym_replacement_replaces_n_words(alpha):
    n = edits(alpha, len(WORDS))
    for copy in one_op("synonym", alpha_sr=alpha):
        words = copy.split()
        assert len(words) == len(WORDS)
        changed = [(a, b) for a, b in zip(WORDS, words) if a != b]
        assert len(changed) == n and all(b == f"s{a}" for a, b in changed)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.25, 0.5])
def test_random_insertion_inserts_n_synonyms(alpha):
    n = edits(alpha, len(WORDS))
    for copy in one_op("insertion", alpha_ri=alpha):
        words = copy.split()
        assert len(words) == len(WORDS) + n
        inserted = Counter(words) - Counter(WORDS)
        assert sum(inserted.values()) == n and all(w.startswith("s") for w in inserted)
        assert [w for w in words if w in WORDS] == WORDS  # the original words keep their order


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.25, 0.5])
def test_random_swap_swaps_n_times(alpha, monkeypatch):
    calls = []
    swap = eda_module._swap_word
    monkeypatch.setattr(eda_module, "_swap_word", lambda words, rng: (calls.append(1), swap(words, rng)))
    copies = one_op("swap", num_aug=3, alpha_rs=alpha)
    per_copy = len(calls) / (int(3 / 1) + 1)  # every made copy is counted, kept or not
    assert per_copy == edits(alpha, len(WORDS))
    for copy in copies:
        assert sorted(copy.split()) == sorted(WORDS)
        # n swaps move at most 2n words
        assert 0 < sum(a != b for a, b in zip(WORDS, copy.split())) <= 2 * edits(alpha, len(WORDS))


def test_random_deletion_deletes_with_probability_p():
    words = [f"w{i}" for i in range(4000)]
    kept = random_deletion(words, 0.1, random.Random(0))
    assert 0.08 < 1 - len(kept) / len(words) < 0.12
    assert kept == [w for w in words if w in set(kept)]  # order kept
    assert len(random_deletion(words, 1.0, random.Random(0))) == 1  # never all of them
    assert random_deletion(["alone"], 1.0, random.Random(0)) == ["alone"]


def test_stop_words_are_never_replaced_and_punctuation_stays():
    table = TableSynonyms({"the": ["teh"], "dog": ["hound"], "runs": ["sprints"]})
    for copy in eda("The dog, the dog runs.", random.Random(3), 8, operations=("synonym",), synonyms=table):
        assert copy.lower().count("the") == 2  # stop word
        assert "runs." in copy or "sprints." in copy
        assert "hound," in copy or "dog," in copy
    assert {"the", "a", "not", "is"} <= STOP_WORDS


@pytest.mark.parametrize("ops", [("swap", "deletion"), ("synonym", "insertion", "swap", "deletion"), ("swap",)])
def test_eda_makes_num_aug_copies(ops):
    for num_aug in (1, 4, 9, 16):
        assert len(eda(SENTENCE, random.Random(0), num_aug, operations=ops, synonyms=SYNONYMS)) == num_aug


def test_a_zero_rate_turns_its_operation_off():
    copies = eda(SENTENCE, random.Random(0), 8, alpha_rs=0, operations=("swap", "deletion"))
    assert all(set(c.split()) < set(WORDS) or c == SENTENCE for c in copies)  # deletions only


@pytest.mark.parametrize("sentence", ["a", "Hi!", "two words", "  spaced   out  "])
def test_never_an_empty_sentence(sentence):
    for seed in range(50):
        copies = eda(sentence, random.Random(seed), 8, p_rd=1.0, synonyms=SYNONYMS)
        assert len(copies) == 8 and all(c.strip() for c in copies)


TRAIN = [Example(f"{w} and the other words here {i}", None, i % 2) for i, w in enumerate(WORDS[:8])]
SPLITS = {"train": TRAIN, "val": [Example("a val text", None, 0)], "test": [Example("a test text", None, 1)]}
OFFLINE = {"operations": ["swap", "deletion"], "num_aug": 4}


def test_eda_grows_the_training_split_only():
    splits, record = augment_train(SPLITS, augment_config(**OFFLINE), task_config())
    assert splits["val"] is SPLITS["val"] and splits["test"] is SPLITS["test"]
    assert splits["train"][: len(TRAIN)] == TRAIN  # the originals first, as drawn
    assert record == {"name": "eda", "n_train_before": 8, "n_train_after": 40, "sentences": "first"}
    assert len(splits["train"]) == 40
    copies = splits["train"][len(TRAIN) :]
    assert Counter(e.label for e in copies) == Counter(e.label for e in TRAIN for _ in range(4))  # labels copied
    assert all(e.text_a.strip() and e.text_b is None for e in copies)


def test_no_augmentation_records_the_same_size():
    splits, record = augment_train(SPLITS, augment_config("none"), task_config())
    assert splits is SPLITS and record == {"name": "none", "n_train_before": 8, "n_train_after": 8}


def test_eda_is_deterministic_per_data_seed_and_example():
    first = augment_train(SPLITS, augment_config(**OFFLINE), task_config())[0]["train"]
    again = augment_train(SPLITS, augment_config(**OFFLINE), task_config())[0]["train"]
    other = augment_train(SPLITS, augment_config(**OFFLINE), task_config(data_seed=1))[0]["train"]
    assert first == again and first != other
    # an example's copies do not depend on the other examples drawn with it
    alone = augment_train({**SPLITS, "train": TRAIN[3:4]}, augment_config(**OFFLINE), task_config())[0]["train"]
    assert alone[1:] == first[len(TRAIN) + 3 * 4 : len(TRAIN) + 4 * 4]


PAIRS = [Example(f"premise number {i} is long enough", f"hypothesis {i} here", i % 2) for i in range(6)]


@pytest.mark.parametrize("sentences", ["first", "second", "both"])
def test_pair_tasks_edit_the_chosen_sentence(sentences):
    splits, record = augment_train(
        {**SPLITS, "train": PAIRS}, augment_config(**OFFLINE, sentences=sentences), task_config()
    )
    copies = splits["train"][len(PAIRS) :]
    originals = [e for e in PAIRS for _ in range(4)]
    a_same = all(c.text_a == o.text_a for c, o in zip(copies, originals))
    b_same = all(c.text_b == o.text_b for c, o in zip(copies, originals))
    assert (a_same, b_same) == {"first": (False, True), "second": (True, False), "both": (False, False)}[sentences]
    assert record["sentences"] == sentences


def test_a_second_sentence_must_exist():
    with pytest.raises(ConfigError, match="augment.sentences=second: task 'toy' has one sentence"):
        augment_train(SPLITS, augment_config(**OFFLINE, sentences="second"), task_config())


def test_missing_wordnet_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_augment(augment_config())  # the default: all four operations, no WordNet
    message = str(err.value)
    assert "augment.operations has synonym, insertion but no WordNet is set" in message
    assert "bertlab prepare --wordnet --out DIR" in message and "augment.wordnet_dir=DIR" in message
    assert "augment.operations=[swap,deletion]" in message
    with pytest.raises(ConfigError, match=r"augment.wordnet_dir=.* holds no WordNet .*bertlab prepare --wordnet"):
        WordNetSynonyms(tmp_path)
    check_augment(augment_config(**OFFLINE))  # swap and deletion need none
    check_augment(augment_config(alpha_sr=0, alpha_ri=0))  # nor do rates of 0
    check_augment(augment_config(synonyms_file="syn.json"))


def test_prepare_wordnet_without_network_fails_with_one_message(tmp_path, monkeypatch, capsys):
    import nltk

    def offline(*args, **kwargs):  # what nltk raises when the download host cannot be reached
        raise ValueError("Error loading wordnet: <urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(nltk, "download", offline)
    assert cli.main(["prepare", "--wordnet", "--out", str(tmp_path / "wn")]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("bertlab prepare: could not download WordNet") and "needs network" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"operations": ["swap", "shuffle"]}, r"augment.operations=\['swap', 'shuffle'\] is invalid"),
        ({"operations": []}, "augment.operations=.* is invalid"),
        ({"operations": "swap"}, "augment.operations=swap is invalid: it must be a list"),
        ({"alpha_rs": 1.5, **OFFLINE}, r"augment.alpha_rs=1.5 is invalid: it must be a number in \[0, 1\]"),
        ({"p_rd": True, **OFFLINE}, "augment.p_rd=True is invalid"),
        ({"alpha_rs": 0, "p_rd": 0, **OFFLINE}, "leaves EDA nothing to do"),
        ({**OFFLINE, "num_aug": 0}, "augment.num_aug=0 is invalid: it must be an integer >= 1"),
        ({**OFFLINE, "num_aug": 0.5}, "augment.num_aug=0.5 is invalid"),
        ({**OFFLINE, "sentences": "a"}, "augment.sentences=a is invalid; valid: first, second, both"),
    ],
)
def test_bad_eda_values_get_one_message(overrides, match):
    with pytest.raises(ConfigError, match=match):
        check_augment(augment_config(**overrides))


def test_augment_keys_belong_to_their_option(compose_train):
    from bertlab.config.keys import check_overrides
    from bertlab.run.checks import check_config

    with pytest.raises(ConfigError, match="It is a key of augment=eda"):
        check_overrides(["augment.num_aug=4"], CONF_DIR)
    check_overrides(["augment=eda", "augment.num_aug=4"], CONF_DIR)
    assert compose_train().augment.name == "none"  # the default
    with pytest.raises(ConfigError, match=r"augment.file must be set .* augment.file=\.\.\."):
        check_config(compose_train("augment=backtranslation"))
    with pytest.raises(ConfigError, match="bertlab prepare --wordnet"):
        check_config(compose_train("augment=eda"))
    offline = compose_train("augment=eda_offline")  # swap and deletion: runs anywhere, sweeps against none
    check_config(offline)
    check_overrides(["augment=none,eda_offline,eda"], CONF_DIR)
    splits, record = augment_train(SPLITS, offline.augment, task_config())
    assert record["name"] == "eda_offline" and record["n_train_after"] == 8 * 10


# ---------------------------------------------------------------- back-translation


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    from tests.helpers.tiny_marian import write_tiny_marian

    root = tmp_path_factory.mktemp("marian")
    return write_tiny_marian(root / "to_pivot", seed=0), write_tiny_marian(root / "back", seed=1)


def test_backtranslation_pipeline_writes_a_file_training_reads(tiny_marian, tmp_path, capsys):
    """`bertlab prepare --backtranslate` with tiny random Marian models on the RTE fixture, then
    augment=backtranslation with that file: every line is read, and matches its example."""
    out = tmp_path / "rte_bt.jsonl"

    def prepare(out):
        argv = ["prepare", "--backtranslate", "--task", "rte", "--data-dir", str(FIXTURES / "glue" / "RTE")]
        return cli.main(argv + ["--out", str(out), "--translation-models", *map(str, tiny_marian), "--num-aug", "2"])

    assert prepare(out) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"task=rte task.data_dir={FIXTURES / 'glue' / 'RTE'} augment=backtranslation augment.file={out}" in printed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 8 * 2  # the fixture's 8 training examples, 2 paraphrases each
    assert {line["task"] for line in lines} == {"rte"}
    assert {line["label"] for line in lines} <= {"entailment", "not_entailment"}
    assert all(isinstance(line["text_a"], str) and isinstance(line["text_b"], str) for line in lines)

    from bertlab.data.readers import read_task

    task = OmegaConf.load(CONF_DIR / "task" / "rte.yaml")
    task.data_dir = str(FIXTURES / "glue" / "RTE")
    pool = read_task(task)["train"]
    assert [(x["original"]["text_a"], x["original"]["text_b"]) for x in lines[::2]] == [
        (e.text_a, e.text_b) for e in pool
    ]
    augmented, record = augment_train(
        {"train": pool[:5], "val": pool[5:], "test": []}, augment_config("backtranslation", file=str(out)), task
    )
    assert record["matched"] == 5 and augmented["train"][:5] == pool[:5]
    assert {(e.text_b, e.label) for e in augmented["train"][5:]} <= {(e.text_b, e.label) for e in pool[:5]}
    # the same models translate the same: beam search, no sampling
    again = tmp_path / "again.jsonl"
    assert prepare(again) == 0
    assert again.read_text() == out.read_text()


def bt_line(example, paraphrase_a, paraphrase_b=None, task="toy", label=None):
    return json.dumps(
        {
            "task": task,
            "label": ["no", "yes"][example.label] if label is None else label,
            "original": {"text_a": example.text_a, "text_b": example.text_b},
            "text_a": paraphrase_a,
            "text_b": paraphrase_b,
        }
    )


def test_only_paraphrases_of_drawn_training_examples_are_added(tmp_path):
    """The file covers the whole pool (train, a validation drawn from it, test); a run adds only the
    paraphrases of its own training examples, matched by their texts and label."""
    pool = PAIRS
    train, val = pool[:4], pool[4:]
    test = [Example("a test premise", "a test hypothesis", 1)]
    path = tmp_path / "bt.jsonl"
    lines = [bt_line(e, f"para {i} of {e.text_a}", f"para {i} of {e.text_b}") for e in pool + test for i in range(2)]
    lines.append(bt_line(train[0], "the same text, another label", "x", label="yes" if train[0].label == 0 else "no"))
    path.write_text("\n".join(lines) + "\n")
    splits = {"train": train, "val": val, "test": test}
    augmented, record = augment_train(splits, augment_config("backtranslation", file=str(path)), task_config())
    assert record == {
        "name": "backtranslation",
        "n_train_before": 4,
        "n_train_after": 12,
        "matched": 4,
        "sentences": "first",
    }
    added = augmented["train"][4:]
    assert augmented["val"] is val and augmented["test"] is test
    assert [(e.text_a, e.text_b, e.label) for e in added] == [
        (f"para {i} of {e.text_a}", e.text_b, e.label) for e in train for i in range(2)
    ]
    both = augment_train(splits, augment_config("backtranslation", file=str(path), sentences="both"), task_config())
    assert all(e.text_b.startswith("para") for e in both[0]["train"][4:])


def test_backtranslation_file_problems_get_one_message(tmp_path):
    path = tmp_path / "bt.jsonl"
    config = augment_config("backtranslation", file=str(path))
    with pytest.raises(ConfigError, match=r"augment.file=.*: cannot be read .*bertlab prepare --backtranslate"):
        augment_train(SPLITS, config, task_config())
    path.write_text(bt_line(TRAIN[0], "p") + "\n{not json\n")
    with pytest.raises(DataError, match=r"bt.jsonl, line 2: not a back-translation line"):
        augment_train(SPLITS, config, task_config())
    path.write_text(bt_line(TRAIN[0], "p", task="rte") + "\n")
    with pytest.raises(DataError, match="line 1: written for task 'rte', not 'toy'"):
        augment_train(SPLITS, config, task_config())
    path.write_text(bt_line(Example("elsewhere", None, 0), "p") + "\n")
    with pytest.raises(DataError, match="none of the 8 training examples of 'toy' is in it"):
        augment_train(SPLITS, config, task_config())


def test_prepare_backtranslate_with_an_unloadable_model_says_so(tmp_path, capsys):
    argv = ["prepare", "--backtranslate", "--task", "rte", "--data-dir", str(FIXTURES / "glue" / "RTE")]
    argv += ["--out", str(tmp_path / "bt.jsonl"), "--translation-models", str(tmp_path / "none"), str(tmp_path)]
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"bertlab prepare: --translation-models {tmp_path / 'none'}: cannot be loaded")
    assert not (tmp_path / "bt.jsonl").exists()
    assert cli.main(["prepare", "--backtranslate", "--task", "rte", "mrpc", "--out", "x"]) == cli.EXIT_BAD_INPUT
    assert "needs one --task" in capsys.readouterr().err


@pytest.mark.parametrize("zipped", [False, True])
def test_wordnet_synonyms_as_edas_get_synonyms(tmp_path, zipped):
    """A tiny WordNet in WordNet's file format, unpacked or zipped as nltk's downloader leaves it:
    the lemma names of every synset of the word, `_`/`-` as spaces, lower case, without the word."""
    import shutil

    from tests.helpers.tiny_wordnet import write_tiny_wordnet

    folder = write_tiny_wordnet(tmp_path)
    if zipped:
        corpora = folder / "corpora"
        shutil.make_archive(str(corpora / "wordnet"), "zip", root_dir=corpora, base_dir="wordnet")
        shutil.rmtree(corpora / "wordnet")
    wordnet = WordNetSynonyms(folder)
    assert wordnet.synonyms("dog") == ["canis familiaris", "domestic dog"]
    assert wordnet.synonyms("hound") == ["hound dog"]
    assert wordnet.synonyms("run") == ["go"] and wordnet.synonyms("cat") == []
    copies = eda("the dog will run", random.Random(0), 4, operations=("synonym",), alpha_sr=0.5, synonyms=wordnet)
    assert all(c.split()[0] == "the" and c.split()[1:] != ["dog", "will", "run"] for c in copies)


def test_prepare_wordnet_writes_a_folder_training_reads(tmp_path, monkeypatch, capsys):
    import nltk

    from tests.helpers.tiny_wordnet import write_tiny_wordnet

    monkeypatch.setattr(nltk, "download", lambda name, download_dir, **kwargs: write_tiny_wordnet(Path(download_dir)))
    assert cli.main(["prepare", "--wordnet", "--out", str(tmp_path / "wn")]) == 0
    assert f"augment=eda augment.wordnet_dir={tmp_path / 'wn'}" in capsys.readouterr().out
