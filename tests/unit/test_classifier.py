"""MixtureClassifier (mclust's MclustDA and EDDA) against independent truth: scikit-learn's
QDA and LDA, known generating models, brute-force posteriors and cross-validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.model_selection import LeaveOneOut, cross_val_predict, cross_val_score

import bigem
from bigem import MixtureClassifier
from bigem.errors import DataError, ModelFileError, NotFittedError, NumericalError, ParameterError
from bigem.models.eigen import MODELS


def _three_classes(rng, n=(200, 150, 100)):
    X = np.r_[rng.normal(size=(n[0], 3)) @ [[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]],
              rng.normal(size=(n[1], 3)) @ np.diag([2, 1, 0.5]) + 1,
              rng.normal(size=(n[2], 3)) @ [[1, 0, 0], [-0.8, 0.6, 0], [0, 0, 2]] + [0, 2, 0]]
    y = np.repeat(np.array(["a", "b", "c"]), n)
    return X, y


def test_edda_vvv_is_quadratic_discriminant_analysis():
    X, y = _three_classes(np.random.default_rng(0))
    clf = MixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0, dtype="float64").fit(X, y)
    qda = QuadraticDiscriminantAnalysis(reg_param=0, store_covariance=True).fit(X, y)
    gm = clf.estimators_[0]
    for c, label in enumerate(clf.classes_):
        rows = X[y == label]
        mle = np.cov(rows.T, bias=True)
        np.testing.assert_allclose(gm.means_[c], qda.means_[c], atol=1e-12)
        np.testing.assert_allclose(gm.covariances_[c], mle, atol=1e-10)
        # scikit-learn's QDA divides the scatter by n (1.6 on) or n - 1 (before): either way the MLE up to that
        ratio = np.asarray(qda.covariance_[c]) / mle
        assert np.allclose(ratio, 1.0) or np.allclose(ratio, len(rows) / (len(rows) - 1))
    # posteriors by Bayes' rule with the MLE covariances and the training proportions, brute force
    log_joint = np.column_stack([multivariate_normal(gm.means_[c], np.cov(X[y == lab].T, bias=True)).logpdf(X)
                                 + math.log(np.mean(y == lab)) for c, lab in enumerate(clf.classes_)])
    brute = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), brute, atol=1e-6)
    if np.allclose(np.asarray(qda.covariance_[0]), np.cov(X[y == "a"].T, bias=True)):
        np.testing.assert_allclose(clf.predict_proba(X), qda.predict_proba(X), atol=1e-6)
    assert (clf.predict(X) == clf.classes_[brute.argmax(1)]).all()
    assert clf.covariance_types_ == ["VVV"] * 3 and clf.n_components_ == [1, 1, 1]
    np.testing.assert_allclose(clf.class_proportions_, [200 / 450, 150 / 450, 100 / 450])


@pytest.mark.parametrize("solver", ["lsqr", "eigen"])
def test_edda_eee_is_linear_discriminant_analysis(solver):
    X, y = _three_classes(np.random.default_rng(1))
    clf = MixtureClassifier("EDDA", covariance_types="EEE", reg_covar=0, dtype="float64").fit(X, y)
    lda = LinearDiscriminantAnalysis(solver=solver, store_covariance=True).fit(X, y)
    pooled = sum(((X[y == c] - X[y == c].mean(0)).T @ (X[y == c] - X[y == c].mean(0))) for c in "abc") / len(X)
    np.testing.assert_allclose(clf.estimators_[0].covariances_, pooled, atol=1e-10)
    np.testing.assert_allclose(lda.covariance_, pooled, atol=1e-10)  # LDA's pooled covariance: the same definition
    np.testing.assert_allclose(clf.predict_proba(X), lda.predict_proba(X), atol=1e-6)
    assert clf.score(X, y) == pytest.approx(lda.score(X, y))


def test_edda_bic_is_mclusts_and_picks_the_generating_structure():
    rng = np.random.default_rng(2)
    shared = np.array([[2.0, 0.9, 0.3], [0.9, 1.0, -0.4], [0.3, -0.4, 0.8]])  # one full covariance: EEE
    means = np.array([[0, 0, 0], [2, 1, 0], [0, 2, 2]])
    n = [600, 500, 400]
    X = np.concatenate([rng.multivariate_normal(m, shared, size=k) for m, k in zip(means, n)])
    y = np.repeat([0, 1, 2], n)
    clf = MixtureClassifier("EDDA", reg_covar=0, dtype="float64").fit(X, y)
    assert clf.covariance_types_ == ["EEE"] * 3
    row = next(r for r in clf.table_ if r["chosen"])
    # mclust's EDDA BIC: the mixture log-likelihood with the fitted proportions, 3 means and EEE's 6 covariance terms
    gm = clf.estimators_[0]
    dens = np.column_stack([multivariate_normal(gm.means_[c], gm.covariances_).logpdf(X) for c in range(3)])
    loglik = logsumexp(dens + np.log(np.asarray(n) / sum(n)), axis=1).sum()
    p = 3 * 3 + MODELS["EEE"].n_parameters(3, 3)
    assert row["log_likelihood"] == pytest.approx(loglik, rel=1e-9)
    assert row["n_parameters"] == p == clf.n_parameters_
    assert clf.bic_ == pytest.approx(-2 * loglik + p * math.log(len(X)), rel=1e-9)
    assert len(clf.table_) == 14 and sum(r["chosen"] for r in clf.table_) == 1

    # classes with their own diagonal covariances: VVI
    scales = np.array([[1.0, 3.0, 0.5], [2.5, 0.6, 1.0], [0.7, 0.7, 2.0]])
    X = np.concatenate([rng.normal(size=(k, 3)) * s + m for s, m, k in zip(scales, means * 3, n)])
    assert MixtureClassifier("EDDA", reg_covar=0).fit(X, y).covariance_types_ == ["VVI"] * 3


def test_edda_reproduces_mclusts_iris_summary():
    """mclust's documented example (and mclust 6.0.0's output): MclustDA(iris[, 1:4],
    iris$Species, modelType = "EDDA") prints VEV for every class, log-likelihood -187.7097,
    df 36, BIC -555.8024, training classification error 0.02 and Brier score 0.0127."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    X, y = iris.data, iris.target_names[iris.target]
    clf = MixtureClassifier("EDDA", reg_covar=0, dtype="float64").fit(X, y)
    assert clf.covariance_types_ == ["VEV"] * 3
    assert round(clf.log_likelihood_, 4) == -187.7097 and clf.n_parameters_ == 36
    assert round(clf.bic_, 4) == 555.8024  # mclust prints minus ours
    assert round(1 - clf.score(X, y), 4) == 0.02
    proba = clf.predict_proba(X)
    truth = (y[:, None] == clf.classes_[None, :]).astype(float)
    assert round(np.sum((truth - proba) ** 2) / (2 * len(y)), 4) == 0.0127
    text = clf.summary()
    assert "-187.7097" in text and "VEV" in text and "555.8024" in text
    trained = clf.summary(X, y)  # mclust's summary keeps the training data; ours is given it
    assert trained.startswith(text) and "Classification error = 0.0200" in trained
    assert "Brier score          = 0.0127" in trained
    # mclust's training confusion matrix: a row per class, a column per prediction
    assert "Training confusion matrix:\n" in trained and "\nClass " in trained
    assert "  versicolor          0         47          3\n  virginica           0          0         50" in trained
    # mclust 6.0.0's BIC of every model (its sign), to its printed digits; VVE apart: our M-step reaches a
    # higher complete-data log-likelihood than its mstepVVE (-56.66405), so that row's mixture BIC moves
    mclust = dict(EII=-894.5342, VII=-860.1564, EEI=-809.2049, VEI=-771.8635, EVI=-796.1814, VVI=-738.9808,
                  EEE=-623.5263, VEE=-597.0446, EVE=-611.3988, VVE=-581.0077, EEV=-600.6481, VEV=-555.8024,
                  EVV=-619.3350, VVV=-576.2884)
    ours = {r["covariance_type"]: -r["bic"] for r in clf.table_}
    assert {t: round(v, 4) for t, v in ours.items() if t != "VVE"} == {t: v for t, v in mclust.items() if t != "VVE"}
    vve = MixtureClassifier("EDDA", covariance_types="VVE", reg_covar=0, dtype="float64").fit(X, y).estimators_[0]
    complete = sum(multivariate_normal(vve.means_[c], vve.covariances_[c]).logpdf(X[y == label]).sum()
                   for c, label in enumerate(clf.classes_))
    assert complete > -56.66405


def test_mclustda_reproduces_mclusts_iris_choice():
    """mclust 6.0.0: MclustDA(iris[, 1:4], iris$Species, G = 1:2, modelNames = c("EII", "EEE"))
    chooses EEE with 2 components for setosa and one Gaussian for the others, log-likelihood
    -172.813517, df 47, BIC -581.126892, training error 0.02, Brier score 0.0116."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    X, y = iris.data, iris.target_names[iris.target]
    clf = MixtureClassifier(n_components=[1, 2], covariance_types=["EII", "EEE"], dtype="float64").fit(X, y)
    assert clf.covariance_types_ == ["EEE"] * 3 and clf.n_components_ == [2, 1, 1]
    assert clf.log_likelihood_ == pytest.approx(-172.813517, abs=1e-3)  # EM stops a hair apart (tol 1e-5)
    assert clf.n_parameters_ == 47 and clf.bic_ == pytest.approx(581.126892, abs=2e-3)
    assert round(1 - clf.score(X, y), 4) == 0.02
    truth = (y[:, None] == clf.classes_[None, :]).astype(float)
    assert round(np.sum((truth - clf.predict_proba(X)) ** 2) / (2 * len(y)), 4) == 0.0116
    # mclust's summary names a one-component class's model XXX (its ellipsoidal models coincide there)
    rows = [line.split() for line in clf.summary().splitlines()[-3:]]
    assert [r[-2:] for r in rows] == [["EEE", "2"], ["XXX", "1"], ["XXX", "1"]]


def test_mclustda_starts_each_k_from_the_class_tree_alone_as_mclust_does():
    """mclust 6.0.0, ``mclustBIC(iris[iris$Species == "setosa", 1:4], G = 1:5, modelNames =
    c("EEE", "EEV"))``: minus the BICs below, and MclustDA chooses EEE,2 for setosa.
    select's split starts (the K - 1 fit with a component split) reached EEV,5 at a
    log-likelihood of 141.1 against mclust's 82.9 and chose it."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    X, y = iris.data, iris.target_names[iris.target]
    clf = MixtureClassifier(n_components=range(1, 6), covariance_types=["EEE", "EEV"], dtype="float64").fit(X, y)
    mclust = {"EEE": [35.06482243503094, 35.71910098828741, 19.59498050879951, 3.36212993467070, -5.12059910160394],
              "EEV": [35.06482243503094, 22.77484101309091, 7.31192357321777, -16.30308567658744,
                      -61.07108172769773]}
    table = {(r["covariance_type"], r["n_components"]): r["bic"] for r in clf.table_ if r["class"] == "setosa"}
    for model, bics in mclust.items():
        for k, bic in enumerate(bics, 1):
            assert table[model, k] == pytest.approx(-bic, abs=1e-3), (model, k)
    assert clf.covariance_types_[0] == "EEE" and clf.n_components_[0] == 2


def _two_clusters_per_class(rng, n):
    """Interleaved along x: class 0 clusters at (-4, 0) and (4, 0), class 1 at (0, 0) and
    (8, 0), spheres of sd 0.8: one Gaussian per class cannot tell them apart."""
    centres = {0: [(-4, 0), (4, 0)], 1: [(0, 0), (8, 0)]}
    X, y = [], []
    for c, pair in centres.items():
        for m in pair:
            X.append(rng.normal(size=(n, 2)) * 0.8 + m)
            y += [c] * n
    return np.concatenate(X), np.asarray(y)


def test_mclustda_recovers_two_clusters_per_class_and_beats_edda():
    rng = np.random.default_rng(3)
    X, y = _two_clusters_per_class(rng, 150)
    Xt, yt = _two_clusters_per_class(rng, 150)
    da = MixtureClassifier(n_components=[1, 2, 3], covariance_types=["EII", "VVV"], random_state=0).fit(X, y)
    assert da.n_components_ == [2, 2]
    for c, truth in enumerate([[(-4, 0), (4, 0)], [(0, 0), (8, 0)]]):
        means = da.estimators_[c].means_
        found = means[np.lexsort(means.T[::-1])]
        np.testing.assert_allclose(found, sorted(truth), atol=0.25)
    # mclust's df: per class (G - 1) + G d + nVarParams
    df = sum((k - 1) + 2 * k + MODELS[t].n_parameters(k, 2) for k, t in zip(da.n_components_, da.covariance_types_))
    assert da.n_parameters_ == df
    # its log-likelihood is the mixture over classes, with the training proportions
    log_dens = np.column_stack([e.score_samples(X) for e in da.estimators_])
    assert da.log_likelihood_ == pytest.approx(logsumexp(log_dens + np.log(0.5), axis=1).sum(), rel=1e-9)
    edda = MixtureClassifier("EDDA").fit(X, y)
    assert da.score(Xt, yt) > 0.97 > edda.score(Xt, yt) + 0.15
    assert da.bic_ < edda.bic_


def test_a_candidate_that_fails_numerically_is_left_out_as_mclust_leaves_its_bic_missing(monkeypatch):
    from bigem.estimators import classifier

    real = classifier.select

    def failing(rows, ks, types, **kw):  # a singular M-step at K = 2 (mclust: BIC NA)
        if 2 in ks:
            raise NumericalError("covariance of component 1 is not positive definite")
        return real(rows, ks, types, **kw)

    monkeypatch.setattr(classifier, "select", failing)
    X, y = _two_clusters_per_class(np.random.default_rng(17), 40)
    clf = MixtureClassifier(n_components=[1, 2, 3], covariance_types="EII", random_state=0).fit(X, y)
    assert sorted({r["n_components"] for r in clf.table_}) == [1, 3]
    assert clf.n_components_ == [3, 3]  # K = 3 holds the two clusters too
    monkeypatch.setattr(classifier, "select", lambda *a, **k: (_ for _ in ()).throw(NumericalError("singular")))
    with pytest.raises(DataError, match="class 0: no candidate model could be fitted"):
        MixtureClassifier(n_components=[1, 2], covariance_types="EII").fit(X, y)


def test_class_priors_reweight_the_posteriors_by_bayes_rule():
    X, y = _three_classes(np.random.default_rng(4))
    fitted = MixtureClassifier("EDDA", covariance_types="VVV").fit(X, y)
    tilted = MixtureClassifier("EDDA", covariance_types="VVV", class_priors=[1, 1, 2]).fit(X, y)
    expected = fitted.predict_proba(X) * (np.array([0.25, 0.25, 0.5]) / fitted.class_proportions_)
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(tilted.predict_proba(X), expected, atol=1e-10)
    np.testing.assert_allclose(tilted.class_priors_, [0.25, 0.25, 0.5])


def test_leave_one_out_cv_is_qdas():
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(size=(25, 2)), rng.normal(size=(20, 2)) * [1.5, 0.7] + [1.2, 0.8]]
    y = np.r_[np.zeros(25, int), np.ones(20, int)]
    clf = MixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0, dtype="float64").fit(X, y)
    out = clf.cv(X, y, n_folds=len(X))
    # scikit-learn's QDA on the same folds, with mclust's rule: the full data's proportions as priors
    proportions = np.bincount(y) / len(y)
    qda = QuadraticDiscriminantAnalysis(priors=proportions)
    proba = cross_val_predict(qda, X, y, cv=LeaveOneOut(), method="predict_proba")
    scale = np.array([[len(X[y == c]) - 1 for c in (0, 1)]]) / np.array([[len(X[y == c]) - 2 for c in (0, 1)]])
    if not np.allclose(np.cov(X[y == 0].T, bias=True),
                       QuadraticDiscriminantAnalysis(store_covariance=True).fit(X, y).covariance_[0]):
        pytest.skip(f"this scikit-learn's QDA uses the unbiased covariance ({scale}); the MLE comparison needs 1.6+")
    np.testing.assert_allclose(out["proba"], proba, atol=1e-6)
    assert out["error"] == pytest.approx(np.mean(proba.argmax(1) != y))
    truth = np.eye(2)[y]
    assert out["brier"] == pytest.approx(np.sum((truth - proba) ** 2) / (2 * len(y)))
    assert (out["classification"] == proba.argmax(1)).all()


def test_cv_folds_are_balanced_and_refit_the_chosen_models():
    X, y = _three_classes(np.random.default_rng(6), n=(60, 50, 40))
    clf = MixtureClassifier(n_components=[1, 2], covariance_types=["EII", "VVI"], random_state=0).fit(X, y)
    out = clf.cv(X, y, n_folds=5)
    assert 0 <= out["error"] < 0.5 and out["se"] > 0 and out["proba"].shape == (150, 3)
    np.testing.assert_allclose(out["proba"].sum(1), 1.0)
    assert out["error"] == pytest.approx(np.mean(out["classification"] != y))


def test_cv_standard_errors_weigh_the_folds_by_size_as_cvmclustda():
    """mclust's se.ce and se.brier: sqrt(sum_f n_f (m_f - m)^2 / (n (F - 1) / F) / F). The
    unweighted standard deviation of the fold errors differed where folds differ in size
    (151 rows in 4 folds), and the Brier score had no standard error."""
    from bigem.estimators.classifier import _balanced_folds

    X, y = _three_classes(np.random.default_rng(6), n=(60, 50, 41))
    clf = MixtureClassifier("EDDA", covariance_types=["VVV"], random_state=0).fit(X, y)
    out = clf.cv(X, y, n_folds=4)
    codes = np.searchsorted(clf.classes_, y)
    folds = _balanced_folds(codes, 4, np.random.default_rng(0))
    sizes = np.array([len(f) for f in folds])
    assert len(set(sizes)) > 1 and sizes.sum() == 151
    wrong, truth = out["classification"] != y, np.eye(3)[codes]
    for metric, key in (([wrong[f].mean() for f in folds], "se"),
                        ([np.sum((truth[f] - out["proba"][f]) ** 2) / (2 * len(f)) for f in folds], "se_brier")):
        m = np.asarray(metric)
        mean = np.sum(m * sizes) / 151
        assert out["error" if key == "se" else "brier"] == pytest.approx(mean, rel=1e-12)
        assert out[key] == pytest.approx(np.sqrt(np.sum((m - mean) ** 2 * sizes) / (151 * 3 / 4) / 4), rel=1e-12)


def test_scikit_learn_cross_validation_and_pipelines_take_it():
    X, y = _two_clusters_per_class(np.random.default_rng(7), 40)
    scores = cross_val_score(MixtureClassifier(n_components=[1, 2], covariance_types="EII", random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


def test_dataframe_with_a_label_column_and_a_streamed_file_give_the_same_edda(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = _three_classes(np.random.default_rng(8))
    df = pd.DataFrame(X, columns=["u", "v", "w"]).assign(kind=y)
    path = tmp_path / "labelled.parquet"
    df.to_parquet(path)
    in_memory = MixtureClassifier("EDDA", covariance_types=["EEE", "VVV", "VVI"], dtype="float64").fit(df, "kind")
    streamed = MixtureClassifier("EDDA", covariance_types=["EEE", "VVV", "VVI"], dtype="float64",
                                 chunk_size=64).fit(path, "kind")
    assert list(streamed.classes_) == ["a", "b", "c"] and list(streamed.feature_names_in_) == ["u", "v", "w"]
    assert streamed.covariance_types_ == in_memory.covariance_types_
    assert streamed.bic_ == pytest.approx(in_memory.bic_, rel=1e-10)
    np.testing.assert_allclose(streamed.predict_proba(path), in_memory.predict_proba(df[["u", "v", "w"]]), atol=1e-10)
    assert streamed.score(df[["u", "v", "w"]], y) == in_memory.score(df[["u", "v", "w"]], y)


def test_mclustda_streams_a_file_with_the_other_classes_weighted_zero(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = _two_clusters_per_class(np.random.default_rng(15), 60)
    df = pd.DataFrame(X, columns=["u", "v"]).assign(kind=np.where(y == 0, "left", "right"))
    path = tmp_path / "labelled.parquet"
    df.to_parquet(path)
    grid = dict(n_components=[1, 2], covariance_types=["EII", "VVV"], random_state=0, dtype="float64")
    in_memory = MixtureClassifier(**grid).fit(df, "kind")
    streamed = MixtureClassifier(**grid, chunk_size=50).fit(path, "kind")
    assert streamed.n_components_ == in_memory.n_components_ == [2, 2]
    assert streamed.covariance_types_ == in_memory.covariance_types_
    assert streamed.bic_ == pytest.approx(in_memory.bic_, rel=1e-6)
    np.testing.assert_allclose(streamed.predict_proba(path), in_memory.predict_proba(df[["u", "v"]]), atol=1e-5)


def test_a_file_with_unlabelled_rows_is_refused(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = _three_classes(np.random.default_rng(16), n=(20, 20, 20))
    labels = y.astype(object)
    labels[7] = None
    pd.DataFrame(X, columns=["u", "v", "w"]).assign(kind=labels).to_parquet(tmp_path / "gaps.parquet")
    with pytest.raises(DataError, match=r"label column 'kind' leaves 1 row\(s\) unlabelled .* row 7"):
        MixtureClassifier("EDDA").fit(tmp_path / "gaps.parquet", "kind")


def test_minus_one_is_a_class_in_memory_and_an_unlabelled_row_in_a_file_which_says_so(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = _three_classes(np.random.default_rng(16), n=(20, 20, 20))
    y = np.unique(y, return_inverse=True)[1] - 1
    assert MixtureClassifier("EDDA").fit(X, y).classes_.tolist() == [-1, 0, 1]  # scikit-learn's rule
    pd.DataFrame(X, columns=["u", "v", "w"]).assign(kind=y).to_parquet(tmp_path / "m1.parquet")
    with pytest.raises(DataError, match=r"leaves 20 row\(s\) unlabelled .*In a file's label column -1 marks an "
                       r"unlabelled row, as in semi-supervised fitting \(in memory it is a class\): recode"):
        MixtureClassifier("EDDA").fit(tmp_path / "m1.parquet", "kind")


def test_score_weighs_rows_by_sample_weight_as_scikit_learn():
    from sklearn.metrics import accuracy_score

    X, y = _three_classes(np.random.default_rng(9), n=(40, 40, 40))
    clf = MixtureClassifier("EDDA", covariance_types="EII").fit(X, y)
    w = np.random.default_rng(1).random(len(y))
    predicted = clf.predict(X)
    assert (predicted != y).any() and (predicted == y).any()
    assert clf.score(X, y, sample_weight=w) == pytest.approx(accuracy_score(y, predicted, sample_weight=w), rel=1e-14)
    assert clf.score(X, y) == pytest.approx(accuracy_score(y, predicted), rel=1e-14)
    # a column of labels, as fit takes it (it broadcast against the rows: an n x n comparison)
    assert clf.score(X, y[:, None]) == clf.score(X, y)
    assert clf.score(X, y[:, None], sample_weight=w) == clf.score(X, y, sample_weight=w)
    with pytest.raises(DataError, match="sample_weight has shape"):
        clf.score(X, y, sample_weight=w[:5])
    with pytest.raises(DataError, match="non-negative"):
        clf.score(X, y, sample_weight=-w)


@pytest.mark.parametrize("model", ["EDDA", "MclustDA"])
def test_save_and_load_keep_every_class_density(tmp_path, model):
    X, y = _three_classes(np.random.default_rng(9), n=(60, 50, 40))
    grid = {} if model == "EDDA" else {"n_components": [1, 2]}
    clf = MixtureClassifier(model, covariance_types=["VVI", "EEE"], random_state=0, **grid).fit(X, y)
    clf.save(tmp_path / "clf.bigem")
    back = bigem.load(tmp_path / "clf.bigem")
    assert isinstance(back, MixtureClassifier) and back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert list(back.classes_) == list(clf.classes_) and back.covariance_types_ == clf.covariance_types_
    assert back.n_components_ == clf.n_components_ and back.bic_ == clf.bic_ and back.table_ == clf.table_


def test_a_damaged_classifier_file_is_refused(tmp_path):
    import json

    from bigem.io import read_model_file, write_model_file

    X, y = _three_classes(np.random.default_rng(10), n=(30, 30, 30))
    MixtureClassifier("EDDA", covariance_types="EEE").fit(X, y).save(tmp_path / "clf.bigem")
    tensors, meta = read_model_file(tmp_path / "clf.bigem")
    meta = json.loads(json.dumps(meta))
    meta["fitted"]["classes_"] = ["a", "b"]  # three components, two classes
    meta["fitted"]["class_counts_"] = [30, 30]
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="3 components for 2 classes"):
        bigem.load(tmp_path / "bad.bigem")
    meta.pop("parts")
    write_model_file(tmp_path / "bare.bigem", {k: v for k, v in tensors.items() if not k.startswith("part")}, meta)
    with pytest.raises(ModelFileError, match="has none"):
        bigem.load(tmp_path / "bare.bigem")


# ---------------------------------------------------------------------- bad input
def test_y_of_another_length_is_refused():
    X, y = _three_classes(np.random.default_rng(11), n=(20, 20, 20))
    with pytest.raises(DataError, match="y has 59 labels but X has 60 rows"):
        MixtureClassifier("EDDA").fit(X, y[:-1])


def test_a_class_too_small_for_its_structure_is_named_with_the_fix():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(43, 4))
    y = np.r_[["big"] * 40, ["tiny"] * 3]
    with pytest.raises(DataError, match=r"class 'tiny' has 3 training row\(s\), fewer than the 5 .*'EII'"):
        MixtureClassifier("EDDA", covariance_types="VVV").fit(X, y)
    with pytest.raises(DataError, match=r"class 'tiny' has 3 training row\(s\)"):
        MixtureClassifier(covariance_types=["VVV", "EEV"]).fit(X, y)
    # a grid with models the small class can hold: the others are skipped for it
    clf = MixtureClassifier(n_components=[1, 2], covariance_types=["VVV", "VII"], random_state=0).fit(X, y)
    assert clf.covariance_types_[1] == "VII" and clf.n_components_[1] == 1
    assert not any(r["class"] == "tiny" and r["covariance_type"] == "VVV" for r in clf.table_)
    # EDDA's pooled covariance (EEE) holds a small class
    assert MixtureClassifier("EDDA", covariance_types=["VVV", "EEE"]).fit(X, y).covariance_types_ == ["EEE"] * 2


@pytest.mark.parametrize("params, message", [
    ({"model": "QDA"}, "model"),
    ({"model": "EDDA", "n_components": 3}, "EDDA' fits one Gaussian per class"),
    ({"covariance_types": ["VVV", "XYZ"]}, "unknown covariance type 'XYZ'"),
    ({"n_components": [0, 1]}, "integers >= 1"),
    ({"class_priors": [-1, 2]}, "non-negative"),
])
def test_bad_parameters_are_named(params, message):
    X, y = _three_classes(np.random.default_rng(13), n=(20, 20, 20))
    with pytest.raises(ParameterError, match=message):
        MixtureClassifier(**params).fit(X, y)


def test_other_bad_input():
    X, y = _three_classes(np.random.default_rng(14), n=(20, 20, 20))
    with pytest.raises(DataError, match="single class"):
        MixtureClassifier("EDDA").fit(X, np.zeros(60))
    with pytest.raises(DataError, match="requires y to be passed"):
        MixtureClassifier("EDDA").fit(X, None)
    with pytest.raises(DataError, match="Unknown label type: continuous"):
        MixtureClassifier("EDDA").fit(X, np.linspace(0, 1, 60))
    with pytest.raises(DataError, match="y holds classes the fit did not see"):
        MixtureClassifier("EDDA", covariance_types="EEE").fit(X, y).cv(X, np.r_[y[:-1], ["z"]])
    with pytest.raises(DataError, match="missing labels"):
        MixtureClassifier("EDDA").fit(X, np.r_[np.zeros(59), np.nan])
    with pytest.raises(DataError, match="pass y as that column's name"):
        MixtureClassifier().fit("data.parquet", y)
    with pytest.raises(ParameterError, match=r"class_priors has 2 values but y holds 3 classes \['a', 'b', 'c'\]"):
        MixtureClassifier("EDDA", covariance_types="EEE", class_priors=[0.5, 0.5]).fit(X, y)  # not at predict
    clf = MixtureClassifier("EDDA", covariance_types="EEE").fit(X, y).set_params(class_priors=[0.5, 0.5])
    with pytest.raises(ParameterError, match="class_priors has 2 values but there are 3 classes"):
        clf.predict(X)
    with pytest.raises(DataError, match=r"^Mix of label input types \(string and number\): y holds labels of the "
                       r"types \['int', 'str'\]"):
        MixtureClassifier("EDDA").fit(X, np.array([{"a": "a", "b": 1, "c": "c"}[c] for c in y], dtype=object))
    with pytest.raises(DataError, match=r"^Expected 2D array, got 1D array instead: X has shape \(60,\)"):
        MixtureClassifier().fit(X[:, 0], y)  # the whole X's shape (MclustDA named one class's slice)
    with pytest.raises(NotFittedError, match="not fitted"):
        MixtureClassifier().predict(X)


def test_mclustda_starts_each_class_from_the_tree_mclustbic_builds():
    """MclustDA runs mclustBIC on each class, which starts from mclust.options("hcUse"),
    "SVD": on these 35 versicolor rows (a training split of iris) mclust 6.0.0's table,
    ``mclustBIC(X, G = 1:3, modelNames = c("EEE", "EII"))``, is minus the BICs below
    (EEE,3 chosen). The tree on the raw variables ("VARS", hc()'s own default) gave
    EEE,3 67.653 and another choice on this split."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    versicolor = [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61, 62, 63, 65, 66, 67, 68, 70, 72, 75, 80, 81, 82, 84,
                  85, 86, 87, 89, 90, 91, 92, 93, 95, 96, 97]
    rows = np.r_[np.arange(50), versicolor]
    clf = MixtureClassifier(n_components=range(1, 4), covariance_types=["EEE", "EII"], dtype="float64").fit(
        X[rows], y[rows])
    mclust = {("EEE", 1): 56.143474006391408, ("EEE", 2): 56.136284513854825, ("EEE", 3): 54.684032386940174,
              ("EII", 1): 142.632107308304001, ("EII", 2): 102.740432163601952, ("EII", 3): 94.965805146659676}
    table = {(r["covariance_type"], r["n_components"]): r for r in clf.table_ if r["class"] == 1}
    for cell, bic in mclust.items():
        assert table[cell]["bic"] == pytest.approx(bic, abs=1e-3), cell
    assert table["EEE", 3]["chosen"]


def test_its_data_errors_name_the_classifier_and_what_it_takes():
    """The per-class mixtures' errors offered missing_values='fiml', which the classifier
    has no parameter for, and said GaussianMixture expected the features."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat([0, 1], 30)
    gaps = X.copy()
    gaps[3, 1] = np.nan
    for model in ("EDDA", "MclustDA"):
        with pytest.raises(DataError, match=r"first at row 3, column 1\). Drop or impute these values first: this "
                                            r"estimator does not model missing values; DataFrame.dropna\(\) drops "
                                            r"such rows") as err:
            MixtureClassifier(model).fit(gaps, y)
        assert "fiml" not in str(err.value)
        clf = MixtureClassifier(model).fit(X, y)
        with pytest.raises(DataError, match="this estimator does not model missing values"):
            clf.predict(gaps)
        with pytest.raises(DataError, match=r"first at row 3, column 1\)"):  # X's row, not the training fold's
            clf.cv(gaps, y, n_folds=3)
        with pytest.raises(DataError, match=r"^X has 3 features, but MixtureClassifier is expecting 4 features as "
                                            r"input\.$"):
            clf.predict(X[:, :3])
