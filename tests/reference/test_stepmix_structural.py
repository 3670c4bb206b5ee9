"""The stepwise structural estimators give StepMix 3's estimates: distal outcomes and
covariates related to the classes of a fitted measurement model, in two steps and in
three (naive, BCH and ML corrections; modal and soft assignments), and all at once. The measurement
model is the same fit on both sides (``init_params="random"`` from the same seed); the
estimates that take EM (one and two steps, ML) agree to the EM tolerance, the others to rounding.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import bigem

stepmix = pytest.importorskip("stepmix")

K = 3
ITEMS = np.array([[.9, .9, .9, .1, .1, .1], [.1, .1, .9, .9, .9, .1], [.1, .1, .1, .1, .9, .9]])
STEPS = [(1, None, "modal"), (2, None, "modal"), (3, None, "modal"), (3, None, "soft"), (3, "BCH", "modal"), (3, "BCH", "soft"),
         (3, "ML", "modal"), (3, "ML", "soft")]


def classes(n, seed, z=None):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, K, n) if z is None else z
    return rng, z, (rng.random((n, 6)) < ITEMS[z]).astype(float)


def reference(X, Y, structural, n_steps, correction, assignment, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stepmix.StepMix(n_components=K, measurement="bernoulli", structural=structural, n_steps=n_steps,
                               correction=correction, assignment=assignment, random_state=0, abs_tol=1e-12,
                               max_iter=5000, verbose=0, progress_bar=0, **params).fit(X, Y)


def ours(X, Y, structural, n_steps, correction, assignment, **kw):
    measurement = bigem.BernoulliMixture(K, init_params="random", alpha=0.0, tol=1e-12, max_iter=5000,
                                         random_state=0, dtype="float64")
    return bigem.StructuralModel(measurement, structural, n_steps=n_steps, correction=correction,
                                 assignment=assignment, tol=1e-12, max_iter=5000, **kw).fit(X, Y)


def aligned(m, ref):
    """``m`` with its classes in ``ref``'s order: one step starts StepMix from its own joint
    draw and bigem from the measurement fit, and the two may number the same classes
    differently (the other steps share the measurement fit, and its order)."""
    pis = ref.get_parameters()["measurement"]["pis"]
    order = min(itertools.permutations(range(K)),
                key=lambda p: np.abs(m.measurement_.probabilities_[list(p)] - pis).max())
    return list(order)


def tolerance(n_steps, correction):
    return 1e-5 if n_steps < 3 or correction == "ML" else 1e-10  # EM's stopping, or closed forms


@pytest.mark.parametrize("n_steps,correction,assignment", STEPS)
@pytest.mark.parametrize("structural", ["gaussian_diag", "gaussian_unit"])
def test_a_gaussian_distal_outcome_is_stepmixs_estimate(structural, n_steps, correction, assignment):
    rng, z, X = classes(1500, 0)
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], np.array([1.0, 0.5, 2.0])[z])[:, None]
    ref = reference(X, Y, structural, n_steps, correction, assignment)
    m = ours(X, Y, structural, n_steps, correction, assignment)
    got = ref.get_parameters()["structural"]
    atol = tolerance(n_steps, correction)
    o = aligned(m, ref)
    # one step moves the measurement model too; the others hold it at the first step's fit
    np.testing.assert_allclose(m.weights_[o], ref.weights_, atol=atol if n_steps == 1 else 1e-10)
    np.testing.assert_allclose(m.measurement_.probabilities_[o], ref.get_parameters()["measurement"]["pis"],
                               atol=atol if n_steps == 1 else 1e-10)
    np.testing.assert_allclose(m.means_[o], got["means"], atol=atol)
    if structural == "gaussian_diag":
        np.testing.assert_allclose(m.covariances_[o], got["covariances"], atol=atol)
    else:
        np.testing.assert_array_equal(m.covariances_, np.ones((K, 1)))
    if n_steps < 3 or correction == "ML":
        assert m.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-9)


@pytest.mark.parametrize("n_steps,correction,assignment", STEPS)
def test_binary_and_categorical_outcomes_are_stepmixs_estimates(n_steps, correction, assignment):
    rng, z, X = classes(1500, 1)
    binary = (rng.random(1500) < np.array([0.2, 0.5, 0.9])[z]).astype(float)
    codes = np.array([rng.choice(3, p=p) for p in np.array([[.7, .2, .1], [.2, .6, .2], [.1, .2, .7]])[z]])
    atol = tolerance(n_steps, correction)
    ref = reference(X, binary[:, None], "binary", n_steps, correction, assignment)
    m = ours(X, binary[:, None], "bernoulli", n_steps, correction, assignment)
    np.testing.assert_allclose(m.bernoulli_probabilities_[aligned(m, ref)], ref.get_parameters()["structural"]["pis"],
                               atol=atol)
    ref = reference(X, codes[:, None], "categorical", n_steps, correction, assignment)
    m = ours(X, codes[:, None], "categorical", n_steps, correction, assignment)
    np.testing.assert_allclose(m.probabilities_[0][aligned(m, ref)], ref.get_parameters()["structural"]["pis"][:, :3],
                               atol=atol)


@pytest.mark.parametrize("n_steps,correction,assignment", STEPS)
def test_covariates_are_stepmixs_multinomial_logit(n_steps, correction, assignment):
    """StepMix takes one Newton step per M-step; its naive and BCH estimates are a single
    M-step, so they are compared with its Newton steps run to convergence."""
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(2000, 2))
    logits = np.c_[np.ones(2000), Z] @ np.array([[0, 0, 0], [0.5, 1.0, -1.0], [-0.5, -1.0, 1.5]]).T
    p = np.exp(logits - logits.max(1, keepdims=True))
    z = (rng.random(2000)[:, None] > np.cumsum(p / p.sum(1, keepdims=True), 1)).sum(1)
    _, _, X = classes(2000, 3, z)
    ref = reference(X, Z, "covariate", n_steps, correction, assignment,
                    structural_params=dict(max_iter=100, tol=1e-10))
    m = ours(X, Z, "covariate", n_steps, correction, assignment)
    beta = ref.get_parameters()["structural"]["beta"]  # (K, 1 + covariates), intercept first
    mine = np.c_[m.intercept_, m.coef_][aligned(m, ref)]
    np.testing.assert_allclose(mine.sum(0), 0.0, atol=1e-10)  # the fit's coefficients sum to 0 over the classes
    # softmax leaves a common shift free: compare log odds against class 0
    np.testing.assert_allclose(mine - mine[0], beta - beta[0], atol=10 * tolerance(n_steps, correction))


@pytest.mark.parametrize("n_steps,correction,assignment", STEPS)
def test_outcomes_with_gaps_are_stepmixs_nan_models(n_steps, correction, assignment):
    """A tenth of each outcome missing at random: StepMix's ``gaussian_diag_nan``,
    ``binary_nan`` and ``categorical_nan`` (full-information maximum likelihood), which
    bigem's families are whenever Y has gaps."""
    rng, z, X = classes(1500, 4)
    Y = np.c_[rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0),
              (rng.random(1500) < np.array([0.2, 0.5, 0.9])[z]).astype(float),
              np.array([rng.choice(3, p=p) for p in np.array([[.7, .2, .1], [.2, .6, .2], [.1, .2, .7]])[z]])]
    Y[rng.random(Y.shape) < 0.1] = np.nan
    atol = tolerance(n_steps, correction)
    for j, (theirs, mine) in enumerate([("gaussian_diag_nan", "gaussian"), ("binary_nan", "bernoulli"),
                                        ("categorical_nan", "categorical")]):
        ref = reference(X, Y[:, [j]], theirs, n_steps, correction, assignment)
        m = ours(X, Y[:, [j]], mine, n_steps, correction, assignment, reg_covar=0.0)  # StepMix's *_nan adds none
        got, o = ref.get_parameters()["structural"], aligned(m, ref)
        if mine == "gaussian":
            np.testing.assert_allclose(m.means_[o], got["means"], atol=atol)
            np.testing.assert_allclose(m.covariances_[o], got["covariances"], atol=atol)
        elif mine == "bernoulli":
            np.testing.assert_allclose(m.bernoulli_probabilities_[o], got["pis"], atol=atol)
        else:
            np.testing.assert_allclose(m.probabilities_[0][o], got["pis"][:, :3], atol=atol)
