"""A source cut into consecutive parts, one per process of a group (torch.distributed).

Each part is a source of its own over a run of rows: it reads only those rows (a
``.npy`` file's row range, a Parquet file's row groups, an array's slice), its chunks
say where their rows lie in the whole data set, and it keeps its own first-pass checks
and cache. Cuts fall where the source can be cut for free (between Parquet row groups,
between CSV or Arrow files) when one lies near the balanced place, else anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from .._core.types import Chunk


def balanced_cuts(n_rows: int, count: int, boundaries: Sequence[int] | None = None) -> list[int]:
    """``count + 1`` row indices 0 = c_0 <= c_1 <= ... <= c_count = n_rows: part r holds rows
    [c_r, c_{r+1}). Cut r sits at round(r * n_rows / count), or at the nearest of
    ``boundaries`` (sorted rows where a cut costs nothing; the lower on a tie), never
    before the previous cut. Every process computes the same cuts from the same data."""
    targets = [(r * n_rows + count // 2) // count for r in range(1, count)]
    cuts = [0]
    if boundaries is None:
        cuts += targets
    else:
        allowed = sorted({int(b) for b in boundaries if 0 <= b <= n_rows} | {0, n_rows})
        for t in targets:
            best = min(allowed, key=lambda b: (abs(b - t), b))
            cuts.append(max(best, cuts[-1]))
    cuts.append(n_rows)
    return cuts


def split_rows(source, count: int) -> list:
    """``source`` cut into ``count`` consecutive parts (its ``part(start, stop)``), at
    its free ``boundaries()`` where they fall near the balanced cuts."""
    cuts = balanced_cuts(source.n_rows, count, source.boundaries())
    return [source.part(a, b) for a, b in zip(cuts, cuts[1:])]


class CutByRows:
    """``split(count)`` for a source that cuts itself (``part(start, stop)``, and
    ``boundaries()``, its free cuts or None): ``count`` consecutive parts at
    :func:`split_rows`' cuts (one per process of a torch group)."""

    def split(self, count: int) -> list:
        return split_rows(self, count)


class RowRange:
    """Rows [start, stop) of any source that cannot read a range by itself (a user's
    Source object): it reads the source's chunks in order and keeps the rows in range,
    so each process reads every row and computes on its own."""

    decodes = False
    shift = None
    weight_blocks = None

    def __init__(self, inner, start: int, stop: int) -> None:
        self.inner, self.start, self.stop = inner, int(start), int(stop)
        self.n_rows, self.n_features = self.stop - self.start, inner.n_features
        self.feature_names = getattr(inner, "feature_names", None)
        weight = getattr(inner, "weight", None)
        self.weight = None if weight is None else weight[self.start : self.stop]
        self.weighted = self.weight is not None or getattr(inner, "weighted", False)
        self.decodes = getattr(inner, "decodes", False)

    def chunks(self) -> Iterator[Chunk]:
        for chunk in self.inner.chunks():
            first, n = chunk.row_start, chunk.n_rows
            a, b = max(self.start - first, 0), min(self.stop - first, n)
            if b > a:
                if a == 0 and b == n:
                    yield chunk
                else:
                    w = None if chunk.weight is None else chunk.weight[a:b]
                    kept = None if chunk.extra is None else {k: v[a:b] for k, v in chunk.extra.items()}
                    label = None if chunk.label is None else chunk.label[a:b]
                    yield replace(chunk, x=chunk.x[a:b], weight=w, row_start=first + a, extra=kept, label=label)
            if first + n >= self.stop:
                return

    def take(self, rows):
        return self.inner.take(rows + self.start)
