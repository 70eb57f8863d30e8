import json
import math

from bertlab.loggers import wandb_mode
from bertlab.results import read_result, write_json_atomic


def test_result_written_atomically_and_nan_becomes_null(tmp_path):
    write_json_atomic(tmp_path / "result.json", {"status": "ok", "metrics": {"val/x": math.nan, "y": 1.5}})
    assert json.loads((tmp_path / "result.json").read_text()) == {"status": "ok", "metrics": {"val/x": None, "y": 1.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left behind


def test_failed_write_keeps_previous_record(tmp_path):
    write_json_atomic(tmp_path / "result.json", {"status": "ok"})
    try:
        write_json_atomic(tmp_path / "result.json", {"status": object()})  # not serialisable
    except TypeError:
        pass
    assert read_result(tmp_path) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_read_result_absent_or_broken(tmp_path):
    assert read_result(tmp_path) is None
    (tmp_path / "result.json").write_text("{half")
    assert read_result(tmp_path) is None


def test_wandb_falls_back_to_offline_without_api_key(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode(None) == "offline"
    assert "wandb sync" in capsys.readouterr().out
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(None) == "disabled"
    assert wandb_mode("offline") == "offline"
