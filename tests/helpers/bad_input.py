"""What every bad-input test checks of a run: one clear message, exit code 1, no traceback, and nothing
half-written; and a small local csv task to break."""

from tests.helpers.e2e import results_under


def csv_task(
    folder,
    train="text,label\nthe cat sat,pos\na dull film,neg\nfine work,pos\nbad work,neg\n",
    dev="text,label\ngood,pos\npoor,neg\n",
):
    """A local csv task folder; None leaves a file out."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("train.csv", train), ("dev.csv", dev)):
        if content is not None:
            (folder / name).write_text(content)
    return [
        "task=csv",
        f"task.data_dir={folder}",
        "task.train_file=train.csv",
        "task.dev_file=dev.csv",
        "task.text_fields=[text]",
        "task.label_field=label",
        "task.n_test=null",
    ]


def assert_one_clear_message(proc, *fragments):
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr[-2000:])


def assert_nothing_half_written(run_dir):
    """Either Hydra stopped before the run directory existed, or the run left a complete failed record."""
    assert not list(run_dir.rglob("*.ckpt")) and not (run_dir / "resume").exists()
    if run_dir.exists() and (run_dir / ".hydra").exists():
        result = results_under(run_dir)["."]
        assert result["status"] == "failed" and result["error"]
        assert not list(run_dir.glob(".result.json.*.tmp"))
