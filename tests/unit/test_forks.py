"""fork_map: the results of the forked workers, in order; a worker's failure raised in the caller."""

import os

import pytest

from ansible_collections.ocs.l3.plugins.plugin_utils import forks


def _pid_and_square(n):
    return os.getpid(), n * n


def test_results_in_order_from_several_processes():
    items = list(range(23))
    out = forks.fork_map(_pid_and_square, items, workers=3, head=2)
    assert [sq for dummy, sq in out] == [n * n for n in items]
    pids = {pid for pid, dummy in out}
    assert len(pids) == 3 and os.getpid() in pids  # two children and this process
    assert {pid for pid, dummy in out[:2]} == {os.getpid()}  # the head, here


def test_head_values_are_inherited_by_the_workers():
    seen = {}

    def fn(n):
        seen.setdefault("first", n)  # set by the head, here, before the fork
        return seen["first"]

    assert forks.fork_map(fn, range(10), workers=4, head=1) == [0] * 10


def test_one_worker_or_one_item_forks_nothing():
    assert {pid for pid, dummy in forks.fork_map(_pid_and_square, range(5), workers=1)} == {os.getpid()}
    assert {pid for pid, dummy in forks.fork_map(_pid_and_square, [3], workers=4)} == {os.getpid()}


class Unpicklable(Exception):
    def __init__(self, a, b):  # pickle cannot rebuild it from its args
        super().__init__("%s-%s" % (a, b))

    def __reduce__(self):
        raise TypeError("no")


def _fail_on(bad, exc):
    def fn(n):
        if n == bad and os.getpid() != PARENT[0]:
            raise exc
        return n
    return fn


PARENT = [os.getpid()]


def test_a_workers_exception_is_raised_here():
    PARENT[0] = os.getpid()
    # item 1 goes to the first child (round robin over 2 workers: 0 here, 1 there)
    with pytest.raises(ValueError, match="host 1 is bad"):
        forks.fork_map(_fail_on(1, ValueError("host 1 is bad")), range(6), workers=2)


def test_an_exception_that_cannot_travel_comes_back_as_its_traceback():
    PARENT[0] = os.getpid()
    with pytest.raises(forks.ForkError, match=r"^Unpicklable: x-y$") as info:
        forks.fork_map(_fail_on(1, Unpicklable("x", "y")), range(6), workers=2)
    assert "Traceback" in info.value.traceback and "raise exc" in info.value.traceback


def test_a_worker_that_dies_is_an_error_not_a_missing_result():
    PARENT[0] = os.getpid()

    def fn(n):
        if n == 1 and os.getpid() != PARENT[0]:
            os._exit(3)
        return n

    with pytest.raises(forks.ForkError, match="ended without a result"):
        forks.fork_map(fn, range(6), workers=2)


def test_a_failure_here_stops_the_workers_and_is_raised():
    PARENT[0] = os.getpid()

    def fn(n):
        if os.getpid() == PARENT[0] and n == 2:
            raise KeyError("here")
        return n

    with pytest.raises(KeyError, match="here"):
        forks.fork_map(fn, range(6), workers=2)
    with pytest.raises(ChildProcessError):  # every child was reaped
        os.waitpid(-1, os.WNOHANG)


def test_workers_for():
    items = list(range(300))
    assert forks.workers_for(1, items, 128) == 1
    assert forks.workers_for(5, items[:3], 128) == 3  # never more than the items
    assert forks.workers_for(0, items[:100], 128) == 1  # auto: too few to pay for a fork
    assert forks.workers_for(0, items, 128) == min(forks.cpu_count(), forks.MAX_WORKERS)
    with pytest.raises(ValueError, match="0 \\(auto\\) or a positive number"):
        forks.workers_for(-1, items, 128)
