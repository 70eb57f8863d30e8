"""Self-distillation's maths and plumbing (methods/distill.py, the datamodule's soft labels), in
seconds: the loss against distiller.py's formula and a hand-computed gradient, soft labels that
follow their examples through shuffling, and the config and saved-teacher messages."""

import json
import re
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.core.record import settings
from bertlab.data.datamodule import FewSampleDataModule
from bertlab.data.fingerprint import data_fingerprint, split_fingerprint
from bertlab.data.readers import Example
from bertlab.methods.distill import check_teacher_run, distillation_loss
from bertlab.model.tiny import write_tiny
from bertlab.problems.registry import problem_of
from bertlab.run import distill as run_distill
from bertlab.run.checks import check_config
from bertlab.run.fit import Run, build_model, task_splits, train_and_test
from bertlab.run.saved_run import save_run_model


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


# -- a saved teacher (distill.teacher=DIR) -------------------------------------------------------

HEADS = ("pooler", "cls", "mean", "max", "concat_last4", "layers_cnn", "scalar_mix")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "glue"
PROBLEMS = {  # a task of each problem that distils, from the GLUE fixtures (no hub, milliseconds)
    "classification": ["task=rte", f"task.data_dir={FIXTURES / 'RTE'}"],
    "regression": ["task=stsb", f"task.data_dir={FIXTURES / 'STS-B'}"],
}
SMALL = ["task.n_train=null", "task.n_val=2", "task.n_test=null", "logger=none", "trainer.enable_progress_bar=false"]


class Teacher:
    """What `python train.py ... save_weights=true` leaves, without its training: the run's model
    (its head, weights moved off their init as training would move them), saved by the run's own
    save, and a result.json of a finished run with its data_fingerprint; the model is kept, in
    eval mode, as the reference for its own outputs."""

    def __init__(self, cfg, run_dir: Path):
        data = task_splits(cfg)
        pair = data.splits["train"][0].text_b is not None
        self.tokenizer, self.model = build_model(cfg, pair, problem_of(cfg.task).num_labels(cfg.task))
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        self.model.eval()
        self.max_length = cfg.task.max_length
        save_run_model(cfg, self.model, self.tokenizer, run_dir)
        record = {"status": "ok", "metrics": {"test_best/x": 0.5}, "best_step": 3, "data_fingerprint": data.fingerprint}
        (run_dir / "result.json").write_text(json.dumps({**record, "settings": settings(cfg)}))

    @torch.no_grad()
    def own_logits(self, examples) -> torch.Tensor:
        """Its outputs as the model it is computes them, one example at a time (no padding), with
        its tokenizer and max_length."""
        encode = partial(self.tokenizer, truncation=True, max_length=self.max_length, return_tensors="pt")
        return torch.cat([self.model(**encode(e.text_a, e.text_b)).logits for e in examples])


def student_soft_labels(cfg, run_dir: Path) -> tuple[torch.Tensor, list]:
    """The soft labels and training examples the teacher step hands the student, as run/fit.py's
    train reaches it: the config checked, the run's data (the student's fit is not run here)."""
    check_config(cfg)
    data = task_splits(cfg)
    teacher = run_distill.teacher_step(cfg, data, Run(run_dir, "student"), train_and_test)
    return teacher.soft_labels, data.splits["train"]


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_saved_teacher_teaches_with_its_own_head(compose_train, tiny, tmp_path, problem):
    """For every head option, the soft labels are the teacher's own outputs (a head loaded as a plain
    HF classifier would be a newly drawn one). One student config for all: its own head and
    max_length play no part, the teacher reads its 24 tokens as it was trained to."""
    folder = tmp_path / "teacher"
    student = compose_train(*tiny, *PROBLEMS[problem], *SMALL, "distill=self", f"distill.teacher={folder}")
    teacher = [*tiny, *PROBLEMS[problem], *SMALL, "task.max_length=24", "save_weights=true"]
    for head in HEADS:
        shutil.rmtree(folder, ignore_errors=True)
        layers = ["head.layers=2"] if head == "concat_last4" else []  # the tiny model has 2 layers
        saved = Teacher(compose_train(*teacher, f"head={head}", *layers), folder)
        soft, train = student_soft_labels(student, tmp_path / "student")
        assert soft.shape == (len(train), 1 if problem == "regression" else 2), head
        torch.testing.assert_close(
            soft, saved.own_logits(train), rtol=1e-5, atol=1e-5, msg=lambda m, head=head: f"head={head}: {m}"
        )


def test_a_saved_teacher_of_another_family_reads_with_its_own_tokenizer(compose_train, tiny, tmp_path):
    """A RoBERTa teacher (byte-level BPE, a mean head) for a BERT student (WordPiece): the soft
    labels are the teacher's outputs on its own input ids."""
    roberta = write_tiny("roberta", tmp_path / "roberta")
    folder = tmp_path / "teacher"
    task = [*PROBLEMS["classification"], *SMALL]
    teacher = compose_train(*tiny, f"model.name_or_path={roberta}", "model.name=roberta", *task, "head=mean")
    saved = Teacher(teacher, folder)
    student = compose_train(*tiny, *task, "distill=self", f"distill.teacher={folder}")
    soft, train = student_soft_labels(student, tmp_path / "student")
    torch.testing.assert_close(soft, saved.own_logits(train), rtol=1e-5, atol=1e-5)


def write_csv(folder: Path, seed: int, n_train: int = 24, n_dev: int = 8) -> Path:
    """A csv task's two files: sentences of `seed`'s own words, half pos, half neg."""
    folder.mkdir(parents=True)
    for name, n in (("train.csv", n_train), ("dev.csv", n_dev)):
        rows = [f"sentence {seed}-{i} of words,{'pos' if i % 2 else 'neg'}" for i in range(n)]
        (folder / name).write_text("text,label\n" + "\n".join(rows) + "\n")
    return folder


def csv_task(folder: Path, *more: str) -> list[str]:
    return [
        "task=csv",
        f"task.data_dir={folder}",
        "task.train_file=train.csv",
        "task.dev_file=dev.csv",
        "task.text_fields=[text]",
        "task.label_field=label",
        "task.n_train=12",
        "task.n_val=4",
        *more,
    ]


def check(compose_train, tiny, teacher_dir: Path, *student: str) -> None:
    """The saved teacher's check against a student of these overrides (the data read, no model)."""
    cfg = compose_train(*tiny, *student, "distill=self", f"distill.teacher={teacher_dir}")
    data = task_splits(cfg)
    record = json.loads((teacher_dir / "result.json").read_text())
    saved = OmegaConf.load(teacher_dir / "model" / "bertlab.yaml")
    check_teacher_run(str(teacher_dir), record, saved.task, cfg.task, data.fingerprint)


def test_a_saved_teacher_of_other_data_is_refused_naming_both(compose_train, tiny, tmp_path):
    ours = write_csv(tmp_path / "ours", seed=0)
    teacher = tmp_path / "teacher"
    Teacher(compose_train(*tiny, *csv_task(ours), "save_weights=true"), teacher)

    # accepted: the same files, read from a copy in another folder
    copy = tmp_path / "copy"
    shutil.copytree(ours, copy)
    check(compose_train, tiny, teacher, *csv_task(copy))
    # the student's own augment= or max_length does not change which examples it has
    check(compose_train, tiny, teacher, *csv_task(ours), "augment=eda_offline", "task.max_length=16")

    # refused: another folder of the same labels and sizes, naming both folders and the fix
    other = write_csv(tmp_path / "other", seed=1)
    with pytest.raises(ConfigError) as refused:
        check(compose_train, tiny, teacher, *csv_task(other))
    message = str(refused.value)
    assert message.startswith(
        f"distill.teacher={teacher}: it was trained on other data than this run: its train/val/test examples differ."
    )
    assert f"teacher:  task=csv task.data_dir={ours} task.train_file=train.csv" in message
    assert f"this run: task=csv task.data_dir={other} task.train_file=train.csv" in message
    assert "train it on the same files with the same task.n_train, task.n_val" in message
    # refused: the same files, another draw (which examples are training and which validation)
    with pytest.raises(
        ConfigError, match=r"its train/val examples differ\.\n.*task\.data_seed=0.*\n.*task\.data_seed=1"
    ):
        check(compose_train, tiny, teacher, *csv_task(ours, "task.data_seed=1"))
    # refused: another test set (a dev file with one row more), naming the split
    grown = tmp_path / "grown"
    shutil.copytree(ours, grown)
    with open(grown / "dev.csv", "a") as f:
        f.write("one more dev sentence,pos\n")
    with pytest.raises(ConfigError, match=r"its test examples differ"):
        check(compose_train, tiny, teacher, *csv_task(grown))


def test_a_saved_teacher_with_other_labels_or_no_fingerprint_is_refused(compose_train, tiny, tmp_path):
    ours = write_csv(tmp_path / "ours", seed=0)
    teacher = tmp_path / "teacher"
    Teacher(compose_train(*tiny, *csv_task(ours), "save_weights=true"), teacher)
    # the same classes in another index order: every soft label would be the other class's
    with pytest.raises(
        ConfigError, match=re.escape("its labels are ['neg', 'pos'] (in index order), this run's are ['pos', 'neg']")
    ):
        check(compose_train, tiny, teacher, *csv_task(ours, "task.labels=[pos,neg]"))
    rte = ["task=rte", f"task.data_dir={FIXTURES / 'RTE'}", *SMALL]
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "its labels are ['neg', 'pos'] (in index order), this run's are ['entailment', 'not_entailment']"
        ),
    ):
        check(compose_train, tiny, teacher, *rte)
    stsb = ["task=stsb", f"task.data_dir={FIXTURES / 'STS-B'}", *SMALL]
    with pytest.raises(
        ConfigError, match="it is a task.problem=classification run, this run is task.problem=regression"
    ):
        check(compose_train, tiny, teacher, *stsb)
    # a teacher of an older bertlab records no fingerprint: refused, not trusted on its settings
    record = json.loads((teacher / "result.json").read_text())
    (teacher / "result.json").write_text(json.dumps({k: v for k, v in record.items() if k != "data_fingerprint"}))
    with pytest.raises(ConfigError, match="its result.json has no data_fingerprint .a run of an older bertlab."):
        check(compose_train, tiny, teacher, *csv_task(ours))
    (teacher / "result.json").write_text(json.dumps({**record, "status": "failed"}))
    with pytest.raises(ConfigError, match="no result.json of a finished run"):
        check(compose_train, tiny, teacher, *csv_task(ours))


def test_a_split_fingerprint_is_of_its_examples_as_a_multiset():
    a, b = Example("one", None, 0), Example("two", "pair", 1)
    assert split_fingerprint([a, b]) == split_fingerprint([b, a])  # the draw's order is no part of it
    assert split_fingerprint([a, b]) != split_fingerprint([a, b, b])  # a duplicate is an example more
    # every field counts, and no two field contents run together
    for other in (Example("one", "", 0), Example("one", None, 1), Example("on", "e", 0), Example("one", None, 0.0)):
        assert split_fingerprint([other]) != split_fingerprint([a]), other
    drawn = {"train": [a], "val": [b], "test": []}
    record = data_fingerprint(drawn, ["neg", "pos"])
    assert set(record) == {"train", "val", "test", "labels"} and record["labels"] == ["neg", "pos"]
    assert data_fingerprint(drawn, None)["labels"] is None  # regression
    assert data_fingerprint({**drawn, "val": [a], "train": [b]}, ["neg", "pos"]) != record  # which split holds it
