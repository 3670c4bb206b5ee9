"""Sequences for hidden Markov models: any row source plus the length of every sequence.

:class:`SequenceBatches` regroups the chunks of a row :class:`Source` (in memory, a
``.npy`` file, or any later file source) into batches of whole sequences, so an HMM's
E-step always sees complete sequences. A batch holds as many consecutive sequences as
fit ``rows_per_batch`` rows; a longer sequence is a batch of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import SequenceChunk, Source


def check_lengths(lengths: object, n_rows: int, name: str = "X") -> np.ndarray:
    """lengths as int64: 1-D, positive integers summing to the rows of X (None: one sequence)."""
    if lengths is None:
        return np.asarray([n_rows], dtype=np.int64)
    if isinstance(lengths, (str, os.PathLike)):
        path = os.fspath(lengths)
        try:
            lengths = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the lengths array ({exc}); write it with numpy.save") from None
    arr = np.asarray(lengths.cpu() if isinstance(lengths, Tensor) else lengths)
    if arr.ndim != 1:
        raise DataError(f"lengths must be a 1-D array of sequence lengths, got shape {arr.shape}")
    if arr.size == 0:
        raise DataError("lengths is empty; pass at least one sequence length (or lengths=None for one sequence)")
    integral = arr.dtype.kind in "iu" or arr.dtype == object and all(isinstance(v, int) for v in arr)
    integral = integral or arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if not integral:
        raise DataError(f"lengths must hold integers, got dtype {arr.dtype}; pass the number of rows of each sequence")
    if (arr > n_rows).any():  # before int64: keeps the cast and the sum below from wrapping around
        i = int(np.argmax(arr > n_rows))
        raise DataError(
            f"lengths[{i}] is {int(arr[i])}, more than the {n_rows} rows of {name}; lengths must give the rows "
            "of every sequence in order, summing to the rows of X"
        )
    if (arr <= 0).any():
        i = int(np.argmax(arr <= 0))
        raise DataError(
            f"lengths[{i}] is {int(arr[i])}: every sequence needs at least one row; drop zero-length sequences"
        )
    arr = arr.astype(np.int64)
    # many lengths can still sum past 2**63: the int64 sum is exact only below that
    exact = float(arr.sum(dtype=np.float64)) < 2.0**62
    total = int(arr.sum()) if exact else None
    if total != n_rows:
        raise DataError(
            f"lengths sum to {total if exact else 'more than 2**62'} but {name} has {n_rows} rows; "
            "lengths must give the rows of every sequence in order, summing to the rows of X"
        )
    return arr


def batch_cuts(lengths: np.ndarray, rows_per_batch: int) -> list[tuple[int, int]]:
    """(first, stop) sequence indices of each batch: as many consecutive sequences as fit
    ``rows_per_batch`` rows, cut after the last that still fits; a longer sequence is a
    batch of its own."""
    ends = np.cumsum(lengths)
    cuts, start_row, start_seq = [], 0, 0
    while start_seq < len(lengths):
        stop = int(np.searchsorted(ends, start_row + rows_per_batch, side="right"))
        stop = max(stop, start_seq + 1)
        cuts.append((start_seq, stop))
        start_row, start_seq = int(ends[stop - 1]), stop
    return cuts


class SequenceBatches:
    """Batches of whole sequences over a row source. Satisfies ``SequenceSource``."""

    def __init__(self, rows: Source, lengths: np.ndarray, rows_per_batch: int) -> None:
        self.rows = rows
        self.lengths = torch.from_numpy(np.asarray(lengths, dtype=np.int64))
        self.n_rows, self.n_features = rows.n_rows, rows.n_features
        self.n_sequences = int(self.lengths.shape[0])
        self.feature_names = rows.feature_names
        self.weight = None
        self.device = getattr(rows, "device", None)  # where the batches go (the engine overlaps copies to a GPU)
        self.rows_per_batch = rows_per_batch
        self.first_row = self.first_sequence = 0  # where a part's rows and sequences start in the whole
        self.batches = batch_cuts(lengths, rows_per_batch)
        self._starts = np.concatenate([[0], np.cumsum(lengths)])

    @property
    def decodes(self) -> bool:
        """Whether the rows come from files being decoded (see the local engine)."""
        return self.rows.decodes

    def chunks(self) -> Iterator[SequenceChunk]:
        pieces: list[Tensor] = []
        have_from, have = 0, 0  # first buffered row, rows buffered
        it = iter(self.rows.chunks())
        for s0, s1 in self.batches:
            r0, r1 = int(self._starts[s0]), int(self._starts[s1])
            while have_from + have < r1:
                chunk = next(it)
                pieces.append(chunk.x)
                have += chunk.n_rows
            x = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            batch = x[r0 - have_from : r1 - have_from]
            rest = x[r1 - have_from :]
            pieces = [rest] if rest.shape[0] else []
            have_from, have = r1, int(rest.shape[0])
            yield SequenceChunk(batch, self.lengths[s0:s1], self.first_row + r0, self.first_sequence + s0)
        for _ in it:  # no rows are left: this lets the rows' pass end (its checks read once a pass, its cache)
            pass

    def split(self, count: int) -> list[SequenceBatches]:
        """``count`` consecutive parts of whole sequences, near-equal in rows (see
        ``parts.balanced_cuts``); a part may be empty when there are fewer sequences
        than parts. Chunks keep their rows' and sequences' places in the whole."""
        from .parts import balanced_cuts

        starts = self._starts
        cuts = balanced_cuts(self.n_rows, count, starts.tolist())
        parts = []
        for a, b in zip(cuts, cuts[1:]):
            s0, s1 = int(np.searchsorted(starts, a)), int(np.searchsorted(starts, b))
            part = SequenceBatches(self.rows.part(a, b), self.lengths[s0:s1].numpy(), self.rows_per_batch)
            part.first_row, part.first_sequence = self.first_row + a, self.first_sequence + s0
            parts.append(part)
        return parts

    def take(self, rows: Tensor) -> Tensor:
        return self.rows.take(rows)


def id_runs(ids: np.ndarray) -> tuple[list, list[int], list[int]]:
    """(id, rows, first row) of each run of consecutive equal ids."""
    n = len(ids)
    if n == 0:
        return [], [], []
    starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    return ids[starts].tolist(), np.diff(np.append(starts, n)).tolist(), starts.tolist()


def lengths_from_ids(batches: Iterable[tuple[np.ndarray, str, int]], column: str) -> np.ndarray:
    """Sequence lengths from an id column: each run of consecutive equal ids is a sequence.

    ``batches`` yields (ids, where, first row) in row order, ``where`` naming the file
    (or "X") for messages. An id that comes back after another id is an error: the
    rows of one sequence must be contiguous. Memory: the lengths and the set of ids seen.
    """
    return lengths_from_runs(((*id_runs(ids), where, first) for ids, where, first in batches), column,
                             "0-based, of this file")


def lengths_from_runs(batches: Iterable[tuple[list, list[int], list[int], str, int]], column: str,
                      counted: str = "0-based") -> np.ndarray:
    """Sequence lengths from the runs of equal ids of consecutive batches of rows (ids,
    rows and first row of each run; where, first row of the batch): a run that goes on
    with the open sequence's id across a batch boundary extends it. ``counted`` says in
    messages how rows are numbered (first row + the run's start)."""
    lengths: list[int] = []
    seen: set = set()
    current, run = None, 0  # the open sequence (it may continue into the next batch)
    for run_ids, runs, starts, where, first in batches:
        for key, size, start in zip(run_ids, runs, starts):
            if run and key == current:  # the open sequence goes on across the batch boundary
                run += size
                continue
            if run:
                lengths.append(run)
                seen.add(current)
            if key in seen:
                raise DataError(
                    f"{where}: sequence id {key!r} in column {column!r} appears again at row "
                    f"{first + int(start)} ({counted}) after other ids; rows of a sequence "
                    f"must be contiguous; sort by the id column (keeping the time order within each sequence)"
                )
            current, run = key, size
    if run:
        lengths.append(run)
    return np.asarray(lengths, dtype=np.int64)
