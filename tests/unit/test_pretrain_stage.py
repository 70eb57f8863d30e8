"""The further pre-training stage (pretrain/): model handling, the masked-only head, the cache,
the config group and its checks, in-process on tiny models."""

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from bertlab.core.errors import ConfigError, ModelError
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.pretrain.cache import cached_stage
from bertlab.pretrain.model import check_tied, load_mlm_model, pretrained_pooler, save_stage_model
from bertlab.pretrain.settings import RULES, check_pretrain
from bertlab.pretrain.stage import MaskedLM, further_pretrain
from tests.helpers.families import ENCODER_FAMILIES

HAS_POOLER = {"bert", "albert"}  # the families whose classifier has a pretrained pooler


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_tie_holds_after_reload_and_pooler_is_carried(family, tiny_family_dirs, tmp_path):
    source = str(tiny_family_dirs[family])
    tokenizer, model, head = load_mlm_model(source, seed=0)
    assert head.startswith("new masked-LM head") and "tied to the input embeddings" in head
    with torch.no_grad():  # a trained stage: embeddings (and with them the decoder) moved
        model.get_input_embeddings().weight.add_(0.5)
    pooler = pretrained_pooler(source)
    assert bool(pooler) == (family in HAS_POOLER)
    save_stage_model(model, tokenizer, tmp_path, pooler)

    reloaded = AutoModelForMaskedLM.from_pretrained(str(tmp_path))
    assert check_tied(reloaded)
    assert reloaded.get_output_embeddings().weight.data_ptr() == reloaded.get_input_embeddings().weight.data_ptr()
    assert torch.equal(reloaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
    # the stage's own output keeps its head: a second stage (dapt_tapt) starts from it
    assert load_mlm_model(str(tmp_path), seed=0)[2].startswith("kept the checkpoint's masked-LM head")

    classifier, info = AutoModelForSequenceClassification.from_pretrained(
        str(tmp_path), num_labels=2, output_loading_info=True
    )
    original = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    for name, value in pooler.items():
        assert name not in info["missing_keys"]
        assert torch.equal(classifier.state_dict()[name], value)
        assert torch.equal(value, original.state_dict()[name])  # the starting checkpoint's own pooler
    assert all(k.startswith(("classifier", "pre_classifier", "pooler")) for k in info["missing_keys"])


def test_model_without_masked_lm_head_is_one_message(tiny_family_dirs):
    with pytest.raises(ModelError, match="gpt2 model, which has no masked-LM head class"):
        load_mlm_model(str(tiny_family_dirs["gpt2"]), seed=0)


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_masked_only_head_gives_the_models_own_loss(family, tiny_family_dirs):
    _, model, _ = load_mlm_model(str(tiny_family_dirs[family]), seed=0)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (3, 12), generator=generator)
    attention = torch.ones_like(ids)
    attention[2, 8:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 5], labels[1, 6], labels[2, 2] = 7, 9, 10, 11
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        logits, masked, _ = MaskedLM(model, None, None).masked_logits(
            {"input_ids": ids, "attention_mask": attention, "labels": labels}
        )
    assert logits.shape == (4, model.config.vocab_size)
    assert masked.tolist() == [7, 9, 10, 11]
    assert torch.nn.functional.cross_entropy(logits, masked).item() == pytest.approx(reference.item(), rel=1e-5)


def _config(compose_train, tiny_bert_dir, tmp_path, *extra):
    return compose_train(
        f"model.name_or_path={tiny_bert_dir}",
        "debug=fast",
        "trainer.enable_progress_bar=false",
        "pretrain=tapt",
        f"pretrain.cache_dir={tmp_path / 'cache'}",
        *extra,
    )


def _splits(cfg):
    pools = read_task(cfg.task)
    return make_splits(pools, cfg.task, cfg.task.data_seed), pools


@pytest.mark.slow  # pre-trains in-process with Lightning
def test_mlm_loss_falls_on_the_tiny_model(compose_train, tiny_bert_dir, tmp_path):
    cfg = _config(compose_train, tiny_bert_dir, tmp_path, "pretrain.lr=2e-3", "pretrain.max_steps=30")
    splits, pools = _splits(cfg)
    path, record = further_pretrain(cfg, splits, tmp_path, pools=pools)
    (stage,) = record["stages"]
    assert stage["steps"] == 30 and not stage["reused"]
    assert record["held_out_loss_after"] < record["held_out_loss_before"] - 0.5
    assert record["held_out_loss_before"] > 10  # a fresh head: about ln(30522) = 10.3
    assert stage["corpus"]["documents"] == 16 and stage["corpus"]["held_out_blocks"] >= 1
    assert [v["step"] for v in stage["validations"]][0] == 0
    assert path == stage["dir"] and os.path.isfile(os.path.join(path, "config.json"))


@pytest.mark.slow  # pre-trains in-process with Lightning
def test_same_settings_reuse_the_cache_and_a_changed_one_does_not(compose_train, tiny_bert_dir, tmp_path):
    cfg = _config(compose_train, tiny_bert_dir, tmp_path, "pretrain.max_steps=2")
    splits, pools = _splits(cfg)
    first, record = further_pretrain(cfg, splits, tmp_path, pools=pools)
    again, reused = further_pretrain(cfg, splits, tmp_path, pools=pools)
    assert again == first and reused["reused"] and not record["reused"]
    assert reused["held_out_loss_after"] == record["held_out_loss_after"]
    # another stage seed, another lr, another optimizer: each its own entry
    for change in ("pretrain.seed=1", "pretrain.lr=3e-4", "optimizer@pretrain.optimizer=bertadam"):
        other = _config(compose_train, tiny_bert_dir, tmp_path, "pretrain.max_steps=2", change)
        path, changed = further_pretrain(other, splits, tmp_path, pools=pools)
        assert path != first and not changed["reused"], change
    # the fine-tuning seed is not part of the stage: a seed sweep shares one model
    seed = _config(compose_train, tiny_bert_dir, tmp_path, "pretrain.max_steps=2", "seed=7")
    assert further_pretrain(seed, splits, tmp_path, pools=pools)[1]["reused"]


def test_pretrain_none_touches_nothing(compose_train, tiny_bert_dir, tmp_path):
    cfg = compose_train(f"model.name_or_path={tiny_bert_dir}", "debug=fast")
    assert cfg.pretrain.name == "none" and list(cfg.pretrain.stages) == []
    state = torch.get_rng_state()
    path, record = further_pretrain(cfg, {}, tmp_path)
    assert path == str(tiny_bert_dir) and record == {"name": "none"}
    assert torch.equal(state, torch.get_rng_state())


# --- the cache under concurrency and kills: processes synchronised on events, never on sleeps


def _build_once(counter, started, go):
    def build(folder):
        with counter.get_lock():
            counter.value += 1
        started.set()
        go.wait()
        (folder / "weights").write_text("done")
        return {"built_by": os.getpid()}

    return build


def _job(root, counter, started, go, waiting, results):
    folder, record, reused = cached_stage(
        root, "k", _build_once(counter, started, go), announce=lambda _: waiting.set()
    )
    results.put((str(folder), record, reused, (folder / "weights").read_text()))


def test_concurrent_jobs_run_the_stage_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    counter, started, go, waiting, results = ctx.Value("i", 0), ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    first = ctx.Process(target=_job, args=(tmp_path, counter, started, go, ctx.Event(), results))
    first.start()
    assert started.wait(120)  # the first job holds the lock and is training
    second = ctx.Process(target=_job, args=(tmp_path, counter, started, go, waiting, results))
    second.start()
    assert waiting.wait(120)  # the second found the lock taken and says it waits
    assert not (tmp_path / "k").exists()  # nothing half-written is visible meanwhile
    go.set()
    outcomes = sorted([results.get(timeout=120), results.get(timeout=120)], key=lambda r: r[2])
    first.join(60), second.join(60)
    assert counter.value == 1
    (built, reused) = outcomes
    assert not built[2] and reused[2] and built[0] == reused[0] and built[1] == reused[1]
    assert reused[3] == "done"


def test_a_killed_stage_leaves_no_entry_and_the_next_job_redoes_it(tmp_path):
    ctx = multiprocessing.get_context("fork")
    counter, started, go, results = ctx.Value("i", 0), ctx.Event(), ctx.Event(), ctx.Queue()
    victim = ctx.Process(target=_job, args=(tmp_path, counter, started, go, ctx.Event(), results))
    victim.start()
    assert started.wait(120)
    os.kill(victim.pid, signal.SIGKILL)  # mid-stage
    victim.join(60)
    assert not (tmp_path / "k").exists() and list(tmp_path.glob(".k.*.tmp"))  # only its temporary folder
    # fresh events: the victim died waiting on `go` (and maybe inside `started.set()`); a
    # multiprocessing Condition whose waiter or holder was killed blocks its next set() for ever
    go_now = threading.Event()
    go_now.set()
    folder, record, reused = cached_stage(tmp_path, "k", _build_once(counter, threading.Event(), go_now))
    assert not reused and counter.value == 2 and (folder / "weights").read_text() == "done"
    assert not list(tmp_path.glob(".k.*.tmp"))  # the dead job's folder is gone


# --- the config group and its checks


def test_every_key_of_the_group_has_a_rule(compose_train):
    for option in ("none", "tapt", "dapt", "dapt_tapt"):
        node = compose_train(f"pretrain={option}").pretrain
        assert set(node.keys()) == set(RULES), option
        check_pretrain(node)
    assert list(compose_train("pretrain=dapt_tapt").pretrain.stages) == ["dapt", "tapt"]


def test_the_stages_optimizer_and_schedule_are_the_groups(compose_train):
    cfg = compose_train(
        "pretrain=tapt",
        "optimizer@pretrain.optimizer=bertadam",
        "schedule@pretrain.schedule=cosine",
        "pretrain.lr=3e-5",
    )
    assert cfg.pretrain.optimizer.name == "bertadam" and cfg.pretrain.optimizer.lr == 3e-5
    assert cfg.pretrain.schedule.name == "cosine" and cfg.pretrain.schedule.warmup_ratio == 0.06
    assert cfg.optimizer.name == "adamw" and cfg.schedule.warmup_ratio == 0.1  # fine-tuning's own, untouched


@pytest.mark.parametrize(
    "override, words",
    [
        ("pretrain.lr=-1", "pretrain.lr=-1"),
        ("pretrain.optimizer.lr=0", "pretrain.optimizer.lr=0"),
        ("pretrain.schedule.warmup_ratio=2", "pretrain.schedule.warmup_ratio=2"),
        ("pretrain.stages=[tapt,mlm]", "pretrain.stages"),
        ("pretrain.corpus=test", "pretrain.corpus=test is invalid; valid: train, train_pool"),
        ("pretrain.held_out=0", "pretrain.held_out=0"),
        ("pretrain.held_out=1.5", "pretrain.held_out=1.5"),
        ("pretrain.batch_size=0", "pretrain.batch_size=0"),
        ("pretrain.max_steps=0", "pretrain.max_steps=0"),
        ("pretrain.max_epochs=0", "pretrain.max_epochs=0"),
        ("pretrain.patience=-1", "pretrain.patience=-1"),
        ("pretrain.num_evals_per_epoch=0", "pretrain.num_evals_per_epoch=0"),
        ("pretrain.seed=-3", "pretrain.seed=-3"),
        ("pretrain.long_documents=split", "pretrain.long_documents=split"),
        ("pretrain.mlm_probability=1.5", "pretrain.mlm_probability=1.5"),
        ("pretrain.masking=sometimes", "pretrain.masking=sometimes"),
        ("pretrain.gradient_clip_val=-1", "pretrain.gradient_clip_val=-1"),
        ("pretrain.domain_corpus=/no/such/corpus.txt", "pretrain.domain_corpus=/no/such/corpus.txt: no such file"),
    ],
)
def test_bad_values_are_one_message_naming_the_key(compose_train, override, words):
    option = "pretrain=dapt" if "domain_corpus" in override else "pretrain=tapt"
    node = compose_train(option, override).pretrain
    with pytest.raises(ConfigError) as err:
        check_pretrain(node)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_settings_record_the_pretrain_choice(compose_train):
    from bertlab.core.record import settings

    assert settings(compose_train())["pretrain"] == "none"
    assert settings(compose_train("pretrain=tapt"))["pretrain"] == "tapt"
    assert OmegaConf.select(compose_train("pretrain=tapt"), "pretrain.cache_dir").endswith("pretrained")


def test_the_report_groups_by_the_pretrain_choice(tmp_path):
    from bertlab.report import build_report
    from tests.helpers.report_fixtures import result, settings, write_sweep

    records = [
        result(settings(pretrain=choice, seed=seed), ["pretrain", "seed"], 0.6 + 0.1 * (choice == "tapt") + seed / 100)
        for choice in ("none", "tapt")
        for seed in range(3)
    ]
    (task,) = build_report([write_sweep(tmp_path / "sweep", records, curves=False)]).tasks
    assert task.grouping.keys == ["pretrain"]
    assert list(task.summary.index) == ["none", "tapt"]
    assert task.summary["best_mean"].tolist() == pytest.approx([0.61, 0.71])


@pytest.mark.slow  # pre-trains in-process with Lightning
def test_bertlab_pretrain_prints_the_override_and_reuses_the_cache(tiny_bert_dir, tmp_path, capsys):
    from bertlab.cli import main

    args = ["pretrain", f"model.name_or_path={tiny_bert_dir}", "debug=fast", "pretrain.max_steps=2"]
    args += [f"pretrain.cache_dir={tmp_path}", "trainer.enable_progress_bar=false"]
    assert main(args) == 0
    first = capsys.readouterr().out.strip().splitlines()
    assert first[-1].startswith(f"model.name_or_path={tmp_path}/") and "trained" in first[-2]
    assert main(args) == 0
    again = capsys.readouterr().out.strip().splitlines()
    assert again[-1] == first[-1] and "reused" in again[-2]
    assert main([*args, "pretrain.lrr=3"]) == 2
    assert "Did you mean pretrain.lr?" in capsys.readouterr().err


@pytest.mark.slow  # pre-trains in-process with Lightning
@pytest.mark.parametrize("task", ["conll2003", "swag", "squad"])
def test_bertlab_pretrain_reads_every_problem_as_a_run_does(task, tiny_bert_dir, tmp_path, capsys):
    """The stage's corpus comes from the task problem's own reader (token, choice, QA examples)."""
    from bertlab.cli import main

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / task
    args = ["pretrain", f"model.name_or_path={tiny_bert_dir}", "debug=fast", "pretrain.max_steps=2"]
    args += [f"task={task}", f"task.data_dir={fixtures}", f"pretrain.cache_dir={tmp_path}"]
    assert main([*args, "trainer.enable_progress_bar=false"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"model.name_or_path={tmp_path}/") and "trained" in out[-2]
