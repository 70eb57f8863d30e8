"""The paper's methods through `python train.py`: the sweep, the logs, the presets, bad values."""

import csv
import math

import pytest

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.run.checks import check_config
from tests.helpers.e2e import results_under
from tests.helpers.e2e import run_train as run_process
from tests.helpers.inprocess import run_train

METHOD_KEYS = ("reinit", "reinit_pooler", "llrd", "mixout", "prior_wd")


@pytest.mark.slow
def test_sweep_optimizer_schedule_reinit_with_llrd_and_mixout(tmp_path, tiny):
    proc = run_process(
        "-m",
        *tiny,
        "optimizer=bertadam,adamw",
        "schedule=linear,cosine",
        "reinit=0,1",
        "llrd=0.9",
        "mixout=0.1",
        "prior_wd=0.01",
        "trainer.max_steps=3",
        f"hydra.sweep.dir={tmp_path}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert len(results) == 8
    combos = set()
    for run, r in results.items():
        assert r["status"] == "ok", (run, r["error"])
        s = r["settings"]
        combos.add((s["optimizer"], s["schedule"], s["reinit"]))
        assert (s["llrd"], s["mixout"], s["prior_wd"]) == (0.9, 0.1, 0.01)
        assert r["global_steps"] == 3
        d = r["diagnostics"]
        # llrd's group lrs, lr * 0.9^k from the top (2-block model: head, layer_1, layer_0, embeddings)
        lr = s["lr"]
        for depth, k in (("head", 0), ("layer_1", 1), ("layer_0", 2), ("embeddings", 3)):
            assert d["peak_lr"][f"{depth}/decay"] == pytest.approx(lr * 0.9**k)
        blocks = ["embeddings", "layer_0", "layer_1", "pooler", "classifier"]
        assert list(d["relative_change"]) == blocks and all(v > 0 for v in d["relative_change"].values())
        assert list(d["grad_norm"]) == blocks and d["grad_norm_step"] == 3
        assert list(d["update_size"]["first"]) == blocks
        if s["optimizer"] == "bertadam":
            assert d["bias_correction"]["first"] == 1.0
        else:
            assert d["bias_correction"]["first"] == pytest.approx(math.sqrt(1 - 0.999) / 0.1)
        # every step's per-group lr and the optimizer diagnostics are in the run's log
        with open(tmp_path / run / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        columns = set(rows[0])
        assert {
            "lr/head/decay",
            "lr/layer_0/no_decay",
            "lr/embeddings/decay",
            "optim/bias_correction",
            "optim/update_size/layer_1",
            "grad_norm/layer_0",
            "diag/relative_change/layer_1",
        } <= columns
        assert sum(1 for row in rows if row["lr/head/decay"]) == 3  # once per step
    assert combos == {(o, sc, ri) for o in ("bertadam", "adamw") for sc in ("linear", "cosine") for ri in (0, 1)}
    # BERTAdam's first update is ~3x the debiased one (paper Fig. 2-3)
    first = {
        r["settings"]["optimizer"]: r["diagnostics"]["update_size"]["first"]["classifier"]
        for r in results.values()
        if r["settings"]["reinit"] == 0 and r["settings"]["schedule"] == "linear"
    }
    assert first["bertadam"] > 2 * first["adamw"]


@pytest.mark.slow
def test_bad_method_value_is_one_clear_message(tmp_path, tiny):
    proc = run_train(*tiny, "mixout=1.0", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1
    assert "mixout=1.0 is invalid" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "bad, message",
    [
        ("mixout=-0.1", "mixout=-0.1 is invalid"),
        ("mixout=true", "mixout=True is invalid"),
        ("prior_wd=-1", "prior_wd=-1 is invalid"),
        ("prior_wd=inf", "prior_wd=inf is invalid"),
    ],
)
def test_bad_method_values_fail_the_config_check(bad, message, compose_train):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_train(bad))


def test_method_presets_change_only_their_method(compose_train):
    standard = compose_train("experiment=paper_1k", "method=standard")
    base = {k: standard[k] for k in METHOD_KEYS}
    assert base == {"reinit": 0, "reinit_pooler": False, "llrd": 1.0, "mixout": 0.0, "prior_wd": 0.0}
    assert standard.optimizer.weight_decay == 0.0 and standard.trainer.max_epochs == 3
    # the official sample commands' values (tests/e2e/test_paper_presets.py cites each line)
    expected = {
        "reinit": {"reinit": 5},
        "llrd": {"llrd": 0.95},
        "mixout": {"mixout": 0.1},
        "prior_wd": {"prior_wd": 0.001},
        "wd": {},
        "longer": {},
    }
    for method, change in expected.items():
        cfg = compose_train("experiment=paper_1k", f"method={method}")
        assert {k: cfg[k] for k in METHOD_KEYS} == {**base, **change}, method
        assert cfg.optimizer.weight_decay == (0.01 if method == "wd" else 0.0), method
        assert cfg.trainer.max_steps == (400 if method == "longer" else -1), method
        assert (cfg.task.n_train, cfg.data.batch_size, cfg.optimizer.lr) == (1000, 32, 2e-5), method
    # the command line still wins over a preset, and presets compose with the full-data setting
    cfg = compose_train("experiment=paper_full", "method=reinit", "reinit=6")
    assert cfg.reinit == 6 and cfg.task.n_train is None
    longer = compose_train("experiment=paper_longer", "task=rte")
    assert longer.trainer.max_steps == 400 and longer.task.n_train == 1000 and longer.task.name == "rte"
    assert sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")) == sorted(["standard", *expected])


@pytest.mark.slow
def test_optimizer_switches_and_schedules_end_to_end(tmp_path, tiny):
    """adam_l2, bias correction switched off on any Adam, and the cosine-restarts / polynomial
    schedules through `python train.py`: `optimizer=adamw optimizer.bias_correction=false` is
    BERTAdam to the bit."""
    proc = run_process(
        "-m",
        *tiny,
        "optimizer=adam_l2,adamw,bertadam",
        "optimizer.bias_correction=false",
        "optimizer.weight_decay=0.01",
        "schedule=cosine_restarts,polynomial",
        "trainer.max_steps=3",
        f"hydra.sweep.dir={tmp_path}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {(r["settings"]["optimizer"], r["settings"]["schedule"]): r for r in results_under(tmp_path).values()}
    assert len(results) == 6 and all(r["status"] == "ok" for r in results.values())
    for r in results.values():
        assert r["settings"]["bias_correction"] is False
        assert r["diagnostics"]["bias_correction"]["first"] == 1.0
    for schedule in ("cosine_restarts", "polynomial"):
        switched, bertadam = results[("adamw", schedule)], results[("bertadam", schedule)]
        assert switched["metrics"] == bertadam["metrics"]
        assert switched["diagnostics"]["relative_change"] == bertadam["diagnostics"]["relative_change"]
        # L2 decay goes into the gradient, so it moves the weights differently from decoupled decay
        assert (
            results[("adam_l2", schedule)]["diagnostics"]["relative_change"]
            != bertadam["diagnostics"]["relative_change"]
        )
