"""bigem.select: picks the generating model, and its table equals separately fitted models."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import bigem
from bigem._core.errors import DegenerateFitWarning, SampleWeightWarning
from bigem.estimators.selection import COLUMNS, degenerate_components

CENTRES = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])


def mixture(seed: int, covariance_type: str, n_per: int = 200) -> np.ndarray:
    """Three 2-D components whose covariances have exactly the structure named."""
    rng = np.random.default_rng(seed)
    tied = np.array([[1.5, 0.9], [0.9, 1.0]])
    parts = []
    for k in range(3):
        if covariance_type == "full":  # correlated, each its own orientation
            a, s = rng.uniform(0.6, 0.9) * (-1) ** k, rng.uniform(0.8, 1.5, 2)
            cov = np.outer(s, s) * np.array([[1, a], [a, 1]])
        elif covariance_type == "diag":  # axis-aligned, elongated along x or y
            cov = np.diag(rng.uniform(0.3, 2.0, 2) ** 2 * (np.array([1, 4]) if k % 2 else np.array([4, 1])))
        elif covariance_type == "spherical":
            cov = np.eye(2) * rng.uniform(0.3, 1.5) ** 2
        else:
            cov = tied
        parts.append(rng.multivariate_normal(CENTRES[k] + rng.normal(0, 0.3, 2), cov, n_per))
    X = np.concatenate(parts)
    return X[rng.permutation(len(X))]


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_finds_the_generating_k_and_covariance_type(seed, covariance_type):
    X = mixture(seed, covariance_type)
    result = bigem.select(X, n_components=[2, 3, 4], random_state=0)
    assert (result.best_["n_components"], result.best_["covariance_type"]) == (3, covariance_type)
    assert result.best_estimator_.n_components == 3
    assert result.best_estimator_.covariance_type == covariance_type
    assert len(result.table) == 12 and not result.dropped


def test_table_equals_separately_fitted_models():
    X = mixture(3, "full")
    params = dict(n_init=2, tol=1e-4, max_iter=50, dtype="float64", random_state=7, reg_covar=1e-5)
    result = bigem.select(X, n_components=[2, 3], covariance_types=("full", "diag"), **params)
    assert [(r["n_components"], r["covariance_type"]) for r in result.table] == [
        (2, "full"), (3, "full"), (2, "diag"), (3, "diag")
    ]
    for row, fitted in zip(result.table, result.estimators_):
        # select's default start is mclust's hierarchical one (every row, so the same tree)
        alone = bigem.GaussianMixture(row["n_components"], covariance_type=row["covariance_type"], init_params="hc",
                                      **params).fit(X)
        if row["start"] == "split":  # the K - 1 fit with a component split ended higher than the hc start
            assert row["n_components"] == 3 and row["log_likelihood"] > alone.score(X) * len(X)
            alone = fitted
        assert row["start"] in ("hc", "split")
        assert row["log_likelihood"] == pytest.approx(alone.score(X) * len(X), rel=1e-12)
        assert row["bic"] == pytest.approx(alone.bic(X), rel=1e-12)
        assert row["aic"] == pytest.approx(alone.aic(X), rel=1e-12)
        assert row["n_iter"] == alone.n_iter_ and row["converged"] == alone.converged_
        np.testing.assert_allclose(fitted.means_, alone.means_, rtol=1e-12)
        # free parameters counted independently: K-1 weights, K*D means, covariances
        K, D = row["n_components"], 2
        cov = {"full": K * D * (D + 1) // 2, "diag": K * D}[row["covariance_type"]]
        assert row["n_parameters"] == K - 1 + K * D + cov
        # ICL = BIC + 2 * entropy of the hard assignment (the MAP responsibilities)
        resp = alone.predict_proba(X)
        assert row["icl"] == pytest.approx(alone.bic(X) - 2 * np.log(resp.max(1)).sum(), rel=1e-10)
        assert row["icl"] >= row["bic"]
    assert set(result.table[0]) == set(COLUMNS)
    frame = result.to_pandas()
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 4
    assert frame["bic"].idxmin() == result.best_index_


def test_weighted_rows_count_as_repeats():
    X = mixture(4, "spherical", n_per=60)
    w = np.random.default_rng(0).integers(1, 3, len(X))
    repeated = np.repeat(X, w, axis=0)
    params = dict(n_components=[2, 3], covariance_types="spherical", dtype="float64", tol=1e-6, max_iter=500, init_params="random_from_data")
    weighted = bigem.select(X, sample_weight=w, random_state=0, **params)
    ks = [2, 3]
    for row, est in zip(weighted.table, weighted.estimators_):
        ll = float(np.sum(w * est.score_samples(X)))
        p = row["n_parameters"]
        assert row["log_likelihood"] == pytest.approx(ll, rel=1e-12)
        assert row["bic"] == pytest.approx(-2 * ll + p * math.log(len(repeated)), rel=1e-12)
    assert [r["n_components"] for r in weighted.table] == ks


def spiked(seed: int = 0) -> np.ndarray:
    """400 rows of N(0, 1) and 60 copies of the value 4.0 (a rounded, repeated reading)."""
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0, 1, 400), np.full(60, 4.0)][:, None]


def test_degenerate_candidates_are_flagged_dropped_and_named():
    X = spiked()
    with pytest.warns(DegenerateFitWarning, match=r"excluded degenerate candidates K=3 full, K=4 full") as rec:
        result = bigem.select(X, n_components=range(1, 5), covariance_types="full", random_state=0)
    assert len(rec) == 1 and "keep_degenerate=True" in str(rec[0].message)
    flagged = [r["n_components"] for r in result.table if r["degenerate"]]
    assert flagged == [3, 4] and result.dropped == [(3, "full"), (4, "full")]
    for row, est in zip(result.table, result.estimators_):
        collapsed = degenerate_components(est)
        assert bool(collapsed) == row["degenerate"]
        for k in collapsed:  # the collapsed component sits on the repeated value, variance at the floor
            assert est.means_[k, 0] == pytest.approx(4.0, abs=1e-5)  # float32 rounding of x - centre
            assert est.covariances_[k, 0, 0] <= 2 * est.reg_covar
    # the spike wins on BIC: it would be chosen if allowed
    spike_bic = min(r["bic"] for r in result.table if r["degenerate"])
    assert spike_bic < result.best_["bic"] and not result.best_["degenerate"]
    assert result.best_["n_components"] == 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = bigem.select(X, n_components=range(1, 5), covariance_types="full", random_state=0, keep_degenerate=True)
    assert kept.best_["degenerate"] and kept.best_["bic"] == spike_bic and kept.dropped == []


def test_rounded_but_spread_data_is_not_degenerate():
    X = np.round(np.random.default_rng(0).normal(0, 1, (2000, 2)), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = bigem.select(X, n_components=range(1, 4), covariance_types=("full", "diag"), random_state=0)
    assert not any(r["degenerate"] for r in result.table)
    assert result.best_["n_components"] == 1


def test_all_degenerate_warns_and_still_chooses():
    X = spiked()
    with pytest.warns(DegenerateFitWarning, match="every candidate is degenerate"):
        # k-means finds the spike at K=3 (mclust's quantile start for one feature does not)
        result = bigem.select(X, n_components=[3], covariance_types="full", random_state=0, init_params="kmeans")
    assert result.best_index_ == 0 and result.table[0]["degenerate"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_components=[]), "n_components is empty"),
        (dict(n_components=[0, 2]), "integers >= 1"),
        (dict(n_components="3"), "integers >= 1"),
        (dict(covariance_types=("full", "banana")), "unknown covariance type 'banana'"),
        (dict(criterion="bcc"), "criterion must be one of"),
        (dict(keep_degenerate="yes"), "keep_degenerate"),
        (dict(n_init=0), "n_init"),
        (dict(covariance_type="full"), "candidate list"),
        (dict(colour="red"), "colour"),
    ],
)
def test_bad_arguments_fail_before_fitting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bigem.select(np.zeros((10, 2)), **kwargs)


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_more_components_than_rows_is_a_clear_error_before_any_fit(family):
    """It came at K = 6, after the fits of K = 1 to 5, which were lost."""
    X = np.random.default_rng(0).normal(size=(5, 2))
    X = X if family == "gaussian" else (X > 0).astype(float)
    fits = []
    with pytest.raises(ValueError, match=r"^Expected n_samples >= n_components for every candidate, but n_components "
                                         r"goes up to 8 and X has 5 rows; pass n_components up to 5 \(the fits would "
                                         r"stop at K = 6, after the smaller ones\)$"):
        bigem.select(X, n_components=[2, 8], family=family, callback=fits.append)
    assert fits == []


def test_icl_and_aic_criteria_choose_their_minimum():
    X = mixture(5, "diag")
    for criterion in ("aic", "icl"):
        result = bigem.select(X, n_components=range(2, 4), covariance_types="diag", criterion=criterion, random_state=0)
        values = [r[criterion] for r in result.table]
        assert result.best_index_ == int(np.argmin(values))


def test_latent_class_criteria_are_in_the_table_and_choose_their_minimum():
    """caic, sabic and the relative entropy, as the fitted estimator computes them; a
    categorical family's select by sabic or caic picks its row of least value."""
    rng = np.random.default_rng(3)
    z = rng.integers(0, 3, 600)
    X = np.stack([np.where(rng.random(600) < 0.8, z, rng.integers(0, 3, 600)) for _ in range(5)], 1)
    for criterion in ("caic", "sabic"):
        result = bigem.select(X, n_components=range(1, 5), family="categorical", criterion=criterion, random_state=0)
        values = [r[criterion] for r in result.table]
        assert result.best_index_ == int(np.argmin(values)) and result.best_["n_components"] == 3
        header = result.format_table().splitlines()[0]
        assert f" {criterion.upper()} " in header and "rel.ent" in header  # the column chosen by is shown
        for row, est in zip(result.table, result.estimators_):
            assert row["caic"] == pytest.approx(est.caic(X), rel=1e-12)
            assert row["sabic"] == pytest.approx(est.sabic(X), rel=1e-12)
            if row["n_components"] == 1:
                assert math.isnan(row["relative_entropy"])
            else:
                assert row["relative_entropy"] == pytest.approx(est.relative_entropy(X), rel=1e-12)
                assert 0.0 < row["relative_entropy"] <= 1.0
        heads = result.summary().splitlines()  # a family without covariance types: named by its class
        assert "CategoricalMixture,3" in heads[1] and "None" not in heads[1] and "mclust" not in heads[0]


def test_the_command_line_offers_every_criterion():
    """The parser spells the criteria out (it must not import the estimators)."""
    from bigem.cli.main import build_parser
    from bigem.estimators.selection import CRITERIA

    parser = build_parser()
    select = next(a for a in parser._subparsers._group_actions[0].choices["select"]._actions if a.dest == "criterion")
    assert tuple(select.choices) == CRITERIA


def test_format_table_marks_the_best():
    result = bigem.select(mixture(0, "spherical"), n_components=[2, 3], covariance_types="spherical", random_state=0)
    lines = result.format_table().splitlines()
    assert len(lines) == 3 and lines[2].startswith("*") and " 3 spherical" in lines[2]


def test_a_npy_file_selects_as_its_array(tmp_path):
    X = mixture(6, "tied", n_per=100)
    np.save(tmp_path / "x.npy", X)
    params = dict(n_components=[2, 3], covariance_types=("tied", "full"), random_state=0, dtype="float64")
    from_file, from_array = bigem.select(str(tmp_path / "x.npy"), **params), bigem.select(X, **params)
    for a, b in zip(from_file.table, from_array.table):
        assert a["bic"] == pytest.approx(b["bic"], rel=1e-12) and a["icl"] == pytest.approx(b["icl"], rel=1e-12)
    assert from_file.best_index_ == from_array.best_index_


def test_a_csv_file_with_columns_selects_as_its_array(tmp_path):
    X = mixture(7, "diag", n_per=100)
    path = tmp_path / "x.csv"
    np.savetxt(path, np.c_[np.arange(len(X)), X], delimiter=",", header="id,u,v", comments="", fmt="%.17g")
    params = dict(n_components=[2, 3], covariance_types="diag", random_state=0, dtype="float64")
    from_file = bigem.select(str(path), columns=["u", "v"], **params)
    from_array = bigem.select(X, **params)
    for a, b in zip(from_file.table, from_array.table):
        assert a["bic"] == pytest.approx(b["bic"], rel=1e-12) and a["n_iter"] == b["n_iter"]
    assert list(from_file.best_estimator_.feature_names_in_) == ["u", "v"]


def test_weights_that_look_like_probabilities_are_warned_about_and_counts_are_not():
    """Frequency weights: BIC's n is their sum. Weights of 1/300 over 300 rows made the
    penalty vanish and select chose K=6 for two clusters, silently."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (150, 2)), rng.normal(5, 1, (150, 2))]
    kw = dict(n_components=range(1, 4), covariance_types="full", random_state=0)
    with pytest.warns(SampleWeightWarning, match=r"sums to 1 over 300 rows.*reads sample weights as frequencies"):
        bigem.select(X, sample_weight=np.full(300, 1 / 300), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bigem.select(X, sample_weight=np.full(300, 3.0), **kw).best_["n_components"] == 2
        rescaled = bigem.select(X, sample_weight=np.full(300, 1 / 300) * 300, **kw)
    assert rescaled.best_["n_components"] == 2


def test_under_mclusts_stopping_a_singular_candidate_is_a_missing_bic_as_in_mclust():
    """``mclustBIC(iris[iris$Species == "setosa", 1:4], G = 1:3, modelNames = c("VVV",
    "EEE", "EII"))`` (mclust 6.0.0) prints NA for VVV at 2 and 3 components (a covariance
    turns singular) and, for the others, BICs that are minus bigem's. Re-seeding, such a
    candidate ran all its 1000 iterations (MclustDA on iris took over 25 minutes); under
    mclust's stopping rule it now ends where mclust's EM does, its row NaN and its
    estimator None, never chosen."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    result = bigem.select(X[y == 0], n_components=range(1, 4), covariance_types=["VVV", "EEE", "EII"],
                          stopping="mclust", reg_covar=0, tol=1e-5, max_iter=1000, dtype="float64")
    mclust = {("VVV", 1): 35.06482, ("VVV", 2): None, ("VVV", 3): None, ("EEE", 1): 35.064822,
              ("EEE", 2): 35.719101, ("EEE", 3): 19.594981, ("EII", 1): -71.085362, ("EII", 2): -19.779211,
              ("EII", 3): -4.368506}
    for row, est in zip(result.table, result.estimators_):
        want = mclust[row["covariance_type"], row["n_components"]]
        if want is None:
            assert est is None and np.isnan(row["bic"]) and np.isnan(row["log_likelihood"])
        else:
            assert est is not None and row["bic"] == pytest.approx(-want, abs=1e-5)
    assert (result.best_["covariance_type"], result.best_["n_components"]) == ("EEE", 2)
    assert result.format_table().count("singular (mclust's missing BIC)") == 2
    assert "nan" not in result.summary()


def test_a_candidate_that_fails_under_the_default_rule_is_a_missing_row_not_the_end(monkeypatch):
    """mclust's EuroUnemployment: EVE at K = 5 from the hierarchical start failed its first
    M-step in float32 (a cluster of 2 rows in 3 features), and that ended the whole
    select(X, covariance_types="mclust"), where Mclust(X) shows NA there and goes on."""
    from bigem.errors import NumericalError

    X = mixture(0, "full")
    fit = bigem.GaussianMixture.fit

    def failing(self, *args, **kwargs):
        if self.n_components == 2 and self.covariance_type == "tied":
            raise NumericalError("Fitting the mixture model failed because some components have ill-defined "
                                 "empirical covariance (for instance caused by singleton or collapsed samples). Try")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(bigem.GaussianMixture, "fit", failing)
    with pytest.warns(DegenerateFitWarning, match=r"candidates K=2 tied failed \(Fitting the mixture model failed "
                                                  r"because .*\); their rows are missing"):
        result = bigem.select(X, n_components=range(1, 4), covariance_types=["full", "tied"], random_state=0)
    rows = {(r["covariance_type"], r["n_components"]): (r, est) for r, est in zip(result.table, result.estimators_)}
    row, est = rows["tied", 2]
    assert est is None and math.isnan(row["bic"])
    assert all(e is not None for (ct, k), (_, e) in rows.items() if (ct, k) != ("tied", 2))
    assert not (result.best_["covariance_type"] == "tied" and result.best_["n_components"] == 2)


@pytest.mark.filterwarnings("ignore")  # 8 rows: degenerate and failing candidates warn
def test_the_default_range_of_k_stops_at_the_rows_as_mclusts_g():
    """It raised 'n_components goes up to 9 and X has 8 rows'; mclust's Mclust(X) fits
    G = 1..8 there. A range the caller gives is still refused beyond the rows."""
    X = mixture(0, "full")[:8]
    result = bigem.select(X, covariance_types=["spherical", "diag"], random_state=0)
    assert max(r["n_components"] for r in result.table) == 8
    from bigem.errors import DataError

    with pytest.raises(DataError, match="n_components goes up to 9 and X has 8 rows"):
        bigem.select(X, n_components=range(1, 10), covariance_types=["diag"])


def test_mclusts_euro_unemployment_gives_a_table_with_missing_cells_not_an_error():
    """mclust 6.0.0's EuroUnemployment (31 rows, 3 features). With the defaults (float32),
    EVE at K = 5 fails from the hierarchical start, which ended the whole select; and the
    split start of VVE at K = 4 reached a scatter that float32 rounded indefinite, which
    the orientation step returned as a zero covariance: reg_covar made it a valid spike,
    and the log-likelihood fell by 0.6 a row ("a bug in bigem"). Now the first is a
    missing row (mclust's NA) and the second a re-seeded component."""
    path = os.path.join(os.path.dirname(__file__), "..", "reference", "data", "mclust_euro_unemployment.csv")
    X = np.loadtxt(path, delimiter=",", skiprows=1)
    from bigem.errors import LikelihoodDecreaseWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bigem.select(X, covariance_types="mclust")
    said = [str(w.message) for w in caught if issubclass(w.category, DegenerateFitWarning)]
    assert any(m.startswith("candidates K=5 EVE") and " failed (" in m for m in said)
    assert not [w for w in caught if issubclass(w.category, LikelihoodDecreaseWarning)]
    eve = {r["n_components"]: r for r in result.table if r["covariance_type"] == "EVE"}
    assert math.isnan(eve[5]["bic"]) and math.isfinite(eve[4]["bic"])
    assert math.isfinite(result.best_["bic"])


def test_unlabeled_weight_is_refused_before_any_fit():
    """select() takes no y: each candidate warned that its fit got none, advising to pass it."""
    from bigem._core.errors import ParameterError

    X = np.random.default_rng(0).integers(0, 3, (60, 4))
    fits = []
    with pytest.raises(ParameterError, match=r"^unlabeled_weight weighs the unlabelled rows of a fit given labels "
                                             r"\(y\), which select\(\) does not take"):
        bigem.select(X, n_components=[1, 2], family="categorical", unlabeled_weight=0.5, callback=fits.append)
    assert fits == []
    assert bigem.select(X, n_components=[1, 2], family="categorical", unlabeled_weight=None).best_ is not None


def test_a_mixed_model_with_at_most_one_gaussian_column_has_one_covariance_type():
    """'full' of a Gaussian block of one column (or none) is 'diag' again: the table held
    every K twice, equal, and the summary ranked the twins first and second."""
    import pandas as pd

    rng = np.random.default_rng(5)
    df = pd.DataFrame({"c": np.array(list("abc"))[rng.integers(0, 3, 300)], "b": rng.integers(0, 2, 300),
                       "x": rng.normal(size=300), "y": rng.normal(size=300)})
    kw = dict(n_components=[1, 2], family="mixed", families={"b": "bernoulli"}, random_state=0)
    for columns, types in ((["c", "b"], ["diag"]), (["c", "b", "x"], ["diag"]), (["b", "x", "y"], ["diag", "full"])):
        result = bigem.select(df[columns], **kw)
        assert sorted({r["covariance_type"] for r in result.table}) == types, columns
        assert "mclust" not in result.summary()
    asked = bigem.select(df[["b", "x"]], covariance_types=["diag", "full"], **kw)  # asked for: both, as asked
    assert [r["covariance_type"] for r in asked.table] == ["diag", "diag", "full", "full"]


def test_one_feature_fits_full_and_tied_alone_by_default():
    """For one feature 'diag' and 'spherical' are 'full': the table held each K three times,
    equal, and the summary ranked the twins."""
    X = np.r_[np.random.default_rng(0).normal(0, 1, (150, 1)), np.random.default_rng(1).normal(5, 2, (150, 1))]
    result = bigem.select(X, n_components=[1, 2], random_state=0)
    assert [(r["covariance_type"], r["n_components"]) for r in result.table] == [("full", 1), ("full", 2),
                                                                                ("tied", 1), ("tied", 2)]
    asked = bigem.select(X, n_components=[2], covariance_types=["full", "diag"], random_state=0)
    assert [r["covariance_type"] for r in asked.table] == ["full", "diag"]  # asked for: as asked
    assert asked.table[0]["bic"] == pytest.approx(asked.table[1]["bic"], rel=1e-9)
