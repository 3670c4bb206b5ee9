"""The Poisson component: K distributions of independent counts per feature. Math only.

The emission of hmmlearn's PoissonHMM and the component of PoissonMixture. Log-densities are one product of the counts
with the log-rates, less the rates and the log-factorials; statistics are the
responsibility mass and the responsibility-weighted counts; the M-step is hmmlearn's
Gamma-prior update lambdas = (prior + counts) / (weight + mass): the MAP under a
Gamma(prior + 1, weight) prior, ``prior`` pseudo-events over ``weight`` pseudo-rows
(a mixture's alpha and beta). Each entry's term stands alone (a sum over features), so
an entry that is missing will simply contribute nothing.

All of it runs in float64 whatever the compute dtype: the three terms of a count's
log-density are each about x log x and cancel to a number of order log x, so at
counts of 1e7 float32 kept no digit of the result (a fit's log-likelihood came out
-6798 against float64's and hmmlearn's -5909, and a count of 2^25 scored 0.0). The
products are (n x D) @ (D x K), small beside the forward-backward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core import numerics
from .._core.numerics import squared_distances
from .gaps import coordinate_uniforms, drawn_components, observed_distances
from .._core.stats import additive

_BLOCK_ROWS = 1 << 16


@dataclass(frozen=True, slots=True)
class PoissonParams:
    """rates (K, D): the expected count of each feature in each component, float64."""

    rates: Tensor

    @property
    def n_components(self) -> int:
        return int(self.rates.shape[0])

    def to(self, device: torch.device | str) -> PoissonParams:
        return PoissonParams(self.rates.to(device))


@additive
@dataclass(frozen=True, slots=True)
class PoissonStats:
    """n_k (K,): responsibility mass; sums (K, D): responsibility-weighted counts; seen
    (K, D): the responsibility mass of the rows that observed each feature (n_k for
    every feature without gaps; a missing count adds to neither); float64."""

    n_k: Tensor
    sums: Tensor
    seen: Tensor

    def rebase(self, like: PoissonStats) -> PoissonStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    log_rates: Tensor  # (K, D) float64
    rate_sums: Tensor  # (K,) float64
    dtype: torch.dtype  # what the caller computes in (log-densities are returned in it)
    rates: Tensor  # (K, D) float64: nearest-centre assignment, and rows with gaps
    zero: Tensor | None = None  # (K, D) float64 1 where a rate is 0 (``exact_zeros``), else None

    @property
    def n_components(self) -> int:
        return int(self.log_rates.shape[0])


@dataclass(slots=True)
class _Block:
    x: Tensor  # (n, D) counts (0 in the gaps)
    log_factorials: Tensor  # (n,) sum_d log(x_d!)
    seen: Tensor | None = None  # (n, D) float64: 1 where a count was observed, 0 in a gap; None: no gap


class _Sums:
    def __init__(self, K: int, D: int, device: torch.device) -> None:
        self.n_k = torch.zeros(K, dtype=torch.float64, device=device)
        self.sums = torch.zeros(K, D, dtype=torch.float64, device=device)
        self.unseen = None  # (K, D) the mass of the gaps, once a block has one

    def add(self, block: _Block, rw: Tensor, w: Tensor | None) -> None:
        rw = rw.double()
        self.n_k += rw.sum(1)
        self.sums += rw @ block.x  # a gap holds 0: it adds nothing
        if block.seen is not None:
            unseen = rw @ (1.0 - block.seen)
            self.unseen = unseen if self.unseen is None else self.unseen + unseen

    def result(self) -> PoissonStats:
        seen = self.n_k[:, None].expand_as(self.sums)
        return PoissonStats(self.n_k, self.sums, seen if self.unseen is None else seen - self.unseen)


class PoissonComponent:
    """K products of independent Poissons, with hmmlearn's Gamma prior on the rates."""

    letters = "l"
    translatable = False  # counts, not positions
    failure = "Fitting the Poisson mixture failed: every component lost its support"

    def __init__(self, rates_prior: Tensor | float = 0.0, rates_weight: Tensor | float = 0.0,
                 dtype: torch.dtype = torch.float64, advice: str = "check the counts", gaps: bool = False,
                 prior_per_row: bool = False, exact_zeros: bool = False) -> None:
        self.rates_prior = rates_prior
        self.rates_weight = rates_weight
        # hmmlearn's PoissonHMM weighs the prior against every row's mass, not the state's:
        # (prior + n * mean_k) / (weight + n), n the whole responsibility mass
        self.prior_per_row = prior_per_row
        self.dtype = dtype
        self.row_dtype = torch.float64  # float32 rounds counts from 2**24 up; the arithmetic is float64 anyway
        self.advice = advice
        self.gaps = gaps  # a NaN count is missing: its terms are 0 (marginalised) and its statistics skip it
        # a count above 0 where a rate is 0 has probability 0: -inf (hmmlearn's), where
        # without it the rate is read as the smallest float64 (a log-density near -709)
        self.exact_zeros = exact_zeros

    regularised = False  # hmmlearn's prior enters as pseudo-counts; the likelihood still rises

    def translate(self, p: PoissonParams, offset: Tensor) -> PoissonParams:
        return p

    def location(self, p: PoissonParams) -> None:
        return None

    def make_params(self, rates: Tensor) -> PoissonParams:
        return PoissonParams(rates.to(torch.float64))

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: PoissonParams, device: torch.device) -> _Prepared:
        rates = p.rates.to(device=device, dtype=torch.float64)
        log_rates = torch.log(rates.clamp_min(torch.finfo(torch.float64).tiny))
        zero = (rates == 0).double() if self.exact_zeros else None
        return _Prepared(log_rates, rates.sum(1), self.dtype, rates, zero)

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return _BLOCK_ROWS

    def block(self, p: _Prepared, x: Tensor) -> _Block:
        x = x.to(torch.float64)
        if self.gaps:
            gap = torch.isnan(x)
            if numerics.defers_reads(x.device) or bool(gap.any()):  # a GPU asks nothing: no gap, same answer
                x = x.masked_fill(gap, 0.0)  # log 0! = 0: a gap's factorial term vanishes
                return _Block(x, torch.lgamma(x + 1).sum(1), (~gap).double())
        return _Block(x, torch.lgamma(x + 1).sum(1))

    def log_joint(self, p: _Prepared, block: _Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + log p_k(x): (K, n), or (n, K) into ``into``; in float64, returned in
        the caller's dtype once the terms have cancelled."""
        rates = p.rate_sums if block.seen is None else block.seen @ p.rates.T  # a gap's rate term: 0
        joint = block.x @ p.log_rates.T - (rates - log_w.double()) - block.log_factorials[:, None]
        if p.zero is not None:  # counts where a component's rate is 0: impossible there
            joint = joint.masked_fill((block.x > 0).double() @ p.zero.T > 0, -torch.inf)
        return joint.T.to(p.dtype) if into is None else into.copy_(joint)

    def accumulator(self, p: _Prepared) -> _Sums:
        return _Sums(p.n_components, p.log_rates.shape[1], p.log_rates.device)

    # ------------------------------------------------------------------ initialisation
    def embed(self, x: Tensor) -> Tensor:
        """Rows in the space k-means seeds in: the counts as they are."""
        return x

    def centres_of(self, p: PoissonParams) -> Tensor:
        return p.rates

    def at(self, centres: Tensor) -> PoissonParams:
        """Components whose rates are k-means centres of the counts (K, D)."""
        return PoissonParams(centres.to(torch.float64).clamp(min=0.0))

    def nearest(self, p: _Prepared, block: _Block) -> tuple[Tensor, Tensor]:
        """The nearest centre by squared Euclidean distance between counts and rates, over
        each row's observed columns."""
        if block.seen is None:
            best, labels = squared_distances(block.x, p.rates).min(1)
        else:
            best, labels = observed_distances(block.x, p.rates, block.seen == 0).min(1)
        return labels, best.neg_().to(p.dtype)

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: PoissonStats, old: PoissonParams | None, update: str = "l") -> tuple[PoissonParams, Tensor]:
        valid = torch.ones(s.n_k.shape[0], dtype=torch.bool)
        if "l" not in update:
            return old, valid
        dev = s.sums.device
        a = torch.as_tensor(self.rates_prior, dtype=torch.float64, device=dev)
        b = torch.as_tensor(self.rates_weight, dtype=torch.float64, device=dev)
        seen = s.seen.expand_as(s.sums)
        if self.prior_per_row:
            n = seen.sum(0, keepdim=True).expand_as(seen)  # a column's observed mass over all states
            mean = s.sums / torch.where(seen > 0, seen, torch.ones_like(seen))
            denom = b + n
            new = (a + n * mean) / torch.where(denom > 0, denom, torch.ones_like(denom))
            ok = (seen > 0) & (denom > 0)
        else:
            denom = b + seen
            new = (a + s.sums) / torch.where(denom > 0, denom, torch.ones_like(denom))
            ok = denom > 0
        fallback = old.rates.to(new) if old is not None else torch.zeros_like(new)
        return PoissonParams(torch.where(ok, new, fallback)), valid

    def reseed(self, p: PoissonParams, dead: list[int], rows: Tensor, weights: Tensor) -> PoissonParams:
        """Dead components move near ``rows``: half the row's counts, half the live
        components' average rates (so no rate of a seen count is 0)."""
        live = torch.ones(p.n_components, dtype=torch.bool, device=p.rates.device)
        live[dead] = False
        lw = weights[live].to(p.rates)
        average = (lw[:, None] * p.rates[live]).sum(0) / lw.sum()
        rates = p.rates.clone()
        for j, k in enumerate(dead):  # a gap: the average alone
            row = rows[j].to(rates)
            rates[k] = torch.where(torch.isnan(row), average, 0.5 * row.clamp(min=0) + 0.5 * average)
        return PoissonParams(rates)

    def decrease_tolerance(self, p: PoissonParams, weights: Tensor | None, value: float) -> float:
        """Rounding of the log-densities: returned in the compute dtype, they carry about
        its eps of their size, plus what the float64 kernel loses to its cancelling terms
        (:meth:`log_density_rounding`)."""
        return 100 * torch.finfo(self.dtype).eps * (1.0 + abs(value)) + self.log_density_rounding(p, weights)

    def log_density_rounding(self, p: PoissonParams, weights: Tensor | None) -> float:
        """What float64 rounding leaves of a row's log-density, whose terms x log(rate),
        rate and log(x!) cancel: about eps times their size (a row near its component's
        rates: sum_d rate |log rate| + rate + lgamma(rate + 1)), averaged over the
        components by ``weights`` (None: equally). At counts of 1e8 the terms are 5e9 a
        row and the result about -11: a fall of 1e-7 between two iterations is rounding."""
        rates = p.rates.double()
        size = (rates * rates.clamp_min(torch.finfo(torch.float64).tiny).log().abs() + rates
                + torch.lgamma(rates + 1.0)).sum(1)
        share = torch.full_like(size, 1.0 / size.shape[0]) if weights is None else weights.to(size)
        return 100 * torch.finfo(torch.float64).eps * float((share * size).sum())

    def impute(self, p: _Prepared, x: Tensor, resp: Tensor, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """x (n, D) with every gap completed, (n, D) float64: E[x_d | x_obs] = sum_k r_k
        lambda_kd, or with ``uniforms`` (n,) and ``normals`` (n, D) a draw (a component by
        its posterior ``resp`` (K, n), then each gap by the inverse of its Poisson's
        distribution function)."""
        out, gap = x.double(), torch.isnan(x)
        if not bool(gap.any()):
            return out
        if uniforms is None:
            return torch.where(gap, resp.double().T @ p.rates, out)
        rate = p.rates[drawn_components(resp, uniforms)][gap]  # the gaps' rates and uniforms, flat
        u = coordinate_uniforms(normals)[gap]
        # the least k with P(X <= k) = Q(k + 1, rate) >= u, by bisection (any rate: no
        # pmf to underflow), between 0 and far beyond the rate's bulk
        low, high = torch.zeros_like(rate), torch.ceil(rate + 20.0 * torch.sqrt(rate) + 50.0)
        for _ in range(int(torch.log2(high.max()).ceil()) + 1):
            mid = torch.floor((low + high) / 2)
            enough = torch.special.gammaincc(mid + 1.0, rate) >= u
            high, low = torch.where(enough, mid, high), torch.where(enough, low, mid + 1.0)
        return out.masked_scatter(gap, low)

    def prior_gain(self, new: PoissonParams, old: PoissonParams) -> float:
        """The Gamma prior's (log-density rates_prior log lambda - rates_weight lambda, of
        which the M-step is the MAP), over the rates that moved."""
        f64 = dict(dtype=torch.float64, device=new.rates.device)
        a = torch.broadcast_to(torch.as_tensor(self.rates_prior, **f64), new.rates.shape)
        b = torch.broadcast_to(torch.as_tensor(self.rates_weight, **f64), new.rates.shape)
        moved = new.rates != old.rates
        if not bool(moved.any()):
            return 0.0
        lam, was = new.rates[moved], old.rates[moved]
        log_ratio = torch.where(a[moved] != 0, a[moved] * (torch.log(lam) - torch.log(was)), torch.zeros_like(lam))
        return float((log_ratio - b[moved] * (lam - was)).sum())

    # ------------------------------------------------------------------ the rest
    def sample(self, p: PoissonParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        return torch.poisson(p.rates.cpu()[labels.cpu()], generator=generator)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * D

    def to_tensors(self, p: PoissonParams) -> dict[str, Tensor]:
        return {"rates": p.rates}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> PoissonParams:
        return self.make_params(tensors["rates"])

    def flatten(self, p: PoissonParams) -> Tensor:
        return torch.log(p.rates.clamp_min(torch.finfo(torch.float64).tiny)).reshape(-1)

    def unflatten(self, vector: Tensor, like: PoissonParams) -> PoissonParams:
        return PoissonParams(torch.exp(vector).reshape(like.rates.shape))
