"""Self-distillation's maths and plumbing (methods/distill.py, the datamodule's soft labels), in
seconds: the loss against distiller.py's formula and a hand-computed gradient, soft labels that
follow their examples through shuffling, and the config and saved-teacher messages."""

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertlab.config.checks import check_config
from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.data.datamodule import FewSampleDataModule
from bertlab.data.readers import Example
from bertlab.methods.distill import check_teacher_run, distillation_loss


def logits(b=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64) * 3, torch.randn(b, c, generator=g, dtype=torch.float64)


def test_the_loss_is_distillers_t2_scaled_kl_mixed_with_the_task_loss():
    student, teacher = logits()
    task = torch.tensor(0.7, dtype=torch.float64)
    alpha, t = 0.3, 2.5
    # the transformers distillation project (distiller.py): KLDivLoss(batchmean) of softened
    # log-probabilities against softened probabilities, times T^2
    reference = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1)
    ) * (t**2)
    loss = distillation_loss(student, teacher, task, alpha, t, regression=False)
    torch.testing.assert_close(loss, alpha * reference + (1 - alpha) * task, rtol=1e-12, atol=1e-12)


def test_a_teacher_identical_to_the_student_gives_zero_kl():
    student, _ = logits()
    for t in (0.5, 1.0, 4.0):
        assert distillation_loss(student, student.clone(), torch.tensor(0.0), 1.0, t, regression=False) == 0
    assert distillation_loss(student[:, :1], student[:, :1].clone(), torch.tensor(0.0), 1.0, 2.0, regression=True) == 0


def test_the_gradient_matches_the_closed_form():
    student, teacher = logits(b=5, c=4, seed=1)
    labels = torch.tensor([0, 3, 1, 1, 2])
    alpha, t = 0.6, 3.0
    s = student.clone().requires_grad_()
    task = F.cross_entropy(s, labels)
    distillation_loss(s, teacher, task, alpha, t, regression=False).backward()
    batch = len(labels)
    p_s, p_t = F.softmax(student / t, dim=-1), F.softmax(teacher / t, dim=-1)
    soft = (p_s - p_t) / t * alpha * t**2 / batch  # d(alpha T^2 KL / batch) / d logits
    hard = (1 - alpha) * (F.softmax(student, dim=-1) - F.one_hot(labels, 4)) / batch  # cross-entropy's
    torch.testing.assert_close(s.grad, soft + hard, rtol=1e-12, atol=1e-12)


def test_regression_uses_the_mse_to_the_teachers_output():
    student, teacher = logits(b=7, c=1, seed=2)
    target = torch.randn(7, 1, dtype=torch.float64)
    alpha = 0.25
    s = student.clone().requires_grad_()
    loss = distillation_loss(s, teacher, F.mse_loss(s, target), alpha, temperature=9.0, regression=True)
    loss.backward()
    expected = alpha * ((student - teacher) ** 2).mean() + (1 - alpha) * ((student - target) ** 2).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    grad = (alpha * 2 * (student - teacher) + (1 - alpha) * 2 * (student - target)) / 7  # T plays no part
    torch.testing.assert_close(s.grad, grad, rtol=1e-12, atol=1e-12)


def test_alpha_zero_is_the_task_loss_bit_for_bit():
    student, teacher = logits()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    a = student.float().requires_grad_()
    b = student.float().requires_grad_()
    plain = F.cross_entropy(a, labels)
    plain.backward()
    mixed = distillation_loss(b, teacher.float(), F.cross_entropy(b, labels), 0.0, 2.0, regression=False)
    mixed.backward()
    assert torch.equal(plain, mixed) and torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("group_by_length", [False, True])
def test_soft_labels_follow_their_examples_through_shuffling(tiny_bert_dir, group_by_length):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    n = 23
    # regression labels = the example's index; its soft label row encodes the same index
    examples = [Example(" ".join(["word"] * (1 + i % 5)) + f" {i}", None, float(i)) for i in range(n)]
    soft = torch.tensor([[10.0 * i + 0.5] for i in range(n)])
    dm = FewSampleDataModule(
        {"train": examples}, tokenizer, 32, True, 4, 8, seed=3, group_by_length=group_by_length, soft_labels=soft
    )
    dm.setup()
    seen = []
    for epoch in (0, 1):
        loader = dm.train_dataloader()
        loader.shuffle_sampler.set_epoch(epoch)
        for batch in loader:
            assert torch.equal(batch["teacher_logits"][:, 0], 10.0 * batch["labels"] + 0.5)
            seen += batch["labels"].long().tolist()
    assert sorted(seen) == sorted(list(range(n)) * 2)
    assert seen[:n] != list(range(n))  # really shuffled


def test_config_rules_name_the_key_the_value_and_the_fix(compose_train, tmp_path):
    cases = {
        "distill.alpha=1.5": "distill.alpha=1.5 is invalid: it must be a number in [0, 1]",
        "distill.temperature=0": "distill.temperature=0 is invalid: it must be a number > 0",
        f"distill.teacher={tmp_path / 'nowhere'}": "there is no such folder",
        f"distill.teacher={tmp_path}": f"it has no saved weights ({tmp_path}/model/config.json",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
            check_config(compose_train("distill=self", override))
    check_config(compose_train("distill=self"))
    check_config(compose_train())
    # a key of distill=self is refused without it, with the fix
    with pytest.raises(ConfigError, match="It is a key of distill=self, not of distill=none: add distill=self"):
        check_overrides(["distill.alpha=0.3"], CONF_DIR)


def saved_run(tiny_bert_dir, folder, num_labels, **settings):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=num_labels)
    model.save_pretrained(folder / "model")
    base = {"task": "rte", "n_train": 16, "n_val": 8, "data_seed": 0, "sampling": "balanced"}
    record = {"status": "ok", "settings": {**base, **settings}, "metrics": {"test_best/accuracy": 0.5}}
    (folder / "result.json").write_text(json.dumps(record))
    return base


def test_a_saved_teacher_of_another_label_count_or_other_data_is_refused(tiny_bert_dir, tmp_path):
    ours = saved_run(tiny_bert_dir, tmp_path, 2)
    assert check_teacher_run(str(tmp_path), 2, ours)["metrics"] == {"test_best/accuracy": 0.5}
    with pytest.raises(ConfigError, match="its model has 2 label\\(s\\), this task has 3; use a teacher run"):
        check_teacher_run(str(tmp_path), 3, ours)
    with pytest.raises(ConfigError, match=r"other data \(data_seed=0 \(here 1\)\)"):
        check_teacher_run(str(tmp_path), 2, {**ours, "data_seed": 1})
    (tmp_path / "result.json").unlink()
    with pytest.raises(ConfigError, match="no result.json of a finished run"):
        check_teacher_run(str(tmp_path), 2, ours)
