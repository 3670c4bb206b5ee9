"""The multinomial emission of hmmlearn's MultinomialHMM: K distributions of counts over
D categories, dense and unsmoothed (``multinomial`` is the mixtures' sparse,
smoothed bag of words). Math only.

Each row holds the counts of D categories
in n = sum(x) trials, and state k draws them from Multinomial(n, p_k). Log-densities
are log n! - sum log x_d! + x @ log p_k; statistics are posterior-weighted counts; the
M-step is hmmlearn's: p_k proportional to them.

All of it runs in float64 whatever the compute dtype, for the reason the Poisson
component gives: log n! and the x log p terms cancel to a number far smaller than
either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.stats import additive

_BLOCK_ROWS = 1 << 16


@dataclass(frozen=True, slots=True)
class MultinomialEmissionParams:
    """probabilities (K, D): row k is state k's distribution over the D categories."""

    probabilities: Tensor

    @property
    def n_components(self) -> int:
        return int(self.probabilities.shape[0])

    def to(self, device: torch.device | str) -> MultinomialEmissionParams:
        return MultinomialEmissionParams(self.probabilities.to(device))


@additive
@dataclass(frozen=True, slots=True)
class MultinomialEmissionStats:
    """counts (K, D): the posterior-weighted counts of each category in each state, float64."""

    counts: Tensor

    @property
    def n_k(self) -> Tensor:
        return self.counts.sum(1)

    def rebase(self, like: MultinomialEmissionStats) -> MultinomialEmissionStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    log_probs: Tensor  # (K, D) float64, log 0 replaced by 0 (``never`` says where)
    never: Tensor  # (K, D) float64: 1 where a category is impossible in a state
    dtype: torch.dtype  # what the caller computes in

    @property
    def n_components(self) -> int:
        return int(self.log_probs.shape[0])


@dataclass(slots=True)
class _Block:
    x: Tensor  # (n, D) counts, float64
    log_coefficient: Tensor  # (n,) log n! - sum_d log x_d!


class _Sums:
    def __init__(self, K: int, D: int, device: torch.device) -> None:
        self.counts = torch.zeros(K, D, dtype=torch.float64, device=device)

    def add(self, block: _Block, rw: Tensor, w: Tensor | None) -> None:
        self.counts += rw.double() @ block.x

    def result(self) -> MultinomialEmissionStats:
        return MultinomialEmissionStats(self.counts)


class MultinomialEmission:
    """K multinomial distributions over D categories (hmmlearn's MultinomialHMM emission).

    ``n_trials`` is for sampling only (the rows carry their own totals)."""

    letters = "e"
    translatable = False  # counts, not positions
    regularised = False

    def __init__(self, n_trials: int | None = None, dtype: torch.dtype = torch.float64,
                 advice: str = "check the counts") -> None:
        self.n_trials = n_trials
        self.dtype = dtype
        self.row_dtype = torch.float64  # counts stay exact; the arithmetic is float64 anyway
        self.advice = advice

    def translate(self, p: MultinomialEmissionParams, offset: Tensor) -> MultinomialEmissionParams:
        return p

    def location(self, p: MultinomialEmissionParams) -> None:
        return None

    def make_params(self, probabilities: Tensor) -> MultinomialEmissionParams:
        return MultinomialEmissionParams(probabilities.to(torch.float64))

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: MultinomialEmissionParams, device: torch.device) -> _Prepared:
        probs = p.probabilities.to(device=device, dtype=torch.float64)
        never = probs <= 0
        log_probs = torch.where(never, torch.zeros_like(probs), torch.log(probs.clamp_min(torch.finfo(torch.float64).tiny)))
        return _Prepared(log_probs, never.double(), self.dtype)

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return _BLOCK_ROWS

    def block(self, p: _Prepared, x: Tensor) -> _Block:
        x = x.to(torch.float64)
        return _Block(x, torch.lgamma(x.sum(1) + 1) - torch.lgamma(x + 1).sum(1))

    def log_joint(self, p: _Prepared, block: _Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + log p_k(x): (K, n), or (n, K) into ``into``; -inf where a row counts
        a category its state never emits (0 log 0 = 0, as scipy's)."""
        joint = block.x @ p.log_probs.T + block.log_coefficient[:, None] + log_w.double()
        joint = joint.masked_fill((block.x > 0).double() @ p.never.T > 0, -torch.inf)
        return joint.T.to(p.dtype) if into is None else into.copy_(joint)

    def accumulator(self, p: _Prepared) -> _Sums:
        return _Sums(p.n_components, p.log_probs.shape[1], p.log_probs.device)

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: MultinomialEmissionStats, old: MultinomialEmissionParams, update: str = "e") -> tuple[MultinomialEmissionParams, Tensor]:
        """hmmlearn's update: each state's counts normalised. A state that counted
        nothing keeps its old distribution."""
        valid = torch.ones(s.counts.shape[0], dtype=torch.bool)
        if "e" not in update:
            return old, valid
        total = s.counts.sum(1, keepdim=True)
        new = s.counts / torch.where(total > 0, total, torch.ones_like(total))
        return MultinomialEmissionParams(torch.where(total > 0, new, old.probabilities.to(new.device))), valid

    def prior_gain(self, new: MultinomialEmissionParams, old: MultinomialEmissionParams) -> float:
        return 0.0  # no prior: the likelihood itself rises

    # ------------------------------------------------------------------ the rest
    def sample(self, p: MultinomialEmissionParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        """Counts of ``n_trials`` draws from each row's state."""
        probs = p.probabilities.cpu()[labels]
        n, D = probs.shape
        draws = torch.multinomial(probs, int(self.n_trials), replacement=True, generator=generator)
        return torch.zeros(n, D, dtype=torch.float64).scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * (D - 1)

    def to_tensors(self, p: MultinomialEmissionParams) -> dict[str, Tensor]:
        return {"probabilities": p.probabilities}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> MultinomialEmissionParams:
        return self.make_params(tensors["probabilities"])

    def flatten(self, p: MultinomialEmissionParams) -> Tensor:
        return torch.log(p.probabilities.clamp_min(torch.finfo(torch.float64).tiny)).reshape(-1)

    def unflatten(self, vector: Tensor, like: MultinomialEmissionParams) -> MultinomialEmissionParams:
        return MultinomialEmissionParams(torch.softmax(vector.reshape(like.probabilities.shape), dim=1))
