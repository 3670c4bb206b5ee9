"""Model-based agglomerative hierarchical clustering (Banfield and Raftery, 1993; Fraley,
1998): mclust's ``hc``, the start of its EM. Math on an in-memory sample of rows.

Every row starts as its own cluster; each step merges the pair whose merge changes the
classification likelihood least, until one cluster is left. Two merge criteria:

* 'VVV' (mclust's default): a cluster C of n rows with scatter W costs
  n log(det(W / n) + beta (tr W + alpha) / n), the unconstrained Gaussian's
  classification likelihood kept finite for small clusters by the trace term
  (alpha = tr(W_all) / (n_all D), the data's average variance; beta = 1; mclust's
  hcVVV);
* 'EII': Ward's criterion, the rise of the total within-cluster sum of squares
  n_i n_j / (n_i + n_j) |mean_i - mean_j|^2 (mclust's hcEII).

The merges are kept, not the partitions: :meth:`Tree.cut` replays the first N - K of
them, so one tree serves every K (and every covariance model fitted from it). Before
merging, mclust transforms the rows (``use='SVD'``, its default since version 5.4): each
column standardised, then rotated onto its principal axes and scaled by the inverse
square root of the singular values (:func:`svd_transform`). For one feature mclust does
not build a tree: it starts from quantile classes (:func:`quantile_classes`).

Cost: O(N^2) memory and time for N rows, which is why bigem (like mclust's ``subset``
initialisation) builds the tree on a sample of at most a few thousand rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.errors import DataError, ParameterError

HC_MODELS = ("VVV", "EII")
HC_USES = ("SVD", "VARS", "STD")


def svd_transform(x: np.ndarray) -> np.ndarray:
    """mclust's 'SVD' transform: columns centred and scaled to unit standard deviation (R's
    ``scale``: n - 1 in the denominator), then Z = X V diag(1 / sqrt(s)) from the thin SVD
    X = U diag(s) V^T. Constant columns (no finite scaled value) are dropped, as mclust's
    ``dropCols`` does."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
    keep = sd > 0
    if not keep.any():
        raise DataError("hierarchical initialisation needs a feature that varies: every column of the sample is constant")
    z = (x[:, keep] - x[:, keep].mean(0)) / sd[keep]
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    good = s > s[0] * 1e-12
    return z @ vt[good].T / np.sqrt(s[good])


def standardise(x: np.ndarray) -> np.ndarray:
    """mclust's 'STD': columns centred and scaled to unit standard deviation."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0, ddof=1)
    keep = sd > 0
    return (x[:, keep] - x[:, keep].mean(0)) / sd[keep]


@dataclass(frozen=True)
class Tree:
    """The merges of an agglomerative clustering of ``n`` rows: ``pairs[s] = (i, j)``, i < j,
    means step s merged the cluster holding row j into the one holding row i (every
    cluster is named by its first row)."""

    pairs: np.ndarray  # (n - 1, 2) int64
    n: int

    def cut(self, k: int) -> np.ndarray:
        """Labels 0..k-1 of the n rows after the first n - k merges, numbered in the order
        of each cluster's first row (mclust's ``hclass``)."""
        if not 1 <= k <= self.n:
            raise ParameterError(f"cannot cut a tree of {self.n} rows into {k} clusters; use 1 <= K <= {self.n}")
        parent = np.arange(self.n)
        for i, j in self.pairs[: self.n - k]:
            parent[parent == j] = i
        _, first, inverse = np.unique(parent, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inverse]


def agglomerate(z: np.ndarray, model: str = "VVV", alpha: float = 1.0, beta: float = 1.0) -> Tree:
    """Merge rows z (n, D) float64 bottom-up by ``model``'s criterion (see the module
    docstring); ties go to the first pair in row order."""
    if model not in HC_MODELS:
        raise ParameterError(f"hierarchical clustering model must be one of {list(HC_MODELS)}, got {model!r}")
    z = np.ascontiguousarray(z, dtype=np.float64)
    n, D = z.shape
    if n < 2:
        return Tree(np.zeros((0, 2), dtype=np.int64), n)
    centred = z - z.mean(0)
    alpha = max(alpha * float((centred * centred).sum()) / (n * D), np.finfo(np.float64).eps)
    merger = _Merger(z, model, alpha, beta)
    return Tree(merger.run(), n)


class _Merger:
    """mclust's agglomeration, each merge the exact cheapest pair. mclust updates its VVV
    costs incrementally and they can drift from the exact ones: on its wreath data the
    last few merges differ, and on unscaled variables (``use='VARS'``) far earlier (on
    its diabetes data from merge 106 of 144, every cut from K = 2 to 9). The SVD and
    standardised rows agreed merge for merge on the data sets compared, up to ties.
    Clusters sit in slots 0..g-1; merging slots
    i < j puts the union in slot i and moves the last slot's cluster into slot j; the
    next merge is the cheapest pair, ties going to the pair that comes last in the order
    (1, 2), (1, 3), (2, 3), (1, 4), ... (the largest j, then the largest i). That is one
    of mclust's scans; its EII and VVV scans break exact ties in opposite directions, and
    ties of rounding go by each one's last bit, so tied merges may come in another order
    than mclust's (EII's trees on iris and Old Faithful; their cuts stayed mclust's).
    Singleton pairs are costed from (x_i - x_j) / sqrt(2) as mclust does, so exact ties
    stay exact."""

    def __init__(self, z: np.ndarray, model: str, alpha: float, beta: float) -> None:
        n, D = z.shape
        self.model, self.alpha, self.beta, self.D = model, alpha, beta, D
        self.count = np.ones(n)
        self.mean = z.copy()
        self.first = np.arange(n)  # each slot's cluster, named by its first row
        if model == "VVV":
            self.scatter = np.zeros((n, D, D))
            self.trace = np.zeros(n)
            self.term = np.full(n, np.log(alpha * beta))
        cost = np.empty((n, n))
        for i in range(n):  # (x_i - x_j) / sqrt(2), then its squared norm: mclust's rounding
            v = (z[i] - z) * 0.7071067811865476
            tr = (v * v).sum(1)
            if model == "EII":
                cost[i] = tr
            elif D >= 2:
                cost[i] = 2.0 * np.log(beta * (tr + alpha) / 2.0) - 2.0 * np.log(alpha * beta)
            else:
                cost[i] = self._term(np.full(n, 2.0), (v * v)[:, :, None]) - 2.0 * np.log(alpha * beta)
        np.fill_diagonal(cost, np.inf)
        self.cost = cost
        self.g = n
        self.colmin = np.full(n, np.inf)
        self.colarg = np.zeros(n, dtype=np.int64)
        for c in range(1, n):
            self._column(c)

    def _term(self, count: np.ndarray, scatter: np.ndarray) -> np.ndarray:
        """n log(det(W / n) + beta (tr W + alpha) / n) for clusters (m,) with scatters (m, D, D);
        det is 0 for n <= D, as in mclust's vvvtij."""
        D = self.D
        trace = np.trace(scatter, axis1=1, axis2=2)
        penalty = self.beta * (trace + self.alpha) / count
        det = np.zeros_like(count)
        big = count > D
        if big.any():
            sign, logdet = np.linalg.slogdet(scatter[big] / count[big][:, None, None])
            det[big] = np.where(sign > 0, np.exp(logdet), 0.0)
        return count * np.log(det + penalty)

    def _costs_with(self, i: int, others: np.ndarray) -> np.ndarray:
        """Merge costs of slot i with each slot of ``others``: the trace from the slots'
        traces, the determinant only where the union has more rows than features."""
        ni, nj = self.count[i], self.count[others]
        diff = self.mean[i] - self.mean[others]
        coef = ni * nj / (ni + nj)
        between = coef * (diff * diff).sum(1)
        if self.model == "EII":
            return between
        total = ni + nj
        trace = self.trace[i] + self.trace[others] + between
        det = np.zeros_like(total)
        big = np.flatnonzero(total > self.D)
        if big.size:
            d = diff[big]
            scatter = self.scatter[i] + self.scatter[others[big]] + coef[big, None, None] * d[:, :, None] * d[:, None, :]
            sign, logdet = np.linalg.slogdet(scatter / total[big, None, None])
            det[big] = np.where(sign > 0, np.exp(logdet), 0.0)
        merged = total * np.log(det + self.beta * (trace + self.alpha) / total)
        return merged - self.term[i] - self.term[others]

    def _column(self, c: int) -> None:
        """colmin[c], colarg[c]: the cheapest slot i < c to merge with slot c (the last such
        slot on a tie)."""
        vals = self.cost[:c, c]
        k = c - 1 - int(np.argmin(vals[::-1]))
        self.colmin[c], self.colarg[c] = vals[k], k

    def _pick(self) -> tuple[int, int]:
        """The cheapest pair of slots i < j among the first g, ties to the largest j then i."""
        low = self.colmin[1:self.g]
        j = self.g - 1 - int(np.argmin(low[::-1]))
        return int(self.colarg[j]), j

    def run(self) -> np.ndarray:
        n = self.count.shape[0]
        pairs = np.empty((n - 1, 2), dtype=np.int64)
        for step in range(n - 1):
            i, j = self._pick()
            a, b = self.first[i], self.first[j]
            pairs[step] = (min(a, b), max(a, b))
            self._merge(i, j)
        return pairs

    def _merge(self, i: int, j: int) -> None:
        ni, nj = self.count[i], self.count[j]
        diff = self.mean[j] - self.mean[i]
        total = ni + nj
        if self.model == "VVV":
            self.scatter[i] = self.scatter[i] + self.scatter[j] + (ni * nj / total) * np.outer(diff, diff)
            self.trace[i] = self.trace[i] + self.trace[j] + (ni * nj / total) * float(diff @ diff)
            self.term[i] = self._term(np.array([total]), self.scatter[i][None])[0]
        self.mean[i] = self.mean[i] + diff * (nj / total)
        self.count[i] = total
        self.first[i] = min(self.first[i], self.first[j])
        last = self.g - 1
        if j != last:  # the last slot's cluster moves into slot j
            self.count[j], self.mean[j], self.first[j] = self.count[last], self.mean[last], self.first[last]
            if self.model == "VVV":
                self.scatter[j], self.trace[j], self.term[j] = self.scatter[last], self.trace[last], self.term[last]
            self.cost[j, :] = self.cost[last, :]
            self.cost[:, j] = self.cost[:, last]
            self.cost[j, j] = np.inf
        self.cost[last, :] = np.inf
        self.cost[:, last] = np.inf
        self.g = last
        g = self.g
        others = np.arange(g)
        others = others[others != i]
        if others.size:
            new = self._costs_with(i, others)
            self.cost[i, others] = new
            self.cost[others, i] = new
        # columns whose cheapest partner was slot i or j, and columns i and j themselves, are
        # looked at again; the others can only have gained a cheaper entry in row i or j
        stale = np.zeros(g, dtype=bool)
        stale[1:] = (self.colarg[1:g] == i) | (self.colarg[1:g] == j)
        stale[[c for c in (i, j) if 0 < c < g]] = True
        for row in (i, j):
            if row >= g:
                continue
            cols = np.arange(row + 1, g)
            cols = cols[~stale[cols]]
            vals = self.cost[row, cols]
            better = (vals < self.colmin[cols]) | ((vals == self.colmin[cols]) & (row > self.colarg[cols]))
            self.colmin[cols[better]] = vals[better]
            self.colarg[cols[better]] = row
        for c in np.flatnonzero(stale):
            self._column(int(c))


def quantile_classes(x: np.ndarray, k: int) -> np.ndarray:
    """mclust's ``qclass`` for one feature: k classes between quantiles (R's default type 7,
    numpy's 'linear'), more quantiles tried when ties merge some, the narrowest gaps
    dropped when there are too many; labels 0..k-1 from the smallest values up."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    eps = (x.std(ddof=1) if x.size > 1 else 0.0) * np.sqrt(np.finfo(np.float64).eps)
    q = np.array([np.nan])
    m = k
    while q.size < k + 1:
        m += 1
        q = np.unique(np.quantile(x, np.linspace(0.0, 1.0, m)))
        if m > x.size + k + 1:  # fewer distinct values than classes
            raise DataError(f"cannot split a feature with {q.size} distinct values into {k} quantile classes; "
                            f"lower the number of components")
    if q.size > k + 1:
        drop = np.argsort(np.diff(q), kind="stable")[: q.size - k - 1]
        q = np.delete(q, drop)
    q[0], q[-1] = x.min() - eps, x.max() + eps
    labels = np.full(x.shape, -1, dtype=np.int64)
    for c in range(k):
        labels[(x >= q[c]) & (x < q[c + 1])] = c
    return labels
