"""Re-cutting a stream of chunks into batches of given sizes (online EM's mini-batches).

Here rather than in ``em`` because engines cut them: one process cuts a stream into
batches of ``rows`` rows; a process of a group cuts its own rows into its part of each
of the group's batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

import torch

from .types import Chunk


def minibatches(chunks: Iterable[Chunk], rows: int) -> Iterator[Chunk]:
    """Re-cut a stream of chunks into batches of exactly ``rows`` rows (the last may be
    shorter), so the step sizes do not depend on how the source happens to chunk."""
    return rebatch(chunks, repeat(rows))


def rebatch(chunks: Iterable[Chunk], sizes: Iterable[int]) -> Iterator[Chunk]:
    """Re-cut a stream of chunks into consecutive batches of ``sizes[0]``, ``sizes[1]``,
    ... rows (each at least 1); the last batch takes what is left when the rows run out
    first, and rows left when the sizes run out are not read. When the sizes end with
    the rows, the stream is asked once more, so that it ends its pass (a source's
    end-of-pass checks run then: see ``sources.validate.RulePass``)."""
    sizes = iter(sizes)
    chunks = iter(chunks)
    want = next(sizes, 0)
    pending: list[Chunk] = []
    have = 0
    for chunk in chunks:
        start = 0
        while start < chunk.n_rows and want > 0:
            take = min(want - have, chunk.n_rows - start)
            pending.append(_slice(chunk, start, start + take))
            have, start = have + take, start + take
            if have == want:
                yield _join(pending)
                pending, have, want = [], 0, next(sizes, 0)
        if want <= 0:
            if start == chunk.n_rows:
                next(chunks, None)  # the end of the stream, if the rows ended with the sizes
            return
    if pending:
        yield _join(pending)


def _slice(chunk: Chunk, a: int, b: int) -> Chunk:
    if a == 0 and b == chunk.n_rows:
        return chunk
    w = None if chunk.weight is None else chunk.weight[a:b]
    label = None if chunk.label is None else chunk.label[a:b]
    return Chunk(chunk.x[a:b], w, chunk.row_start + a, label=label)


def _join(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    x = torch.cat([p.x for p in parts])
    w = None if parts[0].weight is None else torch.cat([p.weight for p in parts])
    label = None if parts[0].label is None else torch.cat([p.label for p in parts])
    return Chunk(x, w, parts[0].row_start, label=label)
