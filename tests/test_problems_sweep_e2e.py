"""Every task problem beyond sequence classification through a sweep of `python train.py -m`
(tiny random BERT, the fixtures): two seeds after a TAPT stage the second seed reuses, then
`bertlab report` on the sweep with the problem's main metric, its baseline and its figures."""

from pathlib import Path

import pytest
from e2e import TINY, results_under, run_train

from bertlab.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROBLEMS = {
    # task, data dir, main metric, the report's name for the trivial predictor, what the head puts out
    "token_classification": ("conll2003", "conll2003", "entity_f1", "majority-tag", "9 labels"),
    "multiple_choice": ("swag", "swag", "accuracy", "majority-class", "one score per choice"),
    "question_answering": ("squad", "squad", "answer_f1", "first-k-words", "a start and an end score per token"),
}


@pytest.mark.slow
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_sweep_with_pretraining_and_its_report(problem, tmp_path):
    task, data, metric, predictor, outputs = PROBLEMS[problem]
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m",
        *TINY,
        f"task={task}",
        f"task.data_dir={FIXTURES / data}",
        "pretrain=tapt",
        "pretrain.max_epochs=1",
        f"pretrain.cache_dir={tmp_path / 'pretrained'}",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(sweep)
    assert sorted(results) == ["0", "1"] and all(r["status"] == "ok" for r in results.values())
    assert results["0"]["head"] == f"new classifier head ({outputs})"
    stages = [r["pretrain"]["stages"][0] for r in results.values()]
    assert [s["reused"] for s in stages] == [False, True]  # the task's own text, trained once
    assert stages[0]["corpus"]["documents"] > 0
    assert main(["report", str(sweep)]) == 0
    text = (sweep / "report.md").read_text()
    assert f"{task}: test {metric}, 2 runs" in text
    assert f"at/below the {predictor} predictor's test {metric}" in text
    assert (sweep / f"{task}_boxplot.png").stat().st_size > 20_000  # a real figure
