"""Model loading: float32 master weights whatever the checkpoint's dtype, the classifier head's
fate in one line, and `task.max_length`'s valid range from the config and tokenizer alone."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from bertlab.core.errors import ConfigError, ModelError
from bertlab.model.anatomy import skeleton
from bertlab.model.lengths import check_max_length, length_range
from bertlab.model.load import load_config, load_model
from bertlab.model.tiny import write_tiny


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_checkpoint_loads_as_float32(tmp_path, dtype):
    path = write_tiny("bert", tmp_path / "half", dtype=dtype)
    saved = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=2, dtype=dtype)
    assert next(saved.parameters()).dtype == dtype  # transformers keeps the saved dtype
    _, model = load_model(str(path), load_config(str(path), 2, "classification"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # the same values, upcast: a 2e-5 step on a weight of 1 now survives
    torch.testing.assert_close(
        model.bert.embeddings.word_embeddings.weight,
        saved.bert.embeddings.word_embeddings.weight.float(),
        rtol=0,
        atol=0,
    )
    weight = model.bert.encoder.layer[0].output.dense.weight
    assert not torch.equal(weight + 2e-5, weight)


def save_classifier(family_dir, out, num_labels):
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(str(family_dir), num_labels=num_labels)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(family_dir)).save_pretrained(str(out))
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_head_of_another_label_count_is_recreated_whole(tmp_path, tiny_family_dirs, family, capsys, said):
    saved = save_classifier(tiny_family_dirs[family], tmp_path / "mnli", num_labels=3)
    _, model = load_model(str(tmp_path / "mnli"), load_config(str(tmp_path / "mnli"), 2, "classification"))
    assert "model: new classifier head (2 labels): the checkpoint's head has 3 labels" in said()
    assert "LOAD REPORT" not in capsys.readouterr().out and model.config.num_labels == 2
    base = model.base_model_prefix + "."
    for name, p in model.named_parameters():
        if name.startswith(base):
            assert torch.equal(p, saved[name]), name  # the encoder is the checkpoint's
        elif name.endswith("weight"):  # every head matrix redrawn, RoBERTa's dense layer too
            assert p.shape != saved[name].shape or not torch.equal(p, saved[name]), name


def test_head_of_the_same_label_count_is_kept(tmp_path, tiny_family_dirs, said):
    saved = save_classifier(tiny_family_dirs["roberta"], tmp_path / "two", num_labels=2)
    _, model = load_model(str(tmp_path / "two"), load_config(str(tmp_path / "two"), 2, "classification"))
    assert "model: kept the checkpoint's classifier head (2 labels" in said()
    assert model.head_origin.startswith("kept")
    assert all(torch.equal(p, saved[n]) for n, p in model.named_parameters())


def test_base_checkpoint_gets_a_new_head(tiny_bert_dir, said):
    _, model = load_model(str(tiny_bert_dir), load_config(str(tiny_bert_dir), 5, "classification"))
    assert said().strip().splitlines()[-1] == "model: new classifier head (5 labels)"


def test_checkpoint_of_another_family_is_an_error_not_a_random_encoder(tmp_path, tiny_family_dirs):
    # a BERT config over ELECTRA weights: every encoder weight would be missing and drawn at random
    path = tmp_path / "mixed"
    save_classifier(tiny_family_dirs["electra"], path, 2)
    bert_config = AutoConfig.from_pretrained(str(tiny_family_dirs["bert"]), num_labels=2)
    with pytest.raises(ModelError, match=r"lacks \d+ encoder weights of a bert model"):
        load_model(str(path), bert_config)


# family -> (lowest for one text, lowest for a pair, highest): the tokenizers' special tokens
# ([CLS] a [SEP] b [SEP]; <s> a </s></s> b </s>) and the positions (RoBERTa: 514 rows, offset 2)
LENGTHS = {
    "bert": (3, 5, 512),
    "roberta": (3, 6, 512),
    "distilbert": (3, 5, 512),
    "electra": (3, 5, 512),
    "albert": (3, 5, 512),
    "deberta-v2": (3, 5, 512),
}  # DeBERTa: its tokenizer's 512


@pytest.mark.parametrize("family", sorted(LENGTHS))
def test_max_length_range_per_family(tiny_family_dirs, family):
    path = str(tiny_family_dirs[family])
    tokenizer = AutoTokenizer.from_pretrained(path)
    structure = skeleton(AutoConfig.from_pretrained(path, num_labels=2))
    single, pair, highest = LENGTHS[family]
    assert length_range(tokenizer, structure, pair=False)[:2] == (single, highest)
    assert length_range(tokenizer, structure, pair=True)[:2] == (pair, highest)
    for ok in (single, highest or 100_000):
        check_max_length(ok, tokenizer, structure, pair=False)
    with pytest.raises(
        ConfigError, match=rf"task.max_length={pair - 1} is invalid .*\(a pair of texts\).*valid is {pair}"
    ):
        check_max_length(pair - 1, tokenizer, structure, pair=True)
    if highest:
        with pytest.raises(ConfigError, match=rf"task.max_length={highest + 1} .*valid is {single} to {highest}"):
            check_max_length(highest + 1, tokenizer, structure, pair=False)
        # the position embeddings hold what the range says: the longest valid input runs
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        ids = tokenizer(["a " * 2000], truncation=True, max_length=highest, return_tensors="pt")
        assert ids["input_ids"].shape[1] == highest
        model(**ids)


def test_tokenizer_model_max_length_bounds_a_model_without_positions(tiny_family_dirs):
    # DeBERTa-v3 style: relative attention only, so only the tokenizer can bound the length
    path = str(tiny_family_dirs["deberta-v2"])
    structure = skeleton(AutoConfig.from_pretrained(path, num_labels=2))
    tokenizer = AutoTokenizer.from_pretrained(path, model_max_length=256)
    with pytest.raises(ConfigError, match=r"valid is 3 to 256 .*the tokenizer's model_max_length 256"):
        check_max_length(300, tokenizer, structure, pair=False)
    unbounded = AutoTokenizer.from_pretrained(path, model_max_length=int(1e30))
    assert length_range(unbounded, structure, pair=False)[:2] == (3, None)
    check_max_length(100_000, unbounded, structure, pair=False)
    with pytest.raises(
        ConfigError,
        match=r"task.max_length=2 .*valid is at least 3 \(2 special tokens \+ at least 1 token of the text\)",
    ):
        check_max_length(2, unbounded, structure, pair=False)
