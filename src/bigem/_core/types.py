"""Type aliases and the unit of data every layer passes around."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from torch import Tensor

CovarianceType = Literal["full", "tied", "diag", "spherical"]
COVARIANCE_TYPES: tuple[str, ...] = ("full", "tied", "diag", "spherical")

# Chunks the local engine decodes ahead of the one computing. Sources that read files
# size their chunks so that READ_AHEAD + 1 of them fit the memory budget.
READ_AHEAD = 4


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of validated rows on the compute device.

    x: (n, D) in the compute dtype; weight: (n,) sample weights or None (all ones);
    row_start: index of the first row in the whole data set (for messages and
    reproducible per-row randomness); extra: named columns that are not features,
    passed through to outputs (a pyarrow or numpy array each).
    """

    x: Tensor
    weight: Tensor | None
    row_start: int
    extra: dict | None = None  # columns carried through untouched (ids for prediction output)

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])


class Source(Protocol):
    """Where rows come from. Engines iterate :meth:`chunks`; initialisation samples
    rows with :meth:`take`. A source validates what it yields (shape, finiteness)."""

    n_rows: int
    n_features: int
    feature_names: list[str] | None
    weight: Tensor | None  # every row's sample weight in memory, or None: all ones unless
    # ``weighted`` is set (weights then arrive with the chunks: a column of the files, a
    # Dask partition's last column; see em.init.sample_rows)
    # Optional: ``decodes`` (bool, default False) says that producing chunks is real CPU
    # work (reading and decoding files), which the local engine then gives a core of its own.

    def chunks(self) -> Iterator[Chunk]:
        """Chunks in row order, on the compute device and dtype, covering every row once."""
        ...

    def take(self, rows: Tensor) -> Tensor:
        """Rows by index (sorted int64), compute dtype and device: (len(rows), D)."""
        ...


class Partitioned(Protocol):
    """A source split into partitions that a cluster's workers read themselves.

    ``partitions`` are opaque handles (Dask delayed objects) that evaluate, on a
    worker, to one block of rows; ``row_starts[i]`` is the first row of partition i
    in the whole data set; ``reader(block, row_start)`` turns an evaluated block into
    chunks (it runs on the worker, so it is small and picklable).
    """

    n_rows: int
    n_features: int
    partitions: Sequence[object]
    row_starts: Sequence[int]
    reader: Callable[[object, int], Iterator[Chunk]]


@dataclass(frozen=True, slots=True)
class SequenceChunk:
    """A batch of whole sequences: the unit of work of hidden Markov models.

    x: (n, D) the sequences' rows, one after the other; lengths: (B,) int64 on the CPU,
    summing to n; row_start / seq_start: index of the first row / first sequence in the
    whole data set (for messages).
    """

    x: Tensor
    lengths: Tensor
    row_start: int
    seq_start: int

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])


class SequenceSource(Protocol):
    """Sequences: a row source plus the length of every sequence (rows in order)."""

    n_rows: int
    n_features: int
    n_sequences: int
    lengths: Tensor  # (n_sequences,) int64, CPU

    def chunks(self) -> Iterator[SequenceChunk]:
        """Batches of whole sequences in order, covering every sequence once."""
        ...

    def take(self, rows: Tensor) -> Tensor:
        """Rows by index (sorted int64), compute dtype and device."""
        ...
