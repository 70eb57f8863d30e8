"""One keep-the-best-weights (callbacks/keep_best.py BestWeights): fine-tuning's KeepBestWeights and the
pre-training stage's MaskedLM keep theirs with it, each as it did before."""

import math

import torch

from bertlab.callbacks.keep_best import BestWeights, KeepBestWeights


def weights(value: float) -> torch.nn.Module:
    module = torch.nn.Linear(1, 1)
    with torch.no_grad():
        module.weight.fill_(value)
    return module


def test_max_keeps_the_earliest_of_equal_scores_as_a_cpu_copy():
    best = BestWeights("max")
    for step, score in enumerate([0.5, 0.7, 0.7, 0.6]):
        best.offer(score, step, weights(step))
    assert (best.score, best.step) == (0.7, 1)
    into = weights(-1.0)
    assert best.restore(into) and into.weight.item() == 1.0


def test_min_from_inf_never_keeps_nan_and_keeps_the_lowest():
    """The pre-training stage: the lowest held-out loss, the step-0 loss first; a NaN loss is no candidate."""
    best = BestWeights("min", score=math.inf)
    assert not best.offer(math.nan, 0, weights(0))
    assert best.state is None and not best.restore(weights(0))
    for step, loss in [(0, 3.0), (5, 2.5), (10, 2.5), (15, 2.7)]:
        best.offer(loss, step, weights(step))
    assert (best.score, best.step) == (2.5, 5)


def test_keep_best_weights_and_the_pretrain_stage_share_it():
    from bertlab.pretrain.stage import MaskedLM

    keep = KeepBestWeights(monitor="val/accuracy")
    assert isinstance(keep.best, BestWeights) and keep.best.mode == "max" and keep.best_score is None
    stage = MaskedLM(torch.nn.Linear(1, 1), {}, {})
    assert isinstance(stage.best, BestWeights) and stage.best.mode == "min" and stage.best.score == math.inf


def test_keep_best_weights_state_round_trips():
    keep = KeepBestWeights(monitor="val/accuracy")
    keep.best.offer(0.8, 4, weights(4))
    keep.best_metrics = {"val/accuracy": 0.8}
    again = KeepBestWeights(monitor="val/accuracy")
    again.load_state_dict(keep.state_dict())
    assert (again.best_score, again.best_step, again.best_metrics) == (0.8, 4, {"val/accuracy": 0.8})
    assert torch.equal(again.best_state["weight"], keep.best_state["weight"])
