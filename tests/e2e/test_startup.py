"""Start-up (docs/speed.md): a run imports only what it uses, and records when it started.

No timings here (the machine is shared and noisy; `python -m scripts.bench` measures start-up
beside the floor): the guards are which optional libraries are in `sys.modules` when the first
training batch starts, and the accuracy of the process start time behind `startup_s`.
"""

import json
import subprocess
import sys
import time

import pytest

from tests.helpers.e2e import HELPERS, REPO, TINY, train_env

# Optional libraries a default run (logger=csv, no hub, no augmentation, no sweep) must not import:
# each costs start-up, paid once per job of a sweep. The importing code imports them where used.
# Not listed: scipy, matplotlib, sentencepiece, PIL, which `import lightning` / `transformers`
# themselves import (through torchmetrics), so every run pays them: the floor.
HEAVY = (
    "wandb",
    "mlflow",
    "tensorboard",
    "tensorboardX",
    "datasets",
    "ray",
    "optuna",
    "pandas",
    "nltk",
    "seqeval",
    "sklearn",
    "sqlalchemy",
    "peft",  # transformers' schedules import it (trainer_utils): the default schedule is ours (optim/schedules.py)
)


def loaded(modules: list[str], names=HEAVY) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(names))


@pytest.mark.slow  # a fresh interpreter: 5-7 s of imports
def test_the_run_path_imports_no_optional_library():
    """Every module a default run imports before its first step, imported the way train.py does."""
    code = (
        "import json, sys; import bertlab.run.entry, bertlab.run.app, bertlab.run.fit, bertlab.run.job; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert loaded(json.loads(proc.stdout.splitlines()[-1])) == []


@pytest.mark.slow
def test_a_default_run_has_imported_no_optional_library_at_its_first_step(tmp_path):
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HELPERS / "modules_at_first_step.py"),
            str(out),
            *TINY,
            "logger=csv",
            f"data.token_cache={tmp_path / 'tokens'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        env=train_env({"WANDB_MODE": None}),  # W&B not disabled by the environment: logger=csv alone keeps it out
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and out.exists(), proc.stderr[-3000:]
    at_first_step = json.loads(out.read_text())
    modules = at_first_step["modules"]
    assert "bertlab.training.finetuner" in modules  # the hook really ran inside a training run
    assert loaded(modules) == []
    # the collector was paused for the imports (core/gc_pause.py): on again, with what they made
    # frozen (some 500,000 objects or more; a run that froze nothing would show 0)
    assert at_first_step["collector"]["enabled"]
    assert at_first_step["collector"]["frozen"] > 200_000


@pytest.mark.slow  # a fresh interpreter: 5-7 s of imports
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the /proc clock is Linux's")
def test_process_start_time_is_when_the_process_was_launched():
    """startup_s counts from here: /proc/stat's whole-second boot time made it up to 1 s early."""
    code = "from bertlab.callbacks.throughput import process_start_time; print(repr(process_start_time()))"
    launched = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = float(proc.stdout.splitlines()[-1])
    # the fork follows `launched` within milliseconds; the slack covers a loaded machine and 10 ms ticks
    assert launched - 0.05 <= started <= launched + 0.5


def test_tokenizer_fingerprint_ignores_and_keeps_the_last_calls_settings(tiny_bert_dir):
    """The fingerprint clears truncation/padding around `to_str` (no JSON round trip) and puts them back."""
    from transformers import AutoTokenizer

    from bertlab.data import token_cache

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    fresh = token_cache.tokenizer_fingerprint(tok)
    tok(["a b c d e f", "a"], truncation=True, max_length=4, padding="max_length")
    backend = tok.backend_tokenizer
    settings = (backend.truncation, backend.padding)
    assert settings[0] is not None and settings[1] is not None  # the call left them behind
    assert token_cache.tokenizer_fingerprint(tok) == fresh
    assert (backend.truncation, backend.padding) == settings  # put back as they were
    extended = AutoTokenizer.from_pretrained(tiny_bert_dir)
    extended.add_tokens(["bertlabtoken"])
    assert token_cache.tokenizer_fingerprint(extended) != fresh


@pytest.mark.parametrize("group", ["task", "trainer"])
def test_the_keys_every_option_sets_match_omegaconfs_reading(group):
    """check_complete reads the packaged options' top-level keys with PyYAML's C loader (start-up):
    the same keys OmegaConf.load finds."""
    from omegaconf import OmegaConf

    from bertlab.core.paths import CONF_DIR
    from bertlab.run.checks import _keys_every_option_sets

    options = sorted((CONF_DIR / group).glob("*.yaml"))
    reference = set.intersection(*(set(OmegaConf.load(p).keys()) - {"defaults"} for p in options))
    assert _keys_every_option_sets(group) == (reference, options[0].name)
