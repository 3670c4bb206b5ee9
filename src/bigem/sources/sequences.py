"""Sequences for hidden Markov models: any row source plus the length of every sequence.

:class:`SequenceBatches` regroups the chunks of a row :class:`Source` (in memory, a
``.npy`` file, or any later file source) into batches of whole sequences, so an HMM's
E-step always sees complete sequences. A batch holds as many consecutive sequences as
fit ``rows_per_batch`` rows. A longer sequence is cut into pieces of at most that many
rows, each a batch of its own, which the model links (:mod:`bigem.models.hmm_pieces`):
memory stays bounded by the batch however long a sequence is. A source made with
``cut=False`` keeps such a sequence whole, as a batch of its own (for passes that
cannot link pieces).
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
    """lengths as int64: 1-D (or a single row or column), positive integers summing to the
    rows of X (None: one sequence)."""
    if lengths is None:
        return np.asarray([n_rows], dtype=np.int64)
    if isinstance(lengths, (str, os.PathLike)):
        path = os.fspath(lengths)
        try:
            with open(path, "rb") as f:
                magic = f.read(6)
            if magic != b"\x93NUMPY":  # numpy's own advice would be to unpickle the file
                raise ValueError("not a .npy file")
            lengths = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the lengths array ({exc}); write it with numpy.save") from None
    arr = np.asarray(lengths.cpu() if isinstance(lengths, Tensor) else lengths)
    if arr.ndim == 2 and 1 in arr.shape:  # a row or a column of lengths, which hmmlearn reads as one list
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataError(f"lengths must be a 1-D array of sequence lengths (or a single row or column of them), got "
                        f"shape {arr.shape}")
    if arr.size == 0:
        raise DataError("lengths is empty; pass at least one sequence length (or lengths=None for one sequence)")
    integral = arr.dtype.kind in "iu" or arr.dtype == object and all(isinstance(v, int) for v in arr)
    integral = integral or arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if not integral:
        raise DataError(f"lengths must hold integers, got dtype {arr.dtype}; pass the number of rows of each sequence")
    # the first entry out of range, in order (before int64: keeps the cast and the sum
    # below from wrapping around); a negative one before a large one it made room for
    bad = (arr <= 0) | (arr > n_rows)
    if bad.any():
        i = int(np.argmax(bad))
        if arr[i] == 0:
            raise DataError(f"lengths[{i}] is 0: every sequence needs at least one row; drop zero-length sequences")
        if arr[i] < 0:
            raise DataError(f"lengths[{i}] is {int(arr[i])}: a sequence's length is its number of rows, which cannot "
                            "be negative; pass the rows of each sequence in order")
        raise DataError(
            f"lengths[{i}] is {int(arr[i])}, more than the {n_rows} rows of {name}; lengths must give the rows "
            "of every sequence in order, summing to the rows of X"
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


def piece_counts(lengths: np.ndarray, rows_per_batch: int) -> np.ndarray:
    """How many pieces each sequence is cut into: 0 for a sequence that fits a batch,
    else ceil(length / rows_per_batch) (near-equal pieces)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.where(lengths > rows_per_batch, -(-lengths // max(1, rows_per_batch)), 0)


def cut_pieces(lengths: np.ndarray, rows_per_batch: int) -> Pieces | None:
    """The pieces of the sequences longer than a batch; None where none is."""
    counts = piece_counts(lengths, rows_per_batch)
    return Pieces(counts) if counts.any() else None


def partition_starts(lengths: np.ndarray, rows_per_batch: int | None) -> np.ndarray:
    """Rows where a part of the data set may start (int64, sorted, 0 and the rows'
    count included): every sequence's first row, and where sequences are cut
    (``rows_per_batch`` not None), every piece's."""
    starts = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])
    pieces = None if rows_per_batch is None else cut_pieces(lengths, rows_per_batch)
    if pieces is None:
        return starts
    inner = [r0 for _, _, r0, _, p in batch_layout(lengths, rows_per_batch, pieces) if p >= 0]
    return np.union1d(starts, np.asarray(inner, dtype=np.int64))


class Pieces:
    """Where the pieces of a data set's cut sequences lie: ``first`` (P,) bool, the
    pieces that start a sequence; ``sequence`` (P,), each piece's sequence. Every
    part of a source (a process's share) holds the whole data set's."""

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = counts
        self.sequence = np.repeat(np.arange(len(counts)), counts)
        self.first = np.zeros(len(self.sequence), dtype=bool)
        self.first[np.cumsum(counts)[counts > 0] - counts[counts > 0]] = True
        self.offset = np.concatenate([[0], np.cumsum(counts)])  # each sequence's first piece

    @property
    def n_pieces(self) -> int:
        return len(self.sequence)


def batch_layout(lengths: np.ndarray, rows_per_batch: int, pieces: Pieces | None,
                 first_sequence: int = 0) -> list[tuple[int, int, int, int, int]]:
    """(first sequence, stop, first row, stop row, piece or -1) of each batch of the
    sequences ``lengths`` (the data set's from ``first_sequence`` on; rows and sequences
    counted from theirs): whole sequences by :func:`batch_cuts`, and each sequence that
    ``pieces`` cuts in near-equal pieces, a batch each."""
    starts = np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))])
    out = []
    for s0, s1 in batch_cuts(lengths, rows_per_batch):
        r0, r1 = int(starts[s0]), int(starts[s1])
        n = 0 if pieces is None or s1 - s0 != 1 else int(pieces.counts[first_sequence + s0])
        if not n:
            out.append((s0, s1, r0, r1, -1))
            continue
        base = int(pieces.offset[first_sequence + s0])
        cuts = [r0 + j * (r1 - r0) // n for j in range(n + 1)]  # near-equal pieces
        out.extend((s0, s1, a, b, base + j) for j, (a, b) in enumerate(zip(cuts, cuts[1:])))
    return out


def outputs_sequence(batches: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """The sequence of each per-sequence output of ``batches`` (:func:`batch_layout`) in
    order: a piece gives one for its sequence, which its other pieces share."""
    return np.concatenate([np.arange(s0, s1) if p < 0 else np.asarray([s0]) for s0, s1, _, _, p in batches]
                          or [np.zeros(0, dtype=np.int64)])


def piece_chunk(x: Tensor, lengths: Tensor, row_start: int, first_sequence: int, piece: int,
                pieces: Pieces | None, extra=None) -> SequenceChunk:
    """The chunk of one batch: whole sequences (``piece`` -1), or piece ``piece`` of a cut
    sequence, flagged where it starts and ends its sequence."""
    n_pieces = 0 if pieces is None else pieces.n_pieces
    if piece < 0:
        return SequenceChunk(x, lengths, row_start, first_sequence, n_pieces=n_pieces, extra=extra)
    first, last = bool(pieces.first[piece]), piece + 1 == n_pieces or bool(pieces.first[piece + 1])
    return SequenceChunk(x, torch.tensor([x.shape[0]], dtype=torch.int64), row_start, first_sequence, piece,
                         n_pieces, first, last, extra)


class SequenceBatches:
    """Batches of whole sequences over a row source, and pieces of the sequences longer
    than a batch (unless ``cut`` is False). Satisfies ``SequenceSource``; ``pieces``
    (:class:`Pieces`) is None where no sequence is cut."""

    def __init__(self, rows: Source, lengths: np.ndarray, rows_per_batch: int, cut: bool = True,
                 pieces: Pieces | None = None, first_sequence: int = 0) -> None:
        self.rows = rows
        self.lengths = torch.from_numpy(np.asarray(lengths, dtype=np.int64))
        self.n_rows, self.n_features = rows.n_rows, rows.n_features
        self.n_sequences = int(self.lengths.shape[0])
        self.feature_names = rows.feature_names
        self.weight = None
        self.device = getattr(rows, "device", None)  # where the batches go (the engine overlaps copies to a GPU)
        self.rows_per_batch = rows_per_batch
        self.cut = cut
        self.first_row, self.first_sequence = 0, first_sequence  # where a part's rows and sequences start in the whole
        lengths = np.asarray(lengths, dtype=np.int64)
        self.pieces = cut_pieces(lengths, rows_per_batch) if pieces is None and cut else pieces
        self._starts = np.concatenate([[0], np.cumsum(lengths)])
        self.batches = batch_layout(lengths, rows_per_batch, self.pieces, first_sequence)

    def sequence_of_outputs(self) -> np.ndarray:
        """The sequence (in this source) of each per-sequence output of its batches in
        order: a piece gives one for its sequence, which its other pieces share."""
        return outputs_sequence(self.batches)

    @property
    def decodes(self) -> bool:
        """Whether the rows come from files being decoded (see the local engine)."""
        return self.rows.decodes

    def chunks(self) -> Iterator[SequenceChunk]:
        pieces: list[Tensor] = []
        extras: list[dict] = []  # the buffered rows' columns carried to outputs (an id column)
        have_from, have = 0, 0  # first buffered row, rows buffered
        it = iter(self.rows.chunks())
        for s0, s1, r0, r1, piece in self.batches:
            while have_from + have < r1:
                chunk = next(it)
                pieces.append(chunk.x)
                if chunk.extra:
                    extras.append(chunk.extra)
                have += chunk.n_rows
            x = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            batch = x[r0 - have_from : r1 - have_from]
            rest = x[r1 - have_from :]
            extra = None
            if extras:
                joined = {k: _joined([e[k] for e in extras]) for k in extras[0]}
                extra = {k: v[r0 - have_from : r1 - have_from] for k, v in joined.items()}
                extras = [{k: v[r1 - have_from :] for k, v in joined.items()}] if rest.shape[0] else []
            pieces = [rest] if rest.shape[0] else []
            have_from, have = r1, int(rest.shape[0])
            yield piece_chunk(batch, self.lengths[s0:s1], self.first_row + r0, self.first_sequence + s0, piece,
                              self.pieces, extra)
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
            part = SequenceBatches(self.rows.part(a, b), self.lengths[s0:s1].numpy(), self.rows_per_batch, self.cut,
                                   self.pieces, self.first_sequence + s0)
            part.first_row = self.first_row + a
            parts.append(part)
        return parts

    def take(self, rows: Tensor) -> Tensor:
        return self.rows.take(rows)


def _joined(parts: list):
    """Consecutive blocks of one carried column (numpy or pyarrow arrays) as one."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import pyarrow as pa

    return pa.concat_arrays([p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts])


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
