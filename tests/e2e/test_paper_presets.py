"""The paper presets are the official code's settings (asappresearch/revisit-bert-finetuning).

Every value a composed `experiment=paper_*` / `method=*` config takes is compared with the value
the official code uses, and the line of the official code it comes from. `sample_commands/X.sh:N`
is line N of that script; all six scripts share lines 1-8 (the first one, `# using bias
correction`, shifts the longer and reinit scripts by one line). Where we depart from the official
code on purpose, the departure is listed in docs/methods.md ("The paper's settings") instead.
"""

from collections import defaultdict

import numpy as np
import pytest
import torch

from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.optim.schedules import warmup_steps
from bertlab.problems.metrics import selection_metric
from bertlab.run.checks import check_config
from tests.helpers.e2e import REPO, results_under, run_train

# config path -> (the official value, where it comes from)
OFFICIAL = {
    "model.name_or_path": (
        "google-bert/bert-large-uncased",
        "sample_commands/debiased_adam_baseline.sh:2 --model_name_or_path bert-large-uncased",
    ),
    "task.max_length": (128, "sample_commands/debiased_adam_baseline.sh:3 --max_seq_length 128"),
    "data.eval_batch_size": (64, "sample_commands/debiased_adam_baseline.sh:4 --per_gpu_eval_batch_size 64"),
    "optimizer.weight_decay": (0.0, "sample_commands/debiased_adam_baseline.sh:4 --weight_decay 0"),
    "data.batch_size": (32, "sample_commands/debiased_adam_baseline.sh:5 --per_gpu_train_batch_size 32"),
    "trainer.accumulate_grad_batches": (
        1,
        "sample_commands/debiased_adam_baseline.sh:6 --gradient_accumulation_steps 1",
    ),
    "trainer.num_evals": (
        10,
        "sample_commands/debiased_adam_baseline.sh:6 --num_loggings 10; "
        "run_glue.py:165 logging_steps = t_total // num_loggings",
    ),
    "task.sampling": ("paper", "sample_commands/debiased_adam_baseline.sh:7 --test_val_split; run_glue.py:136-154"),
    "optimizer.name": (
        "adamw",
        "sample_commands/debiased_adam_baseline.sh:7 --use_torch_adamw; run_glue.py:174-177 torch.optim.AdamW",
    ),
    "optimizer.bias_correction": (True, "run_glue.py:175 torch.optim.AdamW (debiased)"),
    "optimizer.betas": ([0.9, 0.999], "run_glue.py:175 torch.optim.AdamW's default betas"),
    "trainer.max_epochs": (3, "sample_commands/debiased_adam_baseline.sh:8 --num_train_epochs 3.0"),
    "schedule.warmup_ratio": (0.1, "sample_commands/debiased_adam_baseline.sh:8 --warmup_ratio 0.1"),
    "optimizer.lr": (2e-5, "sample_commands/debiased_adam_baseline.sh:8 --learning_rate 2e-05"),
    "schedule.name": ("linear", "run_glue.py:187 get_linear_schedule_with_warmup"),
    "schedule.warmup_rounding": ("floor", "run_glue.py:169 args.warmup_steps = int(args.warmup_ratio * t_total)"),
    "optimizer.eps": (1e-8, "options.py:109 --adam_epsilon default=1e-8 (BERTAdam too: run_glue.py:179-183)"),
    "trainer.gradient_clip_val": (1.0, "options.py:110 --max_grad_norm default=1.0; run_glue.py:302"),
    "model.dropout": (None, "bert-large-uncased's own config (hidden/attention dropout 0.1), unchanged"),
    "reinit": (0, "options.py:164 --reinit_layers default=0"),
    "reinit_pooler": (False, "options.py:168 --reinit_pooler store_true"),
    "llrd": (1.0, "options.py:106 --layerwise_learning_rate_decay default=1.0"),
    "mixout": (0.0, "options.py:171 --mixout default=0.0"),
    "prior_wd": (0.0, "options.py:173 --prior_weight_decay store_true (off)"),
    "task.n_train": (None, "options.py:158 --downsample_trainset default=-1 (the full training set)"),
    "task.n_val": (None, "options.py:160 --resplit_val default=0 (val = half the dev set)"),
    "trainer.max_steps": (-1, "options.py:115 --max_steps default=-1"),
}
# the few-sample setting (paper sec. 3 and appendix: 1k training examples, 1k more as validation)
OFFICIAL_1K = {
    "task.n_train": (1000, "options.py:157 --downsample_trainset 1000 (paper: 1k examples)"),
    "task.n_val": (1000, "options.py:160 --resplit_val 1000 (paper: 1k validation examples)"),
}
OFFICIAL_LONGER = {"trainer.max_steps": (400, "sample_commands/debiased_adam_longer.sh:9 --max_steps 400")}
# method -> the changes its sample command makes to the standard (debiased_adam_baseline) command
OFFICIAL_METHODS = {
    "standard": {},
    "reinit": {"reinit": (5, "sample_commands/reinit.sh:11 --reinit_pooler --reinit_layers 5")},
    "llrd": {"llrd": (0.95, "sample_commands/llrd.sh:9 --layerwise_learning_rate_decay 0.95")},
    "mixout": {"mixout": (0.1, "sample_commands/mixout.sh:9 --mixout 0.1")},
    "prior_wd": {
        "prior_wd": (1e-3, "sample_commands/pretrained_wd.sh:9 --prior_weight_decay --weight_decay 1e-3"),
        # PriorWD turns the groups' weight decay into the pull's strength (prior_wd_optim.py:16-19)
        "optimizer.weight_decay": (0.0, "prior_wd_optim.py:19 group['weight_decay'] = 0"),
    },
    "longer": OFFICIAL_LONGER,
    "wd": {"optimizer.weight_decay": (0.01, "not an official command: Table 2's plain weight decay, BERT's 0.01")},
}
# run_glue.py:339-355: the best checkpoint by val accuracy, else MCC, else Spearman
OFFICIAL_SELECTION = {
    "rte": "accuracy",
    "mrpc": "accuracy",
    "stsb": "spearman",
    "cola": "mcc",
    "sst2": "accuracy",
    "qnli": "accuracy",
    "qqp": "accuracy",
    "mnli": "accuracy",
}


def expected(experiment: str, method: str) -> dict:
    table = dict(OFFICIAL)
    if experiment in ("paper_1k", "paper_longer"):
        table.update(OFFICIAL_1K)
    if experiment == "paper_longer":
        table.update(OFFICIAL_LONGER)
    table.update(OFFICIAL_METHODS[method])
    return table


def select(cfg, path):
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, path)
    return OmegaConf.to_container(value) if hasattr(value, "_metadata") and not isinstance(value, str) else value


EXPERIMENTS = ("paper_full", "paper_1k", "paper_longer")


def table2_cells():
    """Every cell of Table 2 as a sweep (experiment x method x GLUE task), one test each. The fast
    tier (`make test-fast`) composes every preset on RTE and every task with paper_1k + standard;
    the rest of the cross product, 140 compositions (~15 s of CPU on 2 cores), runs in `make test`."""
    for experiment in EXPERIMENTS:
        for method in sorted(OFFICIAL_METHODS):
            for task in OFFICIAL_SELECTION:
                fast = task == "rte" or (experiment, method) == ("paper_1k", "standard")
                marks = () if fast else (pytest.mark.slow,)
                yield pytest.param(experiment, method, task, marks=marks, id=f"{experiment}-{method}-{task}")


@pytest.mark.parametrize(("experiment", "method", "task"), table2_cells())
def test_every_paper_preset_is_the_official_codes_setting(experiment, method, task, compose_train):
    """Each cell composes into a run config that passes the checks, on the task asked for, with the
    official code's values."""
    cfg = compose_train(f"experiment={experiment}", f"method={method}", f"task={task}", "task.data_dir=/data/x")
    check_config(cfg)
    assert (cfg.task.name, cfg.model.name) == (task, "bert-large-uncased")
    assert cfg.task.problem == ("regression" if task == "stsb" else "classification")
    wrong = {
        path: (select(cfg, path), official, where)
        for path, (official, where) in expected(experiment, method).items()
        if select(cfg, path) != official
    }
    assert not wrong
    chosen = selection_metric(list(cfg.task.metrics), cfg.task.main_metric, cfg.task.select_metric)
    assert chosen == OFFICIAL_SELECTION[task]


def test_the_sweep_above_covers_every_method_option():
    """A new conf/method/*.yaml is a new column of Table 2: it needs its row in OFFICIAL_METHODS."""
    assert sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")) == sorted(OFFICIAL_METHODS)


def test_the_optimizer_choice_keeps_the_paper_settings(compose_train):
    """`experiment=paper_1k optimizer=bertadam` (the bias-correction study) is BERTAdam with the
    official eps and no weight decay (run_glue.py:179-183: AdamW(correct_bias=False), eps 1e-8)."""
    cfg = compose_train("experiment=paper_1k", "optimizer=bertadam", "task=rte")
    assert (cfg.optimizer.name, cfg.optimizer.bias_correction) == ("bertadam", False)
    assert (cfg.optimizer.eps, cfg.optimizer.weight_decay) == (1e-8, 0.0)


def test_warmup_is_rounded_down_in_the_paper_presets_and_up_by_default(compose_train):
    # RTE 1k: 1000 examples / batch 32 -> 32 batches x 3 epochs = 96 steps; int(9.6) = 9
    paper = compose_train("experiment=paper_1k", "task=rte").schedule
    assert warmup_steps(paper, 96) == 9
    assert warmup_steps(compose_train().schedule, 96) == 10  # HF Trainer's ceil


def test_select_metric_defaults_to_the_main_metric_and_refuses_others():
    from bertlab.core.errors import ConfigError

    assert selection_metric(["f1", "accuracy"], "f1", None) == "f1"
    assert selection_metric(["f1", "accuracy"], "f1", "paper") == "accuracy"
    assert selection_metric(["pearson", "spearman"], "spearman", "paper") == "spearman"
    with pytest.raises(ConfigError, match="task.select_metric='mcc' is not one of task.metrics"):
        selection_metric(["f1", "accuracy"], "f1", "mcc")


# ---------------------------------------------------------------- the official data draws, re-done


def official_halves(labels: list) -> tuple[set, set]:
    """run_glue.py:136-154, `--test_val_split`, written out as the official code does it."""
    class2idx = defaultdict(list)
    for i, label in enumerate(labels):
        class2idx[label].append(i)
    val_indices, test_indices = [], []
    for _, indices in class2idx.items():
        state = np.random.RandomState(1)
        state.shuffle(indices)
        val_indices += indices[: len(indices) // 2]
        test_indices += indices[len(indices) // 2 :]
    return set(val_indices), set(test_indices)


def official_downsample(labels: list, n: int, evaluate: bool, regression: bool = False) -> set:
    """run_glue.py:559-589, `--downsample_trainset n` (evaluate=False) and `--resplit_val n`
    (evaluate=True, drawn from the training file too), as the official code does it."""
    np.random.seed(0)
    torch.manual_seed(0)
    if regression:
        return set(torch.randperm(len(labels))[:n].tolist())
    label_to_idx = defaultdict(list)
    for i, label in enumerate(labels):
        label_to_idx[label].append(i)
    samples_per_class = n // len(label_to_idx)
    for k in label_to_idx:
        label_to_idx[k] = np.array(label_to_idx[k])
        np.random.shuffle(label_to_idx[k])
        label_to_idx[k] = label_to_idx[k][-samples_per_class:] if evaluate else label_to_idx[k][:samples_per_class]
    return set(np.concatenate(list(label_to_idx.values())).tolist())


def positions(split, pool) -> set:
    ids = {id(e): i for i, e in enumerate(pool)}
    return {ids[id(e)] for e in split}


@pytest.mark.parametrize("task", ["rte", "mrpc"])
def test_paper_splits_are_the_official_codes_splits(shared_glue, task, compose_train):
    folder = {"rte": "RTE", "mrpc": "MRPC"}[task]
    for experiment in ("paper_full", "paper_1k"):
        cfg = compose_train(f"experiment={experiment}", f"task={task}", f"task.data_dir={shared_glue / folder}")
        pools = read_task(cfg.task)
        splits = make_splits(pools, cfg.task, cfg.task.data_seed)
        train_labels = [e.label for e in pools["train"]]
        if experiment == "paper_full":
            val, test = official_halves([e.label for e in pools["dev"]])
            assert positions(splits["val"], pools["dev"]) == val and positions(splits["test"], pools["dev"]) == test
            assert len(splits["train"]) == len(pools["train"])
        else:
            assert positions(splits["train"], pools["train"]) == official_downsample(train_labels, 1000, False)
            assert positions(splits["val"], pools["train"]) == official_downsample(train_labels, 1000, True)
            assert splits["test"] == pools["dev"]


def test_paper_splits_on_every_glue_format_fixture(compose_train):
    """The same rule on the fixtures of the other formats: 3 labels (MNLI), regression (STS-B), CoLA.
    STS-B's halves group the dev set by score value, as the official code's `class2idx` does (so a
    score that occurs once goes to test): the fixture's dev set gets repeated scores for that."""
    from bertlab.data.readers import Example

    fixtures = REPO / "tests" / "fixtures" / "glue"
    for task, folder in (("mnli", "MNLI"), ("stsb", "STS-B"), ("cola", "CoLA"), ("qqp", "QQP")):
        cfg = compose_train("experiment=paper_full", f"task={task}", f"task.data_dir={fixtures / folder}")
        pools = read_task(cfg.task)
        if task == "stsb":
            pools["dev"] = [Example(f"s{i}", f"t{i}", score) for i, score in enumerate([3.8, 0.0, 5.0, 3.8, 1.25] * 4)]
        splits = make_splits(pools, cfg.task, cfg.task.data_seed)
        val, test = official_halves([e.label for e in pools["dev"]])
        assert positions(splits["val"], pools["dev"]) == val, task
        assert positions(splits["test"], pools["dev"]) == test, task
        n = len(pools["train"]) // 2
        cfg = compose_train(
            "experiment=paper_1k",
            f"task={task}",
            f"task.data_dir={fixtures / folder}",
            f"task.n_train={n}",
            "task.n_val=null",
        )
        splits = make_splits(pools, cfg.task, cfg.task.data_seed)
        labels = [e.label for e in pools["train"]]
        assert positions(splits["train"], pools["train"]) == official_downsample(
            labels, n, False, regression=cfg.task.problem == "regression"
        ), task


def test_paper_draw_refuses_to_overlap_train_and_val(compose_train):
    from bertlab.core.errors import ConfigError

    cfg = compose_train("experiment=paper_1k", "task=rte", f"task.data_dir={REPO / 'tests/fixtures/glue/RTE'}")
    pools = read_task(cfg.task)
    per_label = min(sum(e.label == y for e in pools["train"]) for y in (0, 1))
    cfg.task.n_train, cfg.task.n_val = 2 * per_label, 2
    with pytest.raises(ConfigError, match="task.sampling=paper draws"):
        make_splits(pools, cfg.task, 0)


# ---------------------------------------------------------------- model selection, end to end


@pytest.mark.slow
def test_validation_at_the_last_step_and_selection_on_accuracy_for_mrpc(tmp_path, tiny):
    """MRPC under the paper's rule selects on validation accuracy and reports F1, and the last step
    is validated even when the interval does not divide the run (run_glue.py:309-311, t_total)."""
    proc = run_train(
        *tiny,
        "task=mrpc",
        f"task.data_dir={REPO / 'tests/fixtures/glue/MRPC'}",
        "task.select_metric=paper",
        "task.n_train=null",
        "task.n_val=2",
        "task.n_test=null",
        "trainer.max_steps=5",
        "trainer.num_evals=2",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["select_metric"] == "accuracy" and result["main_metric"] == "f1"
    assert result["validations"] == 3  # steps 2 and 4 (interval 5 // 2), then the last step, 5
    import csv

    with open(tmp_path / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/accuracy")]
    # a validation is logged at the optimizer steps done, the step best_step names (one step axis)
    assert [int(r["step"]) for r in rows] == [2, 4, 5]
    accuracy = [float(r["val/accuracy"]) for r in rows]
    best = rows[accuracy.index(max(accuracy))]  # the first of equal scores, as the official `>`
    assert result["best_step"] == int(best["step"])
    assert result["metrics"]["val/accuracy"] == pytest.approx(float(best["val/accuracy"]))
    assert "test_best/f1" in result["metrics"] and "test_last/f1" in result["metrics"]
