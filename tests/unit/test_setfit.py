"""approach=setfit (bertlab/setfit/): setfit's pairs against a hand count, the config's defaults
against setfit's own, the head against scikit-learn and torch references, the metrics against
scikit-learn, the checks' messages, debug=fast's cap, and a model saved, reloaded and predicting
the same probabilities, on tiny models of every encoder family."""

import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from bertlab.core.errors import ConfigError
from bertlab.data.readers import Example
from bertlab.run.checks import check_config
from bertlab.setfit.model import (
    build_setfit_model,
    load_setfit_model,
    model_texts,
    pair_separator,
    probabilities,
    save_setfit_model,
    texts_of,
)
from bertlab.setfit.train import scores, stage1_steps, training_arguments
from tests.helpers.families import ENCODER_FAMILIES
from tests.helpers.installed import needs

pytestmark = needs("setfit")

# four texts, labels 0 0 1 1: setfit pairs every text with every later one and itself
# (combinations with replacement: 4 * 5 / 2 = 10), positive when the labels match:
# (a,a) (a,b) (b,b) (c,c) (c,d) (d,d) = 6 positive, (a,c) (a,d) (b,c) (b,d) = 4 negative
HAND = (["a", "b", "c", "d"], [0, 0, 1, 1])


@pytest.mark.parametrize(
    "strategy, iterations, positive, negative",
    [
        ("oversampling", None, 6, 6),  # the rarer kind repeated up to the other's count (setfit's default)
        ("undersampling", None, 4, 4),  # the commoner kind cut to the other's count
        ("unique", None, 6, 4),  # every pair once
        ("oversampling", 3, 12, 12),  # num_iterations=N: N * n_texts of each kind, whatever the strategy
    ],
)
def test_setfits_pairs_and_their_labels_on_a_hand_example(strategy, iterations, positive, negative):
    from setfit.sampler import ContrastiveDataset

    texts, labels = HAND
    pairs = list(ContrastiveDataset(texts, labels, False, iterations, strategy))
    same = {(a, b) for a in texts for b in texts if labels[texts.index(a)] == labels[texts.index(b)]}
    assert sum(p["label"] == 1.0 for p in pairs) == positive
    assert sum(p["label"] == 0.0 for p in pairs) == negative
    for p in pairs:  # a pair's label is 1 exactly when its two texts share a class
        assert p["label"] == (1.0 if (p["sentence_1"], p["sentence_2"]) in same else 0.0)
    unique = {(p["sentence_1"], p["sentence_2"]) for p in pairs}
    assert len(unique) == min(len(pairs), 10)  # repeats only once every pair of a kind was used


def test_the_config_defaults_are_setfits_own(compose_train, tmp_path):
    """conf/approach/setfit.yaml maps one to one onto setfit's TrainingArguments, at its defaults."""
    from setfit import TrainingArguments

    cfg = compose_train("approach=setfit")
    ours, theirs = training_arguments(cfg, tmp_path), TrainingArguments()
    for field in (
        "embedding_batch_size",
        "classifier_batch_size",
        "embedding_num_epochs",
        "classifier_num_epochs",
        "body_embedding_learning_rate",
        "body_classifier_learning_rate",
        "head_learning_rate",
        "sampling_strategy",
        "num_iterations",
        "max_steps",
        "warmup_proportion",
        "l2_weight",
        "end_to_end",
        "loss",
    ):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.seed == cfg.seed and ours.max_length == cfg.task.max_length and ours.report_to in ("none", ["none"])


def test_debug_fast_caps_stage_1_and_the_differentiable_heads_epochs(compose_train, tmp_path):
    cfg = compose_train("approach=setfit", "debug=fast")
    assert stage1_steps(cfg) == cfg.limits.max_steps == 4
    assert training_arguments(cfg, tmp_path).classifier_num_epochs == 1
    own = compose_train("approach=setfit", "debug=fast", "approach.max_steps=6")
    assert stage1_steps(own) == 6  # a step count of its own is kept (core/limits.py's rule)
    assert stage1_steps(compose_train("approach=setfit")) == -1  # no cap: num_epochs over the pairs


def test_a_pair_is_one_text_joined_by_the_tokenizers_own_separator(tiny_family_dirs):
    from transformers import AutoTokenizer

    pair, single = Example("a cat sat", "on the mat", 0), Example("just one", None, 1)
    for family in ENCODER_FAMILIES:
        tokenizer = AutoTokenizer.from_pretrained(str(tiny_family_dirs[family]))
        joined, alone = texts_of([pair, single], tokenizer, 64)
        assert alone == "just one" and joined == f"a cat sat{pair_separator(tokenizer)}on the mat"
        ids = tokenizer(joined)["input_ids"]
        inner = ids[1:-1]  # the separator between the texts is the special token, not its spelling
        assert tokenizer.sep_token_id in inner, (family, tokenizer.convert_ids_to_tokens(ids))


WORDS = "the quick brown fox jumps over the lazy dog while rain falls on distant hills".split()


@pytest.mark.parametrize("len_a, len_b", [(40, 3), (3, 40), (30, 30), (31, 30), (30, 31), (20, 9), (9, 9)])
def test_a_long_pair_is_cut_as_the_tokenizer_cuts_a_pair(tiny_bert_dir, len_a, len_b):
    """Cut longest_first before joining, a BERT pair's joined text tokenises to exactly the ids of the
    tokenizer's own pair encoding, truncated the same way (the second text is never lost)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    a, b = " ".join(WORDS[i % 15] for i in range(len_a)), " ".join(WORDS[-1 - i % 15] for i in range(len_b))
    for max_length in (16, 24, 64):
        (joined,) = texts_of([Example(a, b, 0)], tokenizer, max_length)
        reference = tokenizer(a, b, truncation="longest_first", max_length=max_length)["input_ids"]
        assert tokenizer(joined)["input_ids"] == reference, (max_length, joined)


def _fitted(path, labels, head, texts, targets, seed=0):
    from setfit import Trainer as SetFitTrainer
    from setfit import TrainingArguments

    model = build_setfit_model(str(path), labels, head, 32, seed)
    args = TrainingArguments(head_learning_rate=0.1, num_epochs=(1, 3), batch_size=(4, 2), show_progress_bar=False)
    SetFitTrainer(model=model, args=args).train_classifier(texts, targets, args=args)  # stage 2 alone
    return model


EXAMPLES = [Example(t, None, i % 3) for i, t in enumerate(["red apple", "blue sky", "green leaf"] * 4)]


def test_the_logistic_head_is_scikit_learns_on_the_embeddings(tiny_bert_dir):
    from sklearn.linear_model import LogisticRegression

    texts, targets = [e.text_a for e in EXAMPLES], [e.label for e in EXAMPLES]
    model = _fitted(tiny_bert_dir, ["r", "b", "g"], "logistic", texts, targets)
    embeddings = model.model_body.encode(texts)
    reference = LogisticRegression().fit(embeddings, targets).predict_proba(embeddings)
    np.testing.assert_allclose(probabilities(model, EXAMPLES, 8), reference, atol=1e-6)


def test_a_class_absent_from_training_keeps_its_column(tiny_bert_dir):
    """scikit-learn gives columns only to the classes it saw; each goes to its own label's column."""
    seen = [e for e in EXAMPLES if e.label != 1]
    model = _fitted(tiny_bert_dir, ["r", "b", "g"], "logistic", [e.text_a for e in seen], [e.label for e in seen])
    probs = probabilities(model, EXAMPLES, 8)
    raw = model.model_head.predict_proba(model.model_body.encode([e.text_a for e in EXAMPLES]))
    assert probs.shape == (len(EXAMPLES), 3)
    np.testing.assert_allclose(probs[:, 1], 0.0)
    np.testing.assert_allclose(probs[:, [0, 2]], raw, atol=1e-6)


def test_the_differentiable_head_is_a_softmax_over_one_linear_output_per_label(tiny_bert_dir):
    texts, targets = [e.text_a for e in EXAMPLES], [e.label for e in EXAMPLES]
    model = _fitted(tiny_bert_dir, ["r", "b", "g"], "differentiable", texts, targets)
    assert model.model_head.linear.out_features == 3
    with torch.no_grad():
        embeddings = model.model_body.encode(texts, convert_to_tensor=True)
        reference = torch.softmax(model.model_head.linear(embeddings), dim=-1).numpy()
    np.testing.assert_allclose(probabilities(model, EXAMPLES, 8), reference, atol=1e-5)


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_every_family_saves_reloads_and_predicts_the_same(family, tiny_family_dirs, tmp_path):
    pairs = [Example(f"{t} one", f"{t} two", i % 2) for i, t in enumerate(["cat", "dog", "sun", "moon"] * 2)]
    model = build_setfit_model(str(tiny_family_dirs[family]), ["no", "yes"], "logistic", 32, 0)
    from setfit import Trainer as SetFitTrainer
    from setfit import TrainingArguments

    args = TrainingArguments(show_progress_bar=False)
    SetFitTrainer(model=model, args=args).train_classifier(
        model_texts(model, pairs), [e.label for e in pairs], args=args
    )
    before = probabilities(model, pairs, 4)
    save_setfit_model(model, tmp_path / "model")
    after = probabilities(load_setfit_model(tmp_path / "model"), pairs, 4)
    np.testing.assert_allclose(after, before, atol=1e-6)
    np.testing.assert_allclose(before.sum(axis=1), 1.0, atol=1e-6)


def test_scores_are_scikit_learns():
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    rng = np.random.default_rng(0)
    probs, labels = rng.random((40, 2)), rng.integers(0, 2, 40).tolist()
    predicted = probs.argmax(axis=1)
    got = scores(probs, labels, ["accuracy", "f1", "mcc"], 2, "val")
    assert got["val/accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert got["val/f1"] == pytest.approx(f1_score(labels, predicted))
    assert got["val/mcc"] == pytest.approx(matthews_corrcoef(labels, predicted))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task=stsb"], "approach=setfit does not do regression (task=stsb is task.problem=regression)"),
        (["task=conll2003"], "task=conll2003 is task.problem=token_classification, which it does not support"),
        (["task=swag"], "task.problem=multiple_choice, which it does not support: use approach=finetune"),
        (["task=squad"], "task.problem=question_answering, which it does not support"),
        (["reinit=3"], "reinit=3 is a fine-tuning option and does not apply to approach=setfit"),
        (["optimizer=bertadam"], "optimizer.name=bertadam is a fine-tuning option"),
        (["head=cls"], "head.name=cls is a fine-tuning option"),
        (["distill=self"], "distill.name=self is a fine-tuning option"),
        (["approach.head=svm"], "approach.head=svm is invalid; valid: logistic, differentiable."),
        (["approach.sampling_strategy=all"], "approach.sampling_strategy=all is invalid; valid: oversampling"),
        (["approach.num_iterations=0"], "approach.num_iterations=0 is invalid: it must be an integer >= 1."),
        (["approach.max_steps=0"], "approach.max_steps=0 is invalid: it must be an integer >= 1."),
        (["approach.batch_size=1.5"], "approach.batch_size=1.5 is invalid: it must be an integer >= 1."),
        (["approach.body_learning_rate=0"], "approach.body_learning_rate=0 is invalid: it must be a number > 0."),
        (["approach.warmup_proportion=2"], "approach.warmup_proportion=2 is invalid: a fraction of the steps"),
        (["approach.end_to_end=true"], "approach.end_to_end=true trains the encoder through the head"),
    ],
)
def test_each_bad_setting_has_one_message(compose_train, overrides, message):
    cfg = compose_train("approach=setfit", *overrides)
    if cfg.task.get("data_dir", "") == "???":  # a task of one's own files: its folder is not what is tested
        with open_dict(cfg):
            cfg.task.data_dir = "."
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert message in str(err.value)


def test_the_default_approach_is_finetune_and_setfit_is_recorded(compose_train):
    from bertlab.core.record import settings
    from bertlab.setfit.train import is_setfit

    assert not is_setfit(compose_train())
    assert is_setfit(compose_train("approach=setfit"))
    assert not is_setfit(OmegaConf.create({"task": {}}))  # a saved run of an older bertlab: fine-tuning
    assert settings(compose_train("approach=setfit"))["approach"] == "setfit"
    check_config(compose_train("approach=setfit"))  # the defaults pass


def test_without_the_setfit_extra_the_option_names_the_pip_command(monkeypatch, compose_train):
    import sys

    from bertlab.config.keys import check_overrides
    from bertlab.core.paths import CONF_DIR

    monkeypatch.setitem(sys.modules, "setfit", None)  # as if not installed
    expected = 'approach=setfit needs bertlab\'s `setfit` extra (setfit not installed): pip install "bertlab[setfit]"'
    with pytest.raises(ConfigError, match=re.escape(expected)):
        check_overrides(["approach=setfit"], CONF_DIR)  # the command line, before Hydra starts
    with pytest.raises(ConfigError, match=re.escape(expected)):
        check_config(compose_train("approach=setfit"))  # a config file's or a saved run's choice
