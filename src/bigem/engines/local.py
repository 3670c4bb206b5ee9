"""In-process engine: a fold over chunks, reading the next chunk while this one computes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._core.types import Chunk, Source

S = TypeVar("S")


def _prefetched(chunks: Iterator[Chunk], pool: ThreadPoolExecutor) -> Iterator[Chunk]:
    """Yield chunks while a worker thread already produces the next one (overlaps I/O)."""
    sentinel = object()
    pending = pool.submit(next, chunks, sentinel)
    while True:
        chunk = pending.result()
        if chunk is sentinel:
            return
        pending = pool.submit(next, chunks, sentinel)
        yield chunk


class LocalEngine:
    """Evaluates ``fn`` on every chunk of a source and sums the results.

    With ``prefetch`` a single background thread reads/decodes chunk i+1 while chunk
    i computes, so an iteration costs about max(I/O, compute) rather than their sum.
    The fold is sequential and in row order, so results do not depend on timing.
    """

    def __init__(self, prefetch: bool = True) -> None:
        self.prefetch = prefetch

    def stream(self, source: Source) -> Iterator[Chunk]:
        """The source's chunks in order, the next one read while the caller computes."""
        if not self.prefetch:
            yield from source.chunks()
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bigem-prefetch") as pool:
            yield from _prefetched(iter(source.chunks()), pool)

    def reduce(self, fn: Callable[[Chunk], S], source: Source) -> S:
        total = None
        if self.prefetch:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bigem-prefetch") as pool:
                for chunk in _prefetched(iter(source.chunks()), pool):
                    part = fn(chunk)
                    total = part if total is None else total + part
        else:
            for chunk in source.chunks():
                part = fn(chunk)
                total = part if total is None else total + part
        if total is None:
            raise ValueError("the source yielded no chunks")
        return total
