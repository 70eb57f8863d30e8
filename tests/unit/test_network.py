"""The reachability probe (bertlab.core.network) and the offline switches built on it, against loopback
stand-ins (tests/helpers/loopback.py)."""

import os

import pytest

from bertlab.core import network
from bertlab.loggers import build as loggers
from tests.helpers.loopback import answering_server, closed_port, silent_server


@pytest.fixture(autouse=True)
def fresh_probe():
    network.unreachable.cache_clear()
    yield
    network.unreachable.cache_clear()


def test_any_http_answer_is_reachable():
    with answering_server() as url:
        assert network.unreachable(url) is None  # a 404 is an answer


def test_closed_port_and_silent_server_are_unreachable_with_a_reason(monkeypatch):
    monkeypatch.setenv(network.TIMEOUT_ENV, "1")
    with closed_port() as url:
        assert "refused" in network.unreachable(url).lower()
    with silent_server() as url:
        assert network.unreachable(url) == "no answer within 1 s"


def test_hub_goes_offline_only_when_unreachable(monkeypatch, said):
    from huggingface_hub import constants

    for var in network.HUB_OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with answering_server() as url:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        network.use_hub_offline_if_unreachable()
    assert constants.HF_HUB_OFFLINE is False and "HF_HUB_OFFLINE" not in os.environ
    assert said() == ""
    with closed_port() as url:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        network.use_hub_offline_if_unreachable()
    assert constants.HF_HUB_OFFLINE is True
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert f"Hugging Face hub: {url} is unreachable" in said()


def test_wandb_with_a_key_is_online_only_when_its_server_answers(monkeypatch, tmp_path, said):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "true")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    with answering_server() as url:
        monkeypatch.setattr(loggers, "wandb_base_url", lambda: url)
        assert loggers.wandb_mode(None) == "online"
        assert loggers.wandb_mode("online") == "online"
    assert said() == "" and os.environ["WANDB_ERROR_REPORTING"] == "true"
    with closed_port() as url:
        monkeypatch.setattr(loggers, "wandb_base_url", lambda: url)
        assert loggers.wandb_mode(None) == "offline"
        assert loggers.wandb_mode("online") == "offline"  # asked for, but a run beats a log
    assert f"W&B: {url} is unreachable" in said()
    assert os.environ["WANDB_ERROR_REPORTING"] == "false"  # wandb's telemetry would wait 10 s at exit


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_probe_deadline_that_is_not_a_positive_number_is_one_message(monkeypatch, value):
    from bertlab.core.errors import ConfigError

    monkeypatch.setenv(network.TIMEOUT_ENV, value)
    with pytest.raises(ConfigError, match=f"BERTLAB_PROBE_TIMEOUT_S={value} is invalid"):
        network.unreachable("http://127.0.0.1:9")
