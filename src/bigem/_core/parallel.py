"""Kernels that release the GIL (scipy's sparse products, numpy's element-wise and
segment operations) spread over a few threads of one shared pool. Execution only: what
each part computes is the caller's.

torch spreads its own operations over its intra-op threads, but a scipy kernel runs on
the thread that calls it. Cut into row blocks, each block on its own thread, it uses
the cores torch would use: on 2 cores, the sparse product X @ W over 1.5e7 entries took
0.039 s on two threads against 0.063 s on one (measured on a quiet machine).

Results never depend on timing or on the number of threads: :func:`run` returns its
tasks' results in task order, :func:`each` runs parts whose outputs are their own (on
whichever thread comes free), and :func:`fold_in_order` adds the parts of a sum in the
order of their index whichever thread computed them, so callers that cut their work
into parts fixed by the data alone (not by the thread count) get the same bits on any
number of threads.

The pool is made on first use and shared by every caller (concurrent E-steps in Dask's
threads included: a task waits only on tasks already running, so callers never
deadlock one another, they queue). A forked child drops it: threads do not survive a
fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
S = TypeVar("S")

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


_LOCAL = threading.local()


def threads() -> int:
    """How many threads a kernel may use: torch's intra-op thread count in the calling
    thread, so that ``torch.set_num_threads`` (and OMP_NUM_THREADS) bound these kernels
    as they bound torch's own; or the count :func:`keeping` set for this thread."""
    kept = getattr(_LOCAL, "threads", None)
    return max(1, int(torch.get_num_threads() if kept is None else kept))


@contextmanager
def keeping(count: int):
    """These kernels use ``count`` threads in the calling thread while torch's own
    count is lowered around them (restored on exit, errors included).

    An engine that decodes the next chunks on a thread of its own lowers torch's count
    by one, because torch's idle threads spin and burn the decoder's core. This pool's
    idle threads sleep instead, so the kernels may keep every core: the decoder then
    takes its share of them only while it has work (on 2 cores, a streamed .npz
    iteration spends about a tenth of its CPU time decoding)."""
    before = getattr(_LOCAL, "threads", None)
    _LOCAL.threads = count
    try:
        yield
    finally:
        _LOCAL.threads = before


@contextmanager
def torch_on_one_thread():
    """torch's own operations on one thread in the calling thread, while these kernels
    keep the count they had (both restored on exit, errors included).

    For work whose heavy parts are these kernels and whose torch operations are small
    (the multinomial mixture on the CPU: its products, per-row pass and statistics run
    here, torch does the M-step and a few (n,) and (D, K) operations). After each
    operation it spreads over its threads, torch's OpenMP team spins for a while before
    it sleeps (about 9 ms of CPU time after a 1.4 ms operation, measured on 2 cores),
    and the spinning thread takes a core from the kernels that follow. At 2e5 x 2e4
    (K = 20, 2 cores) an iteration in memory took 2.3 floors (one X @ W on one thread)
    of CPU time against 4.8-6.5 with torch on both threads, and 79-81 ms against 90-92
    ms of wall time (alternating fits in one process, a shared machine).
    """
    count = threads()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with keeping(count):
            yield
    finally:
        torch.set_num_threads(before)


# At most this many elements of work (a fit's rows times features, a step's parameters),
# torch computes on one intra-op thread: there one thread is as fast as two (0.87-1.00x
# their time on 2 cores up to 16000 rows x features, GaussianMixture fits on a quiet
# machine; 1.06-1.16x at 64000), and on a busy machine it is far faster, as OpenMP's
# team waits at every operation for a thread the scheduler gave to another process
# (select over mclust's 14 models on iris: 7.6 s on one thread, 145 s on two, beside two
# busy processes). See BENCHMARKS.md, "Small data on a busy machine".
SMALL_WORK = 1 << 15


@contextmanager
def one_thread_when_small(elements: int, device: torch.device | str):
    """torch's operations on one intra-op thread in the calling thread, on the CPU, while
    the work is at most :data:`SMALL_WORK` elements (restored on exit, errors included);
    otherwise nothing changes. The GIL-free kernels here follow torch's count.

    torch's count is the calling thread's, but a thread that first uses torch meanwhile
    starts from it (torch initialises a new thread from its last setting): such a
    thread keeps one intra-op thread unless it sets its own count."""
    before = torch.get_num_threads()
    if torch.device(device).type != "cpu" or elements > SMALL_WORK or before < 2:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="bigem-kernel")
        return _POOL


def _forget_pool() -> None:
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing's default start on Linux, a pre-loading server)
    gets a pool of its own, and computes with torch on one thread: GNU OpenMP's thread
    pool, which torch's operations use, does not survive fork, and a child's first
    parallel operation after its parent's hung for ever (scikit-learn's children, on
    OpenBLAS, do not). Children that want more threads start with 'spawn' or 'forkserver'."""
    _forget_pool()
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Every task, the first on the calling thread and the rest on the pool; their
    results in task order. Every task has finished before this returns or raises (so
    none still writes into the caller's buffers); the first task's error, in task
    order, is raised (one that stopped a :func:`fold_in_order` before the stop)."""
    if len(tasks) == 1:
        return [tasks[0]()]
    pool = _pool()
    futures: list[Future] = [pool.submit(task) for task in tasks[1:]]
    first: Future = Future()
    try:
        first.set_result(tasks[0]())
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others finish
        first.set_exception(exc)
    done = [first, *futures]
    errors = [exc for exc in (future.exception() for future in done) if exc is not None]  # waits for each
    if errors:  # a thread stopped because another failed reports that other's error
        raise next((exc for exc in errors if not isinstance(exc, _Stopped)), errors[0])
    return [future.result() for future in done]


def fold_in_order(count: int, compute: Callable[[int, S], None], combine: Callable[[int, S], None],
                  scratch: Callable[[], S], workers: int) -> None:
    """``combine(i, part)`` for i = 0 .. count-1, in that order, where ``compute(i, part)``
    fills ``part`` with the i-th part: the parts computed on up to ``workers`` threads,
    each taking the next part not yet taken, their combinations one at a time, in order.

    ``scratch()`` gives each thread its own part buffer (called on that thread; a
    per-thread workspace keeps it across calls). A thread combines its part once every
    earlier part has been combined, then takes the next: a wait is at most one part's
    combination long when the parts are alike. The order of the combinations is that of
    the parts whatever the thread count, so a floating-point sum comes out bit for bit
    the same on any number of threads.
    """
    turns = _Turns(count)

    def task(i: int, part: S) -> None:
        compute(i, part)
        turns.wait_for(i)
        combine(i, part)
        turns.done(i)

    each(count, task, scratch, workers, turns)


def each(count: int, task: Callable[[int, S], None], scratch: Callable[[], S], workers: int,
         turns: _Turns | None = None) -> None:
    """``task(i, part)`` for i = 0 .. count-1 on up to ``workers`` threads, each taking the
    next index not yet taken, with its own ``part`` from ``scratch()`` (called on that
    thread). For tasks whose outputs are their own (rows of a product): which thread ran
    which task changes no result. Taken as they come, the parts go to whichever thread
    is free, so a thread that shares its core (with a file's decoder, with another
    process) takes fewer, where parts cut in advance would wait for its last.
    ``turns``: the indices' bookkeeping, when the tasks also wait on it
    (:func:`fold_in_order`), so that a failure releases them."""
    workers = max(1, min(int(workers), count))
    if workers == 1:
        part = scratch()
        for i in range(count):
            task(i, part)
        return
    state = _Turns(count) if turns is None else turns

    def work() -> None:
        part = scratch()
        try:
            while (i := state.take()) is not None:
                task(i, part)
        except BaseException:
            state.fail()
            raise

    run([work] * workers)


class _Turns:
    """Parts taken in index order and finished in index order, across threads. A failure
    releases every waiting thread (which then stops) so that :func:`run` can report it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.next_free = 0  # the next part nobody has taken
        self.finished = 0  # parts 0 .. finished-1 are combined
        self.failed = False
        self.cond = threading.Condition()

    def take(self) -> int | None:
        with self.cond:
            if self.failed or self.next_free >= self.count:
                return None
            i, self.next_free = self.next_free, self.next_free + 1
            return i

    def wait_for(self, i: int) -> None:
        with self.cond:
            while self.finished != i and not self.failed:
                self.cond.wait()
            if self.failed:
                raise _Stopped

    def done(self, i: int) -> None:
        with self.cond:
            self.finished = i + 1
            self.cond.notify_all()

    def fail(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()


class _Stopped(Exception):
    """Another thread's part failed: this thread stops; the other's error is reported."""


def balanced_rows(indptr: np.ndarray, parts: int) -> list[int]:
    """Boundaries (parts + 1 row indices, from 0 to n) cutting CSR rows into ``parts``
    contiguous blocks of about equal numbers of entries (a block may be empty)."""
    n = len(indptr) - 1
    if parts <= 1 or n == 0:
        return [0, n]
    lo, hi = int(indptr[0]), int(indptr[-1])
    targets = lo + (hi - lo) * np.arange(1, parts) / parts
    cuts = np.searchsorted(indptr, targets, side="left").clip(0, n)
    return [0, *(int(c) for c in cuts), n]
