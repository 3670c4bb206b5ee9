"""The Gaussian component: one set of fast kernels for every model with Gaussian parts
(the mixture, GaussianHMM's emissions, GMMHMM's mixtures of emissions). Math only.

Three E-step pieces, each batched over the K components and run on cache-sized
blocks of rows (the caller loops over blocks; see ``components.blocks``):

* :meth:`GaussianComponent.prepare` casts float64 parameters to the compute dtype
  once per E-step and re-expresses them about a centre ``c`` (the mean of the means),
  so the products never see the data's raw offset (float32 would cancel on it);
* :meth:`GaussianComponent.log_joint` gives log w_k + log N(x | mu_k, Sigma_k) for a
  block, component-major (K, n): each component's row is contiguous, so the softmax
  over K runs element-wise along n (vectorised) and the moment products read it as
  it is. Two forms compute it (``Prepared.form``): 'expanded', one product of the
  block's quadratic features [x, x_i x_j (or x^2), 1] with a (K, W) factor, for the
  diag structures and for full/tied ones of few features; 'whitened', the squared
  norms of y = (x - mu_k) U_k, for full/tied ones of more ('tied' shares one U);
* :class:`Moments` accumulates a chunk's responsibility-weighted first and second
  moments about each component's shift (the E-step's means), in float64.

The structure of the covariance (full, tied, diag, spherical; see ``covariance``)
picks the kernel and the M-step. Shapes: x (n, D), means (K, D), covariances and
precision factors in the structure's layout.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._core.numerics import matmul, squared_distances
from .._core.stats import additive, largest, shared, summed
from .._core.workspace import Workspace
from .covariance import MclustPrior, Prior, Structure, structure

from .gaps import PACKED_FEATURES, missing

LOG_2PI = math.log(2.0 * math.pi)
# mclust's rteps: sqrt(.Machine$double.eps), the mass under which its me() gives a component up
MCLUST_MIN_SUPPORT = float(torch.finfo(torch.float64).eps) ** 0.5

# Bytes of scratch per row block on CPU: small enough that the (K, n, D) whitened block
# stays in cache between its product, its norms and the moment product; large enough
# to amortise the fixed cost of each small operation (measured: 2-16 MB, best near 4).
_CPU_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class GaussianParams:
    """means (K, D), covariances and their precision factors (structure layout), float64."""

    means: Tensor
    covariances: Tensor
    prec_chol: Tensor

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    def to(self, device: torch.device | str) -> GaussianParams:
        return GaussianParams(self.means.to(device), self.covariances.to(device), self.prec_chol.to(device))


@additive
@dataclass(frozen=True, slots=True)
class GaussianStats:
    """Additive E-step statistics, float64, moments about ``shift`` (the E-step's means).

    n_k (K,): responsibility mass; sum_x (K, D): sum_n r_nk (x_n - s_k); sum_xx, by
    kernel: full (K, D, D) sum_n r_nk (x_n - s_k)(x_n - s_k)^T, diag (K, D) its
    diagonal, tied (D, D) its sum over k, each component's scatter about its own shift
    (a total scatter about one centre would carry the components' distances from it,
    squared, and lose the covariance to their rounding where they lie far apart: at
    1e8 standard deviations in float64). eps (0-d): the machine epsilon of the arithmetic the moments
    were summed in (the kernel dtype's; the largest over the parts added), which bounds
    the rounding they carry.

    unseen, gap_x, gap_xx: the diag kernel's rows with gaps (``missing_values='fiml'``):
    (K, D) the responsibility mass of the rows that miss each feature, and the first and
    second moments about the shift of their gaps completed by each component's mean and
    variance (the E-step's), kept apart: sum_x and sum_xx then hold the observed values
    only, each feature's over a count of n_k - unseen; 0.0 where every row observed every
    value. The diagonal and spherical M-steps read the observed values (exact EM over the
    classes alone: StepMix's and pomegranate's diagonal Gaussians estimate each feature
    from the rows that observed it); the others read them completed (:meth:`filled`: EM
    with the missing values latent too, the same maximum by smaller steps).
    """

    n_k: Tensor
    sum_x: Tensor
    sum_xx: Tensor
    shift: Tensor = shared()
    kernel: str = shared(default="full")
    eps: Tensor = largest(default_factory=lambda: torch.tensor(torch.finfo(torch.float64).eps, dtype=torch.float64))
    unseen: Tensor | float = summed(default=0.0)
    gap_x: Tensor | float = summed(default=0.0)
    gap_xx: Tensor | float = summed(default=0.0)

    @property
    def has_gaps(self) -> bool:
        """Whether the moments hold observed values only (see ``unseen``): a layout, not a count."""
        return isinstance(self.unseen, Tensor) and self.unseen.ndim == 2  # engines may ship 0.0 as a tensor

    def filled(self) -> GaussianStats:
        """These statistics with the gaps' completed moments added back (themselves without gaps)."""
        if not self.has_gaps:
            return self
        return GaussianStats(self.n_k, self.sum_x + self.gap_x, self.sum_xx + self.gap_xx, self.shift, self.kernel,
                             self.eps)

    def rebase(self, like: GaussianStats) -> GaussianStats:
        """These statistics about ``like``'s shift (see :meth:`about`)."""
        return self.about(like.shift)

    def about(self, new_shift: Tensor) -> GaussianStats:
        """The same statistics with moments about ``new_shift`` (exact algebra, float64).

        With d = shift - new, x - new = (x - shift) + d, so per component
        S1' = S1 + n d and S2' = S2 + S1 d^T + d S1^T + n d d^T (diag: its diagonal;
        tied: summed over k). Online EM needs this to average statistics gathered under
        different parameters.
        """
        if self.shift is new_shift or torch.equal(self.shift, new_shift):
            return self
        n_k, s1, s2 = self.n_k, self.sum_x, self.sum_xx
        d = self.shift - new_shift
        seen = n_k[:, None] - self.unseen  # the rows that observed each feature (diag with gaps)
        new_x = s1 + seen * d
        if self.kernel == "full":
            outer = s1[:, :, None] * d[:, None, :]
            new_xx = s2 + outer + outer.transpose(1, 2) + n_k[:, None, None] * d[:, :, None] * d[:, None, :]
        elif self.kernel == "tied":
            cross = s1.T @ d
            new_xx = s2 + cross + cross.T + (n_k[:, None] * d).T @ d
        else:
            new_xx = s2 + 2 * s1 * d + seen * d.square()
        if not self.has_gaps:
            return GaussianStats(n_k, new_x, new_xx, new_shift, self.kernel, self.eps)
        gap_x = self.gap_x + self.unseen * d
        gap_xx = self.gap_xx + 2 * self.gap_x * d + self.unseen * d.square()
        return GaussianStats(n_k, new_x, new_xx, new_shift, self.kernel, self.eps, self.unseen, gap_x, gap_xx)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Parameters in the kernel dtype, about ``centre``; built once per E-step call."""

    kernel: str  # the moments' layout: 'full', 'tied' or 'diag' (the structure's kernel)
    form: str  # how the log-density is computed: 'expanded', 'whitened' or 'tied'
    centre: Tensor  # (D,) kernel dtype
    means_c: Tensor  # (K, D) kernel dtype: means - centre
    shift_c64: Tensor  # (K, D) float64: means - centre, the moments' shift
    shift64: Tensor  # (K, D) float64: the means
    factor: Tensor  # whitened: (K, D+1, D) [U_k; -means_c_k U_k]; tied: (D, D); expanded: (K, W)
    factor_rows: Tensor  # expanded: -0.5 factor^T (W, K), for row-major output; else unused
    offset: Tensor  # tied: (K, D) means_c @ U; else unused (the factor's last row carries it)
    const: Tensor  # (K,) -0.5 * D log 2pi + log det U_k
    prec_chol64: Tensor  # float64 precision factors, to map whitened moments back (full)
    gaps: Any = None  # with gaps allowed: the gap kernels' factors (``gaussian_gaps.GapFactors``)

    @property
    def dtype(self) -> torch.dtype:
        return self.centre.dtype

    @property
    def n_components(self) -> int:
        return int(self.means_c.shape[0])


@dataclass(slots=True)
class Block:
    """One block of rows as the kernels read them: ``feats`` (see :func:`block_features`)
    and, for the full kernel, the whitened rows (K, n, D), which the log-density reads
    and the moments then consume."""

    feats: Tensor
    whitened: Tensor | None = None


@dataclass(slots=True)
class GappedBlock:
    """A block with gaps (NaN: not observed): its complete rows as a :class:`Block` for
    the usual kernels (None if there is none), its rows with gaps as a
    ``gaussian_gaps.GapBlock``, and the positions of each in the block (gap_rows None:
    the GapBlock holds every row of the block, in order)."""

    n: int
    complete: Block | None
    complete_rows: Tensor | None
    gaps: Any
    gap_rows: Tensor | None

    def gap_part(self, values: Tensor) -> Tensor:
        """The columns of (K, n) values that belong to the gap rows."""
        return values if self.gap_rows is None else torch.index_select(values, 1, self.gap_rows)


def expanded_form_is_exact_enough(means: Tensor, precisions: Tensor, covariances: Tensor,
                                  eps: float = float(torch.finfo(torch.float32).eps), budget: float = 1e-3) -> bool:
    """Whether an arithmetic of machine epsilon ``eps`` (float32's by default) can
    evaluate the expanded quadratic form, losing at most ``budget`` nats a row.

    precisions and covariances: (K, D) for a diagonal structure, (K, D, D) otherwise.
    About the centre, x^T P x - 2 mu^T P x + mu^T P mu cancels: for rows near component
    k the rounding of each term x_i x_j P_ij is about eps * (|mu_i mu_j| + |Sigma_ij|) |P_ij|
    (mu: the mean about the centre), and its sum over i, j is the "ratio".
    Allow float32 while eps * sum_d ratio_d < 1e-3, i.e. 1e-3 nats in a row's
    log-density at worst. In the statistics the rounding of each row's square is
    independent, so it averages out over the rows: at ratio 1943 (eps * ratio = 2.3e-4)
    a float32 fit's variances differed from the float64 fit's by 2e-5 relative, its
    means by 1.5e-6 (measured, K=3, D=8, 1e5 rows; an earlier per-feature bound of
    1e-5 sent typical data, such as scikit-learn-style initial means with unit
    variances, to float64 at 1.5-2x the cost). A component collapsed to reg_covar far
    from the centre fails this and gets float64; one that float64 cannot resolve either
    (a float64 model's component a few thousand standard deviations from the others,
    or of a spread 1e-7 of its distance from the centre) gets a per-component form (see
    ``prepare``). float64
    is held to ``FLOAT64_BUDGET``, not 1e-3: at 1e-3, clusters 1e6 standard deviations
    apart kept the expanded form and lost 1e-4 nats a row and 1e-4 of their covariances
    to it, where scikit-learn's full fit (each component about its mean) is exact.
    """
    m = (means - means.mean(0)).abs()
    if precisions.ndim == 2:
        ratio = ((m.square() + covariances) * precisions).sum(1)  # (K,)
    else:
        ratio = ((m[:, :, None] * m[:, None, :] + covariances.abs()) * precisions.abs()).sum((1, 2))
    return bool(eps * ratio.max() < budget)


def well_conditioned_for_float32(covariances: Tensor) -> bool:
    """Whether float32 sums can resolve every full/tied covariance: its condition number
    must stay well below 1/eps (1e5 against 8e6), or rounding in the moments swamps the
    smallest eigenvalue. A component collapsed onto a subspace fails this and gets float64."""
    eig = torch.linalg.eigvalsh(covariances)
    cond = eig.max(-1).values / eig.min(-1).values.clamp(min=torch.finfo(torch.float64).tiny)
    return bool(cond.max() < 1e5)


# Full and tied structures of at most this many features take the expanded form: its
# one (K x W) @ (W x n) product, W = D + D(D+1)/2 + 1, beat the whitening (a batched
# product of tiny matrices) and the per-row norms over D (measured at K=8, D=4, 1e6
# rows: 0.26 s per GaussianHMM iteration whitened against 0.17 s in the previous
# HMM-only code; see BENCHMARKS.md); more features make W grow as D^2 / 2.
EXPANDED_MAX_D = 8


def _width(form: str, kernel: str, D: int) -> int:
    """Columns of a block's features: xc (tied), [xc, 1] (whitened), [xc, xc^2, 1]
    (expanded, diagonal), [xc, xc_i xc_j (i <= j), 1] (expanded, full or tied)."""
    if form == "tied":
        return D
    if form == "whitened":
        return D + 1
    return 2 * D + 1 if kernel == "diag" else D + D * (D + 1) // 2 + 1


def block_features(p: Prepared, x: Tensor, ws: Workspace) -> Tensor:
    """What the kernels read for a block of rows x (any float dtype), centred, in a
    reused buffer: xc = x - centre (n, D) for the tied form; [xc, 1] (n, D+1) for the
    whitened form (the ones column turns the whitening's offset and the moments' counts
    into the same products); the quadratic features [xc, xc^2, 1] (diag) or
    [xc, xc_i xc_j (i <= j), 1] for the expanded form, the one matrix that both the
    log-density (its expanded quadratic form) and the moments (rw [x, x x, 1] = [first,
    second, n_k]) multiply, so the products are formed once. Either way its first D
    columns are the centred rows.

    The buffer takes the layout of x: column-major rows (a file source's blocks, whose
    columns are decoded one by one) give a transposed view of a feature-major buffer.
    Transposing while centring cost 15x a straight pass (720 vs 50 us per 24k rows
    of 16 features); the products take either layout at about the same speed, but
    round differently. So few features (at most ``EXPANDED_MAX_D``) always go
    feature-major, where writing them transposed costs nothing (D=4: 38 against 63 us
    per 32k rows; D=2: 35 against 143): their log-densities are then the same bit for
    bit whatever the source's layout, as the whitened form's are.
    """
    n, D = x.shape
    dt = p.centre.dtype
    width = _width(p.form, p.kernel, D)
    if (x.stride(0) == 1 or D <= EXPANDED_MAX_D) and D > 1:
        feats = ws.get("rows_features_t", (width, n), dt, x.device).T
    else:
        feats = ws.get("rows_features", (n, width), dt, x.device)
    xc = torch.sub(x, p.centre, out=feats[:, :D])
    if p.form == "tied":
        return xc
    if p.form == "expanded":
        if p.kernel == "diag":
            torch.mul(xc, xc, out=feats[:, D : 2 * D])
        else:
            at = D
            for i in range(D):  # row i of the upper triangle: xc_i * xc_i..D-1
                torch.mul(xc[:, i : i + 1], xc[:, i:], out=feats[:, at : at + D - i])
                at += D - i
    feats[:, width - 1].fill_(1.0)
    return feats


def whiten(p: Prepared, feats: Tensor, ws: Workspace) -> Tensor:
    """full only: y_k = (x - mu_k) U_k for every component from [xc, 1], one batched
    product into a reused (K, n, D) buffer. The log-density reads its squared norms,
    the moments reuse it."""
    n = feats.shape[0]
    K, _, D = p.factor.shape
    y = ws.get("whitened", (K, n, D), feats.dtype, feats.device)
    return torch.bmm(feats.expand(K, n, D + 1), p.factor, out=y)


# Rounding, in units of the compute dtype's eps times a component's squared distance
# from the centre of the means, below which a diagonal variance is not resolved from
# zero (see GaussianComponent._unresolved_to_zero): the moments' float32 partial sums of
# 256 rows carry about 16 eps, and the shift to each component's mean doubles it.
_UNRESOLVED = 64
_EPS64 = float(torch.finfo(torch.float64).eps)
# What a float64 model's expanded form may lose to its cancellation, in nats a row:
# beyond it (components a few thousand standard deviations apart) the rows
# are taken about each component's own mean (see GaussianComponent.prepare)
FLOAT64_BUDGET = 1e-9

# Rows per float32 partial sum of the diag/spherical moment product: the partials are
# added in float64, so float32 rounding accumulates over at most this many rows.
_PARTIAL_ROWS = 256


def weighted_sums(rw: Tensor, feats: Tensor) -> Tensor:
    """rw @ feats in float64: (K, n) @ (n, W) -> (K, W).

    A float64 product would need a float64 copy of feats (n x W): that copy and the
    float64 GEMM cost more than the rest of the diag E-step together. Instead, float32
    products over runs of ``_PARTIAL_ROWS`` rows (one batched product), whose partial
    sums are added in float64: each partial carries rounding of about sqrt(256) eps,
    independent between partials, so over n rows the total's relative error shrinks
    like 256 eps / sqrt(n). Float64 inputs take one float64 product.
    """
    if feats.dtype == torch.float64:
        return rw.to(torch.float64) @ feats
    K, n = rw.shape
    W = feats.shape[1]
    whole = n - n % _PARTIAL_ROWS
    total = torch.zeros(K, W, dtype=torch.float64, device=feats.device)
    if whole:
        runs = whole // _PARTIAL_ROWS
        # (runs, K, 256) and (runs, 256, W) views of either layout, never a copy: rw may be
        # an HMM's (n, K) posteriors transposed, feats a feature-major buffer transposed
        a, b = rw[:, :whole], feats[:whole]
        if a.stride(1) == 1:
            a = a.reshape(K, runs, _PARTIAL_ROWS).transpose(0, 1)
            b = b.reshape(runs, _PARTIAL_ROWS, W) if b.stride(1) == 1 else b.T.reshape(W, runs, _PARTIAL_ROWS).permute(1, 2, 0)
            total += torch.bmm(a, b).sum(0, dtype=torch.float64)
        else:  # row-major responsibilities: the transposed product, (W, 256) @ (256, K) per run
            a = a.T.reshape(runs, _PARTIAL_ROWS, K)
            b = b.T.reshape(W, runs, _PARTIAL_ROWS).transpose(0, 1) if b.stride(0) == 1 else (
                b.reshape(runs, _PARTIAL_ROWS, W).transpose(1, 2))
            total += torch.bmm(b, a).sum(0, dtype=torch.float64).T
    if whole < n:
        total += rw[:, whole:] @ feats[whole:]
    return total


def batched_weighted_sums(rw: Tensor, rows: Tensor) -> Tensor:
    """sum_n rw_kn rows_kn in float64: (K, n) and (K, n, W) -> (K, W), each component its
    own rows (rows with gaps completed by each component's conditional mean). Float32
    products over runs of ``_PARTIAL_ROWS`` rows, added in float64, as
    :func:`weighted_sums`; float64 rows take one float64 product."""
    K, n, W = rows.shape
    if rows.dtype == torch.float64:
        return torch.bmm(rw.to(torch.float64)[:, None, :], rows)[:, 0]
    whole = n - n % _PARTIAL_ROWS
    total = torch.zeros(K, W, dtype=torch.float64, device=rows.device)
    if whole:
        runs = whole // _PARTIAL_ROWS
        a = rw[:, :whole].reshape(K * runs, 1, _PARTIAL_ROWS)
        b = rows[:, :whole].reshape(K * runs, _PARTIAL_ROWS, W)  # a view when n is whole runs
        total += torch.bmm(a, b).view(K, runs, W).sum(1, dtype=torch.float64)
    if whole < n:
        total += torch.bmm(rw[:, None, whole:], rows[:, whole:])[:, 0]
    return total


# Rows per float32 partial of the full-covariance second moments (one (D x D) Gram
# product per component and run, added in float64). CPU blocks hold 2k-8k rows (one
# or two runs: splitting them finer cost 30% of the Gram product); a GPU block holds
# 1e5-1e6 rows, where one float32 sum over all of them cost three digits of the
# log-likelihood (measured on an H200: 9e-6 relative at N=4e6, D=16, K=8).
GRAM_ROWS = 4096


def gram_sums(y: Tensor) -> Tensor:
    """sum_n y_kn y_kn^T in float64 from (K, n, D) rows: float32 Gram products over runs
    of ``GRAM_ROWS`` rows (one batched product), added in float64. Blocks of a whole
    number of runs reshape for free; a chunk's last, shorter block pays one copy."""
    K, n, D = y.shape
    if y.dtype == torch.float64 or n <= GRAM_ROWS:
        return torch.bmm(y.transpose(1, 2), y).to(torch.float64)
    whole = n - n % GRAM_ROWS
    runs = y[:, :whole].reshape(K * (whole // GRAM_ROWS), GRAM_ROWS, D)
    total = torch.bmm(runs.transpose(1, 2), runs).reshape(K, -1, D, D).sum(1, dtype=torch.float64)
    if whole < n:
        tail = y[:, whole:]
        total += torch.bmm(tail.transpose(1, 2), tail)
    return total


class Moments:
    """Float64 accumulator of one chunk's responsibility-weighted moments.

    :meth:`add` takes a block and its weighted responsibilities; :meth:`result`
    returns :class:`GaussianStats` with sum_x (K, D) = sum_n rw_nk (x_n - s_k) about
    each component's shift s_k, and
      full:  sum_xx (K, D, D) = sum_n rw_nk (x_n - s_k)(x_n - s_k)^T, accumulated in the
             whitened coordinates y = (x - s_k) U_k that the log-density already computed
             (batched products over K of sqrt(rw)-scaled rows, float32 partials over
             runs of rows added in float64: :func:`gram_sums`), then mapped back
             once per chunk by triangular solves in float64.
             Centred on each component's own shift, nothing cancels; whitened, every
             direction is O(1), so float32 rounding is relative in every eigen-direction;
      diag:  sum_xx (K, D) = sum_n rw_nk (x_n - s_k)^2, from the product
             rw [x, x^2, 1] about the centre (:func:`weighted_sums`: float32 partials over
             256 rows, added in float64; x^2 formed in the kernel dtype, float32 only
             where :func:`expanded_form_is_exact_enough`), shifted once per chunk;
      tied:  sum_xx (D, D) = sum_k sum_n rw_nk (x_n - s_k)(x_n - s_k)^T: the tied form
             sums the total scatter about the centre in float64 and takes the
             between-component part away once per chunk (the form is kept to
             components that float64 resolves about the centre: see ``prepare``);
             the expanded and whitened forms sum full's over k.
    First moments come from rw x about the centre (:func:`weighted_sums`; float64 for
    tied), shifted once per chunk. Responsibilities arrive component-major, (K, n).
    """

    def __init__(self, p: Prepared, ws: Workspace) -> None:
        self.p, self.ws = p, ws
        K, D = p.shift_c64.shape
        f64 = dict(dtype=torch.float64, device=p.shift_c64.device)
        self.n_k = torch.zeros(K, **f64)  # the tied form only; the others count in raw's last column
        self.raw = torch.zeros(K, _width(p.form, p.kernel, D), **f64)  # rw times the block's features
        second = {"whitened": (K, D, D), "tied": (D, D)}.get(p.form)
        self.second = None if second is None else torch.zeros(second, **f64)

    def add(self, block: Block, rw: Tensor, w: Tensor | None) -> None:
        """One block and rw (K, n) weighted responsibilities; w (n,) the rows' weights
        (sum_k rw_nk; None: all ones). Consumes the block's whitened rows."""
        form, feats = self.p.form, block.feats
        if form == "expanded":
            self.raw += weighted_sums(rw, feats)
            return
        if form == "whitened":
            self.raw += weighted_sums(rw, feats)  # its last column: n_k
            y = whiten(self.p, feats, self.ws) if block.whitened is None else block.whitened
            y.mul_(rw.sqrt()[:, :, None])
            self.second += gram_sums(y)
            return
        self.n_k += rw.sum(1).double()  # a cascade sum per block; float64 across blocks
        x64 = self.ws.get("rows64", tuple(feats.shape), torch.float64, feats.device)
        x64.copy_(feats)
        self.raw += rw.to(torch.float64) @ x64
        xw = x64 if w is None else x64 * w.double()[:, None]
        self.second += xw.T @ x64

    def result(self) -> GaussianStats:
        p = self.p
        shift_c = p.shift_c64
        K, D = shift_c.shape
        n_k = self.n_k if p.form == "tied" else self.raw[:, -1]
        first = self.raw[:, :D]
        sum_x = first - n_k[:, None] * shift_c
        if p.form == "whitened":  # S_k = U_k^-T S^w_k U_k^-1
            u = p.prec_chol64
            left = torch.linalg.solve_triangular(u.transpose(1, 2), self.second, upper=False)
            sum_xx = torch.linalg.solve_triangular(u, left, upper=True, left=False)
            if p.kernel == "diag":  # the diagonal structures taken whitened (see GaussianComponent.prepare)
                sum_xx = torch.diagonal(sum_xx, dim1=1, dim2=2)
            elif p.kernel == "tied":  # tied taken whitened: each component's scatter, summed
                sum_xx = sum_xx.sum(0)
        elif p.form == "tied":  # the total scatter about the centre, less the between-component part
            cross = first.T @ shift_c
            sum_xx = self.second - cross - cross.T + (n_k[:, None] * shift_c).T @ shift_c
        elif p.kernel == "diag":
            sum_xx = self.raw[:, D : 2 * D] - 2.0 * shift_c * first + n_k[:, None] * shift_c.square()
        else:  # expanded pairs about the centre, then about each shift (tied: summed over k)
            rows, cols = torch.triu_indices(D, D, device=shift_c.device)
            m2 = torch.zeros(K, D, D, dtype=torch.float64, device=shift_c.device)
            m2[:, rows, cols] = self.raw[:, D : self.raw.shape[1] - 1]
            m2 = m2 + m2.transpose(1, 2) - torch.diag_embed(torch.diagonal(m2, dim1=1, dim2=2))
            outer = shift_c[:, :, None] * first[:, None, :]
            sum_xx = m2 - outer - outer.transpose(1, 2) + n_k[:, None, None] * shift_c[:, :, None] * shift_c[:, None, :]
            if p.kernel == "tied":
                sum_xx = sum_xx.sum(0)
        # whitened moments meet the centre in a difference, not a square: their rounding,
        # relative to a component's squared distance from the centre, is eps^2
        eps = torch.finfo(p.dtype).eps ** (2 if p.form == "whitened" else 1)
        eps = torch.full((), eps, dtype=torch.float64, device=n_k.device)
        if p.gaps is not None and p.kernel == "diag":  # rows that may have gaps: one layout for every chunk (the wire's)
            zero = torch.zeros(K, D, dtype=torch.float64, device=n_k.device)
            return GaussianStats(n_k, sum_x, sum_xx, p.shift64, p.kernel, eps, zero, zero, zero)
        return GaussianStats(n_k, sum_x, sum_xx, p.shift64, p.kernel, eps)


class GappedMoments:
    """The moments of a chunk whose blocks may have gaps: the complete rows' through
    :class:`Moments`, the rows with gaps' through ``gaussian_gaps.GapMoments``, summed.
    A chunk without gaps gives exactly :class:`Moments`' statistics."""

    def __init__(self, p: Prepared, ws: Workspace) -> None:
        self.p, self.ws = p, ws
        self.moments = Moments(p, ws)
        self.gap = None

    def add(self, block: Block | GappedBlock, rw: Tensor, w: Tensor | None) -> None:
        if not isinstance(block, GappedBlock):
            self.moments.add(block, rw, w)
            return
        if block.complete is not None:
            rows = block.complete_rows
            self.moments.add(block.complete, torch.index_select(rw, 1, rows), None if w is None else w[rows])
        if self.gap is None:
            self.gap = gaussian_gaps().GapMoments(self.p, self.p.gaps, self.ws)
        self.gap.add(block.gaps, block.gap_part(rw))

    def result(self) -> GaussianStats:
        stats = self.moments.result()
        return stats if self.gap is None else stats + self.gap.result()


def gaussian_gaps():
    """The gap kernels' module (it builds on this one, so it is imported when first used)."""
    from . import gaussian_gaps as kernels

    return kernels


class GaussianComponent:
    """K Gaussians of one covariance structure: E-step kernels, M-step, sampling.

    ``reg_covar`` is added to every variance after each M-step; ``prior`` (hmmlearn's
    conjugate prior) turns the M-step into its MAP update; ``advice`` ends the message
    of a covariance that cannot be factored (it names the estimator's own parameters);
    ``dtype`` is the per-block arithmetic (statistics are float64 whatever it is);
    ``gaps``: rows may have gaps (NaN: not observed), which the E-step treats exactly
    (``gaussian_gaps``); blocks without one take the usual kernels.
    """

    letters = "mc"  # what the M-step can update: means, covariances
    translatable = True
    failure = (
        "Fitting the mixture model failed because some components have ill-defined empirical covariance "
        "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
        "increase reg_covar, or scale the input data."
    )

    def __init__(
        self,
        covariance_type: str | Structure = "full",
        reg_covar: float = 0.0,
        dtype: torch.dtype = torch.float64,
        *,
        prior: Prior | None = None,
        advice: str = "pass symmetric positive-definite matrices",
        gaps: bool = False,
    ) -> None:
        self.structure = structure(covariance_type) if isinstance(covariance_type, str) else covariance_type
        self.covariance_type = self.structure.name
        self.reg_covar = float(reg_covar)
        self.dtype = self.row_dtype = dtype
        self.prior = prior
        self.advice = advice
        self.gaps = bool(gaps)
        self._ws = Workspace()

    @property
    def min_support(self) -> float:
        """The responsibility mass (in average rows) under which a component has lost its
        support. Under mclust's prior, mclust's: sqrt(machine epsilon), as its ``me``
        keeps a nearly empty component (the prior keeps its covariance proper) until
        then; otherwise the mixture's floor."""
        from .mixture import _MIN_SUPPORT

        return MCLUST_MIN_SUPPORT if isinstance(self.prior, MclustPrior) else _MIN_SUPPORT

    @property
    def regularised(self) -> bool:
        """Whether the M-step maximises likelihood plus a prior or regulariser (so the
        likelihood alone may dip slightly near convergence)."""
        return (self.prior is not None and self.prior.active) or self.reg_covar > 0

    # ------------------------------------------------------------------ parameters
    def make_params(self, means: Tensor, covariances: Tensor) -> GaussianParams:
        """Float64 parameters with their precision factors (NumericalError if they have none)."""
        means, covariances = means.to(torch.float64), covariances.to(torch.float64)
        return GaussianParams(means, covariances, self.structure.precision_cholesky(covariances, self.advice))

    def translate(self, p: GaussianParams, offset: Tensor) -> GaussianParams:
        return GaussianParams(p.means + offset.to(p.means), p.covariances, p.prec_chol)

    def moved(self, offset: Tensor) -> GaussianComponent:
        """The same component for rows moved by ``offset`` (D,): its prior's means move too."""
        if self.prior is None:
            return self
        clone = copy.copy(self)
        clone.prior = dataclasses.replace(self.prior, means_prior=self.prior.tensors("cpu")[0] + offset.double().cpu())
        return clone

    def location(self, p: GaussianParams) -> Tensor:
        return p.means.mean(0)

    def at(self, centres: Tensor) -> GaussianParams:
        """Unit covariances at ``centres`` (K, D)."""
        K, D = centres.shape
        eye = torch.eye(D, dtype=torch.float64, device=centres.device).expand(K, D, D)
        return self.make_params(centres, self.structure.from_dense(eye).clone())

    def embed(self, x: Tensor) -> Tensor:
        """Rows in the space k-means seeds in: as they are."""
        return x

    def centres_of(self, p: GaussianParams) -> Tensor:
        return p.means

    def from_precision_cholesky(self, means: Tensor, prec_chol: Tensor) -> GaussianParams:
        prec_chol = prec_chol.to(torch.float64)
        return GaussianParams(means.to(torch.float64), self.structure.covariance(prec_chol), prec_chol)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * D + self.structure.n_parameters(K, D)

    def to_tensors(self, p: GaussianParams) -> dict[str, Tensor]:
        return {"means": p.means, "covariances": p.covariances}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> GaussianParams:
        return self.make_params(tensors["means"], tensors["covariances"])

    def flatten(self, p: GaussianParams) -> Tensor:
        return torch.cat([p.means.reshape(-1), self.structure.flatten(p.covariances)])

    def unflatten(self, vector: Tensor, like: GaussianParams) -> GaussianParams:
        K, D = like.means.shape
        means = vector[: K * D].reshape(K, D)
        return self.make_params(means, self.structure.unflatten(vector[K * D :], K, D))

    def flat_size(self, K: int, D: int) -> int:
        return K * D + self.structure.flat_size(K, D)

    # ------------------------------------------------------------------ E-step
    def form(self, D: int) -> str:
        """How the E-step computes log-densities for D features (see the module docstring)."""
        st = self.structure
        if st.kernel == "diag" or D <= EXPANDED_MAX_D:
            return "expanded"
        return "whitened" if st.kernel == "full" else "tied"

    def kernel_dtype(self, p: GaussianParams) -> torch.dtype:
        """The compute dtype, except float64 where float32 cannot resolve the parameters:
        the expanded form where it would cancel, the whitened and tied forms where a
        covariance is too ill-conditioned for float32 sums to keep it positive definite."""
        if self.dtype == torch.float64:
            return self.dtype
        D = p.means.shape[1]
        if self.form(D) != "expanded":
            exact = well_conditioned_for_float32(p.covariances)
        else:
            exact = self._expanded_resolves(p, float(torch.finfo(torch.float32).eps))
        return self.dtype if exact else torch.float64

    def _expanded_resolves(self, p: GaussianParams, eps: float, budget: float = 1e-3) -> bool:
        """:func:`expanded_form_is_exact_enough` for these parameters, in an arithmetic of
        machine epsilon ``eps``, losing at most ``budget`` nats a row."""
        st = self.structure
        K, D = p.means.shape
        if st.kernel == "diag":
            return expanded_form_is_exact_enough(p.means, st.precisions(p.prec_chol, D), st.variances(p.covariances, D),
                                                 eps, budget)
        u = st.dense(p.prec_chol, K, D)
        return expanded_form_is_exact_enough(p.means, u @ u.transpose(1, 2), st.dense(p.covariances, K, D), eps,
                                             budget)

    def prepare(self, p: GaussianParams, device: torch.device) -> Prepared:
        """Cast and centre the parameters for the kernels (float64 in, kernel dtype out).

        The centre is the plain mean of the means: a function of the shift alone, so the
        M-step can recompute it from the statistics.

        Where even float64 cannot resolve the expanded form about that centre (to
        ``FLOAT64_BUDGET`` for a float64 model: a component a few thousand standard
        deviations from the others, whose terms, ~distance^2, cancel to a log-density and
        a variance of ~1), or tied's own form its scatter about it, the rows are taken
        about each component's own mean instead: the whitened form (the diagonal
        structures' and the tied one's factors as K matrices). Their rows and means meet in a
        difference, not a square, so float64 loses eps * distance, not eps * distance^2;
        and the whitened form's per-component moments need no common centre, so it
        takes the origin: a row then meets only its own component's mean, and a
        component 1e30 away (an outlier) costs the others nothing.
        """
        p = p.to(device)
        dtype = self.kernel_dtype(p)
        means, prec_chol, st = p.means, p.prec_chol, self.structure
        K, D = means.shape
        form = self.form(D)
        # tied's own form sums its scatter about the centre: only where float64 resolves it
        # (float32 rows carry their own rounding: a float32 model's float64 arithmetic keeps 1e-3)
        budget = FLOAT64_BUDGET if self.dtype == torch.float64 else 1e-3
        unresolved = (form == "tied" or form == "expanded" and dtype == torch.float64) and not self._expanded_resolves(
            p, _EPS64, budget)
        if unresolved:
            form = "whitened"
            prec_chol = st.dense(prec_chol, K, D)  # (K, D, D); log det U_k below from the structure's layout
        centre64 = means.mean(0) if form != "whitened" or self.form(D) == "whitened" else torch.zeros_like(means[0])
        means_c64 = means - centre64
        logdet = st.log_det_precision(p.prec_chol, D)
        const = -0.5 * D * LOG_2PI + logdet * torch.ones(K, dtype=means.dtype, device=means.device)
        offset = const.new_zeros(0)
        if form == "whitened":
            shifted = torch.einsum("kd,kde->ke", means_c64, prec_chol)[:, None, :]
            factor = torch.cat([prec_chol, -shifted], 1)  # rows for [x, 1]: one product whitens
        elif form == "tied":
            factor = prec_chol
            offset = means_c64 @ prec_chol
        elif st.kernel == "diag":  # spherical: a diag whose precisions are equal across features
            prec = st.precisions(prec_chol, D)
            quad = (means_c64.square() * prec).sum(1)
            factor = torch.cat([-2.0 * means_c64 * prec, prec, quad[:, None]], 1)  # columns for [x, x^2, 1]
        else:  # (x - m)^T P (x - m): x_i x_j P_ij (twice off the diagonal), -2 (P m)_i x_i, m^T P m
            u = st.dense(prec_chol, K, D)
            prec = u @ u.transpose(1, 2)
            rows, cols = torch.triu_indices(D, D, device=means.device)
            pairs = prec[:, rows, cols] * torch.where(rows == cols, 1.0, 2.0).to(prec)
            pm = torch.einsum("kde,ke->kd", prec, means_c64)
            factor = torch.cat([-2.0 * pm, pairs, (pm * means_c64).sum(1, keepdim=True)], 1)
        gaps = gaussian_gaps().factors(st, p.prec_chol, p.covariances, means_c64, dtype, self._ws) if self.gaps else None
        return Prepared(
            st.kernel, form, centre64.to(dtype), means_c64.to(dtype), means_c64, means,
            factor.to(dtype), (-0.5 * factor).T.contiguous().to(dtype) if form == "expanded" else factor.new_zeros(0),
            offset.to(dtype), const.to(dtype), prec_chol, gaps,
        )

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        """Rows per block: the scratch of one block fits the CPU's cache, or one launch on a GPU."""
        runs = GRAM_ROWS  # blocks of whole runs of the float32 partial sums
        itemsize = torch.finfo(self.dtype).bits // 8
        if device.type != "cpu":  # GPUs want few, large launches; cap the (K, n, D) scratch at 256 MB
            rows = (256 << 20) // (K * max(D, _width("expanded", self.structure.kernel, D)) * itemsize)
            return max(4 * runs, rows // runs * runs)
        form = self.form(D)
        if form != "expanded":  # the (K, n, D) whitened rows
            rows = _CPU_BLOCK_BYTES // max(K * D * itemsize, 1)
            return max(256, rows if rows <= runs else rows // runs * runs)
        # expanded: the (n, W) features and the (K, n) log-joints; large blocks amortise
        # the fixed cost of each element-wise step (measured best: 3-6 MB)
        per_row = (_width(form, self.structure.kernel, D) + K) * itemsize
        return max(1024, _CPU_BLOCK_BYTES // per_row // 1024 * 1024)  # whole float32 partials

    def block(self, p: Prepared, x: Tensor, read: slice | None = None, mask: Tensor | None = None) -> Block | GappedBlock:
        """The kernels' view of rows x (n, D). With gaps allowed, ``read`` (the rows'
        positions in the order :meth:`expect_gaps` gave for their chunk) and ``mask``
        (their missing mask) come from the E-step, which has both: the block then takes
        its mask and its rows' numbers of gaps and pattern codes from the chunk's rather
        than deriving them again (a few small passes per block, each on one thread)."""
        if self.gaps:
            ahead = None
            if read is not None and mask is not None and p.gaps is not None and p.kernel != "diag":
                ahead = self._expected(read, x.shape[1], x.device)
                mask = mask if int(ahead[0][-1]) > 0 else None  # read by number of gaps: the last has the most
            else:  # full and tied find their missing patterns on the host: a read that defers nothing
                mask = missing(x, self._ws, defer=p.kernel == "diag")
            if mask is not None:
                return self._gapped(p, x, mask, ahead)
        feats = block_features(p, x, self._ws)
        return Block(feats, whiten(p, feats, self._ws) if p.form == "whitened" else None)

    def expect_gaps(self, p: Prepared, mask: Tensor) -> Tensor | None:
        """The (n, D) missing mask of a chunk about to be read block by block: its missing
        patterns are factored now, in one batch (``gaussian_gaps.PatternCache.expect``),
        rather than block by block as they turn up. Returns the order in which to read
        the rows (None: as they are): full and tied structures take the rows with no gap
        first, then those that miss 1, 2, ... coordinates, so that most blocks hold rows
        that all miss as many coordinates (one run of the gap kernels) or none (the usual
        kernels); a stable sort of small integers, 1-2% of an iteration."""
        if p.gaps is None or p.kernel == "diag":
            return None
        count, codes = p.gaps.cache.expect(mask)
        n, ws = count.shape[0], self._ws
        if mask.shape[1] < 256:
            count = ws.get("gap_chunk_count", (n,), torch.uint8, count.device).copy_(count)
        # into workspace buffers: the chunk's order would otherwise map fresh pages each pass
        out = ws.get("gap_chunk_sorted", (n,), count.dtype, count.device), ws.get("gap_chunk_order", (n,), torch.int64, count.device)
        order = torch.sort(count, stable=True, out=out)[1]
        if codes is not None:  # the rows' pattern codes in the same order, for the blocks (``_expected``)
            torch.index_select(codes, 0, order, out=ws.get("gap_chunk_codes", (n,), codes.dtype, codes.device))
        return order

    def _expected(self, read: slice, D: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """The numbers of gaps and pattern codes (None: D features have none) of the rows
        at positions ``read`` of the order :meth:`expect_gaps` gave for the chunk being
        read: its workspace buffers, which this thread's E-step filled."""
        ws, end = self._ws, read.stop
        count = ws.get("gap_chunk_sorted", (end,), torch.uint8 if D < 256 else torch.int64, device)[read]
        codes = ws.get("gap_chunk_codes", (end,), torch.int64, device)[read] if D <= PACKED_FEATURES else None
        return count, codes

    def _gapped(self, p: Prepared, x: Tensor, mask: Tensor, ahead: tuple[Tensor, Tensor | None] | None = None) -> GappedBlock:
        # full (whitened) and diagonal structures: a complete row costs the gap kernels no
        # more than the usual ones, so every row of the block goes their way in one pass;
        # the others (the tied form's one shared product, the expanded form of few
        # features) keep their complete rows on the usual kernels
        if p.form == "whitened" or p.kernel == "diag":
            return GappedBlock(x.shape[0], None, None, gaussian_gaps().block(p, p.gaps, x, mask, self._ws, ahead), None)
        has = mask.any(1)
        gap_rows = torch.nonzero(has).reshape(-1)
        complete_rows = torch.nonzero(~has).reshape(-1)
        complete = None
        if complete_rows.numel():
            rows = x[complete_rows]
            feats = block_features(p, rows, self._ws)
            complete = Block(feats, whiten(p, feats, self._ws) if p.form == "whitened" else None)
        ahead = None if ahead is None else tuple(None if a is None else a[gap_rows] for a in ahead)
        gap = gaussian_gaps().block(p, p.gaps, x[gap_rows], mask[gap_rows], self._ws, ahead)
        return GappedBlock(x.shape[0], complete, complete_rows, gap, gap_rows)

    def centred(self, p: Prepared, block: Block) -> Tensor:
        """The block's rows minus the centre (n, D)."""
        return block.feats[:, : p.means_c.shape[1]]

    def log_joint(self, p: Prepared, block: Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + log N(x | mu_k, Sigma_k) of a block.  -> (K, n), contiguous; with
        ``into``, row-major (n, K) there.

        whitened: squared norms of the whitened rows; tied: one (n x D) @ (D x D) product;
        expanded: the expanded quadratic form as one (K x W) @ (W x n) product whose
        scale and bias carry the constants, capped at the constants (rounding can push a
        tiny distance below zero). The component-major product is also the faster one:
        with n as its long output side the (n x 2D+1) @ (2D+1 x K) form ran 2-3x slower
        in MKL (measured at K=8, D=16). Row-major output (an HMM's emissions) goes
        through numpy's BLAS instead (``numerics.matmul``): 0.28 ms per 61k rows at K=8,
        W=9 against 0.71 ms for MKL's component-major product and a transposing copy;
        the constants ride on the ones column, and there is no cap (the forward pass
        shifts every row by its maximum, where a rounding error of the cap is nothing).
        """
        if isinstance(block, GappedBlock):
            gap = gaussian_gaps().log_joint(p, p.gaps, block.gaps, log_w)
            if block.gap_rows is None:
                return gap if into is None else into.copy_(gap.T)
            out = self._ws.get("gapped_log_joint", (p.n_components, block.n), p.dtype, gap.device)
            if block.complete is not None:
                out[:, block.complete_rows] = self.log_joint(p, block.complete, log_w)
            out[:, block.gap_rows] = gap
            return out if into is None else into.copy_(out.T)
        top = (p.const + log_w)[:, None]
        feats = block.feats
        if into is not None and p.form == "expanded":
            factor = p.factor_rows.clone()
            factor[-1] += top[:, 0]
            return matmul(feats, factor, out=into)
        if into is not None:
            return into.copy_(self.log_joint(p, block, log_w).T)
        if p.form == "whitened":
            # squared norms by one reduction with no (K, n, D) temporary: vecdot's fresh
            # temporary per block cost as much as the whitening product itself (profiled)
            return torch.linalg.vector_norm(block.whitened, dim=-1).square_().mul_(-0.5).add_(top)
        if p.form == "tied":
            y3 = (feats @ p.factor)[None] - p.offset[:, None, :]  # (K, n, D)
            return y3.square_().sum(-1).mul_(-0.5).add_(top)
        out = self._ws.get("log_joint", (p.factor.shape[0], feats.shape[0]), feats.dtype, feats.device)
        torch.addmm(top, p.factor, feats.T, alpha=-0.5, out=out)
        return torch.minimum(out, top, out=out)

    def nearest(self, p: Prepared, block: Block) -> tuple[Tensor, Tensor]:
        """(index of the nearest mean (n,), minus the squared distance to it (n,)):
        Euclidean, about the centre, for hard assignments (k-means initialisation); over
        the observed coordinates of a row with gaps."""
        if isinstance(block, GappedBlock):
            gap = gaussian_gaps().nearest(p, block.gaps)
            if block.gap_rows is None:
                return gap
            labels = torch.empty(block.n, dtype=torch.int64, device=gap[0].device)
            score = torch.empty(block.n, dtype=p.dtype, device=gap[0].device)
            if block.complete is not None:
                labels[block.complete_rows], score[block.complete_rows] = self.nearest(p, block.complete)
            labels[block.gap_rows], score[block.gap_rows] = gap
            return labels, score
        dist = squared_distances(self.centred(p, block), p.means_c)
        best, labels = dist.min(1)
        return labels, best.neg_()

    def accumulator(self, p: Prepared) -> Moments | GappedMoments:
        return GappedMoments(p, self._ws) if self.gaps else Moments(p, self._ws)

    def impute(self, p: Prepared, x: Tensor, resp: Tensor, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """x (n, D) with every gap completed: (n, D) float64, observed values as they are.

        resp (K, n): the posteriors given the observed values. Without ``uniforms``, each
        gap gets its conditional mean sum_k r_k E[x_U | x_O, k]; with ``uniforms`` (n,) and
        ``normals`` (n, D), a draw from the conditional distribution (see
        ``gaussian_gaps.conditional_rows``). Needs ``gaps=True``.
        """
        out = x.double().clone()
        mask = missing(x)
        if mask is None:
            return out
        rows = torch.nonzero(mask.any(1)).reshape(-1)
        kernels = gaussian_gaps()
        feats = kernels.centred_features(p, x[rows], mask[rows], self._ws)
        draw = {} if uniforms is None else {"uniforms": uniforms[rows], "normals": normals[rows]}
        filled = kernels.conditional_rows(p.gaps, feats, mask[rows], resp[:, rows], p.dtype, self._ws, **draw)
        out[rows] = torch.where(mask[rows], filled + p.centre.double(), out[rows])
        return out

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: GaussianStats, old: GaussianParams | None, update: str = "mc") -> tuple[GaussianParams, Tensor]:
        """New means (if 'm' in ``update``) and covariances (if 'c'): maximum likelihood, or
        MAP under the prior, plus reg_covar. A component with nothing to estimate from
        keeps its ``old`` values (or, without them, the E-step's means). Returns the
        parameters and a (K,) mask of the components whose covariance could be factored
        (the others carry NaN factors; the caller re-seeds or raises).

        Moments of rows with gaps (``GaussianStats.unseen``) give each mean and variance
        from the values observed where the structure has that closed form and there is no
        prior (:meth:`_observed_m_step`); otherwise the gaps are completed (``filled``)."""
        if s.has_gaps:
            step = self._observed_m_step(s, old, update)
            if step is not None:
                return step
            s = s.filled()
        st = self.structure
        n_k, shift = s.n_k, s.shift
        K, D = shift.shape
        alive = n_k > 0
        means = shift if old is None else old.means
        if "m" in update:
            if self.prior is None:
                estimable = alive[:, None].expand(K, D)
                step = s.sum_x / torch.where(alive, n_k, torch.ones_like(n_k))[:, None]
            else:
                mp, mw, _ = self.prior.tensors(n_k.device)
                if isinstance(self.prior, MclustPrior) and not st.mclust_terms(K, D, self.prior).shrink:
                    mw = torch.zeros_like(mw)  # the model's MAP M-step keeps the plain means (mclust's EEI)
                denom = (mw + n_k[:, None]).expand(K, D)
                estimable = denom > 0
                step = (mw * (mp - shift) + s.sum_x) / torch.where(estimable, denom, torch.ones_like(denom))
            means = torch.where(estimable, shift + step, means)
        if "c" not in update:
            return GaussianParams(means, old.covariances, old.prec_chol), torch.ones(K, dtype=torch.bool)
        scatter = st.scatter(n_k, s.sum_x, s.sum_xx, means - shift, shift - shift.mean(0))
        previous = old.covariances if old is not None else None
        if isinstance(self.prior, MclustPrior):
            mp, _, _ = self.prior.tensors(n_k.device)
            cov = st.mclust_map(n_k, scatter, means - mp, self.prior, previous, self.reg_covar)
        elif self.prior is not None:
            mp, _, _ = self.prior.tensors(n_k.device)
            cov = st.map_estimate(n_k, scatter, means - mp, self.prior, previous, self.reg_covar)
        elif st.kernel == "tied" or bool(alive.all()):
            cov = st.maximise(n_k, scatter, self.reg_covar, previous)
        else:  # keep the covariance of a component without mass
            cov = st.maximise(torch.where(alive, n_k, torch.ones_like(n_k)), scatter, self.reg_covar, previous)
            if old is not None:
                cov = torch.where(alive.reshape(-1, *[1] * (cov.ndim - 1)), cov, old.covariances)
        if st.kernel == "diag" and self.reg_covar == 0 and self.prior is None:
            cov = self._unresolved_to_zero(cov, means, shift, float(s.eps))
        params, ok = self._factored(means, cov)
        if st.kernel in ("full", "tied") and self.reg_covar == 0 and self.prior is None:
            cov = params.covariances  # as repaired
            unresolved = self._unresolved_matrix(cov, means, shift, float(s.eps))
            if bool(unresolved.any()):
                return GaussianParams(means, cov, torch.full_like(cov, math.nan)), ok & ~unresolved.to(ok.device)
        return params, ok

    def _observed_m_step(self, s: GaussianStats, old: GaussianParams | None,
                         update: str) -> tuple[GaussianParams, Tensor] | None:
        """The M-step over the observed values alone (diagonal and spherical structures,
        no prior): each feature's mean and variance from the rows that observed it, their
        count n_k - unseen, the exact maximiser when only the classes are latent (in one
        step, where completing the gaps by the old parameters moves a part of the way).
        None where it does not apply: a structure without that closed form, a prior, a
        component whose rows all miss a feature (completing the gaps keeps its values), or
        no gap at all."""
        st = self.structure
        shift = s.shift
        counts = s.n_k[:, None] - s.unseen
        resolved = counts > 64 * torch.finfo(torch.float64).eps * s.n_k[:, None]  # beyond n_k - unseen's rounding
        if self.prior is not None or not bool(resolved.all()) or not bool(s.unseen.any()):
            return None  # (no gap at all: the complete-data step, the same bits as without gaps allowed)
        means = shift if old is None else old.means
        if "m" in update:
            means = shift + s.sum_x / counts
        if "c" not in update:
            return GaussianParams(means, old.covariances, old.prec_chol), torch.ones(shift.shape[0], dtype=torch.bool)
        d = means - shift
        scatter = (s.sum_xx - 2.0 * d * s.sum_x + counts * d.square()).clamp_(min=0)
        cov = st.maximise_observed(counts, scatter, self.reg_covar)
        if cov is None:
            return None
        if self.reg_covar == 0:
            cov = self._unresolved_to_zero(cov, means, shift, float(s.eps))
        return self._factored(means, cov)

    def expected_log_density(self, p: GaussianParams, s: GaussianStats) -> Tensor:
        """sum_k sum_n r_nk log N(x_n | mu_k, Sigma_k) from the statistics alone (0-d,
        float64): n_k (log det U_k - D log(2 pi) / 2) - tr(Lambda_k W_k) / 2, with W_k the
        scatter about mu_k (the M-step's ``scatter``, from moments about any shift).
        For a mixture whose responsibilities are fixed (``MixtureModel.restate``)."""
        s = s.filled()
        st = self.structure
        dev = s.n_k.device
        means, prec_chol = p.means.to(dev, torch.float64), p.prec_chol.to(dev, torch.float64)
        K, D = means.shape
        scatter = st.scatter(s.n_k, s.sum_x, s.sum_xx, means - s.shift, s.shift - s.shift.mean(0))
        if st.kernel == "diag":
            quad = (st.precisions(prec_chol, D) * scatter).sum()
        else:
            u = st.dense(prec_chol, K, D)
            precision = u @ u.transpose(-1, -2)
            quad = ((precision[0] if st.kernel == "tied" else precision) * scatter).sum()
        log_det = st.log_det_precision(prec_chol, D)  # (K,), or one shared
        return (s.n_k * (log_det - 0.5 * D * LOG_2PI)).sum() - 0.5 * quad

    def _unresolved_to_zero(self, cov: Tensor, means: Tensor, shift: Tensor, eps: float) -> Tensor:
        """Diagonal structures without reg_covar: a variance within rounding of zero is zero.

        A component on repeated rows has no spread, but its moments, summed about the
        centre of the E-step's means, leave rounding of about eps (mean - centre)^2
        behind (1e-17 to 1e-15 in float64). A full or tied covariance that small fails its
        Cholesky factor; a variance that small is no better resolved, so it counts as
        zero too: the component is re-seeded, or, when every one has collapsed, the fit
        fails with scikit-learn's "ill-defined empirical covariance" message, whatever
        the structure. ``eps`` is that of the arithmetic the moments were summed in
        (``GaussianStats.eps``): float32's only where :func:`expanded_form_is_exact_enough`
        held, so there a real variance exceeds the bound by far; data whose spread float32
        cannot resolve (means far apart against their spread) were summed in float64 and
        are judged by float64's rounding, which keeps their real variances.

        Moments summed about the centre only bound such a variance, so it is set to the
        bound rather than to zero: the next E-step, which cannot resolve it about the
        centre either, then sums each component about its own mean (see ``prepare``),
        where a tight component (a spread 1e-7 of its distance from the centre) keeps
        its real variance and a collapsed one comes out zero. Moments summed so (their
        eps is squared: ``Moments.result``) decide at once. Each step lies between the
        previous variance and the M-step's, so the likelihood still rises.
        """
        bound = _UNRESOLVED * eps * (means - shift.mean(0)).square()
        if cov.ndim == 1:  # spherical: one variance, the mean over features
            bound = bound.mean(1)
        floor = bound if eps >= _EPS64 else torch.zeros_like(cov)
        return torch.where(cov <= bound, floor, cov)

    def _unresolved_matrix(self, cov: Tensor, means: Tensor, shift: Tensor, eps: float) -> Tensor:
        """(K,) full or tied covariances without reg_covar that rounding cannot tell from
        zero: every eigenvalue within the bound of :meth:`_unresolved_to_zero`. Such a
        matrix (a component on one row, with the others' responsibilities of e^-700
        giving it eigenvalues of 1e-296) still has a Cholesky factor in float64, but its
        log-densities are rounding (+670 at its row, and a float32 mean rounded off the
        row covers none): the component is re-seeded, as a zero covariance is."""
        bound = _UNRESOLVED * eps * (means - shift.mean(0)).square().amax(1)  # (K,)
        largest = torch.linalg.eigvalsh(torch.nan_to_num(cov.double()))[..., -1]
        if cov.ndim == 2:  # tied: one matrix for all
            return (largest <= bound.max()).expand(means.shape[0])
        return largest <= bound

    def _factored(self, means: Tensor, cov: Tensor) -> tuple[GaussianParams, Tensor]:
        """Parameters with their factors, and which components have one. Factors are NaN
        where a covariance is not positive definite even after undoing rounding."""
        st = self.structure
        K = means.shape[0]
        ok = st.positive_definite(cov, K)
        if st.kernel != "diag" and not bool(ok.all()):
            cov = st.repair(cov, self.reg_covar)
            ok = st.positive_definite(cov, K)
        if bool(ok.all()):
            return self.make_params(means, cov), ok
        return GaussianParams(means, cov, torch.full_like(cov, math.nan)), ok

    def floor(self, p: GaussianParams, bad: Tensor, amount: float) -> GaussianParams:
        """The covariances of the ``bad`` components (K,) mended: negative eigenvalues (or
        variances) clipped at 0, then ``amount`` added to each (tied: to the shared matrix,
        if any component is bad). For a component collapsed onto a subspace (a
        constant feature, fewer rows than features), which no Cholesky factor exists for."""
        st, cov = self.structure, p.covariances
        if st.kernel in ("full", "tied"):
            # eigenvalues below ``amount`` rise to it, and to a floor relative to the largest
            # one, so the factor exists even where the variances dwarf ``amount``
            eig, vec = torch.linalg.eigh(torch.nan_to_num(cov))
            least = amount + eig[..., -1:].clamp(min=0) * (1e3 * cov.shape[-1] * torch.finfo(torch.float64).eps)
            mended = (vec * (eig.clamp(min=0) + least).unsqueeze(-2)) @ vec.transpose(-1, -2)
            mended = 0.5 * (mended + mended.transpose(-1, -2))
            pick = bad.any() if st.kernel == "tied" else bad.reshape(-1, 1, 1).to(cov.device)
        else:
            mended = torch.nan_to_num(cov, nan=0.0).clamp(min=0) + amount
            pick = bad.reshape(-1, *[1] * (cov.ndim - 1)).to(cov.device)
        return self.make_params(p.means, torch.where(pick, mended, cov))

    def collapsed(self, p: GaussianParams) -> Tensor:
        """(K,) the components whose covariance is singular to float64 precision (its
        smallest eigenvalue within D * eps of its largest): a factor exists, but the
        log-densities it gives are rounding (tied: all or none)."""
        st, cov = self.structure, p.covariances
        if st.kernel in ("full", "tied"):
            eig = torch.linalg.eigvalsh(torch.nan_to_num(cov))
            bad = eig[..., 0] <= cov.shape[-1] * torch.finfo(torch.float64).eps * eig[..., -1]
            return bad.expand(p.means.shape[0]) if st.kernel == "tied" else bad
        return torch.zeros(p.means.shape[0], dtype=torch.bool, device=cov.device)

    def reseed(self, p: GaussianParams, dead: list[int], rows: Tensor, weights: Tensor) -> GaussianParams:
        """Dead components move to ``rows`` (the worst-explained, one each) with the live
        components' average covariance (tied: the shared one stays); the gaps of a row
        with missing values take the live components' weighted mean."""
        live = torch.ones(p.means.shape[0], dtype=torch.bool, device=p.means.device)
        live[dead] = False
        means, cov = p.means.clone(), p.covariances.clone()
        gap = torch.isnan(rows)
        if bool(gap.any()):  # a row with gaps: its gaps take the live components' mean
            lw = weights[live].to(means)
            rows = torch.where(gap, (lw[:, None] * means[live]).sum(0) / lw.sum(), rows)
        if hasattr(self.structure, "model"):  # mclust's: a live covariance keeps the structure's constraints
            donor = int(torch.where(live, weights, torch.full_like(weights, -1.0)).argmax())
            for j, k in enumerate(dead):
                means[k] = rows[j]
                cov[k] = cov[donor]
            return self.make_params(means, cov)
        if self.structure.kernel != "tied":
            lw = weights[live]
            pooled = (lw.reshape(-1, *[1] * (cov.ndim - 1)) * cov[live]).sum(0) / lw.sum()
        for j, k in enumerate(dead):
            means[k] = rows[j]
            if self.structure.kernel != "tied":
                cov[k] = pooled
        return self.make_params(means, cov)

    def decrease_tolerance(self, p: GaussianParams, weights: Tensor, value: float) -> float:
        """Largest fall of the mean log-likelihood that rounding and ``reg_covar`` can explain.

        * Rounding: statistics are summed in the compute dtype within a block, so a
          covariance's smallest eigenvalue carries an error of about eps * its largest;
          near a singular covariance that moves the log-likelihood by about eps * cond.
          A diagonal structure's variances are summed apart, each about the centre of
          the means: its error is eps * (1 + m^2 / sigma^2) per feature (m: the mean
          about the centre), a ratio the kernels keep below 1e-3 / eps (past it they
          take another form), not the spread of the variances across features.
        * Regularisation: adding reg_covar to the maximiser makes the M-step inexact,
          costing up to about sum_k w_k sum_i (reg / lambda_ki)^2 per row (lambda: the
          regularised eigenvalues); negligible unless a component has collapsed.
        Beyond this bound a fall means a bug.
        """
        eps = torch.finfo(self.dtype).eps
        cov, st = p.covariances, self.structure
        if st.kernel in ("full", "tied"):
            eig = torch.linalg.eigvalsh(cov).clamp(min=1e-300)
            cond = float((eig.max(-1).values / eig.min(-1).values).max())
            # the moments' rounding about the centre, as for a diagonal structure, with
            # |m|^2 / lambda_min bounding m^T Sigma^-1 m (clusters 1e7 apart, unit spread:
            # a fall of 4e-11 a row, which the condition number alone took for a bug)
            m = p.means.to(eig) - p.means.to(eig).mean(0)
            far = (1.0 + m.square().sum(-1) / eig.min(-1).values).max()
            cond += min(float(far), 1e-3 / eps)
        else:
            eig = (cov if cov.ndim == 2 else cov[:, None]).clamp(min=1e-300)
            m = p.means.to(eig) - p.means.to(eig).mean(0)
            cond = min(float((1.0 + m.square() / eig).sum(-1).max()), 1e-3 / eps)
        share = (self.reg_covar / eig).square().sum(-1)
        reg_term = float((weights.to(share) * share).sum() if share.ndim else share)
        if cov.ndim == 1:  # one variance per component stands for D
            reg_term *= p.n_features
        return 100 * eps * (1.0 + abs(value) + cond) + reg_term

    def prior_gain(self, new: GaussianParams, old: GaussianParams) -> float:
        """The rise of the prior's log-density (hmmlearn's Normal / inverse-Wishart or
        inverse-gamma, of which the M-step's update is the MAP) from ``old`` to ``new``."""
        if self.prior is None or not self.prior.active:
            return 0.0
        mp = self.prior.tensors(new.means.device)[0]
        st = self.structure
        log_prior = st.mclust_log_prior if isinstance(self.prior, MclustPrior) else st.log_prior
        return float(log_prior(new.covariances, new.means - mp, self.prior)
                     - log_prior(old.covariances, old.means - mp, self.prior))

    # ------------------------------------------------------------------ sampling
    def sample(self, p: GaussianParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        """One row from component ``labels[i]`` for each i (float64, on the params' device)."""
        z = torch.randn(labels.shape[0], p.means.shape[1], dtype=torch.float64, generator=generator)
        z, labels = z.to(p.means.device), labels.to(p.means.device)
        return p.means[labels] + self.structure.draw(p.covariances, labels, z)



def gaussian_mixture(n_components: int, covariance_type: str, reg_covar: float, dtype: torch.dtype,
                     advice: str | None = None, gaps: bool = False):
    """A K-component Gaussian mixture model (``mixture.MixtureModel`` of this component)."""
    from .mixture import MixtureModel

    advice = advice or f"increase reg_covar (now {reg_covar:g}), lower n_components, or standardise X"
    component = GaussianComponent(covariance_type, reg_covar, dtype, advice=advice, gaps=gaps)
    return MixtureModel(component, n_components, dtype)


def float32_rounding_share(means: Tensor, variances: Tensor, shift: Tensor | None) -> Tensor:
    """(K, D) float64: the share of each component's variance, per feature, that holding
    its rows in float32 adds. A row less ``shift`` is rounded to the float32 spacing at
    its distance from the shift, a uniform error of variance spacing^2 / 12 (two unit
    clusters 1e7 apart: a spacing of 1 there, 8% of the far one's variance, which the
    fit reports as its own). ``variances``: (K, D)."""
    where = (means.double() - (0.0 if shift is None else shift.double().to(means.device))).abs().float()
    spacing = (torch.nextafter(where, torch.full_like(where, math.inf)) - where).double()
    share = spacing.square() / 12.0 / variances.double()
    return torch.nan_to_num(share, nan=0.0)
