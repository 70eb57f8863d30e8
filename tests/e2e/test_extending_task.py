"""docs/extending.md's recipe for a new kind of task, done from outside the package: one folder
(a package on PYTHONPATH whose `__init__.py` defines PROBLEM) and one task YAML (found through
hydra.searchpath), then `python train.py task=<it>`; bertlab's own files stay untouched."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.e2e import REPO, TINY, run_train

# myproblems/rating/: star ratings of reviews, one class per review. It reuses the sequence
# problem's encoder, metrics and head (dataclasses.replace) and brings its own reader.
READER = '''"""task.data_dir/{train,dev}.tsv: `stars<TAB>review` per line."""

from pathlib import Path

from bertlab.data.readers import Example


def read_reviews(task):
    stars = [str(s) for s in task.labels]
    pools = {}
    for pool in ("train", "dev"):
        lines = (Path(task.data_dir) / f"{pool}.tsv").read_text(encoding="utf-8").splitlines()
        pools[pool] = [Example(text, None, stars.index(label)) for label, text in (ln.split("\\t", 1) for ln in lines)]
    return pools
'''

PROBLEM = '''"""Star ratings (1, 3, 5) of reviews: the sequence classification problem with a reader of its own."""

import dataclasses

from bertlab.problems.sequence import CLASSIFICATION

from .reader import read_reviews

PROBLEM = dataclasses.replace(
    CLASSIFICATION, name="rating", read=lambda task: read_reviews(task), metric_names=("accuracy", "mcc")
)
'''

TASK = """name: myrating
problem: myproblems.rating   # the module on PYTHONPATH that defines PROBLEM
source: tsv
hub_name: null
hub_config: null
data_dir: ???
train_file: train.tsv
dev_file: dev.tsv
labels: [1, 3, 5]
metrics: [accuracy, mcc]
main_metric: accuracy
select_metric: null
max_length: 32
n_train: null
n_val: null
n_test: null
k_shot: null
data_seed: 0
sampling: balanced
"""

WORDS = {"1": "awful dreadful broken", "3": "fine average okay", "5": "great wonderful superb"}


def write_recipe(root: Path) -> tuple[Path, Path]:
    """The fork's files: its package folder and its config folder (what the recipe writes)."""
    package = root / "forks" / "myproblems" / "rating"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PROBLEM, encoding="utf-8")
    (package / "reader.py").write_text(READER, encoding="utf-8")
    conf = root / "conf"
    (conf / "task").mkdir(parents=True)
    (conf / "task" / "myrating.yaml").write_text(TASK, encoding="utf-8")
    return root / "forks", conf


def write_data(folder: Path) -> None:
    """The user's data, not part of the recipe: 30 training and 36 dev reviews, a third per rating."""
    folder.mkdir()
    for pool, n in (("train", 10), ("dev", 12)):
        rows = [
            f"{stars}\t{words.split()[i % 3]} product number {i}" for i in range(n) for stars, words in WORDS.items()
        ]
        (folder / f"{pool}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def repo_changes() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "src", "conf"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.slow
def test_a_new_kind_of_task_is_one_folder_and_one_yaml(tmp_path):
    before = repo_changes()
    forks, conf = write_recipe(tmp_path / "recipe")
    write_data(tmp_path / "data")
    written = sorted(
        p.relative_to(tmp_path / "recipe").as_posix() for p in (tmp_path / "recipe").rglob("*") if p.is_file()
    )
    assert written == [
        "conf/task/myrating.yaml",
        "forks/myproblems/rating/__init__.py",
        "forks/myproblems/rating/reader.py",
    ]

    path = os.pathsep.join(p for p in (str(forks), os.environ.get("PYTHONPATH")) if p)
    proc = run_train(
        *TINY,
        f"hydra.searchpath=[file://{conf}]",
        "task=myrating",
        f"task.data_dir={tmp_path / 'data'}",
        "data.token_cache=null",
        f"hydra.run.dir={tmp_path / 'run'}",
        env={"PYTHONPATH": path},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "ok"
    assert record["split_sizes"] == {"train": 16, "val": 8, "test": 32}  # debug=fast's sizes, drawn by class
    for prefix in ("val", "test_last", "test_best"):
        for name in ("accuracy", "mcc"):
            assert -1 <= record["metrics"][f"{prefix}/{name}"] <= 1
    assert 0 < record["baseline"]["test/accuracy"] < 0.5  # the majority rating of three balanced ones
    assert record["baseline"]["test/mcc"] == 0  # a constant predictor
    # nothing of bertlab's changed: the recipe is the fork's three files
    assert repo_changes() == before
    assert sorted(p.name for p in (tmp_path / "recipe").rglob("*") if p.is_file() and "__pycache__" not in p.parts) == [
        "__init__.py",
        "myrating.yaml",
        "reader.py",
    ]
