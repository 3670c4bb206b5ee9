"""Chunk sizes measured on a GPU: what a task really allocates per row, against the
device's free memory (``memory_budget='auto'``, see :mod:`bigem._core.chunking`).

A fixed budget either wastes a large GPU (small chunks: more launches, more Python per
row) or overflows a small one (the E-step's scratch grows with the components, not
with the data's width). So before the first pass of each kind of task over a source,
the task runs on probe rows (the source's first rows, repeated) and the caching
allocator's peak (``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``) says what it allocated. The peak of a chunk of n rows is
``fixed + per_row * n`` until the kernels' blocks stop growing, and grows more slowly
after: the line through two probes (n and 2n rows) bounds it from above beyond them,
so the chunk rows it gives keep the peak within the budget. Probes double until the
chunk rows they give are within 4x of the largest probe (or the data, or 2**24 rows).

The budget is ``fraction`` of the memory the device can still give: the driver's free
memory plus what torch's allocator holds unused. The chunks themselves count too: each
row's bytes times the copies in flight (a file's chunks copied ahead while one
computes). Chunk rows are rounded down to three significant bits, so that a little
more or less free memory between runs mostly gives the same chunks, hence the same
rounding (chunking changes answers by rounding only; a fixed ``memory_budget`` or
``chunk_size`` fixes the chunks).

The probe resets the device's peak-memory statistics (``reset_peak_memory_stats``).
"""

from __future__ import annotations

import inspect
import math
from contextlib import closing

import torch

from .._core.chunking import MeasuredChunks
from .._core.types import Chunk

FIRST_PROBE_ROWS = 1 << 14
LARGEST_PROBE_ROWS = 1 << 24
MIN_ROWS = 1024


def size_chunks(task, source) -> None:
    """Measure ``task`` on probe rows and set the source's chunk rows, when the source
    asks for it (``measure_chunks``) and this kind of task was not measured yet. Wrappers
    (``__wrapped__``: a progress counter) are seen through: the probe runs the task itself."""
    plan: MeasuredChunks | None = getattr(source, "measure_chunks", None)
    if plan is None or source.n_rows <= FIRST_PROBE_ROWS:  # a few rows: the chunk they are opened with
        return
    task = inspect.unwrap(task)
    key = task_key(task)
    if key in plan.rows:
        return
    plan.rows[key] = chunk_rows(task, source, plan)
    source.read_in(min(plan.rows.values()))


def task_key(task) -> tuple:
    """What makes two tasks alike in memory: a model's method (whatever its arguments,
    the parameters of one fit), or a function's code."""
    model, method = getattr(task, "model", None), getattr(task, "method", None)
    if model is not None and method is not None:
        return ("task", id(model), method)
    code = getattr(task, "__code__", None) or getattr(getattr(task, "func", None), "__code__", None)
    return ("code", code) if code is not None else ("object", id(task))


def available_bytes(device: torch.device) -> int:
    """Memory the device can still give this process: the driver's free memory and the
    blocks torch's caching allocator holds unused."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free) + int(torch.cuda.memory_reserved(device)) - int(torch.cuda.memory_allocated(device))


def peak_bytes(task, chunk: Chunk, device: torch.device) -> int:
    """Bytes ``task(chunk)`` allocates on the device at its peak, beyond what was
    allocated before (the chunk included)."""
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = task(chunk)
    peak = torch.cuda.max_memory_allocated(device) - before
    del result
    return max(0, int(peak))


def chunk_rows(task, source, plan: MeasuredChunks) -> int:
    """The chunk rows for ``task`` over ``source`` (see the module docstring)."""
    first = _first_chunk(source)
    budget = plan.fraction * available_bytes(plan.device)
    copies = plan.copies * _row_bytes(first)
    n_rows = int(source.n_rows)
    n, previous = min(FIRST_PROBE_ROWS, n_rows), None
    while True:
        peak = peak_bytes(task, _probe(first, n), plan.device)
        if previous is None:  # one point: all of it per row (an overestimate)
            slope, fixed = peak / n, 0.0
        else:
            slope = max(peak - previous[1], 0) / (n - previous[0])
            fixed = max(peak - slope * n, 0.0)
        per_row = slope + copies
        rows = (budget - fixed) / per_row if per_row > 0 else math.inf
        if previous is not None and (rows < 4 * n or n >= LARGEST_PROBE_ROWS):
            break
        grown = int(min(2 * n, n_rows, rows))
        if grown <= n:
            break
        previous, n = (n, peak), grown
    rows = n_rows if rows >= n_rows else rounded(rows)
    return max(MIN_ROWS, min(rows, plan.host_rows or rows))


def rounded(rows: float) -> int:
    """Rows rounded down to three significant bits (at most 1/8 fewer)."""
    rows = max(MIN_ROWS, int(rows))
    step = 1 << max(0, rows.bit_length() - 3)
    return rows // step * step


def _first_chunk(source) -> Chunk:
    with closing(iter(source.chunks())) as chunks:
        return next(chunks)


def _row_bytes(chunk: Chunk) -> int:
    """Device bytes of one row of a chunk: its values, weight and label."""
    return sum(t[:1].numel() * t.element_size() for t in (chunk.x, chunk.weight, chunk.label) if t is not None)


def _probe(first: Chunk, n: int) -> Chunk:
    """``n`` rows made of the first chunk's, repeated, with their weights and labels."""
    index = torch.arange(n, device=first.x.device) % first.n_rows

    def take(t):
        return None if t is None else t[index.to(t.device)]

    return Chunk(take(first.x), take(first.weight), 0, None, take(first.label))
