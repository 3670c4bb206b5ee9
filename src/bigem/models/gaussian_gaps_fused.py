"""The per-gap step of full and tied Gaussians' gap kernels as one compiled CPU pass (numba). Math only.

:func:`bigem.models.gaussian_gaps.complete` reads a block's rows with gaps in runs of
rows that miss the same number u of coordinates. Between its two batched products (the
residuals Lambda_k (x - mu_k) of the rows as filled, and the whitening of the completed
rows) its work is per gap: the gap's coordinate, its residuals, the conditional mean's
offset delta = -Sigma_UU|O r_U (a u x u product with the row's pattern's conditional
covariance), written into the completed rows. The tensor path
(``gaussian_gaps._offsets_by_runs``) does that as a dozen whole-run gathers, products
and a scatter, each a pass over (K, u, rows) or (K, u, u, rows) arrays; at the sizes of
a block (K u rows below torch's grain size) each of them runs on one thread. Here one
pass per run reads each row's pattern and coordinates once, then component by
component (each array read and written in order) takes each row's residuals, its
conditional covariance's entries and writes its offsets; runs of one and two gaps (60%
of the rows with gaps at 10% of 16 features missing) take closed forms. The E-step
reads the completed rows only, so the offsets and coordinates are kept
(``fill``/``coords``) only for imputation.

Measured on one thread (CPU time, a shared 2-core machine; N=2e5, D=16, K=8, 10% MCAR):
the whole E-step 121-131 ms against 126-136 ms for the tensor path, the per-gap step
itself memory-bound either way. The pass is cut into one range of rows per thread,
where the tensor path's gathers and scatter of a block's size run on one (measured: their
CPU time equals their wall time with two threads), so on two threads it should take about
half the tensor path's time (not measured on a quiet machine). Variants measured and dropped: each row corrected in the whitened
coordinates (y_k += delta U_k[U, :], no second product and no completed copy; 2-4x
slower, numba's loops over D and the row-major residuals cost more than the BLAS product
they replace), the residuals dotted in the kernel rather than read from the product
(slower), rows outer and components inner (25% slower: K strided streams), and rows
read by pattern within a run (no gain).

Arithmetic is float64 from the float64 conditional covariances (residuals read and
offsets written in the kernel dtype), so in float64 it is the tensor path to rounding
and in float32 it is more exact.

Each row's outputs are its own: every run is cut into one contiguous range of rows per
thread of :mod:`bigem._core.parallel`, and any cut gives the same bits.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .._core import jit, parallel

# Rows below which a block's runs go on the calling thread alone (handing a part to a
# thread costs microseconds; a thousand rows take tens of them).
_MIN_PART_ROWS = 1024


@jit.kernel
def _offsets(u, first, n, g, t0, t1, m0, at, offset, column, cond, projected, completed, keep, fill, coords, e, j):
    """Rows t0..t1-1 of a run of n rows that miss u coordinates each. Row t is row
    c = first + t of ``completed`` (K, m, D+1) (a copy of the rows [x - c, 1], 0 in the
    gaps), and row q = c - m0 of ``projected`` (K, rows, D) (Lambda_k (x - mu_k) of the
    rows as filled) and of ``at`` (its pattern p). The pattern's conditional covariances'
    entries start at offset[p] in ``cond`` (K, E) float64, row-major, their columns in
    ``column`` (the first row's: the gaps' coordinates). The gaps' offsets (the
    conditional means less the centre) go to completed[:, c, j_i]; with ``keep``, also to
    fill[:, g + i * n + t], and the gaps' coordinates to coords[g + i * n + t]. e and j:
    scratch of n and n * u int64 (each row's first entry and its gaps' coordinates, read
    once, then by every component). Component by component, so that each array is read
    and written in order."""
    K = projected.shape[0]
    for t in range(t0, t1):
        e0 = offset[at[first + t - m0]]
        e[t] = e0
        for i in range(u):
            j[t * u + i] = column[e0 + i]
            if keep:
                coords[g + i * n + t] = column[e0 + i]
    r = np.empty(u)
    for k in range(K):
        for t in range(t0, t1):
            c = first + t
            q = c - m0
            e0 = e[t]
            if u == 1:
                j0 = j[t]
                v = -(cond[k, e0] * np.float64(projected[k, q, j0]))
                completed[k, c, j0] = v
                if keep:
                    fill[k, g + t] = v
            elif u == 2:
                j0, j1 = j[2 * t], j[2 * t + 1]
                r0, r1 = np.float64(projected[k, q, j0]), np.float64(projected[k, q, j1])
                v0 = -(cond[k, e0] * r0 + cond[k, e0 + 1] * r1)
                v1 = -(cond[k, e0 + 2] * r0 + cond[k, e0 + 3] * r1)
                completed[k, c, j0] = v0
                completed[k, c, j1] = v1
                if keep:
                    fill[k, g + t] = v0
                    fill[k, g + n + t] = v1
            else:
                for i in range(u):
                    r[i] = projected[k, q, j[t * u + i]]
                for i in range(u):
                    s = 0.0
                    for l in range(u):
                        s += cond[k, e0 + i * u + l] * r[l]
                    completed[k, c, j[t * u + i]] = -s
                    if keep:
                        fill[k, g + i * n + t] = -s


def offsets(runs: list[tuple[int, int, int, int]], m0: int, at: Tensor, offset: Tensor, column: Tensor,
            cond: Tensor, projected: Tensor, completed: Tensor, fill: Tensor | None = None,
            coords: Tensor | None = None) -> None:
    """:func:`_offsets` over every run (u, first row, rows, first gap), the rows of each
    cut into one contiguous range per thread of :mod:`bigem._core.parallel` (each row's
    outputs are its own: the same bits on any number of threads). Tensors as there, on
    the CPU; completed written, and fill and coords where given."""
    keep = fill is not None
    arrays = [x.numpy() for x in (at, offset, column, cond, projected, completed)]
    if not keep:  # placeholders of the same types
        fill, coords = completed.new_zeros(1, 1), at.new_zeros(1)
    arrays += [keep, fill.numpy(), coords.numpy()]
    total = sum(n for _, _, n, _ in runs)
    workers = max(1, min(parallel.threads(), total // _MIN_PART_ROWS))

    longest = max((n * u for u, _, n, _ in runs), default=0)

    def share(w: int) -> None:
        e, j = np.empty(longest, dtype=np.int64), np.empty(longest, dtype=np.int64)  # this thread's scratch
        for u, first, n, g in runs:
            a, b = n * w // workers, n * (w + 1) // workers
            if b > a:
                _offsets(u, first, n, g, a, b, m0, *arrays, e, j)

    parallel.run([lambda w=w: share(w) for w in range(workers)])


def runs_on(device) -> bool:
    """Whether a block on ``device`` takes this kernel (:func:`bigem._core.jit.runs_on`)."""
    return jit.runs_on(device)
