"""Sequences for hidden Markov models on a Dask cluster: partitions of whole sequences,
and of the pieces of sequences longer than a batch.

An HMM's E-step needs every sequence whole, or cut into the pieces that
:mod:`bigem.models.hmm_pieces` links (as in this process: see
:class:`~bigem.sources.sequences.SequenceBatches`). So the rows are first
re-partitioned where a part may start (:func:`sequence_aligned`): at sequence starts,
and, where sequences are cut, at piece starts. An in-memory X is cut into balanced
partitions there; a Dask collection keeps its partitioning, each boundary moved to the
nearest such row, so the rows of a sequence (or piece) that straddles two partitions
are brought together by Dask (a rechunk) on the workers. A sequence longer than a
worker's memory is thus spread over partitions piece by piece. With a Dask DataFrame
and a ``sequence_column``, the workers first send the runs of equal ids of their
partitions (one id and one count per run), from which the client learns the lengths,
and checks that no id comes back after another. Then :class:`DaskSequences` gives each
partition its batches (whole sequences, or one piece each), and its reader cuts the
partition into them where it lives. Dask is imported lazily.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import SequenceChunk
from .dask import (DaskSource, _check_numeric, _paths, _read_files, is_dask_collection, plain_paths,
                   stream_partitions)
from .parts import balanced_cuts
from .sequences import (Pieces, batch_layout, check_lengths, id_runs, lengths_from_runs, outputs_sequence,
                        partition_starts, piece_chunk)

ROWS_PER_PARTITION = 1_000_000  # an in-memory X is cut into partitions of about this many rows at most


def sequence_aligned(X, lengths, sequence_column: str | None, columns: list[str] | None, client,
                     parts: int, batch_rows=None) -> tuple[object, np.ndarray, list[str] | None]:
    """(a dask array of X's feature rows whose partitions hold whole sequences or whole
    pieces, the lengths as int64, the feature names or None).

    X: a dask array or DataFrame, Parquet/CSV path(s) (read by the workers), or an
    in-memory array (cut into ``parts`` partitions, or more of at most
    ``ROWS_PER_PARTITION`` rows each). ``lengths`` or ``sequence_column`` (a column of a
    DataFrame) give the sequences; neither: X is one sequence. ``batch_rows``: the rows
    of a batch given the number of features, where sequences longer than a batch are
    cut into pieces (None: every sequence is kept whole in one partition)."""
    name = "X"
    X, columns = plain_paths(X, columns)
    if _paths(X):
        X, name = _read_files(X)
    frame = hasattr(X, "columns") and hasattr(X, "dtypes")
    if sequence_column is not None and not frame:
        raise DataError(
            f"sequence_column={sequence_column!r} names a column, but X has no column names; pass a DataFrame or "
            "files with a header, or pass lengths= instead"
        )
    if not is_dask_collection(X):
        return _in_memory(X, lengths, sequence_column, columns, parts, batch_rows)
    names = None
    sizes: list[int] | bool = True
    if frame:
        named = all(isinstance(c, str) for c in X.columns)
        if not named:  # compared and selected by their names as strings (as open_dask_source does)
            X = X.rename(columns={c: str(c) for c in X.columns})
        declared = [str(c) for c in X.columns]
        others = declared
        if sequence_column is not None:
            column = str(sequence_column)
            if column not in declared:
                raise DataError(f"{name} has no column {column!r}; it has {declared}. Check the sequence_column you "
                                "passed")
            lengths, sizes = _lengths_from_column(X, column, client, name)
            others = [c for c in declared if c != column]
            if columns is not None and column in [str(c) for c in columns]:
                raise DataError(f"sequence_column={column!r} is also in columns=; the sequence ids are not a feature")
        chosen = others if columns is None else [str(c) for c in columns]
        unknown = [c for c in chosen if c not in declared]
        if unknown:
            raise DataError(f"{name}: column(s) {unknown} not found; the data has columns {declared}")
        if not chosen:
            raise DataError(f"{name}: columns=[] selects nothing; name at least one numeric column")
        _check_numeric(X, chosen, name)
        # the columns taken partition by partition: Dask 2026.8's projection of a Parquet read
        # (X[chosen] where the files hold more columns) gave an array whose tasks were
        # cancelled on a cluster ("lost dependencies")
        X = X.map_partitions(_columns_of, chosen, meta=X._meta[chosen])
        X = X.to_dask_array(lengths=sizes if sizes is True else tuple(sizes))
        names = chosen if named else None
    elif columns is not None:
        raise DataError("columns= selects DataFrame columns; X is a dask array (slice it instead: X[:, idx])")
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim} dimensions; reshape it, "
                        "e.g. X.reshape(-1, 1) for one feature")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    n = int(X.shape[0])
    lens = check_lengths(lengths, n, name)
    starts = partition_starts(lens, None if batch_rows is None else batch_rows(int(X.shape[1])))
    cuts = _snapped(np.cumsum((0,) + tuple(int(c) for c in X.chunks[0])), starts)
    sizes = tuple(int(b - a) for a, b in zip(cuts, cuts[1:]))
    if sizes != tuple(X.chunks[0]) or len(X.chunks[1]) > 1:
        X = X.rechunk({0: sizes, 1: -1})  # Dask moves the rows of a straddling sequence (or piece) to one partition
    return X, lens, names


def coalesced(X, lengths: np.ndarray, threads: int, rows_per_batch: int, cut: bool = False):
    """X (a dask array cut where parts may start: see :func:`sequence_aligned`) in fewer,
    larger partitions when it has more than its work needs: a multiple of ``threads``
    partitions, each within one batch of ``rows_per_batch`` rows where the rows allow,
    cut at sequence starts (and, with ``cut``, at the starts of the pieces of sequences
    longer than a batch).

    Forward-backward steps through time in Python once per batch, so a worker pays that
    fixed cost once per partition it holds: eight partitions of 125k rows on two
    workers cost each of them four passes of the time loop where two partitions of
    500k would cost one or two (the local engine pays it once per batch). Partitions
    are only ever merged, never split, and the answer does not depend on them."""
    n, have = int(X.shape[0]), len(X.chunks[0])
    threads = max(1, int(threads))
    want = threads * -(-n // (threads * max(1, int(rows_per_batch))))
    if have <= want:
        return X
    cuts = balanced_cuts(n, want, partition_starts(lengths, rows_per_batch if cut else None).tolist())
    sizes = tuple(b - a for a, b in zip(cuts, cuts[1:]) if b > a)
    return X.rechunk({0: sizes})


def _in_memory(X, lengths, sequence_column, columns, parts: int, batch_rows=None):
    """An in-memory X as a dask array cut into balanced partitions where parts may start
    (sequence starts; piece starts where ``batch_rows`` cuts sequences)."""
    import dask.array as da

    from .inputs import sequence_lengths

    names = None
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # a pandas DataFrame
        label = {str(c): c for c in X.columns}
        others = list(label)
        if sequence_column is not None:
            lengths, others = sequence_lengths(X, sequence_column)
        chosen = others if columns is None else [str(c) for c in columns]
        unknown = [c for c in chosen if c not in label]
        if unknown:
            raise DataError(f"X: column(s) {unknown} not found; the data has columns {list(label)}")
        frame = X[[label[c] for c in chosen]]
        _check_numeric(frame, chosen, "X")
        names = chosen if all(isinstance(c, str) for c in X.columns) else None
        X = frame.to_numpy()
    elif columns is not None:
        raise DataError("columns= selects DataFrame columns; X is an array (slice it instead: X[:, idx])")
    x = X.cpu().numpy() if isinstance(X, Tensor) else np.asarray(X)
    if x.ndim != 2:
        raise DataError(f"X must be 2-D (n_samples, n_features), got shape {x.shape}; reshape it, e.g. "
                        "X.reshape(-1, 1) for one feature")
    lens = check_lengths(lengths, x.shape[0])
    count = max(1, parts, -(-x.shape[0] // ROWS_PER_PARTITION))
    starts = partition_starts(lens, None if batch_rows is None else batch_rows(int(x.shape[1])))
    cuts = balanced_cuts(x.shape[0], count, starts.tolist())
    sizes = tuple(b - a for a, b in zip(cuts, cuts[1:]) if b > a)
    return da.from_array(x, chunks=(sizes, -1)), lens, names


def _snapped(boundaries: np.ndarray, starts: np.ndarray) -> list[int]:
    """Partition boundaries moved each to the nearest of ``starts`` (where a part may
    start; the lower on a tie); repeated ones merge, so no partition is empty."""
    n = int(starts[-1])
    cuts = {0, n}
    for b in boundaries[1:-1]:
        i = int(np.searchsorted(starts, b))
        below, above = int(starts[max(i - 1, 0)]), int(starts[min(i, len(starts) - 1)])
        cuts.add(above if above - b < b - below else below)
    return sorted(cuts)


def _id_run_summary(part, column: str, index: int) -> tuple[list, list[int], list[int], int]:
    """Runs on a worker: the runs of equal ids of one partition's ``column`` (id, rows,
    first row of each) and its rows."""
    ids = part[column]
    missing = np.asarray(ids.isna())
    if missing.any():
        raise DataError(
            f"X: column {column!r} has a null (missing) value at row {int(np.argmax(missing))} of partition {index} "
            "(0-based, counted from its start); every row needs a sequence id"
        )
    return (*id_runs(ids.to_numpy()), len(ids))


def _columns_of(frame, names: list[str]):
    """Runs on a worker: a partition's chosen columns."""
    return frame[names]


def _lengths_from_column(X, column: str, client, name: str) -> tuple[np.ndarray, list[int]]:
    """(the sequence lengths, the rows of each partition) of a Dask DataFrame whose
    ``column`` holds sequence ids, from the runs of each partition (computed where they
    live; a run that continues into the next partition extends its sequence)."""
    from dask import delayed

    tasks = [delayed(_id_run_summary, pure=True)(p, column, i) for i, p in enumerate(X.to_delayed())]
    found = client.gather(client.compute(tasks))
    sizes = [f[3] for f in found]
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist() if sizes else []
    lengths = lengths_from_runs(((f[0], f[1], f[2], name, first) for f, first in zip(found, firsts)), column)
    if not len(lengths):
        raise DataError(f"{name} has no rows; pass at least one row")
    return lengths, sizes


def _sequence_part(block, batches: list, pieces: Pieces | None) -> tuple:
    """Runs on a worker: a partition's rows with its batches and the data set's pieces."""
    return block, batches, pieces


@dataclass(frozen=True, slots=True)
class SequenceReader:
    """Runs on a worker: a partition (rows, batches, pieces) -> its batches of whole
    sequences of about ``rows_per_batch`` rows, or pieces, as
    :class:`~bigem.sources.sequences.SequenceBatches` cuts them. A batch: (lengths of its
    sequences, first row and stop within the partition, first sequence in the data set,
    piece or -1)."""

    dtype: torch.dtype
    device: str
    rows_per_batch: int

    def __call__(self, part, row_start: int) -> Iterator[SequenceChunk]:
        block, batches, pieces = part
        x = torch.from_numpy(np.asarray(block)).to(device=self.device, dtype=self.dtype).contiguous()
        for lengths, r0, r1, first_sequence, piece in batches:
            yield piece_chunk(x[r0:r1], torch.from_numpy(lengths), row_start + r0, first_sequence, piece, pieces)


def _partition_batches(lengths: np.ndarray, rows_per_batch: int, pieces: Pieces | None,
                       bounds: list[int]) -> list[list[tuple[int, int, int, int, int]]]:
    """Each partition's batches (:func:`~bigem.sources.sequences.batch_layout`, rows and
    sequences counted in the data set) between consecutive ``bounds`` (the partitions'
    first rows, then the rows' count): the data set's batches, a batch of whole
    sequences split where a partition starts within it."""
    starts = np.concatenate([[0], np.cumsum(lengths)])
    parts: list[list] = [[] for _ in bounds[:-1]]
    j = 0
    for s0, s1, r0, r1, piece in batch_layout(lengths, rows_per_batch, pieces):
        while r0 < r1:
            while bounds[j + 1] <= r0:
                j += 1
            stop = min(r1, bounds[j + 1])
            a, b = int(np.searchsorted(starts, r0)), int(np.searchsorted(starts, stop))
            if piece >= 0 and stop != r1 or piece < 0 and (starts[a] != r0 or starts[b] != stop):
                # sequence_aligned cuts the partitions where a part may start
                raise AssertionError("the partitions were not cut at sequence or piece boundaries")
            parts[j].append((s0, s1, r0, r1, piece) if piece >= 0 else (a, b, r0, stop, -1))
            r0 = stop
    return parts


def _checked(block, row_start: int, reader, check) -> None:
    """Runs on a worker: ``check`` on every chunk of one partition's rows."""
    for chunk in reader(block, row_start):
        check(chunk)


class DaskSequences:
    """Whole sequences, and the pieces of sequences longer than a batch (unless ``cut``
    is False), in partitions held by a Dask cluster's workers; satisfies
    ``Partitioned`` (the engine maps the E-step over partitions) and ``SequenceSource``.
    ``rows`` is the row source of the same partitions (first passes: the rows' summary,
    k-means); ``pieces`` as :class:`~bigem.sources.sequences.SequenceBatches`'s."""

    weight: Tensor | None = None
    weighted = False
    decodes = False  # the workers decode; this process only computes

    def __init__(self, rows: DaskSource, lengths: np.ndarray, rows_per_batch: int, cut: bool = False) -> None:
        from dask import delayed

        from .sequences import cut_pieces

        self.rows = rows
        lengths = np.asarray(lengths, dtype=np.int64)
        self.lengths = torch.from_numpy(lengths)
        self.n_rows, self.n_features = rows.n_rows, rows.n_features
        self.n_sequences = int(self.lengths.shape[0])
        self.feature_names = rows.feature_names
        self.shift = rows.shift
        self.client = rows.client
        self.device = rows.reader.device
        self.rows_per_batch = rows_per_batch
        self.reader = SequenceReader(rows.reader.dtype, rows.reader.device, rows_per_batch)
        self.pieces = cut_pieces(lengths, rows_per_batch) if cut else None
        self.row_starts = list(rows.row_starts)
        parts = _partition_batches(lengths, rows_per_batch, self.pieces, self.row_starts + [rows.n_rows])
        self.batches = [b for part in parts for b in part]  # (s0, s1, r0, r1, piece) in the data set
        self.partitions = [
            delayed(_sequence_part, pure=True)(p, [(lengths[s0:s1] if piece < 0 else np.zeros(0, np.int64),
                                                    r0 - start, r1 - start, s0, piece)
                                                   for s0, s1, r0, r1, piece in part], self.pieces)
            for p, start, part in zip(rows.partitions, self.row_starts, parts)
        ]

    def sequence_of_outputs(self) -> np.ndarray:
        """The sequence of each per-sequence output of the batches in order (see
        :meth:`SequenceBatches.sequence_of_outputs`)."""
        return outputs_sequence(self.batches)

    def check(self, check) -> None:
        """``check(chunk)`` on every chunk of rows, where the partitions live (the first
        pass's value checks of an emission: symbols, counts); its error is raised here."""
        from dask import delayed

        rows = self.rows
        tasks = [delayed(_checked, pure=False)(p, start, rows.reader, check)
                 for p, start in zip(rows.partitions, rows.row_starts)]
        self.client.gather(self.client.compute(tasks))

    def nbytes(self) -> int:
        return self.rows.nbytes()

    def fingerprint(self) -> dict:
        return self.rows.fingerprint()

    def with_partitions(self, partitions) -> DaskSequences:
        """The same sequences over other handles (persisted ones): a new source."""
        other = copy.copy(self)
        other.partitions = list(partitions)
        return other

    def chunks(self, wait=None) -> Iterator[SequenceChunk]:
        """Batches of whole sequences in order through this process, one partition at a time."""
        return stream_partitions(self.client, self.partitions, self.row_starts, self.reader, wait)

    def take(self, rows: Tensor) -> Tensor:
        return self.rows.take(rows)
