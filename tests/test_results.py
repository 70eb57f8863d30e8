import json
import math

from bertlab.core.record import read_result, write_json_atomic
from bertlab.loggers.build import wandb_mode
from bertlab.run.identity import short_override, wandb_tags


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


def test_wandb_falls_back_to_offline_without_api_key(monkeypatch, tmp_path, said):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode(None) == "offline"
    assert "wandb sync" in said()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(
        "bertlab.loggers.build.unreachable", lambda url: None
    )  # the server answers (tests/test_network.py)
    assert wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(None) == "disabled"
    assert wandb_mode("offline") == "offline"


def test_run_names_and_tags_shorten_paths_and_respect_the_wandb_limit():
    assert short_override("task.data_dir=/data/glue_data/RTE/") == "task.data_dir=RTE"
    assert (
        short_override("model.name_or_path=google-bert/bert-large-uncased") == "model.name_or_path=bert-large-uncased"
    )
    assert short_override("optimizer.lr=2e-5") == "optimizer.lr=2e-5"
    assert short_override("+flag") == "+flag"
    tags = wandb_tags(["reinit=3", "task.data_dir=/very/long/" + "x" * 80], ["mine", "y" * 70, "reinit=3"])
    assert tags[0] == "reinit=3" and tags[1] == ("task.data_dir=" + "x" * 80)[:64]
    assert tags[2:] == ["mine", "y" * 64]  # duplicates dropped, order kept
    assert all(1 <= len(t) <= 64 for t in tags)


def test_result_json_follows_the_umask_like_every_other_file(tmp_path):
    """mkstemp's 0600 kept colleagues on a shared cluster from reading a run's result."""
    import os
    import stat

    old = os.umask(0o027)
    try:
        write_json_atomic(tmp_path / "result.json", {"status": "ok"})
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == stat.S_IMODE(
        (tmp_path / "other.txt").stat().st_mode
    )


def test_one_atomic_writer_for_results_checkpoints_and_the_token_cache():
    """Each rule in one place: no module writes its own temporary file and renames it."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src"
    writers = sorted(p.name for p in src.rglob("*.py") if "os.replace(" in p.read_text() or "mkstemp(" in p.read_text())
    assert writers == ["atomic.py"]


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path):
    import errno

    from bertlab.core.atomic import write_atomic

    target = tmp_path / "last.ckpt"
    target.write_bytes(b"previous, whole")

    def torn(tmp):  # a full disk: part of the file is written, then the write fails
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    try:
        write_atomic(target, torn)
    except OSError:
        pass
    assert target.read_bytes() == b"previous, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
