"""augment=eda through `python train.py` on the tiny model: result.json records the training-set
size before and after; validation and test are the sizes of a run without augmentation."""

import pytest

from tests.helpers.e2e import TINY, results_under
from tests.helpers.inprocess import run_train
from tests.helpers.tiny_wordnet import write_tiny_wordnet


@pytest.mark.slow
def test_eda_run_records_sizes_and_leaves_val_and_test_alone(tmp_path):
    wordnet = write_tiny_wordnet(tmp_path / "wordnet")  # WordNet's file format, read by nltk
    run_dir = tmp_path / "eda"
    proc = run_train(
        *TINY, "augment=eda", f"augment.wordnet_dir={wordnet}", "augment.num_aug=4", f"hydra.run.dir={run_dir}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(run_dir)["."]
    assert result["status"] == "ok"
    # debug=fast draws 16 training, 8 validation and 32 test examples
    assert result["augment"] == {"name": "eda", "n_train_before": 16, "n_train_after": 80, "sentences": "first"}
    assert result["split_sizes"] == {"train": 80, "val": 8, "test": 32}
    assert result["settings"]["augment"] == "eda"


@pytest.mark.slow
def test_eda_without_wordnet_stops_with_one_message(tmp_path):
    proc = run_train(*TINY, "augment=eda", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert "bertlab prepare --wordnet --out DIR" in proc.stderr and "augment.wordnet_dir=DIR" in proc.stderr
    # swap and deletion run here
    proc = run_train(*TINY, "augment=eda", "augment.operations=[swap,deletion]", f"hydra.run.dir={tmp_path / 'sd'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results_under(tmp_path / "sd")["."]["augment"]["n_train_after"] == 16 * 10
