"""The Bernoulli component: K products of independent binary columns. Math only.

log p_k(x) = sum_d x_d log p_kd + (1 - x_d) log(1 - p_kd)
           = x . (log p_k - log(1 - p_k)) + sum_d log(1 - p_kd),

so a block's log-densities are one (K x D) @ (D x n) product of the logits with the
rows, plus a constant per component. Each entry's term stands alone (a sum over d), so
an entry that is missing will simply contribute nothing. Statistics are the
responsibility mass and the responsibility-weighted ones per column; the M-step is the
MAP under a Beta(alpha + 1, alpha + 1) prior, p = (alpha + ones) / (2 alpha + n_k):
alpha pseudo-counts of each value keep every probability inside (0, 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.numerics import squared_distances
from .._core.stats import additive

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
    """n_k (K,): responsibility mass; ones (K, D): responsibility mass of x_d = 1; float64."""

    n_k: Tensor
    ones: Tensor

    def rebase(self, like: BernoulliStats) -> BernoulliStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    logits: Tensor  # (K, D) kernel dtype: log p - log(1 - p)
    const: Tensor  # (K,) kernel dtype: sum_d log(1 - p_kd)
    centres: Tensor  # (K, D) kernel dtype: the probabilities, for nearest-centre assignment

    @property
    def dtype(self) -> torch.dtype:
        return self.logits.dtype

    @property
    def n_components(self) -> int:
        return int(self.logits.shape[0])


class _Sums:
    def __init__(self, K: int, D: int, device: torch.device) -> None:
        self.n_k = torch.zeros(K, dtype=torch.float64, device=device)
        self.ones = torch.zeros(K, D, dtype=torch.float64, device=device)

    def add(self, block: Tensor, rw: Tensor, w: Tensor | None) -> None:
        self.n_k += rw.sum(1, dtype=torch.float64)
        self.ones += (rw @ block).double()

    def result(self) -> BernoulliStats:
        return BernoulliStats(self.n_k, self.ones)


def clamped(p: Tensor) -> Tensor:
    """Probabilities kept where their logs and logits are finite (alpha = 0 may reach 0 or 1)."""
    return p.clamp(_LOW, 1.0 - _EPS)


class BernoulliComponent:
    """K products of D Bernoullis, with ``alpha`` pseudo-counts of 0 and of 1 per column."""

    letters = "p"
    translatable = False  # 0/1 values, not positions
    failure = "Fitting the Bernoulli mixture failed: every component lost its support"

    def __init__(self, alpha: float = 1.0, dtype: torch.dtype = torch.float64, advice: str = "check the data") -> None:
        self.alpha = float(alpha)
        self.dtype = self.row_dtype = dtype  # 0 and 1 are exact in any float
        self.advice = advice

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
        return _Prepared(logits.to(self.dtype), log1m.sum(1).to(self.dtype), p.probabilities.to(device, self.dtype))

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        itemsize = torch.finfo(self.dtype).bits // 8
        return max(1024, _BLOCK_BYTES // ((D + K) * itemsize))

    def block(self, p: _Prepared, x: Tensor) -> Tensor:
        return x.to(p.dtype)

    def log_joint(self, p: _Prepared, block: Tensor, log_w: Tensor, into: Tensor | None = None) -> Tensor:
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

    def nearest(self, p: _Prepared, block: Tensor) -> tuple[Tensor, Tensor]:
        """The nearest centre by squared Euclidean distance (Hamming for 0/1 centres)."""
        best, labels = squared_distances(block, p.centres).min(1)
        return labels, best.neg_()

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: BernoulliStats, old: BernoulliParams | None, update: str = "p") -> tuple[BernoulliParams, Tensor]:
        """p = (alpha + ones) / (2 alpha + n_k); a component with nothing to estimate from keeps ``old``."""
        valid = torch.ones(s.n_k.shape[0], dtype=torch.bool)
        if "p" not in update:
            return old, valid
        denom = (2 * self.alpha + s.n_k)[:, None].expand_as(s.ones)
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
            probs[k] = 0.9 * rows[j].to(probs).clamp(0, 1) + 0.1 * average
        return BernoulliParams(probs)

    def decrease_tolerance(self, p: BernoulliParams, weights: Tensor, value: float) -> float:
        """Rounding of the kernel's sums: the mean log-likelihood carries about eps of its size."""
        return 100 * torch.finfo(self.dtype).eps * (1.0 + abs(value))

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
