"""Multiple choice: the SWAG / JSONL / TSV readers and their bad-input messages, the pair encoding
and DataCollatorForMultipleChoice batches on hand cases, accuracy against torchmetrics and by hand,
the head's anatomy for the methods, sampling, the token cache key, the TAPT text and the config rules
(fixtures: tests/fixtures/swag in SWAG's CSV format, tests/fixtures/choices as JSONL)."""

import csv
import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import token_cache
from bertlab.data.sampling import make_splits
from bertlab.problems.multiple_choice.encoder import ChoiceEncoder
from bertlab.problems.multiple_choice.reader import ChoiceExample, read_choices
from tests.helpers.families import ENCODER_FAMILIES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SWAG = FIXTURES / "swag"
CHOICES = FIXTURES / "choices"
SWAG_HEADER = ["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source"]
SWAG_HEADER += ["ending0", "ending1", "ending2", "ending3", "label"]


@pytest.fixture
def task(compose_train):
    def task(*overrides, name="swag"):
        return compose_train(f"task={name}", *overrides).task

    return task


def jsonl_task(task, data_dir=CHOICES, *overrides):
    return task(
        f"task.data_dir={data_dir}",
        "task.train_file=train.jsonl",
        "task.dev_file=dev.jsonl",
        "task.text_fields=[context,question]",
        "task.ending_fields=[endings]",
        "task.num_choices=3",
        "task.label_field=answer",
        *overrides,
        name="choices",
    )


def swag_copy(tmp_path, edit=None):
    """The SWAG fixture copied to tmp_path; edit(rows) may change train.csv's rows (dicts)."""
    for name in ("train.csv", "val.csv"):
        (tmp_path / name).write_text((SWAG / name).read_text())
    if edit is not None:
        with open(SWAG / "train.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        rows, header = edit(rows)
        with open(tmp_path / "train.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, header)
            writer.writeheader()
            writer.writerows(rows)
    return tmp_path


# ---------------------------------------------------------------- readers


def test_swag_csv_is_read_by_header_name(task):
    pools = read_choices(task(f"task.data_dir={SWAG}"))
    assert {k: len(v) for k, v in pools.items()} == {"train": 30, "dev": 20}
    with open(SWAG / "train.csv", newline="") as f:
        row = next(csv.DictReader(f))
    first = pools["train"][0]
    assert first.context == row["sent1"] and first.question == row["sent2"]
    assert first.endings == tuple(row[f"ending{i}"] for i in range(4)) and first.label == int(row["label"])
    # run_swag.py's pairs: the context, and sent2 + " " + each ending
    assert first.text_a == row["sent1"] and first.text_b == tuple(
        f"{row['sent2']} {row[f'ending{i}']}" for i in range(4)
    )


def test_jsonl_with_a_list_field_and_a_question(task):
    pools = read_choices(jsonl_task(task))
    assert {k: len(v) for k, v in pools.items()} == {"train": 24, "dev": 12}
    row = json.loads((CHOICES / "train.jsonl").read_text().splitlines()[0])
    first = pools["train"][0]
    assert (first.context, first.question, first.endings, first.label) == (
        row["context"],
        row["question"],
        tuple(row["endings"]),
        row["answer"],
    )


def test_tsv_with_one_column_per_ending_and_no_question(task, tmp_path):
    lines = ["ctx\ta\tb\tgold", "The sky is\tblue.\tloud.\t0", "Fire is\tcold.\thot.\t1"]
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    t = task(
        f"task.data_dir={tmp_path}",
        "task.train_file=train.tsv",
        "task.dev_file=dev.tsv",
        "task.test_file=test.tsv",
        "task.text_fields=[ctx]",
        "task.ending_fields=[a,b]",
        "task.num_choices=2",
        "task.label_field=gold",
        name="choices",
    )
    pools = read_choices(t)
    assert set(pools) == {"train", "dev", "test"}
    assert pools["train"][1] == ChoiceExample("Fire is", "", ("cold.", "hot."), 1)
    assert pools["train"][1].text_b == ("cold.", "hot.")  # no question: the ending alone


def test_a_missing_column_names_file_line_and_the_columns_found(task, tmp_path):
    def drop_ending3(rows):
        return [{k: v for k, v in r.items() if k != "ending3"} for r in rows], [
            h for h in SWAG_HEADER if h != "ending3"
        ]

    data = swag_copy(tmp_path, drop_ending3)
    with pytest.raises(DataError, match=r"train.csv, line 2: no field \['ending3'\].*fields found: \['', 'video-id'"):
        read_choices(task(f"task.data_dir={data}"))


@pytest.mark.parametrize(
    "value, message",
    [
        ("4", "train.csv, line 4: label 4 in field 'label' is out of range: the index of the right ending is 0 to 3"),
        ("-1", "train.csv, line 4: label -1 in field 'label' is out of range"),
        ("B", r"train.csv, line 4: label 'B' in field 'label' is not the index of the right ending \(an integer"),
        ("", "train.csv, line 4: label '' in field 'label' is not the index"),
    ],
)
def test_a_label_out_of_range_names_file_and_line(task, tmp_path, value, message):
    def bad_label(rows):
        rows[2]["label"] = value  # the third example: line 4 (after the header)
        return rows, SWAG_HEADER

    with pytest.raises(DataError, match=message):
        read_choices(task(f"task.data_dir={swag_copy(tmp_path, bad_label)}"))


def test_an_empty_ending_or_context_names_file_and_line(task, tmp_path):
    def empty_ending(rows):
        rows[0]["ending2"] = " "
        return rows, SWAG_HEADER

    with pytest.raises(DataError, match="train.csv, line 2: the ending in field 'ending2' is empty"):
        read_choices(task(f"task.data_dir={swag_copy(tmp_path, empty_ending)}"))


def test_the_wrong_number_of_endings_names_file_and_line(task, tmp_path):
    lines = (CHOICES / "dev.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["endings"] = row["endings"][:2]
    lines[2] = json.dumps(row)
    (tmp_path / "train.jsonl").write_text((CHOICES / "train.jsonl").read_text())
    (tmp_path / "dev.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"dev.jsonl, line 3: 2 endings in field 'endings', task.num_choices=3"):
        read_choices(jsonl_task(task, tmp_path))
    lines[2] = json.dumps({**row, "endings": "in water"})  # not a list
    (tmp_path / "dev.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"dev.jsonl, line 3: field 'endings' .* must hold the list of the 3 endings"):
        read_choices(jsonl_task(task, tmp_path))


def test_a_csv_cell_may_hold_the_json_list_of_endings(task, tmp_path):
    text = 'context,endings,label\nThe sky is,"[""blue."", ""loud.""]",0\nFire is,"[""cold."", ""hot.""]",1\n'
    for name in ("train.csv", "dev.csv"):
        (tmp_path / name).write_text(text)
    t = task(
        f"task.data_dir={tmp_path}",
        "task.train_file=train.csv",
        "task.dev_file=dev.csv",
        "task.ending_fields=[endings]",
        "task.num_choices=2",
        name="choices",
    )
    assert read_choices(t)["dev"][1].endings == ("cold.", "hot.")


def test_an_empty_file_and_a_missing_folder(task, tmp_path):
    (tmp_path / "train.csv").write_text(",".join(SWAG_HEADER) + "\n")
    (tmp_path / "val.csv").write_text((SWAG / "val.csv").read_text())
    with pytest.raises(DataError, match="train.csv has no examples"):
        read_choices(task(f"task.data_dir={tmp_path}"))
    with pytest.raises(
        DataError, match="task.data_dir=/nowhere is not a folder; it must hold task.train_file=train.csv"
    ):
        read_choices(task("task.data_dir=/nowhere"))


# ---------------------------------------------------------------- the hub path (a stand-in for load_dataset)


def test_hub_copy_in_allenai_swag_shape(task, monkeypatch):
    import datasets

    with open(SWAG / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    columns = {key: [r[key] for r in rows] for key in SWAG_HEADER[1:-1]}
    columns["label"] = [int(r["label"]) for r in rows]
    calls = []

    def load_dataset(path, name):
        calls.append((path, name))
        split = datasets.Dataset.from_dict(columns)
        test = datasets.Dataset.from_dict({**columns, "label": [-1] * len(rows)})  # unlabelled, as the hub's
        return datasets.DatasetDict({"train": split, "validation": split, "test": test})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    pools = read_choices(task())  # data_dir null: the hub
    assert calls == [("allenai/swag", "regular")]
    assert {k: len(v) for k, v in pools.items()} == {"train": 3, "dev": 3}
    assert pools["train"][0].endings == tuple(rows[0][f"ending{i}"] for i in range(4))


def test_hub_unreachable_is_one_message(task, monkeypatch):
    import datasets

    def load_dataset(path, name):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError, match="Cannot load task 'swag'.*point task.data_dir at a folder holding train.csv"):
        read_choices(task())


# ---------------------------------------------------------------- encoding and batches


EXAMPLES = [
    ChoiceExample("A man is standing in a kitchen.", "He", ("slices an onion.", "jumps."), 0),
    ChoiceExample("The girl sits.", "", ("She plays a very long and slow song on the piano.", "Rain."), 1),
]


@pytest.fixture
def tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_each_choice_is_the_pair_context_and_question_plus_ending(tokenizer):
    rows = ChoiceEncoder(tokenizer, 64, 2).encode(EXAMPLES, "train")
    assert [r["labels"] for r in rows] == [0, 1]
    for example, row in zip(EXAMPLES, rows):
        assert len(row["input_ids"]) == len(row["attention_mask"]) == len(row["token_type_ids"]) == 2
        for j, ending in enumerate(example.endings):
            second = f"{example.question} {ending}" if example.question else ending
            alone = tokenizer(example.context, second)  # run_swag.py's pair, one at a time
            assert row["input_ids"][j] == alone["input_ids"] and row["token_type_ids"][j] == alone["token_type_ids"]
    ids = rows[0]["input_ids"][1]
    assert tokenizer.decode(ids) == "[CLS] a man is standing in a kitchen. [SEP] he jumps. [SEP]"


def test_the_collator_pads_every_choice_to_the_longest_of_the_batch(tokenizer):
    encoder = ChoiceEncoder(tokenizer, 64, 2)
    rows = encoder.encode(EXAMPLES, "train")
    batch = encoder.collate(rows)
    longest = max(len(ids) for r in rows for ids in r["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape == (2, 2, longest)
    assert batch["labels"].tolist() == [0, 1] and batch["labels"].dtype == torch.int64
    for i, row in enumerate(rows):
        for j, ids in enumerate(row["input_ids"]):
            n = len(ids)
            assert batch["input_ids"][i, j, :n].tolist() == ids
            assert batch["input_ids"][i, j, n:].eq(tokenizer.pad_token_id).all()
            assert batch["attention_mask"][i, j].tolist() == [1] * n + [0] * (longest - n)
    assert encoder.length(rows[1]) == longest and encoder.length(rows[0]) < longest


def test_truncation_cuts_every_pair_to_max_length(tokenizer):
    rows = ChoiceEncoder(tokenizer, 8, 2).encode(EXAMPLES, "val")
    assert all(len(ids) <= 8 for r in rows for ids in r["input_ids"])
    assert len(rows[1]["input_ids"][0]) == 8 and rows[1]["input_ids"][0][-1] == tokenizer.sep_token_id


def test_the_model_takes_the_batch_and_its_loss_is_cross_entropy_over_the_choices(tiny_bert_dir, tokenizer):
    from bertlab.model.load import load_config, load_model
    from bertlab.problems.multiple_choice import MULTIPLE_CHOICE

    config = load_config(str(tiny_bert_dir), 2, "multiple_choice")
    _, model = load_model(str(tiny_bert_dir), config, auto_class=MULTIPLE_CHOICE.auto_class)
    model.eval()
    encoder = ChoiceEncoder(tokenizer, 64, 2)
    batch = encoder.collate(encoder.encode(EXAMPLES, "train"))
    out = model(**batch)
    assert out.logits.shape == (2, 2)
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(out.logits, batch["labels"]).item())
    # padding changes no choice's score: each pair alone, unpadded
    for i, example in enumerate(EXAMPLES):
        alone = encoder.collate(encoder.encode([example], "val"))
        alone.pop("labels")
        assert torch.allclose(model(**alone).logits[0], out.logits[i], atol=1e-5)


def test_the_datamodule_orders_evaluation_by_the_longest_choice(tokenizer):
    from bertlab.data.datamodule import FewSampleDataModule

    short = ChoiceExample("A b.", "", ("c.", "d."), 0)
    splits = {"train": [short, *EXAMPLES], "val": [short, *EXAMPLES], "test": [short]}
    dm = FewSampleDataModule(splits, tokenizer, 64, False, 2, 2, encoder=ChoiceEncoder(tokenizer, 64, 2))
    dm.setup()
    first = next(iter(dm.val_dataloader()))
    assert first["input_ids"].shape[:2] == (2, 2)
    assert first["labels"].tolist() == [1, 0]  # EXAMPLES[1] (the longest choice), then EXAMPLES[0]
    assert next(iter(dm.train_dataloader()))["input_ids"].dim() == 3


# ---------------------------------------------------------------- metrics, baseline


def test_accuracy_over_the_choices_is_torchmetrics_and_by_hand():
    from torchmetrics.functional.classification import multiclass_accuracy

    from bertlab.problems.metrics import predictions
    from bertlab.problems.multiple_choice import MULTIPLE_CHOICE

    t = OmegaConfTask(num_choices=4, metrics=["accuracy"])
    collection = MULTIPLE_CHOICE.metrics(t, 4, None)("val")
    generator = torch.Generator().manual_seed(0)
    logits = [torch.randn(5, 4, generator=generator), torch.randn(3, 4, generator=generator)]
    labels = [torch.tensor([0, 1, 2, 3, 0]), torch.tensor([3, 3, 1])]
    for batch_logits, batch_labels in zip(logits, labels):
        collection.update(predictions(batch_logits, "multiple_choice"), batch_labels)
    got = collection.compute()["val/accuracy"].item()
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    by_hand = sum(int(row.argmax()) == int(y) for row, y in zip(all_logits, all_labels)) / 8
    assert got == pytest.approx(by_hand)
    assert got == pytest.approx(multiclass_accuracy(all_logits, all_labels, num_classes=4, average="micro").item())


def test_baseline_is_the_most_common_training_answer():
    from bertlab.problems.multiple_choice import MULTIPLE_CHOICE

    t = OmegaConfTask(num_choices=4, metrics=["accuracy"])
    scores = MULTIPLE_CHOICE.baseline(t, 4, [2, 2, 1, 0], [2, 3, 2, 0, 1])
    assert scores == {"test/accuracy": pytest.approx(2 / 5)}


def OmegaConfTask(**keys):
    from omegaconf import OmegaConf

    return OmegaConf.create(keys)


# ---------------------------------------------------------------- sampling, cache key, TAPT text


def test_sampling_is_random_by_data_seed(task):
    t = task(f"task.data_dir={SWAG}", "task.n_train=10", "task.n_val=6")
    pools = read_choices(t)
    splits = make_splits(pools, t, 0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 10, "val": 6, "test": 20}
    assert not set(splits["train"]) & set(splits["val"]) and splits["test"] == pools["dev"]
    assert make_splits(pools, t, 0) == splits and make_splits(pools, t, 1)["train"] != splits["train"]
    with open_dict(t):
        t.n_train = t.n_val = None
    halves = make_splits(pools, t, 0)  # val/test = the halves of val.csv
    assert {k: len(v) for k, v in halves.items()} == {"train": 30, "val": 10, "test": 10}


def test_cache_key_changes_with_any_ending(task):
    pools = read_choices(task(f"task.data_dir={SWAG}"))
    train = pools["train"]
    edited = [ChoiceExample(train[0].context, train[0].question, ("x",) + train[0].endings[1:], 0), *train[1:]]
    key = token_cache.cache_key("fp", train, 64, False, "choices=4")
    assert token_cache.cache_key("fp", edited, 64, False, "choices=4") != key
    assert token_cache.cache_key("fp", train, 64, False) != key


def test_the_tapt_document_is_the_context_and_its_endings():
    from bertlab.pretrain.corpus import example_text

    assert example_text(EXAMPLES[0]) == "A man is standing in a kitchen. He slices an onion. He jumps."


# ---------------------------------------------------------------- the head and the methods


def test_the_choice_head_is_the_classifier_for_every_method(tiny_bert_dir):
    from bertlab.methods.reinit import reinit_top_layers
    from bertlab.model.anatomy import anatomy
    from bertlab.model.load import load_config, load_model
    from bertlab.optim.param_groups import param_groups
    from bertlab.problems.multiple_choice import MULTIPLE_CHOICE

    config = load_config(str(tiny_bert_dir), 4, "multiple_choice")
    _, model = load_model(str(tiny_bert_dir), config, auto_class=MULTIPLE_CHOICE.auto_class)
    parts = anatomy(model)
    assert type(model).__name__ == "BertForMultipleChoice" and parts.pooler == "bert.pooler"
    assert {parts.block_of(n) for n, _ in model.named_parameters() if n.startswith("classifier.")} == {"classifier"}
    assert model.classifier.out_features == 1  # one score per choice
    groups = param_groups(model, lr=1.0, weight_decay=0.01, llrd=0.5)
    lrs = {g["name"].split("/")[0]: g["lr"] for g in groups}
    assert lrs == {"head": 1.0, "layer_1": 0.5, "layer_0": 0.25, "embeddings": 0.125}  # the pooler: head lr
    assert reinit_top_layers(model, 1) == ["bert.pooler", parts.blocks[-1]]


def test_every_family_has_a_choice_head_the_methods_find(tiny_family_dirs):
    from bertlab.model.anatomy import anatomy
    from bertlab.model.load import load_config, load_model
    from bertlab.problems.multiple_choice import MULTIPLE_CHOICE

    for family in ENCODER_FAMILIES:
        path = tiny_family_dirs[family]
        config = load_config(str(path), 4, "multiple_choice")
        _, model = load_model(str(path), config, auto_class=MULTIPLE_CHOICE.auto_class)
        parts = anatomy(model)
        head = {n for n, _ in model.named_parameters() if parts.block_of(n) == "classifier"}
        assert head and all(not n.startswith(parts.base + ".") for n in head), (family, head)


# ---------------------------------------------------------------- config rules


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task.num_choices=1"], "task.num_choices=1 is invalid"),
        (["task.ending_fields=[ending0,ending1]"], r"task.ending_fields=\['ending0', 'ending1'\] is invalid: the 4"),
        (["task.text_fields=[a,b,c]"], "task.text_fields=.* is invalid: \\[context\\] or \\[context, second text\\]"),
        (["task.sampling=paper"], "task.sampling=paper reproduces"),
        (["task.labels=[a,b,c,d]"], "task.labels=.* is not used by multiple choice.*set task.labels=null"),
        (["task.label_field=null"], "task.label_field=None is invalid"),
        (["augment=eda_offline"], "augment=eda_offline is for sequence tasks"),
        (["distill=self"], "distill=self is for sequence tasks"),
        (["head=mean"], r"head=mean reads one vector per example.*multiple_choice has its own head \(one score per"),
        (["task.metrics=[f1]"], "task.metrics: 'f1' does not apply to multiple_choice; valid: accuracy"),
    ],
)
def test_bad_values_are_one_message(compose_train, overrides, message):
    from bertlab.problems.metrics import check_metrics
    from bertlab.run.checks import check_config

    cfg = compose_train("task=swag", f"task.data_dir={SWAG}", *overrides)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
        check_metrics(list(cfg.task.metrics), cfg.task.main_metric, cfg.task.problem)


def test_choice_problem_on_a_sequence_task_names_the_missing_keys(compose_train):
    from bertlab.run.checks import check_config

    cfg = compose_train("task=rte", "task.problem=multiple_choice")
    with pytest.raises(ConfigError, match="needs task.ending_fields, task.num_choices.*start from task=choices"):
        check_config(cfg)


def test_the_choices_task_asks_for_its_files_and_fields(compose_train):
    from bertlab.run.checks import check_config

    cfg = compose_train("task=choices")
    with pytest.raises(ConfigError, match="task.data_dir, task.dev_file, task.ending_fields, task.num_choices"):
        check_config(cfg)


def test_throughput_counts_every_choice_as_a_sequence():
    from types import SimpleNamespace

    from bertlab.callbacks.throughput import TrainThroughput

    meter = TrainThroughput()
    meter._flop_terms = (6, 12)
    mask = torch.ones(2, 4, 5, dtype=torch.long)
    mask[:, :, 3:] = 0
    meter.on_train_batch_start(None, None, None, 0)
    meter.on_train_batch_end(SimpleNamespace(), None, None, {"input_ids": mask, "attention_mask": mask}, 0)
    assert meter.samples == 2 and meter.padding_efficiency == pytest.approx(0.6)
    assert meter.flops == 8 * (6 * 5 + 12 * 25)


def test_the_token_cache_gives_back_the_same_items(tokenizer, tmp_path):
    from bertlab.data.datamodule import FewSampleDataModule

    splits = {"train": EXAMPLES, "val": EXAMPLES[:1], "test": EXAMPLES[1:]}

    def setup():
        encoder = ChoiceEncoder(tokenizer, 64, 2)
        dm = FewSampleDataModule(splits, tokenizer, 64, False, 2, 2, token_cache_dir=str(tmp_path), encoder=encoder)
        dm.setup()
        return dm

    first, second = setup(), setup()
    assert set(first.cache_hits.values()) == {False} and set(second.cache_hits.values()) == {True}
    assert second.encoded == first.encoded
