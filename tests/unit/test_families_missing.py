"""Missing values in the discrete and mixed-type mixtures (``missing_values='fiml'``).

Within a component the columns are independent, so the exact EM for values missing at
random leaves a gap out of its row's likelihood and its column's statistics. Checked
against EM written out in numpy, against StepMix's ``*_nan`` models step by step from
the same start, at the fixed point of StepMix's mixed model with Gaussian gaps, against
the generating parameters, and against the same fit without gaps (bit for bit)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, logsumexp

from bigem import BernoulliMixture, CategoricalMixture, MixedMixture, PoissonMixture
from bigem._core.errors import DataError, EmptyRowWarning

from .test_families_reference import _stepmix_run, stepmix_mixed_start

FIXED = dict(tol=0.0, dtype="float64")


def _fit(est, X, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        return est.fit(X, **kw)


def _holes(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """X with a fraction ``rate`` of its entries missing completely at random (no row empty)."""
    rng = np.random.default_rng(seed)
    out = np.asarray(X, dtype=float).copy()
    gap = rng.random(out.shape) < rate
    gap[gap.all(1), 0] = False
    out[gap] = np.nan
    return out


def _observed_em(log_terms, m_step, X, weights, params, n_iter):
    """EM in numpy over the observed entries: ``log_terms(x0, seen, params)`` the (n, K)
    log-densities, ``m_step(x0, seen, resp)`` the new parameters."""
    seen = ~np.isnan(X)
    x0 = np.where(seen, X, 0.0)
    out = []
    for _ in range(n_iter):
        lj = log_terms(x0, seen, params) + np.log(weights)
        ll = logsumexp(lj, axis=1)
        out.append(ll.mean())
        resp = np.exp(lj - ll[:, None])
        weights, params = resp.sum(0) / len(X), m_step(x0, seen, resp)
    return np.array(out), weights, params


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_bernoulli_gaps_equal_em_over_the_observed_entries(alpha):
    rng = np.random.default_rng(0)
    K, D, n = 3, 6, 1500
    truth = rng.uniform(0.1, 0.9, (K, D))
    X = _holes(rng.random((n, D)) < truth[rng.integers(0, K, n)], 0.2, 1)
    w0, p0 = np.full(K, 1 / K), rng.uniform(0.2, 0.8, (K, D))
    m = _fit(BernoulliMixture(K, alpha=alpha, missing_values="fiml", max_iter=10, weights_init=w0,
                              probabilities_init=p0, **FIXED), X)

    def terms(x0, seen, p):
        return x0 @ np.log(p).T + ((1 - x0) * seen) @ np.log1p(-p).T

    def m_step(x0, seen, r):
        return (alpha + r.T @ x0) / (2 * alpha + r.T @ seen)

    ref, w, p = _observed_em(terms, m_step, X, w0, p0, 10)
    if not alpha:  # with a prior the lower bound also holds its log-density: the parameters say it all
        np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-12)
    np.testing.assert_allclose(m.probabilities_, p, rtol=1e-10)
    np.testing.assert_allclose(m.weights_, w, rtol=1e-10)


def test_poisson_gaps_equal_em_over_the_observed_entries():
    rng = np.random.default_rng(2)
    K, D, n = 2, 4, 1200
    rates = rng.uniform(0.5, 8.0, (K, D))
    X = _holes(rng.poisson(rates[rng.integers(0, K, n)]), 0.25, 3)
    w0, lam0 = np.array([0.4, 0.6]), rng.uniform(1.0, 5.0, (K, D))
    m = _fit(PoissonMixture(K, alpha=0.0, missing_values="fiml", max_iter=10, weights_init=w0, lambdas_init=lam0,
                            **FIXED), X)

    def terms(x0, seen, lam):
        return x0 @ np.log(lam).T - seen @ lam.T - (gammaln(x0 + 1) * seen).sum(1)[:, None]

    ref, w, lam = _observed_em(terms, lambda x0, seen, r: (r.T @ x0) / (r.T @ seen), X, w0, lam0, 10)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-12)
    np.testing.assert_allclose(m.lambdas_, lam, rtol=1e-10)


def test_latent_class_analysis_with_gaps_equals_stepmix_categorical_nan_step_by_step():
    stepmix = pytest.importorskip("stepmix")
    rng = np.random.default_rng(4)
    K, sizes = 3, (3, 3, 3, 3)
    X = _holes(np.stack([rng.integers(0, m, 600) for m in sizes], 1), 0.2, 5)
    w0, probs0 = np.array([0.3, 0.3, 0.4]), [rng.dirichlet(np.ones(m), size=K) for m in sizes]
    m = _fit(CategoricalMixture(K, alpha=0.0, missing_values="fiml", weights_init=w0, probabilities_init=probs0,
                                max_iter=8, **FIXED), X)
    sm = stepmix.StepMix(n_components=K, measurement="categorical_nan", verbose=0, progress_bar=0)
    sm.set_parameters(dict(weights=w0.copy(), measurement=dict(pis=np.concatenate(probs0, 1), max_n_outcomes=3,
                                                               total_outcomes=12), measurement_in=len(sizes)))
    ref = _stepmix_run(sm, X, 8)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate(m.probabilities_, 1), sm._mm.parameters["pis"], rtol=1e-9)


def test_binary_columns_with_gaps_equal_stepmix_binary_nan_step_by_step():
    stepmix = pytest.importorskip("stepmix")
    rng = np.random.default_rng(6)
    K, D = 2, 5
    X = _holes(rng.random((700, D)) < rng.uniform(0.2, 0.8, (K, D))[rng.integers(0, K, 700)], 0.3, 7)
    w0, p0 = np.array([0.45, 0.55]), rng.uniform(0.2, 0.8, (K, D))
    m = _fit(BernoulliMixture(K, alpha=0.0, missing_values="fiml", weights_init=w0, probabilities_init=p0,
                              max_iter=8, **FIXED), X)
    sm = stepmix.StepMix(n_components=K, measurement="binary_nan", verbose=0, progress_bar=0)
    sm.set_parameters(dict(weights=w0.copy(), measurement=dict(pis=p0.copy()), measurement_in=D))
    ref = _stepmix_run(sm, X, 8)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-10)
    np.testing.assert_allclose(m.probabilities_, sm._mm.parameters["pis"], rtol=1e-9)


def _mixed(seed, n=800):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    return pd.DataFrame({
        "g1": rng.normal(2.0 * z, 1.0),
        "c1": np.minimum(rng.integers(0, 3, n) + 3 * z, 4).astype(float),
        "b1": (rng.random(n) < 0.3 + 0.4 * z).astype(float),
        "g2": rng.normal(-z, 1.5),
        "c2": rng.integers(0, 2, n).astype(float),
    }), z


FAMILIES = {"g1": "gaussian", "g2": "gaussian", "c1": "categorical", "c2": "categorical", "b1": "bernoulli"}
NESTED = {"g": {"model": "gaussian_diag_nan", "n_columns": 2}, "c": {"model": "categorical_nan", "n_columns": 2},
          "b": {"model": "binary_nan", "n_columns": 1}}


def test_mixed_data_with_discrete_gaps_equals_stepmix_step_by_step():
    """Gaps in the categorical and binary columns: one EM iteration gives the start, and
    StepMix's nested ``*_nan`` model continues from it, step by step."""
    stepmix = pytest.importorskip("stepmix")
    df, _ = _mixed(5)
    for col, seed in (("c1", 1), ("c2", 2), ("b1", 3)):
        df[col] = _holes(df[[col]].to_numpy(), 0.2, seed)[:, 0]
    m = _fit(MixedMixture(2, families=FAMILIES, alpha=0.0, max_iter=1, warm_start=True, missing_values="fiml",
                          random_state=0, **FIXED), df)
    sm = stepmix.StepMix(n_components=2, measurement=NESTED, verbose=0, progress_bar=0)
    sm.set_parameters(stepmix_mixed_start(m))
    ref = _stepmix_run(sm, df[["g1", "g2", "c1", "c2", "b1"]].to_numpy(float), 8)
    _fit(m.set_params(max_iter=8), df)
    np.testing.assert_allclose(m.lower_bounds_, ref, rtol=1e-8)
    np.testing.assert_allclose(m.bernoulli_probabilities_, sm._mm.models["b"].parameters["pis"], rtol=1e-7)


def test_mixed_data_with_gaps_everywhere_reaches_stepmix_fixed_point():
    """Gaussian gaps too: bigem completes a Gaussian gap by its conditional moments where
    StepMix averages each column over the rows that observe it, two iterations with the
    same fixed points; from the same start both converge to the same parameters."""
    stepmix = pytest.importorskip("stepmix")
    df, _ = _mixed(8)
    df[:] = _holes(df.to_numpy(), 0.15, 9)
    m = _fit(MixedMixture(2, families=FAMILIES, alpha=0.0, reg_covar=0.0, max_iter=1, warm_start=True,
                          missing_values="fiml", random_state=0, **FIXED), df)
    sm = stepmix.StepMix(n_components=2, measurement=NESTED, verbose=0, progress_bar=0)
    sm.set_parameters(stepmix_mixed_start(m))
    _stepmix_run(sm, df[["g1", "g2", "c1", "c2", "b1"]].to_numpy(float), 800)
    _fit(m.set_params(max_iter=800, tol=1e-14), df)
    g = sm._mm.models["g"].parameters
    np.testing.assert_allclose(m.means_, g["means"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(m.covariances_, g["covariances"], rtol=1e-6)
    np.testing.assert_allclose(m.bernoulli_probabilities_, sm._mm.models["b"].parameters["pis"], rtol=1e-6)


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "poisson", "mixed"])
@pytest.mark.cpu_strategy  # a GPU takes the gap kernels whatever the block holds: the same fit to rounding
def test_without_gaps_fiml_is_the_same_fit_bit_for_bit(family):
    rng = np.random.default_rng(11)
    if family == "mixed":
        X, _ = _mixed(3)
        make = lambda **kw: MixedMixture(2, families=FAMILIES, random_state=0, max_iter=6, **kw)  # noqa: E731
    else:
        X = {"bernoulli": (rng.random((600, 5)) < 0.4).astype(float), "categorical": rng.integers(0, 3, (600, 4)),
             "poisson": rng.poisson(3.0, (600, 3))}[family]
        cls = {"bernoulli": BernoulliMixture, "categorical": CategoricalMixture, "poisson": PoissonMixture}[family]
        make = lambda **kw: cls(3, random_state=0, max_iter=6, **kw)  # noqa: E731
    plain, fiml = _fit(make(), X), _fit(make(missing_values="fiml"), X)
    assert plain.lower_bounds_ == fiml.lower_bounds_
    np.testing.assert_array_equal(plain.predict_proba(X), fiml.predict_proba(X))


def test_latent_classes_are_recovered_through_a_third_of_the_answers_missing():
    rng = np.random.default_rng(12)
    K, D, n = 3, 8, 20_000
    truth = np.array([[0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4, [0.9, 0.1] * 4])
    weights = np.array([0.5, 0.3, 0.2])
    z = rng.choice(K, n, p=weights)
    X = _holes(rng.random((n, D)) < truth[z], 0.33, 13)
    m = _fit(BernoulliMixture(K, missing_values="fiml", n_init=3, random_state=0, max_iter=200), X)
    order = [int(np.argmin(np.abs(m.probabilities_ - t).sum(1))) for t in truth]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(m.probabilities_[order], truth, atol=0.03)
    np.testing.assert_allclose(m.weights_[order], weights, atol=0.02)
    assert (m.predict(X) == np.asarray(order)[z]).mean() > 0.9
    assert np.all(np.diff(m.lower_bounds_) > -1e-12)  # EM never goes down


def test_streamed_parquet_with_nulls_fits_what_the_dataframe_fits(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(14)
    n = 900
    z = rng.integers(0, 2, n)
    colours = np.array(["red", "green", "blue"])
    frame = pd.DataFrame({
        "colour": np.where(rng.random(n) < 0.15, None, colours[np.where(z == 0, rng.choice(3, n, p=[.7, .2, .1]),
                                                                        rng.choice(3, n, p=[.1, .2, .7]))]),
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(2.0 * z, 1.0)),
        "k": np.where(rng.random(n) < 0.1, np.nan, rng.poisson(2 + 3 * z).astype(float)),
        "flag": np.where(rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.2 + 0.6 * z).astype(float)),
    })
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, row_group_size=200)
    kw = dict(families={"k": "poisson", "flag": "bernoulli"}, n_components=2, random_state=0, max_iter=8,
              missing_values="fiml", **FIXED)
    memory = _fit(MixedMixture(**kw), frame)
    streamed = _fit(MixedMixture(chunk_size=128, **kw), path)
    np.testing.assert_allclose(streamed.lower_bounds_, memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(streamed.probabilities_[0], memory.probabilities_[0], rtol=1e-10)
    np.testing.assert_array_equal(streamed.predict(path), memory.predict(frame))
    assert np.all(np.isfinite(memory.predict_proba(frame)))


def test_gaps_are_refused_without_fiml_with_the_fix_and_a_column_never_observed_is_refused_by_name():
    X = _holes((np.random.default_rng(15).random((300, 4)) < 0.5), 0.2, 16)
    with pytest.raises(DataError, match=r"Input X contains NaN.*missing_values='fiml'"):
        BernoulliMixture(2).fit(X)
    frame = pd.DataFrame({"c": ["a", None, "b", "a"] * 50, "x": np.arange(200.0)})
    with pytest.raises(DataError, match=r"column 'c' has a missing \(null/NaN\) value at row 1.*missing_values='fiml'"):
        MixedMixture(2).fit(frame)
    X[:, 2] = np.nan
    with pytest.raises(DataError, match="column 2 is missing in every row"):
        BernoulliMixture(2, missing_values="fiml").fit(X)
    codes = np.random.default_rng(16).integers(0, 3, (300, 3)).astype(float)
    codes[:, 1] = np.nan
    with pytest.raises(DataError, match=r"column 1 has no values \(missing in every row\).*drop it"):
        CategoricalMixture(2, missing_values="fiml").fit(codes)
    frame["c"] = None
    with pytest.raises(DataError, match=r"column 'c' has no values \(missing in every row\).*drop it"):
        MixedMixture(2, missing_values="fiml").fit(frame)


def test_a_row_with_nothing_observed_gets_the_weights_as_its_posterior():
    X = _holes((np.random.default_rng(17).random((400, 3)) < 0.5), 0.1, 18)
    X[7] = np.nan
    with pytest.warns(EmptyRowWarning, match="1 row"):
        m = _fit(CategoricalMixture(2, missing_values="fiml", random_state=0, max_iter=5), X)
    np.testing.assert_allclose(m.predict_proba(X[7:8])[0], m.weights_, rtol=1e-6)


def test_dask_partitions_with_gaps_fit_what_memory_fits():
    dd = pytest.importorskip("dask.dataframe")
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(19)
    n = 1500
    z = rng.integers(0, 2, n)
    X = _holes(rng.random((n, 4)) < np.where(z[:, None] == 0, 0.2, 0.7), 0.2, 20)
    frame = pd.DataFrame({"c": np.where(rng.random(n) < 0.1, None, np.array(["a", "b", "c"])[z]),
                          "x": _holes(rng.normal(z, 1.0)[:, None], 0.1, 21)[:, 0],
                          "k": _holes(rng.poisson(z + 1.0)[:, None], 0.1, 22)[:, 0]})
    kw = dict(random_state=0, max_iter=5, missing_values="fiml", **FIXED)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        pairs = [
            (_fit(BernoulliMixture(2, **kw), X),
             _fit(BernoulliMixture(2, engine="dask", client=client, **kw), da.from_array(X, chunks=(400, -1)))),
            (_fit(MixedMixture(2, families={"k": "poisson"}, **kw), frame),
             _fit(MixedMixture(2, families={"k": "poisson"}, engine="dask", client=client, **kw),
                  dd.from_pandas(frame, npartitions=3))),
        ]
    for local, dask in pairs:
        np.testing.assert_allclose(dask.lower_bounds_, local.lower_bounds_, rtol=1e-12)


# ---------------------------------------------------------------- impute
def _posterior(log_terms, weights):
    lj = log_terms + np.log(weights)
    return np.exp(lj - logsumexp(lj, axis=1, keepdims=True))


def test_bernoulli_and_poisson_impute_the_conditional_expectation_and_keep_what_was_observed():
    rng = np.random.default_rng(23)
    z = rng.integers(0, 2, 1000)
    X = _holes(rng.random((1000, 4)) < np.where(z[:, None] == 0, 0.15, 0.8), 0.25, 24)
    b = _fit(BernoulliMixture(2, missing_values="fiml", random_state=0, **FIXED), X)
    seen, x0, p = ~np.isnan(X), np.nan_to_num(X), b.probabilities_
    post = _posterior(x0 @ np.log(p).T + ((1 - x0) * seen) @ np.log1p(-p).T, b.weights_)
    np.testing.assert_allclose(b.impute(X), np.where(seen, X, post @ p), rtol=1e-9)
    C = _holes(rng.poisson(np.where(z[:, None] == 0, 1.0, 6.0), (1000, 3)), 0.25, 25)
    m = _fit(PoissonMixture(2, alpha=0.0, missing_values="fiml", random_state=0, **FIXED), C)
    seen, c0, lam = ~np.isnan(C), np.nan_to_num(C), m.lambdas_
    post = _posterior(c0 @ np.log(lam).T - seen @ lam.T, m.weights_)
    np.testing.assert_allclose(m.impute(C), np.where(seen, C, post @ lam), rtol=1e-9)


def test_drawn_gaps_follow_the_conditional_distribution_whatever_the_chunks():
    rng = np.random.default_rng(26)
    n = 40_000
    z = rng.integers(0, 2, n)
    X = np.stack([np.where(z == 0, rng.choice(3, n, p=[0.7, 0.2, 0.1]), rng.choice(3, n, p=[0.1, 0.2, 0.7])),
                  rng.poisson(np.where(z == 0, 2.0, 9.0))], 1).astype(float)
    m = _fit(MixedMixture(2, families={0: "categorical", 1: "poisson"}, missing_values="fiml", random_state=0,
                          **FIXED), X)
    holes = X.copy()
    holes[:, 1] = np.nan  # every count missing: drawn from the components the categories say
    drawn = m.impute(holes, method="sample", random_state=5)
    np.testing.assert_array_equal(drawn[:, 0], X[:, 0])
    assert drawn[:, 1].min() >= 0 and np.array_equal(drawn[:, 1], np.round(drawn[:, 1]))
    for code in range(3):  # given the category, the draws' mean is the posterior's mixture of rates
        rows = X[:, 0] == code
        post = m.predict_proba(holes[rows][:1])[0]
        assert drawn[rows, 1].mean() == pytest.approx(post @ m.lambdas_[:, 0], rel=0.05)
    again = _fit(m.set_params(chunk_size=777), X).impute(holes, method="sample", random_state=5)
    np.testing.assert_array_equal(again, drawn)


def test_category_columns_are_imputed_with_their_own_values_and_a_npy_file_is_refused(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(27)
    n = 2000
    z = rng.integers(0, 2, n)
    truth = pd.DataFrame({"colour": np.array(["red", "blue"])[z], "x": rng.normal(3.0 * z, 1.0)})
    frame = truth.copy()
    frame.loc[rng.random(n) < 0.2, "colour"] = None
    m = _fit(MixedMixture(2, missing_values="fiml", random_state=0, **FIXED), frame)
    done = m.impute(frame)
    assert done.dtype == object
    gap = frame["colour"].isna().to_numpy()
    assert (done[gap, 0] == truth["colour"].to_numpy()[gap]).mean() > 0.9
    np.testing.assert_array_equal(done[~gap, 0], frame["colour"].to_numpy()[~gap])
    path = m.impute(frame, out=tmp_path / "done.parquet")
    np.testing.assert_array_equal(pd.read_parquet(path)["colour"].to_numpy(), done[:, 0])
    with pytest.raises(Exception, match=r"\.npy file cannot hold"):
        m.impute(frame, out=tmp_path / "done.npy")
    assert not (tmp_path / "done.npy").exists()


def test_a_full_gaussian_block_reads_its_chunks_by_number_of_gaps_and_fits_the_same(monkeypatch):
    """The Gaussian block orders a chunk's rows by their gaps (its patterns factored at
    once, as GaussianMixture's do); the other blocks follow that order: the same fit."""
    from bigem.models.product import ProductComponent

    rng = np.random.default_rng(28)
    n, z = 3000, rng.integers(0, 3, 3000)
    frame = pd.DataFrame(rng.normal(z[:, None], 1.0, (n, 4)), columns=["a", "b", "c", "d"])
    frame[["a", "b", "c", "d"]] = _holes(frame.to_numpy(), 0.15, 29)
    frame["k"] = _holes(rng.poisson(1.0 + z)[:, None], 0.1, 30)[:, 0]
    kw = dict(families={"k": "poisson"}, covariance_type="full", missing_values="fiml", random_state=0, max_iter=6,
              chunk_size=700, **FIXED)
    calls = []
    expect = ProductComponent.expect_gaps
    monkeypatch.setattr(ProductComponent, "expect_gaps", lambda self, p, mask: calls.append(1) or expect(self, p, mask))
    ordered = _fit(MixedMixture(3, **kw), frame)
    assert calls
    monkeypatch.setattr(ProductComponent, "expect_gaps", lambda self, p, mask: None)
    plain = _fit(MixedMixture(3, **kw), frame)
    np.testing.assert_allclose(ordered.lower_bounds_, plain.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(ordered.covariances_, plain.covariances_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::bigem.errors.EmptyRowWarning")
def test_dask_impute_into_a_file_decodes_categories_with_their_ids(tmp_path):
    """A Dask DataFrame with a category column: impute(out=) completes each partition on
    the cluster and decodes its category codes here, as the in-memory impute does (the
    lazy array of numbers has no room for categories, and says so)."""
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": rng.normal(size=400), "c": rng.choice(["x", "y", "z"], 400).astype(object),
                          "rid": np.arange(400) + 1000})
    frame.loc[::5, "g"], frame.loc[::7, "c"] = np.nan, None
    m = MixedMixture(2, families={"g": "gaussian", "c": "categorical"}, missing_values="fiml",
                     random_state=0).fit(frame[["g", "c"]])
    here = m.impute(frame[["g", "c"]])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"):
        ddf = dd.from_pandas(frame, npartitions=3)
        read = pd.read_csv(m.impute(ddf, out=str(tmp_path / "done.csv"), id_column="rid"))
        with pytest.raises(Exception, match="has category columns; pass out="):
            m.impute(ddf)
    np.testing.assert_array_equal(read["rid"], frame["rid"])
    np.testing.assert_array_equal(read["c"].to_numpy(), here[:, 1])
    np.testing.assert_allclose(read["g"].to_numpy(), here[:, 0].astype(float), rtol=1e-12)
    assert set(read["c"]) == {"x", "y", "z"}
