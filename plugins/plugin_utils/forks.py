# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``[fn(item) for item in items]`` over several processes, on the controller.

The render computes and prints every host's files from one validated fabric; each host's files
depend on the fabric alone, so the hosts can be shared among forked copies of the process (the
fabric, the memo of fabric-wide values and the template skeletons are inherited, not sent).
Each child returns its results through a pipe (pickled); the parent does a share itself.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import traceback

MAX_WORKERS = 8


class ForkError(RuntimeError):
    """A child failed: with an exception that could not be sent back (the message is its type and
    text; ``traceback`` is the child's), or without a result at all."""

    traceback = None


def cpu_count():
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_for(requested, items, min_items):
    """How many processes to use: ``requested`` when it is a positive number (1: this process
    alone); 0 (auto): the CPUs this process may use, at most :data:`MAX_WORKERS`, and only when
    there are at least ``min_items`` items (below that, a fork costs more than it saves)."""
    if requested < 0:
        raise ValueError("workers must be 0 (auto) or a positive number, not %d" % requested)
    if requested:
        return max(1, min(requested, len(items)))
    if len(items) < min_items:
        return 1
    return max(1, min(cpu_count(), MAX_WORKERS, len(items)))


def fork_map(fn, items, workers, head=0):
    """``[fn(item) for item in items]``, in order. ``items[:head]`` are done here first (their
    values, e.g. memoised fabric-wide ones, are then inherited by every child); the rest are dealt
    round-robin to this process and ``workers - 1`` forked children. An exception raised by ``fn``
    in a child is raised here (the same exception when it can be pickled, else :class:`ForkError`
    with the child's traceback)."""
    items = list(items)
    out = [fn(item) for item in items[:head]]
    rest = items[head:]
    workers = max(1, min(workers, len(rest)))
    if workers == 1:
        return out + [fn(item) for item in rest]
    shares = [rest[k::workers] for k in range(workers)]
    children = []
    gc.collect()
    gc.freeze()  # children do not walk (and so copy) the inherited heap in their collections
    try:
        for k in range(1, workers):
            children.append(_spawn(fn, shares[k]))
    except BaseException:
        for pid, fd in children:
            os.kill(pid, signal.SIGKILL)
            os.close(fd)
            os.waitpid(pid, 0)
        raise
    finally:
        gc.unfreeze()
    results = [None] * workers
    done = False
    try:
        results[0] = [fn(item) for item in shares[0]]
        done = True
    finally:
        failures = []
        for k, (pid, fd) in enumerate(children, 1):
            if not done:  # this share failed: the children's work is lost anyway
                os.kill(pid, signal.SIGKILL)
            try:
                results[k] = _collect(pid, fd)
            except BaseException as exc:  # every child is reaped before one failure is raised
                failures.append(exc)
        if failures and done:
            raise failures[0]
    merged = [None] * len(rest)
    for k, share in enumerate(results):
        merged[k::workers] = share
    return out + merged


def _spawn(fn, share):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(wfd)
        return pid, rfd
    # The child: never returns into the caller's code (os._exit: no atexit, no buffered output twice).
    os.close(rfd)
    code = 0
    try:
        try:
            payload = ("ok", [fn(item) for item in share])
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:
            try:
                raised = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                raised = None
            data = pickle.dumps(("error", raised, "%s: %s" % (type(exc).__name__, exc), traceback.format_exc()),
                                protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(wfd, "wb") as fh:
            fh.write(data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _collect(pid, fd):
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    dummy, status = os.waitpid(pid, 0)
    if not data:
        raise ForkError("a worker process (pid %d) ended without a result (wait status %d)" % (pid, status))
    # Our own child's bytes, through a pipe only it and this process hold.
    payload = pickle.loads(data)
    if payload[0] == "ok":
        return payload[1]
    raised = None
    if payload[1] is not None:
        try:
            raised = pickle.loads(payload[1])
        except Exception:
            raised = None
    if isinstance(raised, BaseException):
        raise raised
    error = ForkError(payload[2])
    error.traceback = payload[3]
    raise error
