"""In-process engine: a fold over chunks, decoding the next ones while this one computes."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import TypeVar

import torch

from .._core import parallel
from .._core.batches import minibatches
from .._core.errors import DataError
from .._core.types import READ_AHEAD, Chunk, Source
from .sizing import size_chunks

S = TypeVar("S")


def _prefetched(chunks: Iterator[Chunk], pool: ThreadPoolExecutor, depth: int,
                feed: _DeviceFeed | None = None) -> Iterator[Chunk]:
    """Yield chunks while a worker thread produces up to ``depth`` more, in order.

    One chunk ahead is not enough when reading competes with computing for the same
    cores: the time each takes per chunk varies, and whenever the read finishes first
    the disk idles. Over 4e7 rows evicted from the page cache (2 cores, the compute
    on one thread), an iteration took 6.7 s with one chunk ahead, 5.1-5.3 s with
    three and 4.6 s with five (measured). ``feed``: the worker's device work (the
    copies to a GPU) runs on a stream of its own (see :class:`_DeviceFeed`).
    """
    sentinel = object()
    produce = (lambda: next(chunks, sentinel)) if feed is None else (lambda: feed.produce(chunks, sentinel))
    pending = deque(pool.submit(produce) for _ in range(depth))
    try:
        while True:
            made = pending.popleft().result()
            chunk = made if feed is None else feed.ready(made)
            if chunk is sentinel:
                return
            pending.append(pool.submit(produce))
            yield chunk
    finally:  # stopped early: drop the reads not yet started
        for future in pending:
            future.cancel()


class _DeviceFeed:
    """Copies to a CUDA device overlapped with the E-step, ordered by events, never by
    host synchronisation.

    The worker thread produces each chunk (reads, decodes, copies it from pinned
    memory, checks it) on a stream of its own and records an event there; the
    consumer's stream waits for that event before its first kernel on the chunk, so
    the copy of chunk i+1 runs while chunk i computes. The chunk's tensors are then
    marked as used by the consumer's stream, so the caching allocator does not reuse
    their memory for the worker while the E-step still reads it.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device=device)
        # what the consumer enqueued before (in-memory rows being written) precedes the worker's reads
        self.side.wait_stream(torch.cuda.current_stream(device))

    def produce(self, chunks: Iterator[Chunk], sentinel: object) -> tuple[object, torch.cuda.Event]:
        with torch.cuda.device(self.device), torch.cuda.stream(self.side):
            chunk = next(chunks, sentinel)
            done = torch.cuda.Event()
            done.record(self.side)
        return chunk, done

    def ready(self, made: tuple[object, torch.cuda.Event]) -> object:
        chunk, done = made
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(done)
        for value in _tensors(chunk):
            if value.is_cuda:
                value.record_stream(compute)
        return chunk


def _tensors(chunk: object) -> Iterator[torch.Tensor]:
    """The tensors a chunk holds: its fields', its extra columns', and those of the
    dataclasses it holds (a sparse chunk's rows): every one the side stream allocated
    must be marked as used by the compute stream, or the allocator may hand its memory
    to the next chunk's copy while the E-step still reads it."""
    if isinstance(chunk, torch.Tensor):
        yield chunk
    elif isinstance(chunk, dict):
        for value in chunk.values():
            yield from _tensors(value)
    elif dataclasses.is_dataclass(chunk) and not isinstance(chunk, type):
        for f in dataclasses.fields(chunk):
            yield from _tensors(getattr(chunk, f.name))


def _cuda_device(source: Source) -> torch.device | None:
    """The CUDA device a source's chunks go to, or None (the CPU, or a source that does
    not say)."""
    device = getattr(source, "device", None)
    if device is None or not torch.cuda.is_available():
        return None
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.device("cuda", torch.cuda.current_device()) if device.index is None else device


@contextmanager
def sharing_cores(source: Source):
    """While ``source`` decodes files in the read-ahead thread, compute in the calling
    thread on one intra-op thread fewer; restored on exit, errors included.

    Otherwise the decoder and torch's thread team fight for the same cores, and the
    team's spinning threads burn what the decoder needs: on 2 cores, reading ahead in
    both cases, one thread fewer cut an iteration over 4e7 page-cached Parquet rows
    from 4.2-4.8 s to 3.7-4.3 s and its CPU time by about 12% (alternating runs,
    measured; the E-step's statistics may differ in the last bits, as between
    machines with different core counts, never between runs). torch's thread count is
    per thread, so the caller's other threads keep theirs (a thread that first uses
    torch meanwhile starts from the lower count). The sparse kernels of
    :mod:`bigem._core.parallel`, whose idle threads sleep rather than spin, keep the
    full count (:func:`~bigem._core.parallel.keeping`). Use it around a loop, never
    inside a generator: a suspended generator would hold the lower count.
    """
    threads = torch.get_num_threads()
    if not source.decodes or threads < 2:
        yield
        return
    torch.set_num_threads(threads - 1)
    try:
        with parallel.keeping(threads):  # the GIL-free kernels' pool sleeps when idle: it keeps every core
            yield
    finally:
        torch.set_num_threads(threads)


def _on_threads_for(task: Callable[[Chunk], S], chunk) -> S:
    """``task(chunk)``, on one torch thread where the chunk is small (a few rows to
    predict: see :func:`~bigem._core.parallel.one_thread_when_small`)."""
    x = getattr(chunk, "x", None)
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
        return task(chunk)
    with parallel.one_thread_when_small(x.numel(), x.device):
        return task(chunk)


class OneProcess:
    """What an engine that runs in one process answers to the members of the
    :class:`~bigem._core.protocols.Engine` protocol that speak of a group of processes."""

    primary = True  # the only process writes and prints

    def batches(self, source, rows: int) -> Iterator[Chunk]:
        """Online EM's mini-batches: :meth:`stream` re-cut into ``rows`` rows each."""
        return minibatches(self.stream(source), rows)

    def combine(self, stats: S) -> S:
        return stats

    def share(self, make: Callable[[], S]) -> S:
        return make()

    def opened(self, make: Callable[[], S], settings: dict | None = None) -> S:
        """``make()``: one process has no other to compare its data and ``settings`` with."""
        return make()


class LocalEngine(OneProcess):
    """Evaluates ``fn`` on every chunk of a source and sums the results.

    With ``prefetch`` a single background thread reads and decodes up to
    ``read_ahead`` chunks ahead while the current one computes, so an iteration costs
    about max(I/O, compute) rather than their sum. The fold is sequential and in row
    order, so results do not depend on timing. :meth:`reduce` computes beside a
    decoding source on one thread fewer (:func:`sharing_cores`); callers that loop over
    :meth:`stream` themselves can do the same. A source that asks for measured chunks
    (memory_budget='auto' on a GPU) is sized before the first pass of each kind of task
    (:mod:`.sizing`).
    """

    def __init__(self, prefetch: bool = True, read_ahead: int = READ_AHEAD) -> None:
        self.prefetch = prefetch
        self.read_ahead = max(1, int(read_ahead))

    def sharing_cores(self, source: Source):
        """Context for a loop over :meth:`stream`: see :func:`sharing_cores`."""
        return sharing_cores(source)

    @staticmethod
    def computing(source: Source):
        """Context for a whole fit (starts, passes, M-steps) over ``source``: on one torch
        thread where its rows x features are small enough that threads cost more than
        they share (:func:`~bigem._core.parallel.one_thread_when_small`)."""
        return parallel.one_thread_when_small(source.n_rows * source.n_features, getattr(source, "device", "cpu"))

    def stream(self, source: Source) -> Iterator[Chunk]:
        """The source's chunks in order, the next ones read while the caller computes.
        Rows already in memory, on the CPU, have nothing to read ahead: they come
        straight from the source, without a thread to start and hand each chunk over
        (about half a millisecond a pass, which many small fits felt: MclustDA's)."""
        device = _cuda_device(source)
        if not self.prefetch or (device is None and not getattr(source, "decodes", True)):
            yield from source.chunks()
            return
        feed = None if device is None else _DeviceFeed(device)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bigem-prefetch") as pool:
            yield from _prefetched(iter(source.chunks()), pool, self.read_ahead, feed)

    def size_chunks(self, task: Callable[[Chunk], object], source: Source) -> None:
        """Size the source's chunks for ``task`` where it asks for measured ones
        (memory_budget='auto' on a GPU: see :mod:`.sizing`); :meth:`map` and
        :meth:`reduce` do it themselves, a caller that loops over :meth:`stream` calls it
        first."""
        size_chunks(task, source)

    def map(self, task: Callable[[Chunk], S], source: Source) -> list[S]:
        """``task(chunk)`` of every chunk of the source, in row order (per-row outputs of
        inference, which do not add up)."""
        size_chunks(task, source)
        with sharing_cores(source), closing(self.stream(source)) as chunks:
            return [_on_threads_for(task, chunk) for chunk in chunks]

    def reduce(self, task: Callable[[Chunk], S], source: Source) -> S:
        """The sum of ``task(chunk)`` over the source's chunks, in row order (a
        :class:`~bigem._core.protocols.Task`, or any callable of a chunk)."""
        size_chunks(task, source)
        total = None
        # without prefetch too, so that serial and overlapped runs compute alike;
        # closing: an error in fn stops the reads at once
        with sharing_cores(source), closing(self.stream(source)) as chunks:
            for chunk in chunks:
                part = _on_threads_for(task, chunk)
                total = part if total is None else total + part
        if total is None:
            raise DataError("the source yielded no rows; pass at least one row")
        return total
