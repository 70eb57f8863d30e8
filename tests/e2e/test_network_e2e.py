"""Offline compute nodes through `python train.py`: W&B and the Hugging Face hub are probed once
(bertlab.core.network) and the run goes on offline, or fails with one message, within seconds instead
of after the clients' retries (W&B: ~110 s and a traceback; the hub: ~35 s of retry warnings).

The unreachable hosts are loopback stand-ins (tests/helpers/loopback.py): a closed port, and a server that
accepts connections and never answers. The tests assert on the messages and results, not on time.
"""

import json
import shutil

import pytest

from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message
from tests.helpers.e2e import TINY, results_under, run_train
from tests.helpers.loopback import closed_port, silent_server

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow

WELL_FORMED_KEY = "0123456789abcdef" * 2 + "01234567"  # 40 characters: the format W&B accepts
UNREACHABLE = {"closed_port": closed_port, "silent_server": silent_server}


@pytest.fixture(params=sorted(UNREACHABLE))
def unreachable_url(request):
    with UNREACHABLE[request.param]() as url:
        yield url


def wandb_env(tmp_path, base_url, key=WELL_FORMED_KEY):
    """A W&B setup as on a compute node: a key, the server at `base_url`, no WANDB_MODE; nothing
    read from this machine's own W&B settings or ~/.netrc."""
    return {
        "WANDB_MODE": None,
        "WANDB_API_KEY": key,
        "WANDB_BASE_URL": base_url,
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "NETRC": str(tmp_path / "netrc"),
    }


def hub_env(tmp_path, endpoint):
    """The hub at `endpoint`, HF_HUB_OFFLINE unset, an empty HF cache of the test's own."""
    return {
        "HF_HUB_OFFLINE": None,
        "HF_DATASETS_OFFLINE": None,
        "TRANSFORMERS_OFFLINE": None,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),
    }


# ---------------------------------------------------------------- W&B


def test_wandb_with_a_key_and_no_server_logs_offline_and_the_run_goes_on(tmp_path, unreachable_url):
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "logger=wandb", f"hydra.run.dir={run_dir}", env=wandb_env(tmp_path, unreachable_url))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = [s for s in proc.stdout.splitlines() if s.startswith("W&B:")]
    assert f"W&B: {unreachable_url} is unreachable" in line and "logging offline" in line and "wandb sync" in line
    assert results_under(run_dir)["."]["status"] == "ok"
    assert len(list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_wandb_malformed_key_is_one_message(tmp_path):
    with closed_port() as url:
        proc = run_train(
            *TINY, "logger=wandb", f"hydra.run.dir={tmp_path / 'run'}", env=wandb_env(tmp_path, url, key="not-a-key")
        )
    assert_one_clear_message(
        proc, "WANDB_API_KEY invalid", "40+ characters", "wandb login --relogin", "logger.wandb.mode=offline"
    )
    assert_nothing_half_written(tmp_path / "run")


def test_wandb_malformed_key_from_netrc_names_the_file(tmp_path):
    with closed_port() as url:
        env = wandb_env(tmp_path, url, key=None)
        (tmp_path / "netrc").write_text(f"machine {url.removeprefix('http://')}\n  login user\n  password short\n")
        proc = run_train(*TINY, "logger=wandb", f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert_one_clear_message(proc, f"the W&B API key in {tmp_path / 'netrc'}", "40+ characters")
    assert_nothing_half_written(tmp_path / "run")


BAD_WANDB_SETUPS = {
    # case: (overrides, environment, fragments of the one message)
    "online_without_key": (
        ["logger.wandb.mode=online"],
        {"WANDB_API_KEY": None},
        ["logger.wandb.mode=online needs a W&B API key", "wandb login", "logger.wandb.mode=offline"],
    ),
    "unknown_mode": (
        ["logger.wandb.mode=offine"],
        {},
        ["logger.wandb.mode=offine is unknown", "valid: online, offline, disabled"],
    ),
    "unknown_mode_from_env": ([], {"WANDB_MODE": "offine"}, ["WANDB_MODE=offine is unknown"]),
    "base_url_not_a_url": (
        [],
        {"WANDB_BASE_URL": "notaurl"},
        ["W&B settings are invalid", "base_url", "input_value='notaurl'", "WANDB_BASE_URL"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WANDB_SETUPS))
def test_wandb_setup_that_cannot_work_is_one_message(tmp_path, case):
    overrides, env, fragments = BAD_WANDB_SETUPS[case]
    with closed_port() as url:
        proc = run_train(
            *TINY,
            "logger=wandb",
            *overrides,
            f"hydra.run.dir={tmp_path / 'run'}",
            env={**wandb_env(tmp_path, url), **env},
        )
    assert_one_clear_message(proc, *fragments)
    assert_nothing_half_written(tmp_path / "run")


# ---------------------------------------------------------------- the Hugging Face hub


def assert_no_retry_noise(proc):
    for noise in ("Retry", "thrown while requesting", "Could not reach the Hub"):
        assert noise not in proc.stderr, proc.stderr[-3000:]


def assert_fast_offline_failure(proc, endpoint, *fragments):
    assert_no_retry_noise(proc)
    assert_one_clear_message(proc, *fragments)
    assert f"Hugging Face hub: {endpoint} is unreachable" in proc.stdout


def test_hub_model_without_network_fails_with_one_message(tmp_path, unreachable_url):
    proc = run_train(
        *TINY,
        "model=hf",
        "model.name_or_path=no-such-org/no-such-bert",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=hub_env(tmp_path, unreachable_url),
    )
    assert_fast_offline_failure(
        proc,
        unreachable_url,
        "model.name_or_path='no-such-org/no-such-bert' cannot be loaded",
        "the Hugging Face hub is unreachable from here (offline)",
        "bertlab prepare",
    )
    assert_nothing_half_written(tmp_path / "run")


def test_hub_task_without_network_fails_with_one_message(tmp_path, unreachable_url):
    proc = run_train(*TINY, "task=rte", f"hydra.run.dir={tmp_path / 'run'}", env=hub_env(tmp_path, unreachable_url))
    assert_fast_offline_failure(
        proc, unreachable_url, "Cannot load task 'rte' (nyu-mll/glue, rte)", "task.data_dir=/path/to/glue_data/RTE"
    )
    assert_nothing_half_written(tmp_path / "run")


def test_hub_model_in_the_local_hf_cache_still_loads_offline(tmp_path, tiny_bert_dir):
    env = hub_env(tmp_path, None)
    # the layout huggingface_hub downloads into: <HF_HOME>/hub/models--org--name/{refs/main, snapshots/<commit>/}
    repo = tmp_path / "hf-home" / "hub" / "models--bertlab-test--tiny-bert"
    commit = "0" * 40
    shutil.copytree(tiny_bert_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    with closed_port() as url:
        env["HF_ENDPOINT"] = url
        proc = run_train(
            *TINY, "model=hf", "model.name_or_path=bertlab-test/tiny-bert", f"hydra.run.dir={tmp_path / 'run'}", env=env
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_no_retry_noise(proc)
    assert f"Hugging Face hub: {url} is unreachable" in proc.stdout
    assert results_under(tmp_path / "run")["."]["status"] == "ok"


def test_model_in_a_local_folder_never_asks_the_hub(tmp_path, tiny_bert_dir):
    with silent_server() as url:
        proc = run_train(
            *TINY,
            f"model.name_or_path={tiny_bert_dir}",
            f"hydra.run.dir={tmp_path / 'run'}",
            env=hub_env(tmp_path, url),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Hugging Face hub" not in proc.stdout  # no probe: nothing to wait for
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "ok"
