"""Data files, run folders and checkpoints through `python train.py`: a broken file, label or
folder ends in one message naming the file and line (or the folder) and the fix, never in a
silently wrong result; a full disk never tears a checkpoint or takes a sweep's summary with it."""

import stat

import pytest

from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message, csv_task
from tests.helpers.e2e import TINY, results_under, run_train
from tests.helpers.full_disk import file_size_limit, fill_disk_during_job

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow

WHOLE = ["task.n_train=null", "task.n_val=null"]  # the files as they are: no sampling to blame
DEV = "text,label\ngood,pos\ngreat,pos\npoor,neg\nbad,neg\n"
REGRESSION = ["task.problem=regression", "task.metrics=[pearson,spearman]", "task.main_metric=spearman"]


def data_task(folder, train, dev, suffix="csv"):
    """csv_task with any file format (csv, jsonl, tsv)."""
    overrides = csv_task(folder, train=None, dev=None)
    (folder / f"train.{suffix}").write_text(train) if isinstance(train, str) else (
        folder / f"train.{suffix}"
    ).write_bytes(train)
    (folder / f"dev.{suffix}").write_text(dev)
    return [o.replace(".csv", f".{suffix}") for o in overrides] + WHOLE


def run(tmp_path, *overrides, **kwargs):
    return run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}", **kwargs)


# ---------------------------------------------------------------- labels

EMPTY_LABELS = {
    # format: (train file, dev file, fragments)
    "csv_empty_cell": (
        "csv",
        "text,label\nthe cat sat,pos\na dull film,\nfine work,pos\nbad work,neg\n",
        DEV,
        ["train.csv, line 3: the label in field 'label' is empty"],
    ),
    "csv_blank_cell": (
        "csv",
        'text,label\nthe cat sat,pos\na dull film,"  "\nfine work,pos\nbad work,neg\n',
        DEV,
        ["train.csv, line 3: the label in field 'label' is empty"],
    ),
    "jsonl_null": (
        "jsonl",
        '{"text": "the cat sat", "label": "pos"}\n{"text": "a dull film", "label": null}\n'
        '{"text": "bad work", "label": "neg"}\n',
        "".join(
            f'{{"text": "{t}", "label": "{y}"}}\n'
            for t, y in (("good", "pos"), ("great", "pos"), ("poor", "neg"), ("bad", "neg"))
        ),
        ["train.jsonl, line 2: the label in field 'label' is empty (null)"],
    ),
    "tsv_in_dev": (
        "tsv",
        "text\tlabel\nthe cat sat\tpos\nbad work\tneg\n",
        "text\tlabel\ngood\tpos\npoor\t\n",
        ["dev.tsv, line 3: the label in field 'label' is empty", "fill it in or remove the row"],
    ),
}


@pytest.mark.parametrize("case", sorted(EMPTY_LABELS))
def test_an_empty_or_null_label_is_a_data_error_not_a_class(tmp_path, case):
    """Labels inferred from the training file made '' (or 'None') a class of its own."""
    suffix, train, dev, fragments = EMPTY_LABELS[case]
    proc = run(tmp_path, *data_task(tmp_path / "data", train, dev, suffix))
    assert_one_clear_message(proc, *fragments)
    assert_nothing_half_written(tmp_path / "run")


def test_a_blank_label_in_a_glue_file_is_named(tmp_path, shared_glue):
    rows = (shared_glue / "RTE" / "dev.tsv").read_text().splitlines(keepends=True)
    broken = rows[0] + rows[1] + rows[2].rsplit("\t", 1)[0] + "\t\n" + "".join(rows[3:])
    folder = tmp_path / "RTE"
    folder.mkdir()
    (folder / "train.tsv").write_text((shared_glue / "RTE" / "train.tsv").read_text())
    (folder / "dev.tsv").write_text(broken)
    proc = run(tmp_path, "task=rte", f"task.data_dir={folder}")
    assert_one_clear_message(proc, f"{folder / 'dev.tsv'}, line 3: the label in field 'label' is empty")


@pytest.mark.parametrize("pool, score", [("dev", "nan"), ("train", "inf"), ("dev", "-Infinity")])
def test_a_non_finite_regression_score_is_a_data_error(tmp_path, pool, score):
    """A NaN score in the dev file ended `ok` with a NaN validation metric used to select the model;
    in the training file the run was reported as diverged."""
    files = {"train": "text,label\na,1.0\nb,2.5\nc,4.0\nd,0.5\n", "dev": "text,label\ne,1.0\nf,2.0\ng,3.0\nh,4.0\n"}
    files[pool] = files[pool].replace("c,4.0", f"c,{score}").replace("g,3.0", f"g,{score}")
    proc = run(tmp_path, *data_task(tmp_path / "data", files["train"], files["dev"]), *REGRESSION)
    assert_one_clear_message(
        proc,
        f"{pool}.csv, line 4: label '{score}' in field 'label' is not a finite number",
        "fix the score or remove the row",
    )
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.parametrize("declared", [None, "[neg,pos]"])
def test_training_data_of_a_single_class_names_the_file(tmp_path, declared):
    """Failed deep inside torchmetrics (labels inferred) or trained a one-class model (declared)."""
    overrides = data_task(tmp_path / "data", "text,label\nthe cat sat,pos\nfine work,pos\ngood work,pos\n", DEV)
    proc = run(tmp_path, *overrides, *([f"task.labels={declared}"] if declared else []))
    assert_one_clear_message(
        proc,
        f"{tmp_path / 'data' / 'train.csv'}: the training examples have only the class 'pos'",
        "at least two classes",
    )
    assert_nothing_half_written(tmp_path / "run")


# ---------------------------------------------------------------- files


def test_a_file_in_another_encoding_names_file_line_and_byte(tmp_path):
    train = "text,label\nthe cat sat,pos\nun café noir,neg\nfine work,pos\nbad work,neg\n".encode("latin-1")
    proc = run(tmp_path, *data_task(tmp_path / "data", train, DEV))
    assert_one_clear_message(
        proc, "train.csv, line 3: byte 0xe9 (byte 7 of the line) is not valid utf-8", "task.encoding=latin-1"
    )
    assert_nothing_half_written(tmp_path / "run")


def test_an_unknown_encoding_names_the_key(tmp_path):
    proc = run(tmp_path, *data_task(tmp_path / "data", "text,label\na,pos\nb,neg\n", DEV), "task.encoding=latin-9x")
    assert_one_clear_message(proc, "task.encoding=latin-9x is not an encoding Python knows")


@pytest.mark.parametrize(
    "pool, content, what",
    [
        ("train", "", "is empty"),
        ("dev", "text,label\n", "has no example rows (only a header or blank lines)"),
        ("train", "text,label\n\n\n", "has no example rows"),
    ],
)
def test_an_empty_or_header_only_file_is_named(tmp_path, pool, content, what):
    """Blamed task.n_train (or an empty val split) instead of the file."""
    files = {"train": "text,label\na,pos\nb,neg\n", "dev": DEV, pool: content}
    proc = run(tmp_path, *data_task(tmp_path / "data", files["train"], files["dev"]))
    assert_one_clear_message(proc, f"{tmp_path / 'data' / f'{pool}.csv'} {what}", f"task.{pool}_file must name a file")
    assert_nothing_half_written(tmp_path / "run")


# ---------------------------------------------------------------- run folders


@pytest.mark.parametrize("multirun", [False, True])
def test_a_run_folder_that_cannot_be_created_is_one_message(tmp_path, multirun):
    """As root, chmod does not make a folder read-only: a file where a folder should be cannot be
    written into either."""
    (tmp_path / "taken").write_text("a file, not a folder")
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    proc = run_train(*(["-m"] if multirun else []), *TINY, f"{key}={tmp_path / 'taken' / 'run'}")
    assert_one_clear_message(
        proc,
        f"The run folder {tmp_path / 'taken' / 'run'} cannot be written",
        f"{tmp_path / 'taken'} is a file, not a folder",
        f"{key}=DIR",
    )
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


def test_a_run_folder_that_fills_up_is_one_message_and_no_torn_checkpoint(tmp_path):
    """Files capped at 200 kB: Hydra's files and the logs fit, the resume checkpoint does not."""
    proc = run(tmp_path, "resume_every_s=0", "data.token_cache=null", preexec_fn=file_size_limit(200_000))
    assert_one_clear_message(
        proc,
        # the file in the run folder and its size, not Lightning's temporary file in /tmp
        f"The run folder {tmp_path / 'run'} cannot be written: File too large (writing "
        f"{tmp_path / 'run' / 'resume' / 'last.ckpt'}, ",
        " MB to write). Fix: free space",
        "run the same command again",
    )
    assert "/tmp/tmp" not in proc.stderr and ".tmp" not in proc.stderr.split("cannot be written")[1]
    result = results_under(tmp_path / "run")["."]
    assert result["status"] == "failed" and "cannot be written" in result["error"]
    assert not list((tmp_path / "run").rglob("*.ckpt")) and not list((tmp_path / "run").rglob("*.tmp"))
    assert stat.S_IMODE((tmp_path / "run" / "result.json").stat().st_mode) == 0o644  # umask 022, not mkstemp's 0600


def test_a_sweep_on_a_full_disk_still_prints_its_summary(tmp_path):
    """Job 0 cannot write anything, not even its result.json; job 1 has space again. The sweep
    went on, then Hydra re-raised job 0's error and the summary was never printed."""
    fill, env = fill_disk_during_job(0)
    proc = run_train(
        "-m",
        *TINY,
        "seed=0,1",
        "data.token_cache=null",
        f"hydra.sweep.dir={tmp_path}",
        *fill,
        env=env,
        preexec_fn=file_size_limit(),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert f"sweep {tmp_path}: 2 jobs, 1 succeeded, 1 no result.json" in proc.stdout, proc.stdout[-2000:]
    assert "0: no result.json: the job ended without writing its result" in proc.stdout
    assert f"The run folder {tmp_path / '0'} cannot be written: File too large" in proc.stderr
    results = results_under(tmp_path)
    assert list(results) == ["1"] and results["1"]["status"] == "ok"
    assert stat.S_IMODE((tmp_path / "1" / "result.json").stat().st_mode) == 0o644


# ---------------------------------------------------------------- checkpoints


def test_an_unreadable_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path):
    """It crashed the start, and was deleted with the failed run."""
    torn = tmp_path / "run" / "resume" / "last.ckpt"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"PK\x03\x04" + b"\x00" * 1000)  # the start of a zip archive, cut off
    proc = run(tmp_path, "data.token_cache=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    aside = tmp_path / "run" / "last.ckpt.unreadable"
    assert (
        f"not resuming: {torn} cannot be read" in proc.stdout and f"set aside as {aside}, starting over" in proc.stdout
    )
    assert aside.read_bytes() == b"PK\x03\x04" + b"\x00" * 1000
    assert results_under(tmp_path / "run")["."]["status"] == "ok"
