"""The generic pieces of initialisation: row samples, k-means++ seeds, k-means, and
mixture parameters from centres or from random responsibilities.

Every piece that touches the data does so through the engine, in chunks, so it works
on data that does not fit in memory: k-means++ seeds from a uniform sample (rows
drawn in proportion to their sample weight), and k-means runs to convergence on that
sample in memory, as scikit-learn's ``KMeans`` runs on the whole data; where the
sample is not every row, Lloyd iterations from there run over all rows, as does the
final hard-assignment pass. Where the generator carries scikit-learn's numpy
RandomState (``_core.draws.Draws``), the draws are scikit-learn's own. A family's
initialiser (in its estimator) composes these with what the user gave; the models
arrive as arguments, so this layer knows none of them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._core.draws import numpy_draws, row_uniforms
from .._core.errors import ComponentLostError, DataError, convergence_warning
from .._core.numerics import squared_distances
from .._core.protocols import Engine, Task
from .._core.sparse import is_sparse
from .._core.types import Chunk, Source

SEED_SAMPLE_ROWS = 20_000  # rows k-means++ seeds from (more for many components)
# 'random''s table of numpy draws (scikit-learn's and StepMix's own numbers) is drawn
# whole, as they draw it, up to this many numbers (128 MiB of float64, held for the one
# pass of the start); beyond, each row's draws are fixed by the row
RANDOM_TABLE_VALUES = 1 << 24
SAMPLE_LLOYD_MAX_ITER = 300  # Lloyd iterations on the sample, in memory (scikit-learn's KMeans max_iter)
LLOYD_MAX_ITER = 10  # Lloyd passes over every row, from the sample's centres
# scikit-learn's KMeans tol: the centres have settled when their squared moves sum to at
# most this times the rows' mean variance (``shift_tolerance``)
LLOYD_TOL = 1e-4
INERTIA_TOL = 1e-4  # a pass over every row that lowers the inertia by less than this fraction ends Lloyd's


def sample_rows(source: Source, n: int, generator: torch.Generator, engine: Engine | None = None) -> Tensor:
    """Up to ``n`` distinct rows, uniformly or in proportion to sample weights (zero never).

    Weighted sources are sampled from their weights in memory, or from their weight
    column alone (file sources: ``weight_blocks``), or else through ``engine``, a pass
    over the chunks where they live (a Dask cluster's workers).
    """
    if source.weight is not None:
        rows = weighted_rows([(source.weight, 0)], n, generator)
    elif source.weighted and source.weight_blocks is not None:
        rows = weighted_rows(source.weight_blocks(), n, generator)
    elif source.weighted:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        rows = engine.reduce(Task(KeySampler(seed, n), "keys"), source).drawn()
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


@dataclass(frozen=True)
class KeySampler:
    """The sampling keys of a chunk's rows (their weights, or ones): a task for an engine."""

    seed: int
    n: int

    def keys(self, chunk: Chunk) -> SampleKeys:
        w = torch.ones(chunk.n_rows, dtype=torch.float64) if chunk.weight is None else chunk.weight
        return SampleKeys.of(w, chunk.row_start, self.seed, self.n)


def _uniforms(seed: int, start: int, n: int) -> Tensor:
    """Uniforms in (0, 1] for rows start..start+n-1, fixed per row whatever the blocks."""
    first, last = start // _KEY_TILE, (start + n - 1) // _KEY_TILE
    tiles = [
        torch.rand(_KEY_TILE, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + t))
        for t in range(first, last + 1)
    ]
    lo = start - first * _KEY_TILE
    return torch.cat(tiles)[lo : lo + n].neg_().add_(1.0)  # 1 - [0, 1) = (0, 1]: log is finite


def check_scale(rows: Tensor) -> None:
    """DataError when a sample's values are so large that squared distances between rows
    overflow the rows' dtype (about 1e153 per value in float64, 1e18 in float32); every
    seeding and every Gaussian E-step squares them."""
    if rows.numel() == 0 or not rows.is_floating_point():
        return
    peak = float(rows.abs().max())
    limit = math.sqrt(torch.finfo(rows.dtype).max / (4 * rows.shape[1]))
    if peak > limit:
        name = str(rows.dtype).replace("torch.", "")
        other = ", or pass dtype='float64'" if rows.dtype == torch.float32 else ""
        raise DataError(
            f"X holds values of magnitude {peak:.3g}: the squared distances between rows overflow {name} "
            f"(values up to about {limit:.1g} are safe); rescale X (for instance divide it by "
            f"{10.0 ** math.floor(math.log10(peak)):.0e}){other}"
        )


def kmeans_plusplus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Greedy k-means++ seeds (Arthur & Vassilvitskii 2007; 2 + log k trials per seed).

    Where ``generator`` carries scikit-learn's numpy RandomState (``Draws.numpy``), its
    draws, in its order (``sklearn.cluster.kmeans_plusplus``): the first seed by
    ``choice`` with equal probabilities, then, per seed, ``uniform`` trials times the
    rows' summed distance, found among the cumulated distances."""
    check_scale(x)  # in the rows' own dtype, the one the E-steps compute in
    x = x.double()
    # distances about the rows' mean, as scikit-learn's KMeans centres X: about the origin,
    # rows 1e8 from it lost every digit of their spread to |x|^2 (the seeds are still rows of x)
    xc = x - x.mean(0)
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    rs = numpy_draws(generator)
    first = int(torch.randint(n, (1,), generator=generator)) if rs is None else int(rs.choice(n, p=np.full(n, 1.0) / n))
    centres = [x[first]]
    closest = squared_distances(xc, xc[first : first + 1])[:, 0]
    for _ in range(1, k):
        if rs is not None:
            d = closest.cpu().numpy()
            picks = np.searchsorted(np.cumsum(d), rs.uniform(size=trials) * d.sum())
            cand = torch.from_numpy(np.minimum(picks, n - 1)).to(x.device)
        elif float(closest.sum()) <= 0:  # fewer distinct rows than seeds: repeat rows
            cand = torch.randint(n, (trials,), generator=generator)
        else:
            cand = torch.multinomial(closest.cpu(), trials, replacement=True, generator=generator).to(x.device)
        dist = torch.minimum(closest[None, :], squared_distances(xc[cand], xc))
        best = int(torch.argmin(dist.sum(1)))
        closest = dist[best]
        centres.append(x[cand[best]])
    return torch.stack(centres)


def shift_tolerance(rows: Tensor) -> float:
    """scikit-learn's KMeans tolerance: ``LLOYD_TOL`` times the mean of the rows' variances
    (each feature's, about its mean); Lloyd's iterations stop once the centres' squared
    moves sum to no more."""
    if rows.shape[0] < 2:
        return 0.0
    return LLOYD_TOL * float(rows.double().var(0, correction=0).mean())


def converged_kmeans(kmeans: Any, sample: Tensor, k: int, generator: torch.Generator, n_init: int = 1) -> Tensor:
    """scikit-learn's ``KMeans(k, n_init=n_init)`` on rows in memory (a sample, without
    gaps): greedy k-means++ seeds, then Lloyd's iterations until the centres settle
    (:func:`shift_tolerance`) or ``SAMPLE_LLOYD_MAX_ITER`` of them; of ``n_init``
    seedings, the first of least inertia (a later one replaces it only with a lower
    inertia and another partition of the rows, scikit-learn's rule: the same partition
    in another order is rounding). ``kmeans``: a float64 k-means model (``params``,
    ``e_step``, ``m_step``), which also moves an empty cluster to a far row. Returns
    the centres (k, D) float64.

    Before, k-means stopped after one Lloyd pass (its rule compared the inertia with an
    infinite previous one, and always held), with centres that still moved: on 300 rows
    of three clusters, EM from there took 4.6 iterations on average over 60 random
    states (once 42), against scikit-learn's 3 (every one); now the fits are
    scikit-learn's, to 1e-9."""
    x = sample.double()
    chunk = Chunk(x, None, 0)
    tol = shift_tolerance(x)
    best = labels = None
    least = math.inf
    for _ in range(n_init):
        params = kmeans.params(kmeans_plusplus(sample, k, generator))
        for _ in range(SAMPLE_LLOYD_MAX_ITER):
            moved = kmeans.m_step(kmeans.e_step(params, chunk))
            shift = float((moved.centres - params.centres).square().sum())
            params = moved
            if shift <= tol:
                break
        centre = params.centres.to(x.device).mean(0)  # about the centres' mean, as the k-means E-step
        mine = squared_distances(x - centre, params.centres.to(x.device) - centre).argmin(1)
        if n_init == 1:
            best, labels = params.centres, mine
            break
        inertia = float(kmeans.e_step(params, chunk).inertia)
        if best is None or (inertia < least and not _same_partition(mine, labels)):
            best, least, labels = params.centres, inertia, mine
    distinct = int(torch.unique(labels).shape[0])
    if distinct < k:  # scikit-learn's KMeans warns so (its words and class)
        warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                      "Possibly due to duplicate points in X.", convergence_warning(), stacklevel=2)
    return best


def _same_partition(a: Tensor, b: Tensor) -> bool:
    """Whether labels ``a`` group the rows as labels ``b`` do, whatever the names: each
    label of a goes with one label of b (scikit-learn's ``_is_same_clustering``)."""
    pairs = torch.unique(torch.stack([a, b]), dim=1)
    return pairs.shape[1] == torch.unique(a).shape[0]


def lloyd(kmeans: Any, engine: Engine, source: Source, centres: Tensor, tol: float = 0.0) -> Tensor:
    """Lloyd's iterations of the k-means model ``kmeans`` over every row, through the
    engine, from ``centres``, until the centres' squared moves sum to at most ``tol``
    (:func:`shift_tolerance` of a sample), or a pass lowers the inertia by less than
    ``INERTIA_TOL`` of it, or ``LLOYD_MAX_ITER`` passes. Returns the centres (K, D) float64.

    Centres that a first pass confirms are kept as they were given (the step it would
    take is below the tolerance). From a sample's settled centres, on more rows than
    the sample, the centres can creep towards the rows' own optimum by moves that lower
    the inertia a little: the inertia's rule stops them (on 1e6 rows of 8 clusters,
    3 passes where the first rule alone took 10)."""
    params = kmeans.params(centres.double())
    previous = math.inf
    for i in range(LLOYD_MAX_ITER):
        stats = engine.reduce(Task(kmeans, "e_step", (params,)), source)
        moved = kmeans.m_step(stats)
        shift = float((moved.centres - params.centres.to(moved.centres.device)).square().sum())
        if i == 0 and shift <= tol:  # the rows confirm the centres they were given: keep those
            return params.centres
        inertia = float(stats.inertia)  # at params, before this move
        params = moved
        if shift <= tol or previous - inertia <= INERTIA_TOL * inertia:
            break
        previous = inertia
    return params.centres


def kmeans_centres(full: Any, on_sample: Any, engine: Engine, source: Source, sample: Tensor, k: int,
                   generator: torch.Generator, n_init: int = 1) -> Tensor:
    """k-means of every row of ``source``: :func:`converged_kmeans` on the in-memory
    ``sample`` of its rows (through ``on_sample``, a float64 k-means model), then
    :func:`lloyd` over every row (through ``full``) until the centres settle by the
    sample's tolerance; none where the sample is every row, unweighted, and ``full``
    has no gaps to leave out (k-POD's distances; the sample's gaps were filled), since
    its k-means is then the rows' own. Returns the centres (k, D) float64."""
    centres = converged_kmeans(on_sample, sample, k, generator, n_init)
    every_row = source.weight is None and not source.weighted and sample.shape[0] == source.n_rows
    if every_row and not getattr(full, "gaps", False):  # the sample's k-means is the rows' (scikit-learn's)
        return centres
    return lloyd(full, engine, source, centres, shift_tolerance(sample))


def fill_gaps(rows: Tensor) -> Tensor:
    """Rows with every gap (NaN: not observed) set to its column's mean over the rows that
    observe it (0 where none does): seeds are whole rows, wherever the data has gaps."""
    gap = torch.isnan(rows)
    if not bool(gap.any()):
        return rows
    seen = (~gap).sum(0)
    means = torch.where(gap, torch.zeros_like(rows), rows).sum(0) / seen.clamp(min=1)
    return torch.where(gap, means.to(rows.dtype), rows)


def seed_sample(source: Source, K: int, generator: torch.Generator, engine: Engine, embed=None) -> Tensor:
    """The rows seeds are drawn from: a sample of the source's rows (:func:`sample_rows`,
    every row when there are few), mapped by ``embed`` (a family's k-means embedding, e.g.
    categories one-hot, where a gap embeds as NaN) and with its gaps filled in that space
    (:func:`fill_gaps`: a missing category's entries take the sample's frequencies)."""
    sample = sample_rows(source, max(SEED_SAMPLE_ROWS, 256 * K), generator, engine)  # in order when every row
    if embed is not None:
        sample = embed(sample)
    return fill_gaps(sample)


def seeds(method: str, sample: Tensor, K: int, generator: torch.Generator) -> Tensor:
    """K centres (float64) from the rows of ``sample`` (:func:`seed_sample`), by 'k-means++'
    (greedy seeding) or 'random_from_data' (distinct rows)."""
    if method == "random_from_data":  # scikit-learn's draw where the generator carries its RandomState
        rs = numpy_draws(generator)
        pick = (torch.randperm(sample.shape[0], generator=generator)[:K] if rs is None
                else torch.from_numpy(rs.choice(sample.shape[0], size=K, replace=False)))
        return sample[pick.to(sample.device)].double()
    return kmeans_plusplus(sample, K, generator)


def from_centres(model: Any, engine: Engine, source: Source, centres: Tensor) -> Any:
    """Mixture parameters from hard assignment of every row to its nearest centre."""
    stats = engine.reduce(Task(model, "e_step_hard", (model.params_at(centres.double()),)), source)
    return model.m_step(stats).params


def from_random_responsibilities(model: Any, engine: Engine, source: Source, generator: torch.Generator,
                                 centre: Tensor | None = None) -> Any:
    """scikit-learn's 'random': uniform random responsibilities per row, then an M-step,
    of the rows as listed: their sample weights are left out, as StepMix's start leaves
    them (scikit-learn's mixtures take none), so that a weighted fit follows StepMix's
    path (a weighted first M-step led a Gaussian fit of 0/1 columns to another optimum).

    Each row's draws are fixed by (a seed drawn from ``generator``, row)
    (:func:`row_uniforms`), so the result is reproducible and the same however the rows
    are split into chunks, files, partitions or ranks; except where the generator carries
    scikit-learn's numpy RandomState (``Draws.numpy``) and the (rows, K) table holds at
    most ``RANDOM_TABLE_VALUES`` numbers: there they are scikit-learn's (and StepMix's)
    own draws, one table of ``uniform``. ``centre``: see :func:`from_given_responsibilities`.
    """
    rs = numpy_draws(generator)
    if rs is not None and source.n_rows * model.n_components <= RANDOM_TABLE_VALUES:
        table = torch.from_numpy(rs.uniform(size=(source.n_rows, model.n_components)))
        return from_given_responsibilities(model, engine, source, TableResponsibilities(table), centre, False)
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    return from_given_responsibilities(model, engine, source, RandomResponsibilities(seed, model.n_components),
                                       centre, False)


def from_given_responsibilities(model: Any, engine: Engine, source: Source, resp_fn,
                                centre: Tensor | None = None, weighted: bool = True) -> Any:
    """Mixture parameters from one M-step on responsibilities ``resp_fn(chunk) -> (n, K)``,
    times the rows' sample weights unless ``weighted`` is False.
    The E-step's reference point (where moments are taken about) is ``centre`` (a row
    of the model's embedding), by default the first rows' mean (gaps filled by
    :func:`fill_gaps`), in the model's embedding of rows (sparse count rows: their
    column means as they are); a source that streams in order only (``take`` refused)
    passes its own, which is also the M-step's old point (the unit variances of a
    part that holds them fixed)."""
    given = centre is not None
    if not given:
        rows = source.take(torch.arange(min(source.n_rows, 1024)))
        if is_sparse(rows):  # counts, never gaps: their column means, without densifying the rows
            total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
            centre = total.index_add_(0, rows.indices.long(), rows.values.double()) / max(1, rows.shape[0])
        else:
            centre = model.embed(fill_gaps(rows)).double().mean(0)
    point = model.params_at(centre.expand(model.n_components, -1))
    stats = engine.reduce(Task(model, "e_step_given", (point,), {"resp_fn": resp_fn, "weighted": weighted}), source)
    return model.m_step(stats, *((point,) if given else ())).params  # a given point is the old parameters too


def from_labels(model: Any, engine: Engine, source: Source, labels: Tensor, strict: bool = False) -> Any:
    """Mixture parameters from one M-step on hard labels: row i of the source belongs to
    component ``labels[i]`` (0..K-1). mclust starts EM this way from its hierarchical
    classification (its ``me`` begins with an M-step). A class too small for its
    covariance (or singular) is re-seeded, with the step's warning; ``strict`` (mclust's
    stopping rule) makes it a ComponentLostError instead, as mclust's M-step fails there and
    its BIC table shows the candidate as missing."""
    probe = source.take(torch.arange(min(source.n_rows, 1024)))
    centre = probe.double().mean(0).expand(model.n_components, -1)
    task = Task(model, "e_step_given", (model.params_at(centre),),
                {"resp_fn": GivenLabels(labels.to(torch.int64).cpu(), model.n_components)})
    step = model.m_step(engine.reduce(task, source))
    if strict and not (step.report.exact or step.report.smooth):
        raise ComponentLostError(
            f"a class of the start lost its support or its covariance turned singular in the first M-step, which "
            f"ends a fit under mclust's stopping rule as mclust's M-step fails there; {model.advice}, or pass "
            f"stopping='gain' to re-seed the component and go on"
        )
    from .driver import emit

    emit(step.report, "at the start", set())
    return step.params


@dataclass(frozen=True)
class GivenLabels:
    """One-hot responsibilities of a chunk's rows from labels indexed by row number."""

    labels: Tensor  # (n_rows,) int64
    n_components: int

    def __call__(self, chunk: Chunk) -> Tensor:
        rows = self.labels[chunk.row_start : chunk.row_start + chunk.n_rows]
        hot = torch.nn.functional.one_hot(rows, self.n_components)
        return hot.to(device=chunk.x.device, dtype=chunk.x.dtype)


@dataclass(frozen=True)
class TableResponsibilities:
    """Responsibilities of a chunk's rows from a (n_rows, K) table of positive weights
    indexed by row number, normalised per row."""

    table: Tensor

    def __call__(self, chunk: Chunk) -> Tensor:
        r = self.table[chunk.row_start : chunk.row_start + chunk.n_rows]
        r = r / r.sum(1, keepdim=True)
        return r.to(device=chunk.x.device, dtype=chunk.x.dtype)


@dataclass(frozen=True)
class RandomResponsibilities:
    """Uniform random responsibilities of a chunk's rows, normalised per row."""

    seed: int
    n_components: int

    def __call__(self, chunk: Chunk) -> Tensor:
        r = row_uniforms(self.seed, chunk.row_start, chunk.n_rows, self.n_components)
        r = r.to(device=chunk.x.device, dtype=chunk.x.dtype)
        return r / r.sum(1, keepdim=True)


@dataclass(frozen=True)
class LabelledResponsibilities:
    """Responsibilities from class labels (semi-supervised EM's start, Nigam et al. 2000): a
    labelled row's are random over its class's components (``classes``: each component's
    class; one-hot when the class has one), an unlabelled row's are 0, so the first M-step
    reads the labelled rows alone. Each row's draws are fixed by (seed, row), as
    RandomResponsibilities'."""

    seed: int
    classes: Tensor

    def __call__(self, chunk: Chunk) -> Tensor:
        K = int(self.classes.shape[0])
        r = row_uniforms(self.seed, chunk.row_start, chunk.n_rows, K) + 0.5
        if chunk.label is None:
            return torch.zeros(chunk.n_rows, K, device=chunk.x.device, dtype=chunk.x.dtype)
        # the draws go to the labels (an upload): the labels never come back to the host
        label = chunk.label.to(chunk.x.device)
        r = r.to(label.device) * (self.classes.to(label.device)[None, :] == label[:, None])
        total = r.sum(1, keepdim=True)
        r = r / torch.where(total > 0, total, torch.ones_like(total))
        return r.to(dtype=chunk.x.dtype)
