"""Gaussian mixture model: parameters, additive statistics, E-step and M-step. Math only.

The E-step of a chunk returns :class:`GMMStats` (float64, additive); the M-step reads
the statistics alone. Parameters are float64 and immutable; the E-step casts them to
the compute dtype once per call and walks the chunk in cache-sized row blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .._core.errors import NumericalError, ParameterError
from .._core.numerics import covariance_from_precision_cholesky, precision_cholesky
from .._core.stats import lowest_indices, merge_lowest
from .._core.types import COVARIANCE_TYPES, Chunk
from .._core.workspace import Workspace
from . import gaussian
from .kmeans import squared_distances

# Bytes of scratch per row block on CPU: small enough that the (K, n, D) whitened block
# stays in cache between its product, its norms and the moment product; large enough
# to amortise the fixed cost of each small operation (measured: 2-16 MB, best near 4).
_CPU_BLOCK_BYTES = 4 << 20
# A component whose responsibility mass falls under this fraction of one average
# row has lost its support and is re-seeded.
_MIN_SUPPORT = 1e-6


@dataclass(frozen=True, slots=True)
class GMMParams:
    """Mixture parameters, float64.  weights (K,), means (K, D), covariances and
    prec_chol per type (see models.gaussian).  ``reseeded`` names the components the
    M-step that built these parameters had to re-seed (empty for a regular step)."""

    weights: Tensor
    means: Tensor
    covariances: Tensor
    prec_chol: Tensor
    covariance_type: str
    reseeded: tuple[int, ...] = ()

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    def to(self, device: torch.device | str) -> "GMMParams":
        return replace(
            self,
            weights=self.weights.to(device),
            means=self.means.to(device),
            covariances=self.covariances.to(device),
            prec_chol=self.prec_chol.to(device),
        )


@dataclass(frozen=True, slots=True)
class GMMStats:
    """Additive E-step statistics, float64, moments about ``shift`` (the means used).

    resp_sum (K,); sum_x (K, D) and sum_xx (see gaussian.accumulate_moments) about
    shift; loglik: sum of w * log p(x); weight_sum: sum of w; rows: row count;
    worst_ll / worst_x: the lowest-likelihood rows seen (re-seeding candidates).
    """

    resp_sum: Tensor
    sum_x: Tensor
    sum_xx: Tensor
    loglik: Tensor
    weight_sum: Tensor
    rows: int
    shift: Tensor
    worst_ll: Tensor
    worst_x: Tensor
    covariance_type: str = "full"

    def about(self, shift: Tensor) -> "GMMStats":
        """The same statistics with moments taken about ``shift`` (see gaussian.moments_about)."""
        if self.shift is shift or torch.equal(self.shift, shift):
            return self
        sum_x, sum_xx = gaussian.moments_about(
            self.covariance_type, self.resp_sum, self.sum_x, self.sum_xx, self.weight_sum, self.shift, shift
        )
        return replace(self, sum_x=sum_x, sum_xx=sum_xx, shift=shift)

    def blend(self, new: "GMMStats", gamma: float) -> "GMMStats":
        """(1 - gamma) self + gamma new, about new's shift: online EM's running average.

        Both should be normalised to unit weight. The row count is new's: it sets the
        M-step's scale for a dead component (support below a few rows of one batch).
        """
        mixed = self.about(new.shift).scale(1.0 - gamma) + new.scale(gamma)
        return replace(mixed, rows=new.rows)

    def __add__(self, other: "GMMStats") -> "GMMStats":
        if self.shift is not other.shift and not torch.equal(self.shift, other.shift):
            raise ValueError("cannot add GMMStats taken about different shifts (different parameters)")
        worst_ll, worst_x = merge_lowest(
            torch.cat([self.worst_ll, other.worst_ll]), torch.cat([self.worst_x, other.worst_x]), self.shift.shape[0]
        )
        return GMMStats(
            self.resp_sum + other.resp_sum,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.loglik + other.loglik,
            self.weight_sum + other.weight_sum,
            self.rows + other.rows,
            self.shift,
            worst_ll,
            worst_x,
            self.covariance_type,
        )

    def scale(self, factor: float) -> "GMMStats":
        return replace(
            self,
            resp_sum=self.resp_sum * factor,
            sum_x=self.sum_x * factor,
            sum_xx=self.sum_xx * factor,
            loglik=self.loglik * factor,
            weight_sum=self.weight_sum * factor,
        )

    def to(self, device: torch.device | str) -> "GMMStats":
        moved = {f: getattr(self, f).to(device) for f in ("resp_sum", "sum_x", "sum_xx", "loglik", "weight_sum")}
        return replace(
            self, shift=self.shift.to(device), worst_ll=self.worst_ll.to(device), worst_x=self.worst_x.to(device), **moved
        )

    @property
    def mean_loglik(self) -> float:
        """Weighted mean log-likelihood per row: the quantity EM increases."""
        return float(self.loglik / self.weight_sum)


@dataclass(frozen=True, slots=True)
class ScoreTotals:
    """Additive totals that score a fitted mixture on data, whatever its size:
    loglik = sum_n w_n log p(x_n); hard = sum_n w_n max_k log r_nk (the classification
    term of ICL); weight = sum_n w_n (the row count when unweighted). Python floats,
    each chunk's summed in float64, so chunks add on any engine."""

    loglik: float
    hard: float
    weight: float

    def __add__(self, other: "ScoreTotals") -> "ScoreTotals":
        return ScoreTotals(self.loglik + other.loglik, self.hard + other.hard, self.weight + other.weight)

    def scale(self, factor: float) -> "ScoreTotals":
        return ScoreTotals(self.loglik * factor, self.hard * factor, self.weight * factor)

    def to(self, device: torch.device | str) -> "ScoreTotals":
        return self


_EXP_FLOOR = {torch.float32: -69.0, torch.float64: -690.0}


def _weighted_sum(values: Tensor, w: Tensor | None) -> Tensor:
    """sum_n w_n values_n in float64 (plain sum when unweighted)."""
    return values.sum(dtype=torch.float64) if w is None else values.double() @ w.double()


def normalise_log(log_joint: Tensor, out: Tensor) -> Tensor:
    """Responsibilities of (K, n) log joints, in place, one exp pass; the log normaliser
    (each row's log-likelihood) goes to ``out`` (n,).

    Columns are shifted by their maximum before exp, so no row underflows to 0/0 (a row
    whose every entry is -inf keeps -inf as its normaliser). Component-major, every
    step is element-wise along n over K rows: vectorised, no short inner reductions.
    """
    peak = torch.amax(log_joint, 0).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    # Floor the log-ratios before exp: torch's vectorised exp takes a slow path for large
    # negative inputs (3-7x slower per call), and responsibilities near the underflow
    # limit turn into subnormal numbers in the moment products (squares, sqrt(rw)), which
    # slow the GEMMs several-fold. A floor of 1e-30 (1e-300 in float64) keeps every
    # product normal and changes no statistic visibly.
    floor = _EXP_FLOOR[log_joint.dtype]
    resp = log_joint.sub_(peak).clamp_(min=floor).exp_()
    total = resp.sum(0)
    resp.div_(total)
    torch.add(total.log_(), peak, out=out)
    return resp


class GaussianMixtureModel:
    """The math of a K-component Gaussian mixture for one covariance type.

    Holds hyper-parameters (not data, not parameters) and a scratch workspace.
    """

    def __init__(self, n_components: int, covariance_type: str, reg_covar: float, dtype: torch.dtype) -> None:
        if covariance_type not in COVARIANCE_TYPES:
            raise ParameterError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.dtype = dtype
        self._ws = Workspace()

    # ------------------------------------------------------------------ parameters
    def make_params(self, weights: Tensor, means: Tensor, covariances: Tensor) -> GMMParams:
        """Validated float64 parameters from weights, means and covariances."""
        weights, means, covariances = (t.to(torch.float64) for t in (weights, means, covariances))
        prec_chol = precision_cholesky(covariances, self.covariance_type, self.reg_covar)
        return GMMParams(weights, means, covariances, prec_chol, self.covariance_type)

    def params_from_precision_cholesky(self, weights: Tensor, means: Tensor, prec_chol: Tensor) -> GMMParams:
        """Parameters from a precision Cholesky factor (as produced by :meth:`make_params`)."""
        prec_chol = prec_chol.to(torch.float64)
        cov = covariance_from_precision_cholesky(prec_chol, self.covariance_type)
        return GMMParams(weights.to(torch.float64), means.to(torch.float64), cov, prec_chol, self.covariance_type)

    def n_free_parameters(self, n_features: int) -> int:
        """Number of free scalars (for BIC/AIC), as scikit-learn counts them."""
        K, D = self.n_components, n_features
        cov = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": K * D, "spherical": K}
        return cov[self.covariance_type] + K * D + K - 1

    def decrease_tolerance(self, params: GMMParams, log_likelihood: float) -> float:
        """Largest fall of the mean log-likelihood that rounding and ``reg_covar`` can explain.

        * Rounding: statistics are summed in the compute dtype within a block, so a
          covariance's smallest eigenvalue carries an error of about eps * its largest;
          near a singular covariance that moves the log-likelihood by about eps * cond.
        * Regularisation: adding reg_covar to the maximiser makes the M-step inexact,
          costing up to about sum_k w_k sum_i (reg / lambda_ki)^2 per row (lambda: the
          regularised eigenvalues); negligible unless a component has collapsed.
        Beyond this bound a fall means a bug.
        """
        eps = torch.finfo(self.dtype).eps
        cov = params.covariances
        if self.covariance_type in ("full", "tied"):
            eig = torch.linalg.eigvalsh(cov).clamp(min=1e-300)
        else:
            eig = (cov if cov.ndim == 2 else cov[:, None]).clamp(min=1e-300)
        cond = float((eig.max(-1).values / eig.min(-1).values).max())
        share = (self.reg_covar / eig).square().sum(-1)
        reg_term = float((params.weights * share).sum() if share.ndim else share)
        if self.covariance_type == "spherical":
            reg_term *= params.n_features
        return 100 * eps * (1.0 + abs(log_likelihood) + cond) + reg_term

    # ------------------------------------------------------------------ E-step
    def _block_rows(self, n_features: int, device: torch.device) -> int:
        K, D = self.n_components, n_features
        runs = gaussian.GRAM_ROWS  # blocks of whole runs of the float32 partial sums
        if device.type != "cpu":  # GPUs want few, large launches; cap the (K, n, D) scratch at 256 MB
            rows = (256 << 20) // (K * D * torch.finfo(self.dtype).bits // 8)
            return max(4 * runs, rows // runs * runs)
        if self.covariance_type in ("full", "tied"):  # the (K, n, D) whitened rows
            rows = _CPU_BLOCK_BYTES // max(K * D * torch.finfo(self.dtype).bits // 8, 1)
            return max(256, rows if rows <= runs else rows // runs * runs)
        # diag/spherical: the (n, 2D+1) features and the (K, n) log-joints; large blocks
        # amortise the fixed cost of each element-wise step (measured best: 3-6 MB)
        per_row = (2 * D + 1 + K) * torch.finfo(self.dtype).bits // 8
        return max(1024, _CPU_BLOCK_BYTES // per_row // 1024 * 1024)  # whole float32 partials

    def _kernel_dtype(self, params: GMMParams) -> torch.dtype:
        """The compute dtype, except float64 where float32 cannot resolve the parameters:
        diag/spherical where the expanded form would cancel, full/tied where a covariance
        is too ill-conditioned for float32 sums to keep it positive definite."""
        if self.dtype == torch.float64:
            return self.dtype
        if self.covariance_type in ("full", "tied"):
            exact = gaussian.well_conditioned_for_float32(params.covariances)
        else:
            exact = gaussian.expanded_form_is_exact_enough(
                params.means, params.prec_chol, params.covariances, self.covariance_type
            )
        return self.dtype if exact else torch.float64

    def _prepare(self, params: GMMParams) -> gaussian.Prepared:
        return gaussian.prepare(params.means, params.prec_chol, self.covariance_type, self._kernel_dtype(params))

    def _kernel_inputs(self, params: GMMParams, device: torch.device) -> tuple[gaussian.Prepared, Tensor]:
        """The prepared parameters on ``device`` and log w in their kernel dtype."""
        prep = self._prepare(params.to(device))
        return prep, torch.log(params.weights).to(device=device, dtype=prep.centre.dtype)

    def log_joint(self, params: GMMParams, x: Tensor) -> Tensor:
        """log w_k + log N(x | mu_k, Sigma_k).  x: (n, D) compute dtype -> (n, K)."""
        prep, log_w = self._kernel_inputs(params, x.device)
        kdt = prep.centre.dtype
        out = torch.empty(x.shape[0], self.n_components, dtype=kdt, device=x.device)
        step = self._block_rows(x.shape[1], x.device)
        for s in range(0, x.shape[0], step):
            feats = gaussian.block_features(prep, x[s : s + step], self._ws)
            out[s : s + step] = gaussian.log_joint(prep, feats, log_w, self._ws).T
        return out

    def score_totals(self, params: GMMParams, chunk: Chunk) -> ScoreTotals:
        """One chunk's :class:`ScoreTotals`: the E-step's log-likelihoods (its kernels and
        dtype, component-major, so the fit's lower bound and the score agree), without the
        moments; per-row values in the kernel dtype, summed in float64."""
        x, w = chunk.x, chunk.weight
        prep, log_w = self._kernel_inputs(params, x.device)
        kdt = prep.centre.dtype
        log_norm = self._ws.get("log_norm", (x.shape[0],), kdt, x.device)
        hard = self._ws.get("log_max_resp", (x.shape[0],), kdt, x.device)
        step = self._block_rows(x.shape[1], x.device)
        for s in range(0, x.shape[0], step):
            feats = gaussian.block_features(prep, x[s : s + step], self._ws)
            resp = normalise_log(gaussian.log_joint(prep, feats, log_w, self._ws), out=log_norm[s : s + step])
            torch.log(resp.amax(0), out=hard[s : s + step])
        weight = float(x.shape[0]) if w is None else float(w.double().sum())
        return ScoreTotals(float(_weighted_sum(log_norm, w)), float(_weighted_sum(hard, w)), weight)

    def e_step(self, params: GMMParams, chunk: Chunk) -> GMMStats:
        """Responsibility-weighted statistics of one chunk about the current means."""
        return self._stats(params, chunk, "soft", None)

    def e_step_hard(self, params: GMMParams, chunk: Chunk) -> GMMStats:
        """Statistics with one-hot responsibilities to the nearest mean (Euclidean).

        Initialisation uses it to turn k-means centres into mixture parameters.
        """
        return self._stats(params, chunk, "hard", None)

    def e_step_given(self, params: GMMParams, chunk: Chunk, resp_fn: Callable[[Chunk], Tensor]) -> GMMStats:
        """Statistics for responsibilities supplied by ``resp_fn(chunk) -> (n, K)`` (random init)."""
        return self._stats(params, chunk, "given", resp_fn)

    def _stats(self, params: GMMParams, chunk: Chunk, mode: str, resp_fn: Callable[[Chunk], Tensor] | None) -> GMMStats:
        x, w = chunk.x, chunk.weight
        device = x.device
        params = params.to(device)
        K, D = params.means.shape
        if x.shape[1] != D:
            raise ValueError(f"chunk has {x.shape[1]} features, parameters have {D}")
        prep, log_w = self._kernel_inputs(params, device)
        kdt = prep.centre.dtype
        moments = gaussian.Moments(prep, K, D, device, self._ws)
        # each row's log-likelihood, kept for the chunk: its sum and its K lowest rows
        # (re-seeding candidates) then take two whole-chunk passes rather than a few
        # small ops per block, whose fixed costs showed in the profile
        log_norm = self._ws.get("log_norm", (x.shape[0],), kdt, device)
        given = resp_fn(chunk) if mode == "given" else None
        step = self._block_rows(D, device)
        for s in range(0, x.shape[0], step):
            wb = None if w is None else w[s : s + step].to(kdt)
            feats = gaussian.block_features(prep, x[s : s + step], self._ws)
            xc = feats[:, :D]
            ln = log_norm[s : s + step]
            whitened = gaussian.whiten(prep, feats, self._ws) if self.covariance_type == "full" else None
            if mode == "hard":
                dist = squared_distances(xc, prep.means_c)
                torch.neg(dist.min(1).values, out=ln)
                resp = torch.nn.functional.one_hot(dist.argmin(1), K).T.to(xc.dtype)
            elif mode == "given":
                resp = given[s : s + step].T.to(xc.dtype)
                ln.zero_()
            else:
                resp = normalise_log(gaussian.log_joint(prep, feats, log_w, self._ws, whitened), out=ln)
            moments.add(feats, resp if wb is None else resp * wb, wb, whitened)
        loglik = _weighted_sum(log_norm, w)
        cand = log_norm if w is None else torch.where(w > 0, log_norm, torch.inf)
        low = lowest_indices(cand, K)
        worst_ll, worst_x = cand[low].double(), x[low].double()
        resp_sum, sum_x, sum_xx = moments.result()
        weight_sum = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=device) if w is None else w.double().sum()
        return GMMStats(
            resp_sum, sum_x, sum_xx, loglik, weight_sum, chunk.n_rows, params.means, worst_ll, worst_x, self.covariance_type
        )

    # ------------------------------------------------------------------ M-step
    def m_step(self, stats: GMMStats) -> GMMParams:
        """Closed-form maximiser of the expected complete log-likelihood (float64).

        Components that lost their support, or whose covariance is not positive
        definite, are re-seeded at the worst-explained rows; the returned params
        name them in ``reseeded`` so the driver can warn and skip its monotonicity check.
        """
        shift = stats.shift
        n_k = stats.resp_sum + 10 * torch.finfo(torch.float64).eps
        centre = gaussian.centre_of(shift)
        means = shift + stats.sum_x / n_k[:, None]
        cov = gaussian.covariances_from_moments(
            self.covariance_type, n_k, stats.sum_x, stats.sum_xx, shift - centre, self.reg_covar
        )
        weights = n_k / n_k.sum()
        avg_row = float(stats.weight_sum) / max(stats.rows, 1)
        dead = stats.resp_sum < _MIN_SUPPORT * avg_row
        if self.covariance_type in ("full", "tied") and not bool(self._positive_definite(cov).all()):
            cov = gaussian.clip_to_psd(cov, self.reg_covar)
        dead |= ~self._positive_definite(cov)
        if bool(dead.any()):
            return self._reseed(stats, weights, means, cov, dead)
        return self.make_params(weights, means, cov)

    def _positive_definite(self, cov: Tensor) -> Tensor:
        """Per-component flag (K,); a failing tied covariance marks every component."""
        K = self.n_components
        if self.covariance_type == "full":
            return torch.linalg.cholesky_ex(cov)[1] == 0
        if self.covariance_type == "tied":
            ok = bool(torch.linalg.cholesky_ex(cov)[1] == 0)
            return torch.full((K,), ok, dtype=torch.bool, device=cov.device)
        ok = (cov > 0) & torch.isfinite(cov)
        return ok.all(-1) if ok.ndim > 1 else ok

    def _reseed(self, stats: GMMStats, weights: Tensor, means: Tensor, cov: Tensor, dead: Tensor) -> GMMParams:
        """Move dead components to the worst-explained rows, with the live components'
        average covariance (tied: the shared one) and their average weight."""
        live = ~dead
        idx = torch.nonzero(dead).reshape(-1).tolist()
        order = torch.argsort(stats.worst_ll)
        if int(live.sum()) == 0 or len(idx) > order.numel():
            raise NumericalError(
                "Fitting the mixture model failed because some components have ill-defined empirical "
                "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
                "number of components, increase reg_covar, or scale the input data. "
                f"(components {idx} have no support or a non positive-definite covariance; reg_covar={self.reg_covar:g})"
            )
        weights, means, cov = weights.clone(), means.clone(), cov.clone()
        lw = weights[live]
        if self.covariance_type != "tied":
            pooled = (lw.reshape(-1, *[1] * (cov.ndim - 1)) * cov[live]).sum(0) / lw.sum()
        for j, k in enumerate(idx):
            means[k] = stats.worst_x[order[j]]
            weights[k] = lw.mean()
            if self.covariance_type != "tied":
                cov[k] = pooled
        weights = weights / weights.sum()
        return replace(self.make_params(weights, means, cov), reseeded=tuple(idx))

    # ------------------------------------------------------------------ sampling
    def sample(self, params: GMMParams, n_samples: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw n rows and their component labels (float64, on the params' device)."""
        K, D = params.means.shape
        labels = torch.multinomial(params.weights.cpu(), n_samples, replacement=True, generator=generator)
        labels, _ = torch.sort(labels)
        z = torch.randn(n_samples, D, dtype=torch.float64, generator=generator).to(params.means.device)
        labels = labels.to(params.means.device)
        cov = params.covariances
        if self.covariance_type == "full":
            chol = torch.linalg.cholesky(cov)
            x = params.means[labels] + (chol[labels] @ z[:, :, None])[:, :, 0]
        elif self.covariance_type == "tied":
            x = params.means[labels] + z @ torch.linalg.cholesky(cov).T
        elif self.covariance_type == "diag":
            x = params.means[labels] + z * cov[labels].sqrt()
        else:
            x = params.means[labels] + z * cov[labels].sqrt()[:, None]
        return x, labels
