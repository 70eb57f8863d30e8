"""core/gc_pause.py: the collector is off inside the block, on after it, and what existed is frozen."""

import gc

import pytest

from bertlab.core.gc_pause import collector_paused


@pytest.fixture
def collector_on():
    """Each test starts with the collector on and leaves it as it found it (pytest's own state)."""
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


class Cycle:
    def __init__(self):
        self.me = self


def test_inside_the_block_nothing_is_collected_and_after_it_what_exists_is_frozen(collector_on):
    frozen_before = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        made = [Cycle() for _ in range(1000)]  # as an import makes objects that live on
        assert gc.collect(0) >= 0  # an explicit call still works; only the automatic passes stop
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(made)
    # a full pass walks only what was made since: the frozen objects are not in any generation
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in tracked for o in made)


def test_the_collector_comes_back_when_the_block_raises(collector_on):
    with pytest.raises(ZeroDivisionError), collector_paused():
        raise ZeroDivisionError
    assert gc.isenabled()


def test_where_the_collector_is_already_off_it_changes_nothing(collector_on):
    gc.disable()
    frozen_before = gc.get_freeze_count()
    with collector_paused():
        [Cycle() for _ in range(100)]
    assert not gc.isenabled()  # whoever turned it off turns it on
    assert gc.get_freeze_count() == frozen_before


def test_nested_blocks_freeze_once_at_the_outer_end(collector_on):
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()  # the inner block did not turn it back on
    assert gc.isenabled()
