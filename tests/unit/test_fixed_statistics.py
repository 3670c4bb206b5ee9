"""EM whose responsibilities are fixed by the labels reads the data once.

When every row that counts is labelled and its class has one component (unlabelled
rows weigh 0: ``unlabeled_weight=0``), an E-step gathers the same sufficient statistics
at any parameters; only the log-likelihood changes, and the Gaussian restates it from
the statistics (``expected_log_density``, exact algebra). The driver then takes one
pass and iterates the M-step on it: EDDA's iterative covariance models (VEI, VEV, EVE,
VVE) refine their M-steps without reading the data again. Checked against the direct
sum over the rows, and against the same fits with every iteration reading the data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from bigem import GaussianMixture
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture
from bigem.models.mixture import MixtureModel

STRUCTURES = ["full", "tied", "diag", "spherical", "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE",
              "VVE", "EEV", "VEV", "EVV", "VVV"]


@pytest.mark.parametrize("structure", STRUCTURES)
def test_the_expected_log_density_is_the_weighted_sum_over_the_rows(structure):
    rng = np.random.default_rng(len(structure))
    K, D, n = 3, 4, 400
    x = torch.from_numpy(rng.normal(0, 2, (n, D)) @ rng.normal(0, 1, (D, D)))
    resp = torch.from_numpy(rng.dirichlet(np.ones(K), n)) * torch.from_numpy(rng.uniform(0.2, 3.0, n))[:, None]
    model = gaussian_mixture(K, structure, 1e-6, torch.float64)
    start = model.params_at(x[:K] + 0.3)
    stats = model.e_step_given(start, Chunk(x, None, 0), lambda chunk: resp)  # moments about the start's means
    fitted = model.m_step(stats, start).params.component
    # at the M-step's parameters, and at others (means moved off the scatter's centre)
    moved = model.component.make_params(fitted.means + torch.from_numpy(rng.normal(0, 0.5, (K, D))), fitted.covariances)
    for comp in (fitted, moved):
        cov = model.component.structure.dense(comp.covariances, K, D)
        log_p = torch.stack([MultivariateNormal(comp.means[k], covariance_matrix=cov[k]).log_prob(x) for k in range(K)], 1)
        direct = float((resp * log_p).sum())
        got = float(model.component.expected_log_density(comp, stats.component))
        assert got == pytest.approx(direct, rel=1e-12)


def _labelled(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 4, (3, 3))
    shapes = [np.diag([1.0, 2.0, 0.5]), np.diag([0.5, 1.0, 3.0]), np.eye(3)]
    X = np.stack([rng.multivariate_normal(centres[c], shapes[c]) for c in y])
    return X, y


def _passes(monkeypatch):
    """Counts the E-step's chunks (an estimator's passes over the data, times their chunks)."""
    calls = {"n": 0}
    e_step = MixtureModel.e_step

    def counted(self, params, chunk):
        calls["n"] += 1
        return e_step(self, params, chunk)

    monkeypatch.setattr(MixtureModel, "e_step", counted)
    return calls


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("structure", ["full", "tied", "EVE", "VEV", "VEI"])
def test_a_fully_labelled_fit_reads_the_data_once_and_fits_as_reading_it_every_iteration(structure, monkeypatch):
    X, y = _labelled()
    make = lambda: GaussianMixture(3, covariance_type=structure, unlabeled_weight=0.0, chunk_size=1000,  # noqa: E731
                                   max_iter=30, tol=1e-10, random_state=0, dtype="float64")
    calls = _passes(monkeypatch)
    fast = make().fit(X, y)
    assert calls["n"] == 3  # one pass of 3 chunks, whatever the iterations
    assert fast.n_iter_ >= 2
    calls["n"] = 0
    monkeypatch.setattr(MixtureModel, "fixed_statistics", property(lambda self: False))
    slow = make().fit(X, y)
    assert calls["n"] == 3 * slow.n_iter_
    assert fast.n_iter_ == slow.n_iter_
    np.testing.assert_allclose(fast.lower_bounds_, slow.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(fast.means_, slow.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.covariances_, slow.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.weights_, slow.weights_, rtol=1e-12)


def test_only_labels_that_fix_every_responsibility_fix_the_statistics():
    base = gaussian_mixture(3, "full", 1e-6, torch.float64)
    assert not base.fixed_statistics  # unsupervised
    one_each = torch.tensor([0, 1, 2])
    assert base.with_classes(one_each, unlabeled_weight=0.0).fixed_statistics
    assert not base.with_classes(one_each, unlabeled_weight=0.5).fixed_statistics  # unlabelled rows count
    assert not base.with_classes(torch.tensor([0, 0, 1]), unlabeled_weight=0.0).fixed_statistics  # a class of two
    gaps = gaussian_mixture(3, "full", 1e-6, torch.float64, gaps=True)
    assert not gaps.with_classes(one_each, unlabeled_weight=0.0).fixed_statistics  # conditional moments move


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_unlabelled_rows_weighing_nothing_leave_the_fit_as_without_them(monkeypatch):
    X, y = _labelled()
    y_some = y.copy()
    y_some[::4] = -1
    kw = dict(covariance_type="VEV", unlabeled_weight=0.0, max_iter=20, tol=1e-10, random_state=0, dtype="float64")
    calls = _passes(monkeypatch)
    a = GaussianMixture(3, chunk_size=1000, **kw).fit(X, y_some)
    assert calls["n"] == 3
    b = GaussianMixture(3, **kw).fit(X[y_some >= 0], y_some[y_some >= 0])
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)


def _family_data(family: str, n=3000, seed=1):
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    flags = (rng.random((n, 4)) < np.array([0.2, 0.5, 0.8])[y][:, None]).astype(float)
    codes = (rng.integers(0, 2, (n, 3)) + y[:, None]).astype(float)
    if family == "bernoulli":
        return flags, y
    if family == "categorical":
        return codes, y
    if family == "poisson":
        return rng.poisson(1.0 + 2.0 * y[:, None], (n, 3)).astype(float), y
    return pd.DataFrame({"x": rng.normal(2.0 * y, 1.0), "z": rng.normal(-y, 0.5), "flag": flags[:, 0],
                         "c": codes[:, 0]}), y


def _family(family: str, **kw):
    from bigem import BernoulliMixture, CategoricalMixture, MixedMixture, PoissonMixture

    kw = {**dict(unlabeled_weight=0.0, chunk_size=1000, max_iter=30, tol=1e-10, random_state=0, dtype="float64"), **kw}
    if family == "mixed":
        return MixedMixture(3, families={"flag": "bernoulli", "c": "categorical"}, **kw)
    return {"bernoulli": BernoulliMixture, "categorical": CategoricalMixture, "poisson": PoissonMixture}[family](3, **kw)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("family", ["bernoulli", "categorical", "mixed"])
def test_the_families_labelled_fits_read_the_data_once_and_fit_as_reading_it_every_iteration(family, monkeypatch):
    X, y = _family_data(family)
    calls = _passes(monkeypatch)
    fast = _family(family).fit(X, y)
    assert calls["n"] == 3
    calls["n"] = 0
    monkeypatch.setattr(MixtureModel, "fixed_statistics", property(lambda self: False))
    slow = _family(family).fit(X, y)
    assert calls["n"] == 3 * slow.n_iter_
    assert fast.n_iter_ == slow.n_iter_
    np.testing.assert_allclose(fast.lower_bounds_, slow.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(fast.weights_, slow.weights_, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_a_poisson_block_reads_the_data_every_iteration(monkeypatch):
    """Its log-density's log x! terms are not in its statistics: no restating."""
    X, y = _family_data("poisson")
    calls = _passes(monkeypatch)
    fit = _family("poisson", max_iter=4, tol=0).fit(X, y)
    assert calls["n"] == 3 * fit.n_iter_ == 12
