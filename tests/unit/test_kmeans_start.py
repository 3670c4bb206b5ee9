"""The k-means start (``init_params='kmeans'``): scikit-learn's KMeans run to convergence
on a sample of the rows in memory, then Lloyd's passes over every row until the centres
settle. From the same random state, the Gaussian families start where scikit-learn's
and hmmlearn's do whenever k-means has one optimum to find."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hmmlearn.hmm import GMMHMM as HmmlearnGMMHMM
from hmmlearn.hmm import GaussianHMM as HmmlearnGaussianHMM
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bigem
from bigem.em.init import LLOYD_MAX_ITER, converged_kmeans, lloyd, shift_tolerance
from bigem.engines import LocalEngine
from bigem.models.kmeans import KMeansModel, KMeansParams
from bigem.sources import TensorSource


def clusters(k: int, per: int, spacing: float, seed: int = 0) -> np.ndarray:
    """k round clusters of ``per`` rows in 2-D, their centres ``spacing`` apart on a line."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(spacing * i, 1.0, size=(per, 2)) for i in range(k)])


def inertia(x: np.ndarray, centres) -> float:
    c = np.asarray(centres)
    return float(((x[:, None, :] - c[None]) ** 2).sum(-1).min(1).sum())


class CountingEngine(LocalEngine):
    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def reduce(self, task, source):
        self.passes += 1
        return super().reduce(task, source)


def test_shift_tolerance_is_scikit_learns():
    """KMeans(tol=1e-4) stops once the centres' squared moves sum to 1e-4 times the mean of
    the features' variances."""
    x = np.random.default_rng(0).normal(size=(500, 3)) * [1.0, 2.0, 3.0]
    assert shift_tolerance(torch.from_numpy(x)) == pytest.approx(1e-4 * np.var(x, axis=0).mean(), rel=1e-12)
    assert shift_tolerance(torch.from_numpy(x[:1])) == 0.0


def test_sample_kmeans_settles_at_scikit_learns_optimum_or_lower():
    x = clusters(4, 200, 2.0)  # overlapping: k-means has several local optima here
    ours = converged_kmeans(KMeansModel(4, torch.float64), torch.from_numpy(x), 4, torch.Generator().manual_seed(0),
                            n_init=10)
    ref = KMeans(4, n_init=10, random_state=0).fit(x)
    assert inertia(x, ours) <= ref.inertia_ * (1 + 1e-12)
    # settled: one more Lloyd step moves the centres by less than the tolerance
    model = KMeansModel(4, torch.float64)
    step = model.m_step(model.e_step(KMeansParams(ours), bigem._core.types.Chunk(torch.from_numpy(x), None, 0)))
    assert float((step.centres - ours).square().sum()) <= shift_tolerance(torch.from_numpy(x))


def test_more_seedings_never_raise_the_inertia():
    """The first of ten seedings is the one seeding's (same generator), and the least of ten is kept."""
    x = torch.from_numpy(clusters(6, 100, 1.5))
    one = converged_kmeans(KMeansModel(6, torch.float64), x, 6, torch.Generator().manual_seed(3))
    ten = converged_kmeans(KMeansModel(6, torch.float64), x, 6, torch.Generator().manual_seed(3), n_init=10)
    assert inertia(x.numpy(), ten) <= inertia(x.numpy(), one)


def test_lloyd_over_every_row_stops_once_the_centres_settle():
    x = torch.from_numpy(clusters(3, 400, 3.0))
    source = TensorSource(x, None, 256)
    settled = converged_kmeans(KMeansModel(3, torch.float64), x, 3, torch.Generator().manual_seed(0))
    engine = CountingEngine()
    again = lloyd(KMeansModel(3, torch.float64), engine, source, settled, shift_tolerance(x))
    assert engine.passes == 1 and torch.allclose(again, settled, atol=1e-12)  # one pass confirms them
    engine = CountingEngine()
    rough = torch.tensor([[0.0, 0.0], [0.5, 0.5], [9.0, 9.0]], dtype=torch.float64)
    moved = lloyd(KMeansModel(3, torch.float64), engine, source, rough, shift_tolerance(x))
    assert 1 < engine.passes <= LLOYD_MAX_ITER  # it iterates, within the bound
    assert inertia(x.numpy(), moved) < inertia(x.numpy(), rough)


@dataclass
class Scripted:
    centres: torch.Tensor
    inertia: float = math.nan


class CreepingKMeans:
    """A k-means model whose centres move by 1 every pass, whatever the rows, and whose
    inertia follows a script: Lloyd's passes can end on the inertia's rule alone."""

    def __init__(self, inertias: list[float]) -> None:
        self.inertias, self.passes = list(inertias), 0

    def params(self, centres):
        return Scripted(centres)

    def e_step(self, params, chunk):
        self.passes += 1
        return Scripted(params.centres, self.inertias.pop(0))  # the inertia at params

    def m_step(self, stats):
        return Scripted(stats.centres + 1.0)


class OneChunk:
    def reduce(self, task, source):
        return getattr(task.model, task.method)(*task.args, None)


def test_lloyd_over_every_row_stops_once_a_pass_lowers_the_inertia_by_a_ten_thousandth():
    """On more rows than the sample, the centres can creep pass after pass by moves that
    lower the inertia a little (10 passes on 1e6 rows of 8 clusters, measured): a pass
    that gains less than 1e-4 of the inertia ends them."""
    creeping = CreepingKMeans([100.0, 90.0, 89.995, 80.0])
    centres = lloyd(creeping, OneChunk(), None, torch.zeros(2, 3))
    assert creeping.passes == 3 and torch.equal(centres, torch.full((2, 3), 3.0, dtype=torch.float64))
    creeping = CreepingKMeans([100.0 - i for i in range(LLOYD_MAX_ITER + 1)])
    lloyd(creeping, OneChunk(), None, torch.zeros(2, 3))
    assert creeping.passes == LLOYD_MAX_ITER


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gaussian_mixture_fits_as_scikit_learn_from_the_same_random_state(covariance_type):
    """Three clusters 3 sd apart: k-means has one optimum, so both start from the same
    responsibilities and follow the same path. Before, k-means stopped after one Lloyd
    step: 29 of 60 random states took another number of iterations (one of them 42
    against 3), and the lower bounds differed by up to 1e-3."""
    x = clusters(3, 100, 3.0)
    for rs in range(20):
        ref = SkGaussianMixture(3, covariance_type=covariance_type, random_state=rs).fit(x)
        ours = bigem.GaussianMixture(3, covariance_type=covariance_type, random_state=rs, dtype="float64").fit(x)
        assert ours.n_iter_ == ref.n_iter_
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-9)
        np.testing.assert_allclose(np.sort(ours.means_, 0), np.sort(ref.means_, 0), atol=1e-8)


def test_gaussian_hmms_start_from_hmmlearns_kmeans_means():
    """hmmlearn's KMeans(n_init=10) for GaussianHMM's means, and for GMMHMM's states and
    then each state's mixture."""
    x = clusters(4, 200, 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hmmlearn's one iteration does not converge
        for rs in range(3):
            ref = HmmlearnGaussianHMM(4, n_iter=1, params="", random_state=rs).fit(x)
            ours = bigem.GaussianHMM(4, n_iter=1, params="", random_state=rs, dtype="float64").fit(x)
            np.testing.assert_allclose(np.sort(ours.means_, 0), np.sort(ref.means_, 0), atol=1e-8)
            ref = HmmlearnGMMHMM(2, n_mix=2, n_iter=1, params="", random_state=rs).fit(x)
            ours = bigem.GMMHMM(2, n_mix=2, n_iter=1, params="", random_state=rs, dtype="float64").fit(x)
            np.testing.assert_allclose(np.sort(ours.means_.reshape(-1, 2), 0), np.sort(ref.means_.reshape(-1, 2), 0),
                                       atol=1e-8)


def test_fewer_distinct_clusters_than_asked_warns_as_scikit_learn():
    """Two distinct rows, three clusters: scikit-learn's KMeans warns (a ConvergenceWarning,
    these words) inside GaussianMixture's start; so does bigem's start."""
    x = np.array([[0.0, 0.0]] * 50 + [[5.0, 5.0]] * 50)
    with pytest.warns(Warning) as theirs:
        SkGaussianMixture(3, random_state=0).fit(x)
    with pytest.warns(Warning) as ours:
        bigem.GaussianMixture(3, random_state=0).fit(x)
    expected = [str(w.message) for w in theirs if "distinct clusters" in str(w.message)]
    mine = [w for w in ours if "distinct clusters" in str(w.message)]
    assert expected == ["Number of distinct clusters (2) found smaller than n_clusters (3). Possibly due to "
                        "duplicate points in X."]
    assert [str(w.message) for w in mine] == expected
    assert issubclass(mine[0].category, SkConvergenceWarning)


def test_an_embedded_kmeans_step_embeds_a_block_of_rows_at_a_time():
    # a column of M categories embeds as M one-hot columns: a whole chunk embedded at once
    # had taken several times the memory the chunk was sized for
    from bigem._core.types import Chunk
    from bigem.models.kmeans import _BLOCK_ROWS, EmbeddedKMeans, KMeansModel

    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.integers(0, 4, (2 * _BLOCK_ROWS + 7, 3)).astype(np.float64))
    weight = torch.from_numpy(rng.random(codes.shape[0]))
    widest = []

    def one_hot(x):
        widest.append(x.shape[0])
        return torch.nn.functional.one_hot(x.long(), 4).reshape(x.shape[0], -1).double()

    kmeans = KMeansModel(3, torch.float64)
    params = kmeans.params(one_hot(codes[:3]))
    widest.clear()
    blocked = EmbeddedKMeans(kmeans, one_hot).e_step(params, Chunk(codes, weight, 0))
    assert max(widest) == _BLOCK_ROWS and len(widest) == 3
    whole = kmeans.e_step(params, Chunk(one_hot(codes), weight, 0))
    for name in ("counts", "sums", "inertia"):
        torch.testing.assert_close(getattr(blocked, name), getattr(whole, name), rtol=1e-12, atol=1e-9)
    assert blocked.rows == whole.rows == codes.shape[0]


def test_the_kmeans_start_in_float64_does_not_move_with_a_common_offset():
    """k-means++ measured distances about the origin: rows 1e8 from it lost their spread
    to |x|^2 in float64, and the start (and the fit) changed, where scikit-learn's KMeans
    centres X first and float32's shift kept it."""
    import bigem

    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))]
    starts = [bigem.GaussianMixture(4, random_state=0, dtype="float64", max_iter=0).fit(X + offset).means_ - offset
              for offset in (0.0, 1e8)]
    np.testing.assert_allclose(starts[1], starts[0], atol=1e-6)
