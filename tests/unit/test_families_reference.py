"""The discrete and mixed-type mixtures against independent truth: EM written out in numpy
in the test (Bernoulli, Poisson, semi-supervised), StepMix driven step by step from the same
start (latent class analysis, mixed data), and known generating parameters recovered."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, logsumexp

from bigem import BernoulliMixture, CategoricalMixture, GaussianMixture, MixedMixture, PoissonMixture


def _fit(est, X, y=None, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        return est.fit(X, y, **kw) if y is not None else est.fit(X, **kw)


def _em(log_density, m_step, X, weights, params, n_iter, sample_weight=None, y=None, classes=None, lam=1.0):
    """Plain EM in numpy: the weighted mean log-likelihood at each E-step, and the last
    parameters. With labels y (-1: unlabelled), a labelled row's posterior is confined to
    its class's components and an unlabelled row counts ``lam`` (Nigam's EM-lambda)."""
    sw = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    labelled = np.zeros(len(X), bool) if y is None else y >= 0
    out = []
    for _ in range(n_iter):
        lj = log_density(X, params) + np.log(weights)
        if y is not None:
            lj = np.where((classes[None, :] != y[:, None]) & labelled[:, None], -np.inf, lj)
        ll = logsumexp(lj, axis=1)
        w = np.where(labelled, sw, lam * sw)
        out.append((w * ll).sum() / w.sum())
        resp = np.exp(lj - ll[:, None]) * w[:, None]
        nk = resp.sum(0)
        weights, params = nk / nk.sum(), m_step(X, resp, nk)
    return np.array(out), weights, params


def _bernoulli_density(X, p):
    return X @ np.log(p).T + (1 - X) @ np.log1p(-p).T


def _bernoulli_m(alpha):
    return lambda X, resp, nk: (alpha + resp.T @ X) / (2 * alpha + nk[:, None])


def _poisson_density(X, lam):
    return X @ np.log(lam).T - lam.sum(1)[None, :] - gammaln(X + 1).sum(1)[:, None]


def _binary_data(seed, n=500, D=6, K=3):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.1, 0.9, (K, D))
    return (rng.random((n, D)) < truth[rng.integers(0, K, n)]).astype(float), rng


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_bernoulli_log_likelihood_per_iteration_equals_plain_em(alpha):
    X, rng = _binary_data(0)
    w0, p0 = np.array([0.2, 0.3, 0.5]), rng.uniform(0.2, 0.8, (3, 6))
    sw = rng.uniform(0.2, 3, len(X))
    m = _fit(BernoulliMixture(3, alpha=alpha, weights_init=w0, probabilities_init=p0, tol=0, max_iter=10,
                              dtype="float64", chunk_size=128), X, sample_weight=sw)
    ref, w, p = _em(_bernoulli_density, _bernoulli_m(alpha), X, w0, p0, 10, sample_weight=sw)
    assert m.n_iter_ == 10
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(m.weights_, w, rtol=1e-10)
    np.testing.assert_allclose(m.probabilities_, p, rtol=1e-10)


def test_poisson_log_likelihood_per_iteration_equals_plain_em():
    rng = np.random.default_rng(1)
    rates = np.array([[1.0, 8.0, 3.0], [6.0, 2.0, 0.5]])
    X = rng.poisson(rates[rng.integers(0, 2, 400)]).astype(float)
    w0, l0 = np.array([0.5, 0.5]), rng.uniform(1, 6, (2, 3))
    m = _fit(PoissonMixture(2, alpha=0.0, weights_init=w0, lambdas_init=l0, tol=0, max_iter=10, dtype="float64"), X)
    ref, w, lam = _em(_poisson_density, lambda X, r, nk: r.T @ X / nk[:, None], X, w0, l0, 10)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(m.lambdas_, lam, rtol=1e-10)
    np.testing.assert_allclose(m.score_samples(X), logsumexp(_poisson_density(X, lam) + np.log(w), axis=1),
                               rtol=1e-10)


def test_semi_supervised_em_equals_plain_em_with_confined_posteriors():
    """Three components shared by two classes (0, 0, 1), labelled rows confined to their
    class's components, unlabelled rows counting one half: Nigam's EM-lambda, step by step."""
    X, rng = _binary_data(2)
    y = np.where(rng.random(len(X)) < 0.3, rng.integers(0, 2, len(X)), -1)
    w0, p0 = np.array([0.2, 0.3, 0.5]), rng.uniform(0.2, 0.8, (3, 6))
    m = _fit(BernoulliMixture(3, alpha=0.0, weights_init=w0, probabilities_init=p0, tol=0, max_iter=8,
                              dtype="float64", unlabeled_weight=0.5), X, y)
    ref, w, p = _em(_bernoulli_density, _bernoulli_m(0.0), X, w0, p0, 8, y=y, classes=np.array([0, 0, 1]), lam=0.5)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(m.probabilities_, p, rtol=1e-10)
    np.testing.assert_array_equal(m.classes_, [0, 1])
    # predict returns the labels: the class of the most probable class (its components summed)
    lj = _bernoulli_density(X, m.probabilities_) + np.log(m.weights_)
    per_class = np.stack([logsumexp(lj[:, :2], axis=1), lj[:, 2]], 1)
    np.testing.assert_array_equal(m.predict(X), per_class.argmax(1))
    np.testing.assert_allclose(m.predict_proba(X), np.exp(per_class - logsumexp(per_class, axis=1)[:, None]),
                               rtol=1e-8, atol=1e-12)


def test_semi_supervised_gaussian_mixture_with_string_labels():
    """GaussianMixture reads y only when unlabeled_weight is set (scikit-learn ignores it);
    labels may be strings, with None for an unlabelled row, and predict returns them."""
    rng = np.random.default_rng(3)
    z = rng.integers(0, 2, 600)
    X = rng.normal(np.where(z == 0, -2.0, 2.0)[:, None], 1.0, (600, 2))
    names = np.array(["cat", "dog"], dtype=object)[z]
    y = np.where(rng.random(600) < 0.05, names, None)
    plain = GaussianMixture(2, random_state=0).fit(X, y)
    assert not hasattr(plain, "classes_")
    m = GaussianMixture(2, random_state=0, unlabeled_weight=1.0).fit(X, y)
    np.testing.assert_array_equal(m.classes_, ["cat", "dog"])
    assert (m.predict(X) == names).mean() > 0.97


def _stepmix_run(sm, X, n_iter):
    out = []
    for _ in range(n_iter):
        ll, log_resp = sm._e_step(X)
        out.append(ll)
        sm._m_step(X, np.exp(log_resp))
    return np.array(out)


def test_latent_class_analysis_equals_stepmix_from_the_same_start():
    stepmix = pytest.importorskip("stepmix")
    rng = np.random.default_rng(4)
    K, sizes = 3, (3, 3, 3, 3)
    X = np.stack([rng.integers(0, m, 600) for m in sizes], 1)
    w0, probs0 = np.array([0.3, 0.3, 0.4]), [rng.dirichlet(np.ones(m), size=K) for m in sizes]
    m = _fit(CategoricalMixture(K, alpha=0.0, weights_init=w0, probabilities_init=probs0, tol=0, max_iter=8,
                                dtype="float64"), X)
    sm = stepmix.StepMix(n_components=K, measurement="categorical", verbose=0, progress_bar=0)
    sm.set_parameters(dict(weights=w0.copy(), measurement=dict(pis=np.concatenate(probs0, 1), max_n_outcomes=3,
                                                               total_outcomes=12), measurement_in=len(sizes)))
    ref = _stepmix_run(sm, X.astype(float), 8)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate(m.probabilities_, 1), sm._mm.parameters["pis"], rtol=1e-9)


def _mixed_frame(seed, n=600):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    return pd.DataFrame({
        "g1": rng.normal(2.0 * z, 1.0),
        "c1": np.minimum(rng.integers(0, 3, n) + 3 * z, 4),
        "b1": (rng.random(n) < 0.3 + 0.4 * z).astype(float),
        "g2": rng.normal(-z, 1.5),
        "c2": rng.integers(0, 2, n),
    }), z


def stepmix_mixed_start(m) -> dict:
    """A fitted MixedMixture of two Gaussian, two categorical (of at most 5 categories:
    3 and 2 here, padded) and one binary column as StepMix's nested model's parameters."""
    pad = np.full((2, 3), 1e-15)
    return dict(
        weights=m.weights_.copy(), measurement_in=5,
        measurement=dict(
            g=dict(means=m.means_.copy(), covariances=m.covariances_.copy()),
            c=dict(pis=np.concatenate([m.probabilities_[0], m.probabilities_[1], pad], 1), max_n_outcomes=5,
                   total_outcomes=7),
            b=dict(pis=m.bernoulli_probabilities_.copy())))


def test_mixed_data_equals_stepmix_from_the_same_start():
    """Gaussian (diagonal), categorical and binary blocks, columns interleaved; one EM
    iteration gives the start, StepMix's nested model continues from it, step by step."""
    stepmix = pytest.importorskip("stepmix")
    df, _ = _mixed_frame(5)
    families = {"g1": "gaussian", "g2": "gaussian", "c1": "categorical", "c2": "categorical", "b1": "bernoulli"}
    m = _fit(MixedMixture(2, families=families, alpha=0.0, max_iter=1, warm_start=True, dtype="float64",
                          random_state=0), df)
    assert m.families_ == ["gaussian", "categorical", "bernoulli", "gaussian", "categorical"]
    desc = {"g": {"model": "gaussian_diag", "n_columns": 2}, "c": {"model": "categorical", "n_columns": 2},
            "b": {"model": "binary", "n_columns": 1}}
    sm = stepmix.StepMix(n_components=2, measurement=desc, verbose=0, progress_bar=0)
    sm.set_parameters(stepmix_mixed_start(m))
    ref = _stepmix_run(sm, df[["g1", "g2", "c1", "c2", "b1"]].to_numpy(float), 8)
    _fit(m.set_params(max_iter=8, tol=0), df)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-8)
    np.testing.assert_allclose(m.means_, sm._mm.models["g"].parameters["means"], rtol=1e-7)


def _matched(est_values, truth):
    """``est_values`` with its components in the order that best matches ``truth``."""
    K = len(truth)
    best = min(itertools.permutations(range(K)), key=lambda p: np.abs(est_values[list(p)] - truth).sum())
    return list(best)


def test_known_parameters_are_recovered():
    rng = np.random.default_rng(6)
    n, w = 6000, np.array([0.3, 0.7])
    z = rng.choice(2, n, p=w)
    p = np.array([[0.1, 0.8, 0.2, 0.9], [0.7, 0.2, 0.9, 0.3]])
    Xb = (rng.random((n, 4)) < p[z]).astype(float)
    mb = BernoulliMixture(2, n_init=2, random_state=0, dtype="float64").fit(Xb)
    order = _matched(mb.probabilities_, p)
    np.testing.assert_allclose(mb.probabilities_[order], p, atol=0.03)
    np.testing.assert_allclose(mb.weights_[order], w, atol=0.03)

    rates = np.array([[1.0, 10.0], [7.0, 2.0]])
    mp = PoissonMixture(2, random_state=0, dtype="float64").fit(rng.poisson(rates[z]))
    order = _matched(mp.lambdas_, rates)
    np.testing.assert_allclose(mp.lambdas_[order], rates, rtol=0.05)

    cats = np.array(["no", "maybe", "yes"])  # learnt sorted: maybe, no, yes
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    Xc = np.stack([cats[(rng.random(n)[:, None] > probs[z].cumsum(1)).sum(1)] for _ in range(4)], 1)
    mc = CategoricalMixture(2, random_state=0, dtype="float64").fit(Xc)
    assert [list(c) for c in mc.categories_] == [["maybe", "no", "yes"]] * 4
    sorted_truth = probs[:, [1, 0, 2]]
    order = _matched(mc.probabilities_[0], sorted_truth)
    for j in range(4):
        np.testing.assert_allclose(mc.probabilities_[j][order], sorted_truth, atol=0.03)
    np.testing.assert_allclose(mc.weights_[order], w, atol=0.03)


def test_semi_supervised_beats_the_labelled_rows_alone_on_digits():
    """Binarised digits, 3% labelled: EM over the unlabelled rows too (Nigam et al.) beats
    the naive Bayes classifier from the labelled rows alone (unlabeled_weight=0)."""
    from sklearn.datasets import load_digits

    X, z = load_digits(return_X_y=True)
    X = (X > 7).astype(float)
    rng = np.random.default_rng(0)
    y = np.full(len(z), -1)
    for c in range(10):  # a few labels of each class
        rows = np.flatnonzero(z == c)
        y[rng.choice(rows, 5, replace=False)] = c
    kw = dict(n_components=10, random_state=0, dtype="float64", max_iter=50)
    alone = _fit(BernoulliMixture(**kw, unlabeled_weight=0.0), X, y)
    semi = _fit(BernoulliMixture(**kw, unlabeled_weight=0.1), X, y)
    unlabelled = y < 0
    acc_alone = (alone.predict(X[unlabelled]) == z[unlabelled]).mean()
    acc_semi = (semi.predict(X[unlabelled]) == z[unlabelled]).mean()
    assert acc_semi > acc_alone + 0.02, (acc_alone, acc_semi)


def test_select_finds_the_number_of_latent_classes():
    import bigem
    from bigem._core.errors import ParameterError

    rng = np.random.default_rng(7)
    n, K, D, M = 3000, 3, 6, 4
    z = rng.integers(0, K, n)
    P = rng.dirichlet(np.ones(M) * 0.5, size=(K, D))
    X = np.stack([(rng.random(n)[:, None] > P[z, j].cumsum(1)).sum(1) for j in range(D)], 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        result = bigem.select(X, n_components=[2, 3, 4], family="categorical", random_state=0, n_init=2)
    assert result.best_["n_components"] == 3
    assert isinstance(result.best_estimator_, CategoricalMixture)
    assert [r["covariance_type"] for r in result.table] == [None] * 3
    assert [r["model"] for r in result.table] == ["CategoricalMixture"] * 3
    # free parameters: K - 1 weights and K (M - 1) probabilities per column
    assert [r["n_parameters"] for r in result.table] == [k - 1 + k * D * (M - 1) for k in (2, 3, 4)]
    with pytest.raises(ParameterError, match="covariance types apply to the Gaussian family .* not to family='categorical'"):
        bigem.select(X, n_components=[2], covariance_types="full", family="categorical")


def test_relative_entropy_is_one_for_separated_classes_and_near_zero_for_none():
    """Invariants of the posteriors' entropy: 0 (relative entropy 1) where every row is
    certain of its class, and near n log K (relative entropy near 0) where the classes
    are the same; NaN for one class."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 400)
    separated = np.repeat(z[:, None], 8, 1).astype(float)  # eight copies of the class
    m = _fit(BernoulliMixture(2, random_state=0, dtype="float64"), separated)
    assert m.entropy(separated) == pytest.approx(0.0, abs=1e-6)
    assert m.relative_entropy(separated) == pytest.approx(1.0, abs=1e-8)
    noise = (rng.random((400, 8)) < 0.5).astype(float)
    m = _fit(BernoulliMixture(2, random_state=0, dtype="float64"), noise)
    assert 0.0 <= m.relative_entropy(noise) < 0.2
    assert m.entropy(noise) <= len(noise) * np.log(2) + 1e-9
    assert np.isnan(_fit(BernoulliMixture(1, dtype="float64"), noise).relative_entropy(noise))
    weighted = m.caic(noise), m.sabic(noise)
    n, p = len(noise), m._n_parameters()
    assert weighted == pytest.approx((m.bic(noise) + p, m.bic(noise) + p * (np.log((n + 2) / 24) - np.log(n))))
