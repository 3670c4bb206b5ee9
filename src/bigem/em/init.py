"""Initial mixture parameters: k-means, k-means++, random, random_from_data, or user-given.

Every method that touches the data does so through the engine, in chunks, so it works
on data that does not fit in memory. k-means++ seeding runs on a uniform sample (rows
drawn in proportion to their sample weight); Lloyd iterations and the final
hard-assignment pass then run over all rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from .._core.types import Chunk, Source
from ..models.gmm import GaussianMixtureModel, GMMParams
from ..models.kmeans import KMeansModel, KMeansParams, squared_distances

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
SEED_SAMPLE_ROWS = 20_000  # rows k-means++ seeds from (more for many components)
LLOYD_MAX_ITER = 10
LLOYD_TOL = 1e-4  # relative change of inertia that stops Lloyd early


def sample_rows(source: Source, n: int, generator: torch.Generator, engine=None) -> Tensor:
    """Up to ``n`` distinct rows, uniformly or in proportion to sample weights (zero never).

    Weighted sources are sampled from their weights in memory, or from their weight
    column alone (file sources: ``weight_blocks``), or else through ``engine``, a pass
    over the chunks where they live (a Dask cluster's workers).
    """
    if source.weight is not None:
        rows = weighted_rows([(source.weight, 0)], n, generator)
    elif getattr(source, "weighted", False) and hasattr(source, "weight_blocks"):
        rows = weighted_rows(source.weight_blocks(), n, generator)
    elif getattr(source, "weighted", False):
        seed = int(torch.randint(2**62, (1,), generator=generator))
        rows = engine.reduce(partial(_chunk_keys, seed=seed, n=n), source).drawn()
    elif source.n_rows <= n:
        rows = torch.arange(source.n_rows)
    else:
        rows = torch.unique(torch.randint(source.n_rows, (n,), generator=generator))
    return source.take(torch.sort(rows).values)


def weighted_rows(blocks: Iterable[tuple[Tensor, int]], n: int, generator: torch.Generator) -> Tensor:
    """Up to ``n`` distinct row indices drawn in proportion to their weights, without
    replacement, in one pass over (weights, first row) blocks (see :class:`SampleKeys`)."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return sum((SampleKeys.of(w, start, seed, n) for w, start in blocks), SampleKeys.empty(n)).drawn()


_KEY_TILE = 4096  # rows per independently seeded tile of sampling keys


@dataclass
class SampleKeys:
    """The ``n`` largest weighted-sampling keys seen so far and their rows.

    Efraimidis & Spirakis (2006): row i gets the key log(u_i) / w_i, u_i uniform, and the
    n largest keys are a weighted sample without replacement, the same distribution as
    drawing one row at a time in proportion to the remaining weights. Keeping the n
    largest is a monoid, so keys merge like statistics: in one pass, in any grouping,
    on any engine. Each tile of ``_KEY_TILE`` rows draws its uniforms from its own seed,
    so the sample does not depend on how the rows were split into chunks, files or
    partitions: a file, a cluster and the same rows in memory draw the same sample.
    """

    keys: Tensor  # float64, -inf for weight 0
    rows: Tensor  # int64
    n: int

    @classmethod
    def empty(cls, n: int) -> SampleKeys:
        return cls(torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.int64), n)

    @classmethod
    def of(cls, w: Tensor, start: int, seed: int, n: int) -> SampleKeys:
        w = w.detach().to("cpu", torch.float64)
        keys = _uniforms(seed, start, w.shape[0]).log_().div_(w) if w.shape[0] else w
        return cls(keys, torch.arange(start, start + w.shape[0]), n)._top()

    def _top(self) -> SampleKeys:
        if self.keys.shape[0] <= self.n:
            return self
        best = torch.topk(self.keys, self.n).indices
        return SampleKeys(self.keys[best], self.rows[best], self.n)

    def drawn(self) -> Tensor:
        """The sampled rows (rows of weight 0 are never drawn, even when n exceeds the rest)."""
        return self.rows[self.keys > -torch.inf]

    def __add__(self, other: SampleKeys) -> SampleKeys:
        return SampleKeys(torch.cat([self.keys, other.keys]), torch.cat([self.rows, other.rows]), self.n)._top()

    def scale(self, factor: float) -> SampleKeys:
        return self

    def to(self, device) -> SampleKeys:
        return self


def _chunk_keys(chunk: Chunk, *, seed: int, n: int) -> SampleKeys:
    w = torch.ones(chunk.n_rows, dtype=torch.float64) if chunk.weight is None else chunk.weight
    return SampleKeys.of(w, chunk.row_start, seed, n)


def _uniforms(seed: int, start: int, n: int) -> Tensor:
    """Uniforms in (0, 1] for rows start..start+n-1, fixed per row whatever the blocks."""
    first, last = start // _KEY_TILE, (start + n - 1) // _KEY_TILE
    tiles = [
        torch.rand(_KEY_TILE, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + t))
        for t in range(first, last + 1)
    ]
    lo = start - first * _KEY_TILE
    return torch.cat(tiles)[lo : lo + n].neg_().add_(1.0)  # 1 - [0, 1) = (0, 1]: log is finite


def kmeans_plusplus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Greedy k-means++ seeds (Arthur & Vassilvitskii 2007; 2 + log k trials per seed)."""
    x = x.double()
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [x[first]]
    closest = squared_distances(x, x[first : first + 1])[:, 0]
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct rows than seeds: repeat rows
            cand = torch.randint(n, (trials,), generator=generator)
        else:
            cand = torch.multinomial(closest.cpu(), trials, replacement=True, generator=generator).to(x.device)
        dist = torch.minimum(closest[None, :], squared_distances(x[cand], x))
        best = int(torch.argmin(dist.sum(1)))
        closest = dist[best]
        centres.append(x[cand[best]])
    return torch.stack(centres)


def _shift_params(model: GaussianMixtureModel, means: Tensor) -> GMMParams:
    """Parameters that only carry means (the shift for moment statistics)."""
    K, D = means.shape
    means = means.to(torch.float64)
    weights = torch.full((K,), 1.0 / K, dtype=torch.float64, device=means.device)
    shapes = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
    ct = model.covariance_type
    eye = torch.eye(D, dtype=torch.float64, device=means.device)
    cov = eye.expand(shapes[ct]).clone() if ct in ("full", "tied") else torch.ones(shapes[ct], dtype=torch.float64, device=means.device)
    return GMMParams(weights, means, cov, cov.clone(), ct)


def params_from_centres(model: GaussianMixtureModel, engine, source: Source, centres: Tensor) -> GMMParams:
    """Mixture parameters from hard assignment of every row to its nearest centre."""
    stats = engine.reduce(partial(model.e_step_hard, _shift_params(model, centres)), source)
    return model.m_step(stats)


def lloyd(engine, source: Source, centres: Tensor, dtype: torch.dtype) -> Tensor:
    """A few Lloyd iterations through the engine, stopping when the inertia settles."""
    kmeans = KMeansModel(centres.shape[0], dtype)
    params = KMeansParams(centres.double())
    previous = math.inf
    for _ in range(LLOYD_MAX_ITER):
        stats = engine.reduce(partial(kmeans.e_step, params), source)
        params = kmeans.m_step(stats)
        inertia = float(stats.inertia)
        if previous - inertia <= LLOYD_TOL * abs(previous):
            break
        previous = inertia
    return params.centres


def random_resp_params(model: GaussianMixtureModel, engine, source: Source, seed: int) -> GMMParams:
    """scikit-learn's 'random': uniform random responsibilities per row, then an M-step.

    Each chunk draws from a generator seeded by (seed, first row), so the result is
    reproducible and independent of threads; it depends on the chunking.
    """
    K = model.n_components

    def resp_fn(chunk: Chunk) -> Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + chunk.row_start)
        r = torch.rand(chunk.n_rows, K, generator=g, dtype=torch.float64).to(device=chunk.x.device, dtype=chunk.x.dtype)
        return r / r.sum(1, keepdim=True)

    probe = source.take(torch.arange(min(source.n_rows, 1024)))
    shift = probe.double().mean(0).expand(K, -1)
    stats = engine.reduce(partial(model.e_step_given, _shift_params(model, shift), resp_fn=resp_fn), source)
    return model.m_step(stats)


def initial_params(
    model: GaussianMixtureModel,
    engine,
    source: Source,
    method: str,
    generator: torch.Generator,
    *,
    weights_init: Tensor | None = None,
    means_init: Tensor | None = None,
    covariances_init: Tensor | None = None,
) -> GMMParams:
    """Initial parameters by ``method``; user-given parts replace the computed ones.

    When ``means_init`` is given but weights or covariances are not, those come from
    assigning each row to its nearest given mean (consistent with the given means;
    scikit-learn instead takes them from an independent k-means run).
    """
    K = model.n_components
    if weights_init is not None and means_init is not None and covariances_init is not None:
        return model.make_params(weights_init, means_init, covariances_init)
    if means_init is not None:
        base = params_from_centres(model, engine, source, means_init.to(torch.float64))
    elif method == "random":
        base = random_resp_params(model, engine, source, int(torch.randint(2**31 - 1, (1,), generator=generator)))
    else:
        sample = sample_rows(source, max(SEED_SAMPLE_ROWS, 256 * K), generator, engine)
        if method == "random_from_data":
            pick = torch.randperm(sample.shape[0], generator=generator)[:K]
            centres = sample[pick.to(sample.device)].double()
        else:
            centres = kmeans_plusplus(sample, K, generator)
            if method == "kmeans":
                centres = lloyd(engine, source, centres, model.dtype)
        base = params_from_centres(model, engine, source, centres)
    weights = base.weights if weights_init is None else weights_init
    means = base.means if means_init is None else means_init
    cov = base.covariances if covariances_init is None else covariances_init
    return model.make_params(weights, means, cov)
