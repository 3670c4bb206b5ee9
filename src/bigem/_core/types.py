"""Type aliases and the unit of data every layer passes around."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

# Chunks the local engine decodes ahead of the one computing. Sources that read files
# size their chunks so that READ_AHEAD + 1 of them fit the memory budget.
READ_AHEAD = 4


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of validated rows on the compute device.

    x: (n, D) in the compute dtype; weight: (n,) sample weights or None (all ones);
    row_start: index of the first row in the whole data set (for messages and
    reproducible per-row randomness); extra: named columns that are not features,
    passed through to outputs (a pyarrow or numpy array each); label: (n,) int64 class
    codes of semi-supervised fitting (-1: unlabelled), or None. Labels travel with the
    rows as sample weights do, through every source and engine.
    """

    x: Tensor
    weight: Tensor | None
    row_start: int
    extra: dict | None = None  # columns carried through untouched (ids for prediction output)
    label: Tensor | None = None  # class codes, -1 unlabelled (semi-supervised EM)

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
    weighted: bool
    # the weights alone, as (weights, first row) blocks, where a source can read them
    # without the features (a file's weight column); None otherwise
    weight_blocks: Callable[[], Iterator[tuple[Tensor, int]]] | None
    decodes: bool  # producing chunks is real CPU work (reading and decoding files), which
    # the local engine then gives a core of its own
    shift: Tensor | None  # the rows are the data minus this (D,) float64 vector, or None

    def read_in(self, rows: int) -> None:
        """Yield chunks of about ``rows`` rows from now on (HMM batches set it)."""
        ...

    def fingerprint(self) -> dict:
        """What identifies these rows cheaply (files' sizes and times, a digest of the
        first and last rows): a checkpoint resumes only on the data it was saved from."""
        ...

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
    shift: Tensor | None
    partitions: Sequence[object]
    row_starts: Sequence[int]
    reader: Callable[[object, int], Iterator[Chunk]]

    def nbytes(self) -> int:
        """The converted rows' size, for deciding whether workers can hold them."""
        ...

    def with_partitions(self, partitions: Sequence[object]) -> "Partitioned":
        """The same rows over other handles (the persisted ones): a new source."""
        ...

    def chunks(self, wait: Callable[[object], object] | None = None) -> Iterator[Chunk]:
        """The chunks in row order through this process; ``wait(future)`` gives a
        partition's result (an engine's wait, which gives up on a cluster without workers)."""
        ...


@dataclass(frozen=True, slots=True)
class SequenceChunk:
    """A batch of whole sequences, or one piece of a sequence longer than a batch: the
    unit of work of hidden Markov models.

    x: (n, D) the sequences' rows, one after the other; lengths: (B,) int64 on the CPU,
    summing to n; row_start / seq_start: index of the first row / first sequence in the
    whole data set (for messages). A piece (``piece`` >= 0, its index among the
    ``n_pieces`` of the whole data set; B = 1) is linked to the pieces around it by
    :mod:`bigem.models.hmm_pieces`; ``first`` / ``last``: whether it starts / ends its
    sequence. ``n_pieces`` is the data set's on every batch of a source that cuts.
    extra: named columns that are not features, carried to outputs (as ``Chunk.extra``).
    """

    x: Tensor
    lengths: Tensor
    row_start: int
    seq_start: int
    piece: int = -1
    n_pieces: int = 0
    first: bool = True
    last: bool = True
    extra: dict | None = None

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
