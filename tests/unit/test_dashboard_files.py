"""What the dashboards' own files hold, read back as a resumed or restarted run reads them
(loggers/wandb_file.py, loggers/dashboards.py, loggers/mlflow_store.py): a W&B run file cut by a
kill at any byte, an attempt's MLflow run left behind by a fresh start."""

import subprocess
import sys

from bertlab.loggers import wandb_file
from bertlab.loggers.mlflow_store import _delete_unfinished

WRITE_RUN = """
import sys, wandb
run = wandb.init(project="p", dir=sys.argv[1], mode="offline", id="abc")
run.define_metric("trainer/global_step")
run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
for step in range(6):
    run.log({"train/loss": 1.0 / (step + 1), "trainer/global_step": step})
run.log({"val/accuracy": 0.5, "trainer/global_step": 5})
run.finish()
"""


def test_a_wandb_run_file_is_read_whole_and_cut_at_any_byte(tmp_path):
    proc = subprocess.run([sys.executable, "-c", WRITE_RUN, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = wandb_file.run_files(tmp_path, "abc")
    assert wandb_file.held(tmp_path, "abc") == {(s, "train/loss") for s in range(6)} | {(5, "val/accuracy")}
    assert wandb_file.held(tmp_path, "another") == set()
    data = path.read_bytes()
    whole = [r.SerializeToString() for r in wandb_file.records(path)]
    cut = tmp_path / "cut.wandb"
    for end in range(len(data) + 1):  # a SIGKILL can end the file anywhere
        cut.write_bytes(data[:end])
        read = [r.SerializeToString() for r in wandb_file.records(cut)]
        assert read == whole[: len(read)], end  # a prefix of the whole file's records, nothing made up
    cut.write_bytes(b"not a wandb file")
    assert list(wandb_file.records(cut)) == []


def test_a_fresh_start_deletes_its_attempts_unfinished_mlflow_run_only(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.create_experiment("bertlab")
    killed, finished = (client.create_run(experiment).info.run_id for _ in range(2))
    client.set_terminated(finished, status="FINISHED")
    _delete_unfinished(client, killed)
    _delete_unfinished(client, finished)
    _delete_unfinished(client, "0" * 32)  # gone already: nothing to do
    assert [r.info.run_id for r in client.search_runs([experiment])] == [finished]
    assert client.get_run(killed).info.lifecycle_stage == "deleted"  # restorable, not purged
