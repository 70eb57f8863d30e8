import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef

from bertlab.core.errors import ConfigError
from bertlab.problems.metrics import baseline_scores, build_metrics, check_metrics, predictions

rng = np.random.default_rng(0)


def compute(names, num_labels, preds, target):
    metrics = build_metrics(names, num_labels, "val")
    metrics.update(torch.as_tensor(preds), torch.as_tensor(target))
    return {k: float(v) for k, v in metrics.compute().items()}


def test_classification_metrics_match_references():
    target = rng.integers(0, 2, 200)
    preds = np.where(rng.random(200) < 0.7, target, 1 - target)
    got = compute(["accuracy", "f1", "mcc"], 2, preds, target)
    assert got["val/accuracy"] == pytest.approx((preds == target).mean())
    assert got["val/f1"] == pytest.approx(f1_score(target, preds), abs=1e-6)
    assert got["val/mcc"] == pytest.approx(matthews_corrcoef(target, preds), abs=1e-6)


def test_multiclass_accuracy_is_plain_accuracy_not_macro():
    target = np.array([0, 0, 0, 0, 1, 2])
    preds = np.array([0, 0, 0, 0, 0, 0])
    assert compute(["accuracy"], 3, preds, target)["val/accuracy"] == pytest.approx(4 / 6)


def test_regression_metrics_match_scipy():
    target = rng.normal(size=100).astype(np.float32)
    preds = (target + rng.normal(scale=0.5, size=100)).astype(np.float32)
    got = compute(["pearson", "spearman"], 1, preds, target)
    assert got["val/pearson"] == pytest.approx(stats.pearsonr(preds, target).statistic, abs=1e-5)
    assert got["val/spearman"] == pytest.approx(stats.spearmanr(preds, target).statistic, abs=1e-5)


def test_predictions_argmax_or_squeeze():
    logits = torch.tensor([[0.1, 2.0], [3.0, -1.0]])
    assert predictions(logits, "classification").tolist() == [1, 0]
    assert predictions(torch.tensor([[0.5], [1.5]]), "regression").tolist() == [0.5, 1.5]


def test_baseline_is_majority_class_of_training_labels():
    scores = baseline_scores(["accuracy", "f1", "mcc"], 2, "classification", [1, 1, 0], [1, 0, 0, 0])
    assert scores["test/accuracy"] == pytest.approx(0.25)
    assert scores["test/f1"] == pytest.approx(f1_score([1, 0, 0, 0], [1, 1, 1, 1]))
    assert scores["test/mcc"] == pytest.approx(0.0)
    assert baseline_scores(["spearman"], 1, "regression", [0.1], [0.2]) == {"test/spearman": 0.0}


def test_metric_config_errors():
    with pytest.raises(ConfigError, match="'pearson' does not apply to classification"):
        check_metrics(["pearson"], "pearson", "classification")
    with pytest.raises(ConfigError, match="main_metric='f1' must be one of"):
        check_metrics(["accuracy"], "f1", "classification")
    with pytest.raises(ConfigError, match="binary F1"):
        build_metrics(["f1"], 3, "val")


@pytest.mark.parametrize("num_labels", [2, 3])
def test_mcc_matches_sklearn_including_constant_predictions(num_labels):
    target = rng.integers(0, num_labels, 50)
    cases = [rng.integers(0, num_labels, 50), np.zeros(50, dtype=int), np.ones(50, dtype=int)]
    for preds in cases:
        got = compute(["mcc"], num_labels, preds, target)["val/mcc"]
        assert got == pytest.approx(matthews_corrcoef(target, preds), abs=1e-6)
