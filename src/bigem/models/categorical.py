"""The categorical component: K distributions over the M symbols of one column. Math only.

The emission of hmmlearn's CategoricalHMM (x holds one column of symbols 0..M-1,
stored as floats like every other row). Log-densities are a gather from the
(K, M) log-probabilities; statistics are posterior-weighted symbol counts; the
M-step is hmmlearn's Dirichlet MAP update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.stats import additive

_BLOCK_ROWS = 1 << 16


@dataclass(frozen=True, slots=True)
class CategoricalParams:
    """probabilities (K, M): row k is component k's distribution over the M symbols."""

    probabilities: Tensor

    @property
    def n_components(self) -> int:
        return int(self.probabilities.shape[0])

    def to(self, device: torch.device | str) -> CategoricalParams:
        return CategoricalParams(self.probabilities.to(device))


@additive
@dataclass(frozen=True, slots=True)
class CategoricalStats:
    """counts (K, M): the responsibility mass of each symbol in each component, float64."""

    counts: Tensor

    @property
    def n_k(self) -> Tensor:
        return self.counts.sum(1)

    def rebase(self, like: CategoricalStats) -> CategoricalStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    log_probs: Tensor  # (K, M) kernel dtype; log 0 = -inf: that symbol is impossible there

    @property
    def dtype(self) -> torch.dtype:
        return self.log_probs.dtype

    @property
    def n_components(self) -> int:
        return int(self.log_probs.shape[0])


@dataclass(frozen=True, slots=True)
class _Gapped:
    """A block with missing symbols: the symbols (0 in the gaps) and where one was seen."""

    symbols: Tensor  # (n,) int64
    seen: Tensor  # (n,) bool


class _Counts:
    def __init__(self, K: int, M: int, device: torch.device) -> None:
        self.counts = torch.zeros(K, M, dtype=torch.float64, device=device)

    def add(self, block: Tensor | _Gapped, rw: Tensor, w: Tensor | None) -> None:
        if isinstance(block, _Gapped):  # a missing symbol counts for nothing
            self.counts.index_add_(1, block.symbols, rw.double() * block.seen)
            return
        self.counts.index_add_(1, block, rw.double())

    def result(self) -> CategoricalStats:
        return CategoricalStats(self.counts)


class CategoricalComponent:
    """K categorical distributions over ``n_symbols`` symbols, with a Dirichlet prior of
    concentration ``prior`` (1: none) on each."""

    letters = "e"
    translatable = False  # symbols, not positions

    def __init__(self, n_symbols: int, prior: Tensor | float = 1.0, dtype: torch.dtype = torch.float64,
                 advice: str = "check the symbols", gaps: bool = False) -> None:
        self.n_symbols = n_symbols
        self.prior = prior
        self.dtype = self.row_dtype = dtype  # symbols beyond 2**24 in float32 are refused by the estimator
        self.advice = advice
        self.gaps = gaps  # a NaN symbol is missing: log-density 0 (marginalised), counted nowhere

    @property
    def regularised(self) -> bool:
        return not bool(torch.all(torch.as_tensor(self.prior) == 1.0))

    def translate(self, p: CategoricalParams, offset: Tensor) -> CategoricalParams:
        return p

    def location(self, p: CategoricalParams) -> None:
        return None

    def make_params(self, probabilities: Tensor) -> CategoricalParams:
        return CategoricalParams(probabilities.to(torch.float64))

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: CategoricalParams, device: torch.device) -> _Prepared:
        return _Prepared(torch.log(p.probabilities.to(device)).to(self.dtype))

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return _BLOCK_ROWS

    def block(self, p: _Prepared, x: Tensor) -> Tensor | _Gapped:
        if self.gaps:
            gap = torch.isnan(x[:, 0])
            if bool(gap.any()):
                return _Gapped(x[:, 0].masked_fill(gap, 0.0).long(), ~gap)
        return x[:, 0].long()

    def log_joint(self, p: _Prepared, block: Tensor | _Gapped, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        if isinstance(block, _Gapped):
            joint = torch.where(block.seen, p.log_probs[:, block.symbols], 0.0) + log_w[:, None]
            return joint if into is None else into.copy_(joint.T)
        if into is not None:
            return torch.index_select(p.log_probs.T, 0, block, out=into).add_(log_w)
        return p.log_probs[:, block] + log_w[:, None]

    def accumulator(self, p: _Prepared) -> _Counts:
        return _Counts(p.n_components, p.log_probs.shape[1], p.log_probs.device)

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: CategoricalStats, old: CategoricalParams, update: str = "e") -> tuple[CategoricalParams, Tensor]:
        """hmmlearn's update: max(prior - 1 + counts, 0), rows normalised; a component
        with no mass keeps its old row."""
        valid = torch.ones(s.counts.shape[0], dtype=torch.bool)
        if "e" not in update:
            return old, valid
        prior = torch.as_tensor(self.prior, dtype=torch.float64, device=s.counts.device)
        new = torch.clamp(prior - 1.0 + s.counts, min=0.0)
        total = new.sum(1, keepdim=True)
        probabilities = torch.where(total > 0, new / torch.where(total > 0, total, 1.0), old.probabilities)
        return CategoricalParams(probabilities), valid

    def prior_gain(self, new: CategoricalParams, old: CategoricalParams) -> float:
        """The Dirichlet prior's: sum (prior - 1) (log new - log old) over the entries that moved."""
        a = torch.broadcast_to(torch.as_tensor(self.prior, dtype=torch.float64, device=new.probabilities.device) - 1.0,
                               new.probabilities.shape)
        moved = (new.probabilities != old.probabilities) & (a != 0)
        if not bool(moved.any()):
            return 0.0
        return float((a[moved] * (torch.log(new.probabilities[moved]) - torch.log(old.probabilities[moved]))).sum())

    # ------------------------------------------------------------------ the rest
    def sample(self, p: CategoricalParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        cdf = torch.cumsum(p.probabilities.cpu(), 1)
        u = torch.rand(labels.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[labels, -1:]
        sym = torch.searchsorted(cdf[labels].contiguous(), u, right=True).clamp_(max=cdf.shape[1] - 1)
        return sym.to(torch.float64)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * (self.n_symbols - 1)

    def to_tensors(self, p: CategoricalParams) -> dict[str, Tensor]:
        return {"probabilities": p.probabilities}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> CategoricalParams:
        return self.make_params(tensors["probabilities"])

    def flatten(self, p: CategoricalParams) -> Tensor:
        """Each row's logits (log p minus its mean over the possible symbols; 0 where p = 0)."""
        return _logits(p.probabilities).reshape(-1)

    def unflatten(self, vector: Tensor, like: CategoricalParams) -> CategoricalParams:
        return CategoricalParams(softmax_where(vector.reshape(like.probabilities.shape), like.probabilities > 0))


def _logits(p: Tensor) -> Tensor:
    """Row-centred log-probabilities, 0 where a probability is 0."""
    positive = p > 0
    log_p = torch.where(positive, torch.log(torch.where(positive, p, torch.ones_like(p))), torch.zeros_like(p))
    mean = log_p.sum(-1, keepdim=True) / positive.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(positive, log_p - mean, torch.zeros_like(p))


def softmax_where(logits: Tensor, allowed: Tensor) -> Tensor:
    """Softmax over the last axis, over the ``allowed`` entries only (the rest: 0)."""
    return torch.softmax(torch.where(allowed, logits, torch.full_like(logits, -torch.inf)), -1)
