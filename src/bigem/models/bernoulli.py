"""The Bernoulli component: K products of independent binary columns. Math only.

log p_k(x) = sum_d x_d log p_kd + (1 - x_d) log(1 - p_kd)
           = x . (log p_k - log(1 - p_k)) + sum_d log(1 - p_kd),

so a block's log-densities are one (K x D) @ (D x n) product of the logits with the
rows, plus a constant per component. Each entry's term stands alone (a sum over d), so
with ``gaps`` an entry that is missing (NaN) contributes nothing: the row's density is
the marginal of what it observed (exact for values missing at random), the constant
becomes a product of the observed mask with log(1 - p), and the column's statistics
leave the row out. Statistics are the responsibility mass, the responsibility-weighted
ones per column and the mass of the gaps per column; the M-step is the MAP under a
Beta(alpha + 1, alpha + 1) prior, p = (alpha + ones) / (2 alpha + n_k - unseen): alpha
pseudo-counts of each value keep every probability inside (0, 1). (StepMix's
``bernoulli_nan`` is the same EM.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core import numerics
from .._core.numerics import squared_distances
from .._core.stats import additive
from .gaps import coordinate_uniforms, drawn_components, observed_distances

_BLOCK_BYTES = 4 << 20  # rows per block: the (n, D) rows and (K, n) log-joints in a few MB
_LOW = torch.finfo(torch.float64).tiny  # probabilities are clamped into [_LOW, 1 - _EPS]
_EPS = torch.finfo(torch.float64).eps / 2


@dataclass(frozen=True, slots=True)
class BernoulliParams:
    """probabilities (K, D): P(x_d = 1) in each component, float64."""

    probabilities: Tensor

    @property
    def n_components(self) -> int:
        return int(self.probabilities.shape[0])

    def to(self, device: torch.device | str) -> BernoulliParams:
        return BernoulliParams(self.probabilities.to(device))


@additive
@dataclass(frozen=True, slots=True)
class BernoulliStats:
    """n_k (K,): responsibility mass; ones (K, D): responsibility mass of x_d = 1; unseen
    (K, D): responsibility mass of the rows missing x_d (0 without gaps); float64."""

    n_k: Tensor
    ones: Tensor
    unseen: Tensor

    def rebase(self, like: BernoulliStats) -> BernoulliStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    logits: Tensor  # (K, D) kernel dtype: log p - log(1 - p)
    const: Tensor  # (K,) kernel dtype: sum_d log(1 - p_kd)
    centres: Tensor  # (K, D) kernel dtype: the probabilities, for nearest-centre assignment
    log1m: Tensor  # (K, D) kernel dtype: log(1 - p), each observed column's share of const (rows with gaps)

    @property
    def dtype(self) -> torch.dtype:
        return self.logits.dtype

    @property
    def n_components(self) -> int:
        return int(self.logits.shape[0])


@dataclass(frozen=True, slots=True)
class _GapBlock:
    """Rows with gaps: x (n, D) with 0 in the gaps, seen (n, D) 1 where observed; both in
    the kernel dtype."""

    x: Tensor
    seen: Tensor


class _Sums:
    def __init__(self, K: int, D: int, device: torch.device) -> None:
        self.n_k = torch.zeros(K, dtype=torch.float64, device=device)
        self.ones = torch.zeros(K, D, dtype=torch.float64, device=device)
        self.unseen = torch.zeros(K, D, dtype=torch.float64, device=device)

    def add(self, block: Tensor | _GapBlock, rw: Tensor, w: Tensor | None) -> None:
        self.n_k += rw.sum(1, dtype=torch.float64)
        if isinstance(block, _GapBlock):
            self.ones += (rw @ block.x).double()  # a gap holds 0: it adds nothing
            self.unseen += (rw @ (1.0 - block.seen)).double()
        else:
            self.ones += (rw @ block).double()

    def result(self) -> BernoulliStats:
        return BernoulliStats(self.n_k, self.ones, self.unseen)


def clamped(p: Tensor) -> Tensor:
    """Probabilities kept where their logs and logits are finite (alpha = 0 may reach 0 or 1)."""
    return p.clamp(_LOW, 1.0 - _EPS)


class BernoulliComponent:
    """K products of D Bernoullis, with ``alpha`` pseudo-counts of 0 and of 1 per column."""

    letters = "p"
    translatable = False  # 0/1 values, not positions
    failure = "Fitting the Bernoulli mixture failed: every component lost its support"

    def __init__(self, alpha: float = 1.0, dtype: torch.dtype = torch.float64, advice: str = "check the data",
                 gaps: bool = False) -> None:
        self.alpha = float(alpha)
        self.dtype = self.row_dtype = dtype  # 0 and 1 are exact in any float
        self.advice = advice
        self.gaps = gaps  # a NaN is missing: its term is 0 (marginalised) and its column's statistics skip it

    @property
    def regularised(self) -> bool:
        return self.alpha > 0

    def translate(self, p: BernoulliParams, offset: Tensor) -> BernoulliParams:
        return p

    def location(self, p: BernoulliParams) -> None:
        return None

    def make_params(self, probabilities: Tensor) -> BernoulliParams:
        return BernoulliParams(probabilities.to(torch.float64))

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: BernoulliParams, device: torch.device) -> _Prepared:
        q = clamped(p.probabilities.to(device))
        log1m = torch.log1p(-q)
        logits = torch.log(q) - log1m
        return _Prepared(logits.to(self.dtype), log1m.sum(1).to(self.dtype), p.probabilities.to(device, self.dtype),
                         log1m.to(self.dtype))

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        itemsize = torch.finfo(self.dtype).bits // 8
        return max(1024, _BLOCK_BYTES // ((D + K) * itemsize))

    def block(self, p: _Prepared, x: Tensor) -> Tensor | _GapBlock:
        """The rows in the kernel dtype; with gaps allowed and present, a :class:`_GapBlock`."""
        x = x.to(p.dtype)
        if self.gaps:
            gap = torch.isnan(x)
            if numerics.defers_reads(x.device) or bool(gap.any()):  # a GPU asks nothing: no gap, same answer
                return _GapBlock(x.masked_fill(gap, 0.0), (~gap).to(p.dtype))
        return x

    def log_joint(self, p: _Prepared, block: Tensor | _GapBlock, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        if isinstance(block, _GapBlock):  # sum over the observed d: x . logits + seen . log(1 - p)
            joint = torch.addmm(log_w.to(p.dtype)[None, :], block.x, p.logits.T).addmm_(block.seen, p.log1m.T)
            return joint.T if into is None else into.copy_(joint)
        top = p.const + log_w
        if into is not None:
            return torch.addmm(top[None, :], block, p.logits.T, out=into)
        return torch.addmm(top[:, None], p.logits, block.T)

    def accumulator(self, p: _Prepared) -> _Sums:
        return _Sums(p.n_components, p.logits.shape[1], p.logits.device)

    # ------------------------------------------------------------------ initialisation
    def embed(self, x: Tensor) -> Tensor:
        """Rows in the space k-means seeds in: 0/1 rows as they are (squared distance = Hamming)."""
        return x

    def centres_of(self, p: BernoulliParams) -> Tensor:
        return p.probabilities

    def at(self, centres: Tensor) -> BernoulliParams:
        """Components whose probabilities are k-means centres of 0/1 rows (K, D)."""
        return BernoulliParams(centres.to(torch.float64).clamp(0.0, 1.0))

    def nearest(self, p: _Prepared, block: Tensor | _GapBlock) -> tuple[Tensor, Tensor]:
        """The nearest centre by squared Euclidean distance (Hamming for 0/1 centres), over
        each row's observed columns."""
        if isinstance(block, _GapBlock):
            best, labels = observed_distances(block.x, p.centres, block.seen == 0).min(1)
        else:
            best, labels = squared_distances(block, p.centres).min(1)
        return labels, best.neg_()

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: BernoulliStats, old: BernoulliParams | None, update: str = "p") -> tuple[BernoulliParams, Tensor]:
        """p = (alpha + ones) / (2 alpha + n_k - unseen): each column over the rows that
        observed it; a component (column) with nothing to estimate from keeps ``old``."""
        valid = torch.ones(s.n_k.shape[0], dtype=torch.bool)
        if "p" not in update:
            return old, valid
        denom = 2 * self.alpha + (s.n_k[:, None] - s.unseen)  # without gaps, n_k - 0: n_k exactly
        new = (self.alpha + s.ones) / torch.where(denom > 0, denom, torch.ones_like(denom))
        if old is not None:
            new = torch.where(denom > 0, new, old.probabilities.to(new))
        return BernoulliParams(new.clamp(0.0, 1.0)), valid

    def prior_gain(self, new: BernoulliParams, old: BernoulliParams) -> float:
        """The Beta prior's log-density alpha (log p + log(1 - p)), from ``old`` to ``new``."""
        if self.alpha == 0:
            return 0.0

        def log_prior(p: Tensor) -> Tensor:
            q = clamped(p)
            return self.alpha * (torch.log(q) + torch.log1p(-q)).sum()

        return float(log_prior(new.probabilities) - log_prior(old.probabilities))

    def reseed(self, p: BernoulliParams, dead: list[int], rows: Tensor, weights: Tensor) -> BernoulliParams:
        """Dead components move near ``rows``: 0.9 x the row + 0.1 x the live components' average."""
        live = torch.ones(p.n_components, dtype=torch.bool, device=p.probabilities.device)
        live[dead] = False
        lw = weights[live].to(p.probabilities)
        average = (lw[:, None] * p.probabilities[live]).sum(0) / lw.sum()
        probs = p.probabilities.clone()
        for j, k in enumerate(dead):
            row = rows[j].to(probs)
            probs[k] = torch.where(torch.isnan(row), average, 0.9 * row.clamp(0, 1) + 0.1 * average)  # a gap: the average
        return BernoulliParams(probs)

    def expected_log_density(self, p: BernoulliParams, s: BernoulliStats) -> Tensor:
        """sum_k sum_n r_nk log p_k(x_n) from the statistics alone (0-d, float64): each
        column's ones times log p, its observed zeros times log(1 - p), at the clamped
        probabilities the E-step uses. For fixed responsibilities (``MixtureModel.restate``)."""
        q = clamped(p.probabilities.to(s.n_k.device, torch.float64))
        zeros = s.n_k[:, None] - s.ones - s.unseen
        return (s.ones * torch.log(q) + zeros * torch.log1p(-q)).sum()

    def decrease_tolerance(self, p: BernoulliParams, weights: Tensor, value: float) -> float:
        """Rounding of the kernel's sums: the mean log-likelihood carries about eps of its size."""
        return 100 * torch.finfo(self.dtype).eps * (1.0 + abs(value))

    def impute(self, p: _Prepared, x: Tensor, resp: Tensor, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """x (n, D) with every gap completed, (n, D) float64: P(x_d = 1 | x_obs) =
        sum_k r_k p_kd, or with ``uniforms`` (n,) and ``normals`` (n, D) a draw (a
        component by its posterior ``resp`` (K, n), then each gap from its Bernoulli)."""
        out, gap = x.double(), torch.isnan(x)
        if not bool(gap.any()):
            return out
        probs = p.centres.double()
        if uniforms is None:
            fill = resp.double().T @ probs
        else:
            fill = (coordinate_uniforms(normals) < probs[drawn_components(resp, uniforms)]).double()
        return torch.where(gap, fill, out)

    # ------------------------------------------------------------------ the rest
    def sample(self, p: BernoulliParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        return torch.bernoulli(p.probabilities.cpu()[labels.cpu()], generator=generator)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * D

    def to_tensors(self, p: BernoulliParams) -> dict[str, Tensor]:
        return {"probabilities": p.probabilities}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> BernoulliParams:
        return self.make_params(tensors["probabilities"])

    def flatten(self, p: BernoulliParams) -> Tensor:
        """Logits log p - log(1 - p), finite (probabilities clamped off 0 and 1)."""
        q = clamped(p.probabilities)
        return (torch.log(q) - torch.log1p(-q)).reshape(-1)

    def unflatten(self, vector: Tensor, like: BernoulliParams) -> BernoulliParams:
        return BernoulliParams(torch.sigmoid(vector).reshape(like.probabilities.shape))
