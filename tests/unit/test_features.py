"""Knowledge injection, in-process: side features read and checked (data/features.py: feature
columns, .npy and JSONL feature files, each bad input's one message naming file and line), scaled
with the training split's statistics only, and fused (heads/fusion.py: last_layer and embedding
against their formulas, with a head, on every encoder family, saved and loaded)."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError, DataError, ModelError
from bertlab.data.features import CATEGORICAL_KEY, NUMERIC_KEY, FeatureFile, FeatureScaler
from bertlab.data.readers import Example, read_task
from bertlab.data.sampling import make_splits
from bertlab.heads.build import load_classifier
from bertlab.heads.fusion import attach_fusion, fusion_of, load_fusion, save_fusion
from bertlab.model.load import load_config
from bertlab.run.checks import check_config
from tests.helpers.families import ENCODER_FAMILIES

TEXTS = ["the market fell sharply today", "a film wins the award", "the team won the cup"]


def ex(label, *features):
    return Example(f"text {label}", None, label, tuple(features))


# -- scaling: the training split only ----------------------------------------------------------


def test_scaler_statistics_come_from_the_training_split_alone():
    train = [ex(0, 1.0, "a"), ex(1, 3.0, "b"), ex(0, 5.0, "a")]
    scaler = FeatureScaler.fit(train, ["n", "c"], ["numeric", "categorical"])
    values = np.array([1.0, 3.0, 5.0])
    assert scaler.mean == [pytest.approx(values.mean())] and scaler.std == [pytest.approx(values.std())]
    assert scaler.vocab == [["a", "b"]]
    # a test example's value is scaled by train's statistics; a category train never showed is 0
    out = scaler.transform((100.0, "zzz"))
    assert out[NUMERIC_KEY] == [pytest.approx((100 - values.mean()) / values.std())]
    assert out[CATEGORICAL_KEY] == [0]
    assert scaler.transform((3.0, "b"))[CATEGORICAL_KEY] == [2]
    # a constant feature stays 0 instead of dividing by 0
    constant = FeatureScaler.fit([ex(0, 2.0), ex(1, 2.0)], ["n"], ["numeric"])
    assert constant.transform((2.0,))[NUMERIC_KEY] == [0.0]
    assert FeatureScaler.from_state(json.loads(json.dumps(scaler.state()))) == scaler


def csv_task(tmp_path, train_rows, dev_rows, **keys):
    for name, rows in (("train", train_rows), ("dev", dev_rows)):
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    task = {
        "name": "csv", "source": "csv", "data_dir": str(tmp_path), "train_file": "train.csv", "dev_file": "dev.csv",
        "encoding": "utf-8", "columns": None, "text_fields": ["text"], "label_field": "label", "labels": None,
        "problem": "classification", "n_train": None, "n_val": None, "n_test": None, "data_seed": 0,
        "sampling": "balanced", "feature_fields": {"n": "numeric", "c": "categorical"}, "feature_file": None,
        "id_field": None, **keys,
    }  # fmt: skip
    return OmegaConf.create(task)


ROWS = ["text,label,n,c,id"] + [f"t{i},{i % 2},{i},{'xy'[i % 2]},{i}" for i in range(8)]


def test_the_reader_fills_each_examples_features_and_fit_sees_train_only(tmp_path):
    dev = ["text,label,n,c,id"] + [f"d{i},{i % 2},{1000 + i},z,{100 + i}" for i in range(4)]
    task = csv_task(tmp_path, ROWS, dev)
    pools = read_task(task)
    assert pools["train"][3].features == (3.0, "y") and pools["dev"][0].features == (1000.0, "z")
    splits = make_splits(pools, task, 0)
    scaler = FeatureScaler.fit(splits["train"], ["n", "c"], ["numeric", "categorical"])
    assert scaler.mean == [pytest.approx(3.5)] and scaler.vocab == [["x", "y"]]  # the dev rows' 1000s and 'z' unseen


@pytest.mark.parametrize(
    "row, message",
    [
        ("t9,1,,x,9", r"train.csv, line 10: the feature 'n' is missing"),
        ("t9,1,ten,x,9", r"train.csv, line 10: the feature 'n' is 'ten', not a number .*categorical"),
        ("t9,1,nan,x,9", r"train.csv, line 10: the feature 'n' is 'nan', not a number"),
        ("t9,1,3,,9", r"train.csv, line 10: the feature 'c' is missing"),
    ],
)
def test_a_bad_feature_value_is_one_message_naming_the_file_and_line(tmp_path, row, message):
    task = csv_task(tmp_path, [*ROWS, row], ROWS)
    with pytest.raises(DataError, match=message):
        read_task(task)


def test_a_missing_feature_column_names_the_columns_found(tmp_path):
    task = csv_task(tmp_path, ROWS, ROWS, feature_fields={"size": "numeric"})
    with pytest.raises(DataError, match=r"train.csv, line 2: no column \['size'\].*columns found"):
        read_task(task)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_jsonl_feature_file_is_read_by_id(tmp_path):
    path = write_jsonl(tmp_path / "f.jsonl", [{"id": i, "features": [i, -i]} for i in range(8)])
    task = csv_task(tmp_path, ROWS, ROWS, feature_fields=None, feature_file=str(path), id_field="id")
    pools = read_task(task)
    assert pools["train"][5].features == (5.0, -5.0)


def test_a_npy_feature_file_is_row_per_id(tmp_path):
    np.save(tmp_path / "f.npy", np.arange(16, dtype=np.float32).reshape(8, 2))
    task = csv_task(
        tmp_path, ROWS, ROWS, feature_fields={"n": "numeric"}, feature_file=str(tmp_path / "f.npy"), id_field="id"
    )
    assert read_task(task)["train"][3].features == (3.0, 6.0, 7.0)  # the column first, then the file's vector


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [{"id": 0, "features": [1, 2]}, {"id": 1, "features": [1]}],
            r"f.jsonl, line 2: 1 feature values, but .*line 1 has 2",
        ),
        ([{"id": 0, "features": [1, "x"]}], r"f.jsonl, line 1: the feature 'features\[1\]' is 'x', not a number"),
        (
            [{"id": 0, "features": [1]}, {"id": 0, "features": [2]}],
            r"f.jsonl, line 2: id '0' again \(first at .*line 1\)",
        ),
        ([{"id": 0}], r"f.jsonl, line 1: expected an object"),
        ([{"id": 0, "features": []}], r"f.jsonl, line 1: 'features' must be a non-empty list"),
    ],
)
def test_bad_jsonl_feature_files_are_one_message(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        FeatureFile(write_jsonl(tmp_path / "f.jsonl", rows))


def test_bad_npy_feature_files_and_missing_ids_are_one_message(tmp_path):
    bad = np.ones((3, 2))
    bad[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match=r"nan.npy, row 1: value nan \(column 1\) is not a finite number"):
        FeatureFile(tmp_path / "nan.npy")
    np.save(tmp_path / "flat.npy", np.ones(3))
    with pytest.raises(DataError, match=r"flat.npy holds a float64 array of shape \(3,\); it must be a 2-D array"):
        FeatureFile(tmp_path / "flat.npy")
    np.save(tmp_path / "short.npy", np.ones((4, 2)))
    task = csv_task(tmp_path, ROWS, ROWS, feature_fields=None, feature_file=str(tmp_path / "short.npy"), id_field="id")
    with pytest.raises(DataError, match=r"train.csv, line 6: id '4' has no vector in .*short.npy \(4 rows"):
        read_task(task)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["features=last_layer"], "features.fusion=last_layer has no features to fuse"),
        (["task=rte", "task.data_dir=x", "task.feature_file=f.csv"], "task.feature_file=f.csv: unknown format '.csv'"),
        (["task=rte", "task.data_dir=x", "task.feature_file=f.npy"], "set task.id_field"),
        (
            ["task=rte", "task.data_dir=x", "+task.feature_fields={a: number}"],
            "task.feature_fields.a=number is invalid",
        ),
        (["task=rte", "task.feature_fields={a: numeric}"], "side features are read from the task's own files"),
    ],
)
def test_bad_feature_settings_are_one_message(compose_train, overrides, message):
    overrides = [o.replace("+task.feature_fields", "task.feature_fields") for o in overrides]
    with pytest.raises(ConfigError, match=message):
        check_config(compose_train("debug=fast", *overrides))


# -- fusion ------------------------------------------------------------------------------------


def classifier(path, head="pooler", num_labels=3):
    torch.manual_seed(0)
    return load_classifier({"name": head}, str(path), load_config(str(path), num_labels, "classification"))


def scaler_2_1():
    return FeatureScaler(["a", "b", "c"], ["numeric", "numeric", "categorical"], [0, 0], [1, 1], [["x", "y"]])


def features(n=3):
    return {NUMERIC_KEY: torch.randn(n, 2), CATEGORICAL_KEY: torch.tensor([[0], [1], [2]])[:n]}


def test_last_layer_concatenates_the_features_with_the_pooled_text_before_the_output_layer(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    plain = copy.deepcopy(model).eval()
    fusion = attach_fusion(model, scaler_2_1(), "last_layer", dim=8)
    model.eval()
    batch, f = dict(tokenizer(TEXTS, padding=True, return_tensors="pt")), features()
    logits = model(**batch, **f).logits
    assert logits.shape == (3, 3)
    # the formula: W [pooled; tanh(P x); E c] + b = classifier(pooled) + W_f [tanh(P x); E c]
    pooled = plain.bert(**batch).pooler_output
    side = torch.cat([torch.tanh(fusion.numeric(f[NUMERIC_KEY])), fusion.categorical[0](f[CATEGORICAL_KEY][:, 0])], -1)
    expected = plain.classifier(pooled) + side @ fusion.output.weight.T
    torch.testing.assert_close(logits, expected)
    assert fusion.current is None  # cleared after the forward: another encoder pass runs without them


def test_embedding_fusion_adds_the_projected_features_to_every_token_embedding(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    plain = copy.deepcopy(model).eval()
    fusion = attach_fusion(model, scaler_2_1(), "embedding", dim=8)
    model.eval()
    batch, f = dict(tokenizer(TEXTS, padding=True, return_tensors="pt")), features()
    logits = model(**batch, **f).logits
    v = fusion.numeric(f[NUMERIC_KEY]) + fusion.categorical[0](f[CATEGORICAL_KEY][:, 0])
    assert v.shape == (3, 32)  # the token embeddings' width (BERT: the hidden size)
    embeds = plain.bert.embeddings.word_embeddings(batch["input_ids"]) + v.unsqueeze(1)
    inputs = {k: batch[k] for k in ("attention_mask", "token_type_ids")}
    torch.testing.assert_close(logits, plain(inputs_embeds=embeds, **inputs).logits)


def test_a_fused_model_without_its_features_is_an_error(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    attach_fusion(model, scaler_2_1(), "last_layer", dim=8)
    with pytest.raises(ModelError, match=r"fuses side features \(a, b, c, features.fusion=last_layer\)"):
        model(**tokenizer(TEXTS, padding=True, return_tensors="pt"))


@pytest.mark.parametrize("fusion", ["last_layer", "embedding"])
@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_fusion_on_every_family_trains_the_features(family, fusion, tiny_family_dirs):
    tokenizer, model = classifier(tiny_family_dirs[family], num_labels=2)
    module = attach_fusion(model, scaler_2_1(), fusion, dim=8)
    batch = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    out = model(**batch, **features(), labels=torch.tensor([0, 1, 1]))
    assert out.logits.shape == (3, 2)
    out.loss.backward()
    assert module.numeric.weight.grad.abs().sum() > 0 and module.categorical[0].weight.grad.abs().sum() > 0


def test_last_layer_with_a_head_reads_the_heads_features(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir, head="mean")
    fusion = attach_fusion(model, scaler_2_1(), "last_layer", dim=8)
    model.eval()
    batch, f = dict(tokenizer(TEXTS, padding=True, return_tensors="pt")), features()
    with_features = model(**batch, **f).logits
    f2 = {NUMERIC_KEY: f[NUMERIC_KEY] + 1, CATEGORICAL_KEY: f[CATEGORICAL_KEY]}
    assert not torch.allclose(with_features, model(**batch, **f2).logits)  # the features change the logits
    assert fusion.output.in_features == 16  # 8 projected numeric + 8 embedded categorical


def test_saved_fusion_loads_back_with_the_same_outputs(tiny_bert_dir, tmp_path):
    tokenizer, model = classifier(tiny_bert_dir)
    attach_fusion(model, scaler_2_1(), "embedding", dim=8)
    model.eval()
    batch, f = dict(tokenizer(TEXTS, padding=True, return_tensors="pt")), features()
    before = model(**batch, **f).logits
    save_fusion(model, tmp_path)
    _, other = classifier(tiny_bert_dir)
    other.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("feature_fusion")})
    loaded = load_fusion(other.eval(), tmp_path)
    assert loaded.scaler == scaler_2_1() and fusion_of(other) is loaded
    torch.testing.assert_close(other(**batch, **f).logits, before)


def test_anatomy_counts_the_fusion_as_the_head(tiny_bert_dir):
    from bertlab.model.anatomy import anatomy

    _, model = classifier(tiny_bert_dir)
    attach_fusion(model, scaler_2_1(), "last_layer", dim=8)
    parts = anatomy(model)
    assert {parts.block_of(n) for n, _ in model.named_parameters() if n.startswith("feature_fusion")} == {"classifier"}
    assert math.isclose(sum(p.numel() for p in fusion_of(model).parameters()), 2 * 8 + 8 + 3 * 8 + 16 * 3)
