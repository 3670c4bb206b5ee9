"""mclust's family in whole fits: mclust's published Old Faithful results, monotone EM for
every model, scikit-learn's names identical to mclust's, the hierarchical start (checked
against a brute-force agglomeration), select's split start, the decomposition, the
conjugate prior, and the same answer in memory, streamed from a file and on Dask."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import bigem
from bigem._core.errors import ParameterError
from bigem.datasets import load_faithful
from bigem.estimators.selection import criteria
from bigem.models.covariance import structure
from bigem.models.eigen import MULTIVARIATE
from bigem.models.hierarchical import agglomerate

# mclust's settings: no ridge, its tolerance and stopping rule, its hierarchical start
MCLUST = dict(init_params="hc", reg_covar=0.0, tol=1e-5, stopping="mclust", max_iter=1000, dtype="float64")


def blobs(seed: int = 0, n: int = 150, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [4.0] + [0.0] * (d - 1), [0.0, 4.0] + [0.0] * (d - 2)])
    scales = rng.uniform(0.5, 1.5, (3, d, d))
    return np.concatenate([rng.normal(size=(n // 3, d)) @ scales[k] + centres[k] for k in range(3)])


# ---------------------------------------------------------------------- mclust's published results
def test_old_faithful_reproduces_mclusts_printed_eee_3():
    """``Mclust(faithful)`` prints: EEE with 3 components, log-likelihood -1126.326, n 272,
    df 11, BIC -2314.316, ICL -2357.824, clustering table 40 97 135; and VVV,2 has BIC
    -2322.192 in its BIC table. bigem's criteria are minus mclust's."""
    X = load_faithful()
    est = bigem.GaussianMixture(3, covariance_type="EEE", **MCLUST).fit(X)
    row = criteria(est, X)
    assert round(row["log_likelihood"], 3) == -1126.326
    assert row["n_parameters"] == 11
    assert round(-row["bic"], 3) == -2314.316
    assert round(-row["icl"], 3) == -2357.824
    assert sorted(np.bincount(est.predict(X)).tolist()) == [40, 97, 135]
    full = bigem.GaussianMixture(2, covariance_type="VVV", **MCLUST).fit(X)
    assert round(-criteria(full, X)["bic"], 3) == -2322.192


def test_select_with_defaults_finds_mclusts_answer_on_old_faithful():
    """The issue's new-user run: select over scikit-learn's four types picks tied (EEE) K=3,
    not the full K=2 a k-means start gave, and no K fit ends below the K - 1 fit."""
    X = load_faithful()
    result = bigem.select(X, n_components=range(1, 5), covariance_types=("full", "tied"), random_state=0)
    assert (result.best_["n_components"], result.best_["covariance_type"]) == (3, "tied")
    # scikit-learn's tol (1e-3 on the mean log-likelihood) stops a little short of mclust's 1e-5
    assert result.best_["bic"] == pytest.approx(2314.316, abs=0.5)
    for ct in ("full", "tied"):
        lls = [r["log_likelihood"] for r in result.table if r["covariance_type"] == ct]
        assert all(b >= a - 1e-6 * abs(a) for a, b in zip(lls, lls[1:])), (ct, lls)
    text = result.summary()
    assert "tied,3" in text.splitlines()[1] and "lower is better" in text and "mclust prints minus" in text
    aic = result.summary("aic").splitlines()[0]  # mclust has no AIC table to compare with
    assert aic.startswith("Best AIC values (lower is better") and "mclust" not in aic


# ---------------------------------------------------------------------- EM for every model
@pytest.mark.parametrize("name", MULTIVARIATE)
def test_log_likelihood_never_decreases(name):
    X = blobs(1)
    lls = []
    est = bigem.GaussianMixture(3, covariance_type=name, init_params="hc", tol=0.0, max_iter=25, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, callback=lambda info: lls.append(info.log_likelihood))
    assert len(lls) >= 10
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(lls, lls[1:])), lls
    # the decomposition reassembles the covariances
    dense = np.einsum("kij,kj,klj->kil", est.orientation_, est.volume_[:, None] * est.shape_, est.orientation_)
    expected = structure(name).dense(torch.as_tensor(est.covariances_), 3, 2).expand(3, 2, 2).numpy()
    np.testing.assert_allclose(dense, expected, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.prod(est.shape_, 1), 1.0, rtol=1e-10)


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
@pytest.mark.parametrize("sk, mc", [("spherical", "VII"), ("diag", "VVI"), ("tied", "EEE"), ("full", "VVV")])
def test_scikit_learn_names_are_their_mclust_models(sk, mc):
    X = blobs(2)
    kw = dict(n_components=3, random_state=0, dtype="float64", max_iter=20)
    a = bigem.GaussianMixture(covariance_type=sk, **kw).fit(X)
    b = bigem.GaussianMixture(covariance_type=mc, **kw).fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert a.bic(X) == b.bic(X)


def test_univariate_models_need_one_feature():
    x = np.random.default_rng(0).normal(size=(50, 1))
    e = bigem.GaussianMixture(2, covariance_type="E", **MCLUST).fit(x)
    assert e.covariances_.shape == (2,) and e.covariances_[0] == e.covariances_[1]
    with pytest.raises(ParameterError, match="univariate model.*needs one feature.*'EII'"):
        bigem.GaussianMixture(2, covariance_type="E").fit(np.zeros((10, 2)) + np.arange(10)[:, None])


# ---------------------------------------------------------------------- the hierarchical start
def ward_brute_force(z: np.ndarray) -> list[tuple[int, int]]:
    """Greedy agglomeration by Ward's cost n_i n_j / (n_i + n_j) |m_i - m_j|^2, every pair
    recomputed at each step; clusters named by their first row."""
    clusters = {i: [i] for i in range(len(z))}
    merges = []
    while len(clusters) > 1:
        best = None
        for a in clusters:
            for b in clusters:
                if a < b:
                    ia, ib = clusters[a], clusters[b]
                    cost = len(ia) * len(ib) / (len(ia) + len(ib)) * np.sum((z[ia].mean(0) - z[ib].mean(0)) ** 2)
                    if best is None or cost < best[0]:
                        best = (cost, a, b)
        _, a, b = best
        clusters[a] = clusters[a] + clusters.pop(b)
        merges.append((a, b))
    return merges


def test_eii_agglomeration_is_wards_greedy_merge_order():
    z = np.random.default_rng(3).normal(size=(25, 3))
    tree = agglomerate(z, "EII")
    assert [tuple(p) for p in tree.pairs] == ward_brute_force(z)


def test_tree_cuts_are_nested_and_sized():
    tree = bigem.hc(load_faithful())
    assert tree.model == "VVV" and tree.sample is None and tree.n_rows == 272
    previous = None
    for k in range(1, 8):
        labels = tree.labels(k)
        assert sorted(set(labels.tolist())) == list(range(k))
        if previous is not None:  # K + 1 classes split one of the K classes
            for c in range(k):
                assert len(set(previous[labels == c].tolist())) == 1
        previous = labels


def test_hc_on_big_data_runs_on_a_sample_and_em_on_everything():
    X = blobs(4, n=3000)
    tree = bigem.hc(X, max_rows=300, random_state=0)
    assert tree.sample.shape == (300, 2) and tree.n_rows == 3000
    est = bigem.GaussianMixture(3, init_params=tree, covariance_type="VEV", dtype="float64").fit(X)
    assert est.converged_ and sorted(np.bincount(est.predict(X)).tolist()) == [1000, 1000, 1000]
    with pytest.raises(ParameterError, match="max_rows"):
        bigem.hc(X, max_rows=1)


# ---------------------------------------------------------------------- select across the family
def test_select_mclust_family_and_split_start():
    X = blobs(5, n=90)
    result = bigem.select(X, n_components=[2, 3], covariance_types="mclust", random_state=0, max_iter=30)
    assert {r["covariance_type"] for r in result.table} == set(MULTIVARIATE)
    for name in MULTIVARIATE:  # a K fit never ends below the K - 1 fit of the same model
        lls = [r["log_likelihood"] for r in result.table if r["covariance_type"] == name]
        assert all(b >= a - 1e-6 * abs(a) for a, b in zip(lls, lls[1:])), (name, lls)
    assert {r["start"] for r in result.table} <= {"hc", "split"}
    assert result.best_["n_components"] == 3
    assert bigem.select(X[:, :1], n_components=[1, 2], covariance_types="mclust").table[0]["covariance_type"] == "E"


# ---------------------------------------------------------------------- the conjugate prior
def test_default_prior_is_mclusts_default_prior():
    X = blobs(6)
    D, K = 2, 3
    est = bigem.GaussianMixture(K, covariance_type="VVV", prior="default", init_params="hc", dtype="float64").fit(X)
    p = est.prior_
    assert p["shrinkage"] == 0.01 and p["dof"] == D + 2
    np.testing.assert_allclose(p["mean"], X.mean(0), rtol=1e-10)
    np.testing.assert_allclose(p["scale"], np.cov(X.T) / K ** (2 / D), rtol=1e-10)
    # the MAP means: (n_k xbar_k + kappa mu_p) / (n_k + kappa), from the fitted responsibilities
    # at the fixed point (one more E-step moves nothing once converged)
    resp = est.predict_proba(X)
    n_k = resp.sum(0)
    means = (resp.T @ X + 0.01 * X.mean(0)) / (n_k + 0.01)[:, None]
    np.testing.assert_allclose(est.means_, means, rtol=1e-3)
    diag = bigem.GaussianMixture(K, covariance_type="VEI", prior="default", dtype="float64").fit(X)
    assert diag.prior_["scale"] == pytest.approx(np.trace(np.cov(X.T)) / D / K ** (2 / D), rel=1e-10)


def test_prior_is_refused_where_mclust_has_none_and_by_partial_fit():
    X = blobs(7)
    with pytest.raises(ParameterError, match="no conjugate prior for EVE"):
        bigem.GaussianMixture(2, covariance_type="EVE", prior="default").fit(X)
    with pytest.raises(ParameterError, match="partial_fit cannot use it"):
        bigem.GaussianMixture(2, prior="default").partial_fit(X)
    with pytest.raises(ParameterError, match="unknown keys"):
        bigem.GaussianMixture(2, prior={"shrink": 1.0}).fit(X)


# ---------------------------------------------------------------------- same answer everywhere
def test_streamed_and_in_memory_fits_agree_for_every_model(tmp_path):
    X = blobs(8, n=120, d=3)
    path = tmp_path / "x.npy"
    np.save(path, X)
    tree = bigem.hc(X)
    for name in MULTIVARIATE:
        kw = dict(n_components=3, covariance_type=name, init_params=tree, dtype="float64", max_iter=4, tol=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            memory = bigem.GaussianMixture(**kw).fit(X)
            streamed = bigem.GaussianMixture(**kw, chunk_size=37).fit(str(path))
        assert memory.n_iter_ == streamed.n_iter_ == 4
        for attr in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(streamed, attr), getattr(memory, attr), rtol=1e-8, atol=1e-10,
                                       err_msg=f"{name} {attr}")


def test_command_line_takes_mclusts_names_and_hc():
    import argparse

    from bigem.cli.commands import INITS, covariance_list

    assert covariance_list("mclust") == "mclust"
    assert covariance_list("EEE,VEV,full") == ["EEE", "VEV", "full"]
    assert "hc" in INITS
    with pytest.raises(argparse.ArgumentTypeError, match="unknown covariance type.*'XYZ'.*or mclust"):
        covariance_list("EEE,XYZ")


def test_dask_fits_agree_with_in_memory_fits_for_every_model():
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    X = blobs(9, n=120, d=3)
    tree = bigem.hc(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        for name in MULTIVARIATE:
            kw = dict(n_components=3, covariance_type=name, init_params=tree, dtype="float64", max_iter=3, tol=0.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                memory = bigem.GaussianMixture(**kw).fit(X)
                dist = bigem.GaussianMixture(**kw, client=client).fit(da.from_array(X, chunks=(50, 3)))
            for attr in ("weights_", "means_", "covariances_"):
                np.testing.assert_allclose(getattr(dist, attr), getattr(memory, attr), rtol=1e-8, atol=1e-10,
                                           err_msg=f"{name} {attr}")


def test_a_component_collapsing_in_an_iterative_m_step_is_re_seeded_not_a_linalg_crash():
    """Iris setosa, rounded to one decimal, with no ridge: some EVE candidates had a
    component whose variance went to 0 inside the orientation step, which raised torch's
    raw LinAlgError from select. The iterative M-steps now stop there and hand the mixture
    an invalid covariance for that component, which it re-seeds as for any other model."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    setosa = X[y == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bigem.select(setosa, range(1, 6), ["VEI", "VEE", "EVE", "VVE", "VEV"], reg_covar=0.0,
                              init_params=bigem.hc(setosa, use="VARS"), dtype="float64")
    assert len(result.table) == 25
    assert all(np.isfinite(row["bic"]) or row["degenerate"] for row in result.table)
