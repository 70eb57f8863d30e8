"""Auxiliary objectives (`aux=`, bertlab/methods/auxiliary.py), in-process on tiny models: the
label-similarity loss against its formula and a direct forward, the auxiliary MLM against the
family's own masked-LM forward (shared encoder, tied decoder), its masks, the training step's
sum, save without the objective, and the config rule's messages."""

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import AutoModelForMaskedLM

from bertlab.core.errors import ConfigError
from bertlab.heads.build import load_classifier
from bertlab.methods.auxiliary import (
    INDEX_KEY,
    LabelSimilarity,
    MaskedLM,
    attach_aux,
    aux_of,
    label_descriptions,
    label_similarity_loss,
)
from bertlab.model.load import load_config
from bertlab.pretrain.masking import Masker, MaskingSettings
from bertlab.pretrain.model import load_mlm_model
from bertlab.run.checks import check_config
from tests.helpers.families import ENCODER_FAMILIES

TEXTS = ["the market fell sharply today", "a film wins the award", "the team won the cup final again"]


def classifier(path, num_labels=3, head="pooler"):
    torch.manual_seed(0)
    config = load_config(str(path), num_labels, "classification")
    return load_classifier({"name": head}, str(path), config)


def batch_of(tokenizer, texts=TEXTS, labels=(0, 1, 2)):
    batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor(labels)
    return batch


# -- label similarity ---------------------------------------------------------------------------


def test_label_similarity_loss_is_the_cross_entropy_of_cosine_scores_over_the_labels():
    torch.manual_seed(0)
    e, d, y, t = torch.randn(4, 8), torch.randn(3, 8), torch.tensor([0, 2, 1, 2]), 0.07
    expected = 0.0
    for i in range(4):  # the formula, written out: -log exp(cos(e, d_y)/t) / sum_k exp(cos(e, d_k)/t)
        cos = [float(torch.dot(e[i], d[k]) / (e[i].norm() * d[k].norm())) for k in range(3)]
        expected += -(cos[y[i]] / t - math.log(sum(math.exp(c / t) for c in cos)))
    assert label_similarity_loss(e, d, y, t).item() == pytest.approx(expected / 4, rel=1e-5)


def test_label_similarity_loss_is_low_when_each_example_points_at_its_own_label():
    d = torch.eye(3)
    right = label_similarity_loss(torch.eye(3) * 5, d, torch.tensor([0, 1, 2]), 0.05)
    wrong = label_similarity_loss(torch.eye(3) * 5, d, torch.tensor([1, 2, 0]), 0.05)
    assert right.item() < 1e-6 and wrong.item() > 10


def test_label_similarity_embeds_examples_and_descriptions_with_the_same_encoder(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    model.eval()
    objective = LabelSimilarity(tokenizer, ["business news", "films and music", "sport"], 0.1, 32)
    batch = batch_of(tokenizer)
    output = model(**batch, output_hidden_states=True)
    loss = objective(model, batch, output, epoch=0)

    def mean_pooled(texts):  # the encoder's last layer, mean over the real tokens
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model.bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    e, d = mean_pooled(TEXTS), mean_pooled(["business news", "films and music", "sport"])
    scores = F.cosine_similarity(e.unsqueeze(1), d.unsqueeze(0), dim=-1) / 0.1
    assert loss.item() == pytest.approx(F.cross_entropy(scores, batch["labels"]).item(), rel=1e-5)
    loss.backward()  # both sides train: the gradient reaches the encoder's embeddings
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_label_descriptions_default_to_the_label_names_and_must_match_them():
    task = OmegaConf.create({"labels": ["pos", "neg"], "label_descriptions": None})
    assert label_descriptions(task) == ["pos", "neg"]
    task.label_descriptions = ["good", "bad"]
    assert label_descriptions(task) == ["good", "bad"]
    task.label_descriptions = ["good"]
    with pytest.raises(ConfigError, match=r"task.label_descriptions has 1 text\(s\), task.labels has 2"):
        label_descriptions(task)
    task.label_descriptions = ["good", " "]
    with pytest.raises(ConfigError, match="the description of 'neg' is ' '"):
        label_descriptions(task)


# -- auxiliary MLM ------------------------------------------------------------------------------


def mlm_objective(path, model, tokenizer, seed=0, probability=0.15):
    _, mlm_model, line = load_mlm_model(str(path), seed)
    masker = Masker(tokenizer, MaskingSettings(mlm_probability=probability), seed)
    encoder = getattr(model, model.base_model_prefix)
    return MaskedLM(mlm_model, encoder, masker, set(tokenizer.all_special_ids)), line


def test_aux_mlm_shares_the_encoder_and_ties_the_decoder(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    objective, line = mlm_objective(tiny_bert_dir, model, tokenizer)
    assert "new masked-LM head" in line and "tied" in line
    decoder = objective._mlm[0].get_output_embeddings().weight
    assert decoder is model.bert.embeddings.word_embeddings.weight  # one tensor, trained by both losses
    assert objective._mlm[0].bert is model.bert
    model.aux_objective = objective
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("aux_objective.head.bert") for n in names)  # the encoder is not registered twice
    assert any(n.startswith("aux_objective.head.cls.predictions.transform") for n in names)


def test_aux_mlm_loss_equals_the_masked_lm_forward_of_the_same_weights(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    model.eval()
    objective, _ = mlm_objective(tiny_bert_dir, model, tokenizer, probability=0.5)
    objective.eval()
    batch = batch_of(tokenizer)
    batch[INDEX_KEY] = torch.tensor([0, 1, 2])
    loss = objective(model, batch, model(**{k: v for k, v in batch.items() if k != INDEX_KEY}), epoch=0)
    masked, labels = objective.mask(batch["input_ids"], batch["attention_mask"], batch[INDEX_KEY], 0)
    # a separate BertForMaskedLM with the classifier's encoder and the objective's head weights
    reference = AutoModelForMaskedLM.from_pretrained(str(tiny_bert_dir)).eval()
    reference.bert.load_state_dict(model.bert.state_dict(), strict=False)  # its bert has no pooler
    reference.cls.load_state_dict(objective.head["cls"].state_dict())
    logits = reference(input_ids=masked, attention_mask=batch["attention_mask"]).logits
    expected = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_aux_masks_depend_on_the_example_and_epoch_not_the_batch_or_its_padding(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    objective, _ = mlm_objective(tiny_bert_dir, model, tokenizer, probability=0.5)
    alone = tokenizer([TEXTS[0]], return_tensors="pt")
    padded = tokenizer([TEXTS[0], TEXTS[2]], padding=True, return_tensors="pt")
    a, la = objective.mask(alone["input_ids"], alone["attention_mask"], torch.tensor([7]), 0)
    b, lb = objective.mask(padded["input_ids"], padded["attention_mask"], torch.tensor([7, 8]), 0)
    n = alone["input_ids"].shape[1]
    assert torch.equal(a[0], b[0, :n]) and torch.equal(la[0], lb[0, :n])
    assert (lb[0, n:] == -100).all()  # padding never masked
    c, _ = objective.mask(alone["input_ids"], alone["attention_mask"], torch.tensor([7]), 1)
    d, _ = objective.mask(alone["input_ids"], alone["attention_mask"], torch.tensor([8]), 0)
    assert not torch.equal(a, c) or not torch.equal(a, d)  # a fresh mask per epoch and per example


def test_aux_masks_never_touch_special_tokens_and_hit_the_rate(tiny_bert_dir):
    tokenizer, model = classifier(tiny_bert_dir)
    objective, _ = mlm_objective(tiny_bert_dir, model, tokenizer, probability=0.15)
    texts = [" ".join(["word"] * 60)] * 40
    enc = tokenizer(texts, return_tensors="pt")
    _, labels = objective.mask(enc["input_ids"], enc["attention_mask"], torch.arange(40), 0)
    special = torch.isin(enc["input_ids"], torch.tensor(sorted(tokenizer.all_special_ids)))
    assert (labels[special] == -100).all()
    n = int((~special).sum())
    chosen = int((labels != -100).sum())
    sd = math.sqrt(n * 0.15 * 0.85)
    assert abs(chosen - 0.15 * n) < 4 * sd  # binomial bounds


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_aux_mlm_runs_on_every_family(family, tiny_family_dirs):
    path = tiny_family_dirs[family]
    tokenizer, model = classifier(path, num_labels=2)
    objective, line = mlm_objective(path, model, tokenizer, probability=0.5)
    batch = batch_of(tokenizer, TEXTS[:2], (0, 1))
    batch[INDEX_KEY] = torch.tensor([0, 1])
    output = model(**{k: v for k, v in batch.items() if k != INDEX_KEY})
    loss = objective(model, batch, output, epoch=0)
    assert torch.isfinite(loss) and loss.item() > 0, line
    loss.backward()
    assert model.get_input_embeddings().weight.grad is not None


# -- the run's composition ----------------------------------------------------------------------


def test_training_step_adds_the_weighted_aux_loss(compose_train, tiny):
    from bertlab.training.finetuner import FineTuner

    cfg = compose_train(*tiny, "aux=label_similarity", "aux.weight=0.5")
    tokenizer, model = classifier(cfg.model.name_or_path, num_labels=5)
    record = attach_aux(cfg, model, tokenizer, cfg.model.name_or_path, cfg.task.labels)
    assert record["descriptions"] == list(cfg.task.labels)
    model.eval()  # no dropout: the two forwards below are the same function
    module = FineTuner(model, cfg.optimizer, cfg.schedule, ["accuracy"], "classification", aux_weight=0.5)
    module.log = lambda *a, **k: None
    batch = batch_of(tokenizer, TEXTS, (0, 3, 4))
    total = module.training_step(dict(batch), 0)
    output = model(**batch, output_hidden_states=True)
    expected = output.loss + 0.5 * aux_of(model)(model, batch, output, 0)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_saved_model_carries_no_aux_objective(compose_train, tiny, tmp_path):
    from bertlab.run.saved_run import save_run_model

    cfg = compose_train(*tiny, "aux=mlm")
    tokenizer, model = classifier(cfg.model.name_or_path, num_labels=5)
    attach_aux(cfg, model, tokenizer, cfg.model.name_or_path, cfg.task.labels)
    save_run_model(cfg, model, tokenizer, tmp_path)
    from safetensors.torch import load_file

    keys = load_file(tmp_path / "model" / "model.safetensors")
    assert not any(k.startswith("aux_objective") for k in keys) and aux_of(model) is not None


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["aux=mlm", "aux.weight=-1"], "aux.weight=-1 is invalid: it must be a number >= 0"),
        (["aux=mlm", "aux.mlm_probability=0"], "aux.mlm_probability=0 masks nothing"),
        (["aux=mlm", "aux.mlm_probability=1.5"], "aux.mlm_probability=1.5 is invalid"),
        (["aux=mlm", "aux.mask_replace_prob=0.9", "aux.random_replace_prob=0.2"], "is more than 1"),
        (["aux=label_similarity", "aux.temperature=0"], "aux.temperature=0 is invalid"),
        (["aux=label_similarity", "task.label_descriptions=[a,b]"], r"has 2 text\(s\), task.labels has 5"),
        (["aux=label_similarity", "task=stsb"], "aux=label_similarity needs classes to describe"),
        (["aux=mlm", "task=conll2003"], "aux=mlm is for sequence tasks"),
    ],
)
def test_bad_aux_settings_are_one_message(compose_train, overrides, message):
    cfg = compose_train("debug=fast", *overrides)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)
