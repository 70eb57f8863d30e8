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
    )  # the server answers (tests/unit/test_network.py)
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

    src = Path(__file__).resolve().parents[2] / "src"
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


def test_a_failed_write_names_the_file_asked_for_and_its_size_never_a_temporary_file(tmp_path):
    import errno

    import pytest

    from bertlab.core.atomic import NotWritten, save_torch_atomic, write_atomic, write_bytes_atomic
    from bertlab.run.folder import storage_error, storage_message

    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    run_dir = tmp_path / "run"
    with pytest.raises(NotWritten) as caught:
        write_atomic(run_dir / "resume" / "last.ckpt", full, size=2_500_000)
    err = caught.value
    assert (err.errno, err.filename, err.size) == (errno.ENOSPC, str(run_dir / "resume" / "last.ckpt"), 2_500_000)
    assert storage_error(RuntimeError("Lightning wraps it")) is None
    message = storage_message(err, run_dir, multirun=False)
    assert message.startswith(f"The run folder {run_dir} cannot be written: No space left on device (writing ")
    assert f"writing {run_dir / 'resume' / 'last.ckpt'}, 2.5 MB to write, " in message and " free there)" in message
    assert ".tmp" not in message

    # a library's copy from its own temporary file (shutil names both): the run folder's file is named
    copy = OSError(errno.ENOSPC, "No space left on device")
    copy.filename, copy.filename2 = "/tmp/tmpab12cd", str(run_dir / "metrics.csv")
    assert f"(writing {run_dir / 'metrics.csv'}, " in storage_message(copy, run_dir, multirun=True)
    assert "/tmp/tmpab12cd" not in storage_message(copy, run_dir, multirun=True)
    alone = OSError(errno.EFBIG, "File too large")
    alone.filename = "/tmp/tmpab12cd"  # only a temporary file: the folder is named instead
    assert storage_message(alone, run_dir, multirun=False).startswith(
        f"The run folder {run_dir} cannot be written: File too large. Fix:"
    )

    # a file in the way of the folder; torch's own writer would raise RuntimeError, not an OSError
    (tmp_path / "blocked").write_text("a file")
    with pytest.raises(NotWritten, match="blocked/x.pt"):
        save_torch_atomic(tmp_path / "blocked" / "x.pt", {"a": 1})
    write_bytes_atomic(tmp_path / "ok.bin", b"abc")
    assert (tmp_path / "ok.bin").read_bytes() == b"abc"


def test_the_resume_checkpoint_is_written_in_the_run_folder_not_through_tmp(tmp_path, monkeypatch):
    """Lightning's writer went through a tempfile.mkstemp() file in /tmp, which a full disk named."""
    import tempfile

    import torch

    from bertlab.callbacks.resume import RunFolderCheckpointIO

    def no_tmp(*args, **kwargs):
        raise AssertionError("a temporary file outside the run folder")

    monkeypatch.setattr(tempfile, "mkstemp", no_tmp)
    RunFolderCheckpointIO().save_checkpoint({"w": torch.ones(2)}, tmp_path / "resume" / "last.ckpt")
    assert torch.load(tmp_path / "resume" / "last.ckpt")["w"].tolist() == [1.0, 1.0]
    assert [p.name for p in (tmp_path / "resume").iterdir()] == ["last.ckpt"]
