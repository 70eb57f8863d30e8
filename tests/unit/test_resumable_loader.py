"""The training loader's order depends on (seed, epoch) only, and a restored loader yields the rest of its epoch."""

import torch

from bertlab.data.resumable_loader import ResumableDataLoader


def batches(loader, epoch):
    loader.shuffle_sampler.set_epoch(epoch)
    return [b.tolist() for b in loader]


def test_order_depends_on_seed_and_epoch_only():
    data = list(range(20))
    a, b = ResumableDataLoader(data, 4, seed=0), ResumableDataLoader(data, 4, seed=0)
    torch.manual_seed(123)  # the global RNG state plays no part
    first = batches(a, 0)
    torch.manual_seed(456)
    assert batches(b, 0) == first
    assert sorted(x for batch in first for x in batch) == data
    assert batches(a, 1) != first
    assert batches(ResumableDataLoader(data, 4, seed=1), 0) != first


def test_restored_loader_yields_the_rest_of_its_epoch():
    data = list(range(20))
    loader = ResumableDataLoader(data, 4, seed=3)
    loader.shuffle_sampler.set_epoch(2)
    it = iter(loader)
    seen = [next(it).tolist(), next(it).tolist()]
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches_done": 2}
    rest = [b.tolist() for b in it]

    resumed = ResumableDataLoader(data, 4, seed=3)
    resumed.load_state_dict(state)
    assert len(resumed) == 5  # the full epoch: Lightning counts the batches already done itself
    assert batches(resumed, 2) == rest
    assert resumed.state_dict() == {"epoch": 2, "batches_done": 5}
    # the next epoch is whole again
    assert len(batches(resumed, 3)) == 5 and seen + rest == batches(ResumableDataLoader(data, 4, seed=3), 2)
