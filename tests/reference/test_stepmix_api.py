"""``bigem.StepMix`` runs StepMix code unchanged: the same constructor and defaults, the
same ``get_parameters()`` layout, the same criteria, and StepMix 3's estimates, for the
measurement models alone and with a structural model in one, two or three steps."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import bigem
from bigem.errors import NotFittedError, ParameterError

stepmix = pytest.importorskip("stepmix")

K = 3
ITEMS = np.array([[.9, .9, .9, .1, .1, .1], [.1, .1, .9, .9, .9, .1], [.1, .1, .1, .1, .9, .9]])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    z = rng.integers(0, K, 1500)
    X = (rng.random((1500, 6)) < ITEMS[z]).astype(float)
    return rng, z, X


def both(X, Y=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, random_state=0, verbose=0, progress_bar=0, **kw).fit(X, Y)
        ours = bigem.StepMix(K, random_state=0, **kw).fit(X, Y)
    return ref, ours


def close(a, b, atol):
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], dict):
            close(a[key], b[key], atol)
        else:
            np.testing.assert_allclose(np.asarray(b[key], dtype=float), np.asarray(a[key], dtype=float), atol=atol,
                                       err_msg=key)


def test_the_constructor_is_stepmixs():
    import inspect

    theirs = inspect.signature(stepmix.StepMix.__init__).parameters
    ours = inspect.signature(bigem.StepMix.__init__).parameters
    assert list(ours) == list(theirs)
    assert all(ours[name].default == theirs[name].default for name in theirs if name != "self")


@pytest.mark.parametrize("measurement", ["binary", "categorical", "binary_nan"])
def test_a_measurement_model_alone_is_stepmixs_fit_and_criteria(data, measurement):
    rng, z, X = data
    if measurement == "categorical":
        X = X + (rng.random(X.shape) < 0.3)  # codes 0, 1, 2
    elif measurement == "binary_nan":
        X = X.copy()
        X[rng.random(X.shape) < 0.1] = np.nan
    ref, ours = both(X, measurement=measurement)
    close(ref.get_parameters(), ours.get_parameters(), 1e-9)
    assert ours.n_parameters == ref.n_parameters
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12) and ours.n_iter_ == ref.n_iter_
    for criterion in ("bic", "aic", "caic", "sabic", "entropy", "relative_entropy", "score"):
        assert getattr(ours, criterion)(X) == pytest.approx(getattr(ref, criterion)(X), rel=1e-9), criterion
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-9)


def test_a_row_with_every_value_missing_is_taken_silently_as_stepmix_takes_it(data):
    """Its posterior is the class weights in both; StepMix says nothing, and neither does
    bigem.StepMix (its own estimators warn with EmptyRowWarning), so the tests' warnings as
    errors pass."""
    rng, z, X = data
    X = X[:400].copy()
    X[rng.random(X.shape) < 0.1] = np.nan
    X[[0, 7]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = bigem.StepMix(K, measurement="binary_nan", random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, measurement="binary_nan", random_state=0, verbose=0, progress_bar=0).fit(X)
    close(ref.get_parameters(), ours.get_parameters(), 1e-9)
    np.testing.assert_allclose(ours.predict_proba(X)[[0, 7]], np.tile(ours.weights_, (2, 1)), atol=1e-12)
    with pytest.warns(bigem.errors.EmptyRowWarning):
        bigem.BernoulliMixture(K, missing_values="fiml", random_state=0).fit(X)


def test_a_gaussian_measurement_model_reaches_stepmixs_optimum(data):
    rng, z, _ = data
    X = rng.normal(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])[z], 1.0)
    ref, ours = both(X, measurement="gaussian_diag", abs_tol=1e-12)
    a, b = ref.get_parameters()["measurement"], ours.get_parameters()["measurement"]
    order = list(min(itertools.permutations(range(K)), key=lambda p: np.abs(b["means"][list(p)] - a["means"]).max()))
    for key in ("means", "covariances", "precisions_cholesky"):
        np.testing.assert_allclose(b[key][order], a[key], atol=1e-6)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-9) and ours.n_parameters == ref.n_parameters


@pytest.mark.parametrize("kw", [dict(), dict(n_steps=2, structural="gaussian_diag"),
                                dict(n_steps=3, correction="BCH"), dict(n_steps=3, correction="ML", assignment="soft"),
                                dict(n_steps=3, structural="binary"), dict(n_steps=2, structural="categorical")],
                         ids=["one-step", "two-step", "BCH", "ML-soft", "binary", "categorical"])
def test_a_structural_model_is_stepmixs(data, kw):
    rng, z, X = data
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    if kw.get("structural") == "binary":
        Y = (Y > 1).astype(float)
    elif kw.get("structural") == "categorical":
        Y = np.digitize(Y, [0.5, 2.0]).astype(float)
    ref, ours = both(X, Y, abs_tol=1e-12, **kw)
    a, b = ref.get_parameters(), ours.get_parameters()
    close(a, b, 1e-5)
    assert ours.n_parameters == ref.n_parameters and ours.structural_in_ == 1 and ours.measurement_in_ == 6
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-9)
    for criterion in ("bic", "aic", "caic", "sabic", "relative_entropy", "score"):
        assert getattr(ours, criterion)(X, Y) == pytest.approx(getattr(ref, criterion)(X, Y), rel=1e-7), criterion
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-5)


def test_a_covariate_model_is_stepmixs(data):
    rng, z, X = data
    Z = rng.normal(size=(len(z), 2)) + 0.5 * z[:, None]
    ref, ours = both(X, Z, n_steps=2, structural="covariate", abs_tol=1e-12,
                     structural_params={"max_iter": 100})
    beta_a, beta_b = ref.get_parameters()["structural"]["beta"], ours.get_parameters()["structural"]["beta"]
    np.testing.assert_allclose(beta_b - beta_b[0], beta_a - beta_a[0], atol=1e-5)  # softmax's free shift aside
    assert ours.n_parameters == ref.n_parameters == 24.0
    assert ours.bic(X, Z) == pytest.approx(ref.bic(X, Z), rel=1e-9)


def test_what_has_no_counterpart_says_so(data):
    _, _, X = data
    Y = X[:, :1]
    with pytest.raises(ParameterError, match="block 'a' is a 'gaussian_unit' model"):
        bigem.StepMix(K, measurement={"a": {"model": "gaussian_unit", "n_columns": 6}}).fit(X)
    with pytest.raises(ParameterError, match="unit-variance"):
        bigem.StepMix(K, measurement="gaussian_unit").fit(X)
    with pytest.raises(ParameterError, match="structural='gaussian_full' has no bigem counterpart"):
        bigem.StepMix(K, structural="gaussian_full").fit(X, Y)
    with pytest.raises(ParameterError, match="not read"):
        bigem.StepMix(K, measurement_params={"integer_codes": False}).fit(X)
    with pytest.raises(NotFittedError):
        bigem.StepMix(K).predict(X)
    with pytest.raises(ParameterError, match="without Y"):
        bigem.StepMix(K).fit(X).score(X, Y)


@pytest.mark.parametrize("measurement,structural", [("binary", "gaussian_diag"), ("categorical", "gaussian"),
                                                    ("gaussian_full", "binary"), ("gaussian_tied", "categorical"),
                                                    ("gaussian_spherical", "covariate"), ("binary_nan", None)])
def test_the_parameter_frames_are_stepmixs(data, measurement, structural):
    """get_parameters_df, get_mm_df, get_sm_df and get_cw_df: StepMix's rows, index and
    values, with the column names of DataFrames."""
    import pandas as pd

    rng, z, X = data
    if measurement == "categorical":
        X = X + (rng.random(X.shape) < 0.3)
    elif measurement.startswith("gaussian"):
        X = rng.normal(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])[z], 1.0)
    X = pd.DataFrame(X, columns=[f"item{j}" for j in range(X.shape[1])])
    Y = None
    if structural is not None:
        Y = pd.DataFrame({"y": rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)})
        if structural == "binary":
            Y = (Y > 1).astype(float)
        elif structural == "categorical":
            Y = pd.DataFrame({"y": np.digitize(Y["y"], [0.5, 2.0]).astype(float)})
    kw = dict(measurement=measurement, abs_tol=1e-12, n_steps=3, correction="ML")
    if structural is not None:
        kw["structural"] = structural
    if structural == "covariate":
        kw.update(structural_params={"max_iter": 100})
    ref, ours = both(X, Y, **kw)
    a, b = ref.get_parameters_df(), ours.get_parameters_df()
    if measurement.startswith("gaussian"):  # the same optimum, maybe numbered otherwise
        pa, pb = ref.get_parameters()["measurement"]["means"], ours.get_parameters()["measurement"]["means"]
        order = min(itertools.permutations(range(K)), key=lambda p: np.abs(pb[list(p)] - pa).max())
        if list(order) != list(range(K)):
            pytest.skip("the two fits number the classes differently")
    assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
    values_a, values_b = a["value"].to_numpy(), b["value"].to_numpy()
    if structural == "covariate":  # softmax's free shift: compare log odds against class 0
        beta_a = a.loc["structural"]["value"].to_numpy().reshape(K, -1)
        beta_b = b.loc["structural"]["value"].to_numpy().reshape(K, -1)
        np.testing.assert_allclose(beta_b - beta_b[0], beta_a - beta_a[0], atol=1e-4)
        keep = a.index.get_level_values("model") == "measurement"
        values_a, values_b = values_a[keep], values_b[keep]
    np.testing.assert_allclose(values_b, values_a, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StepMix's .loc on its unsorted index warns of performance
        pd.testing.assert_frame_equal(ours.get_mm_df(), ref.get_mm_df(), atol=1e-5)
        if structural not in (None, "covariate"):
            pd.testing.assert_frame_equal(ours.get_sm_df(), ref.get_sm_df(), atol=1e-5)
            pd.testing.assert_frame_equal(ours.get_cw_df(), ref.get_cw_df(), atol=1e-5)


def test_bootstrap_stats_are_stepmixs_frames_and_agree_within_monte_carlo_noise(data):
    rng, z, X = data
    X, z = X[:800], z[:800]
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    ref, ours = both(X, Y, n_steps=3, correction="ML")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref.bootstrap_stats(X, Y, n_repetitions=60, progress_bar=False)
    mine = ours.bootstrap_stats(X, Y, n_repetitions=60)
    assert set(mine) == set(theirs)
    assert list(mine["samples"].index.names) == list(theirs["samples"].index.names)
    assert list(mine["samples"].columns) == list(theirs["samples"].columns)  # value, rep
    assert list(mine["rep_stats"].columns) == ["LL", "avg_LL"] and len(mine["rep_stats"]) == 60
    for key in ("mm_mean", "mm_std", "sm_mean", "sm_std", "cw_mean", "cw_std"):
        assert mine[key].index.equals(theirs[key].index) and list(mine[key].columns) == list(theirs[key].columns)
    # the means of the replicates sit at the estimate; their spreads are the same within noise
    np.testing.assert_allclose(mine["sm_mean"].to_numpy(), theirs["sm_mean"].to_numpy(), atol=0.05)
    ratio = mine["sm_std"].to_numpy() / theirs["sm_std"].to_numpy()
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    ratio = mine["cw_std"].to_numpy() / theirs["cw_std"].to_numpy()
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio


@pytest.mark.parametrize("parametric", [False, True])
def test_a_weighted_bootstraps_LL_is_its_mean_times_the_given_weights_sum_as_stepmixs(data, parametric):
    """StepMix scales every repetition's avg_LL by the sum of the weights given (not of a
    repetition's drawn ones, nor n for a parametric draw): a likelihood ratio test reads LL."""
    rng, z, X = data
    X = X[:300]
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, random_state=0, verbose=0, progress_bar=0).fit(X, sample_weight=w)
        ours = bigem.StepMix(K, random_state=0).fit(X, sample_weight=w)
        theirs = stepmix.bootstrap.bootstrap(ref, X, n_repetitions=3, sample_weight=w, parametric=parametric,
                                             progress_bar=False)[1]
    mine = ours.bootstrap(X, n_repetitions=3, sample_weight=w, parametric=parametric, progress_bar=False)[1]
    np.testing.assert_allclose(theirs["LL"] / theirs["avg_LL"], w.sum(), rtol=1e-12)
    np.testing.assert_allclose(mine["LL"] / mine["avg_LL"], w.sum(), rtol=1e-12)


def test_the_parametric_bootstrap_is_stepmixs_within_monte_carlo_noise(data):
    """Each repetition refits on a data set drawn from the model (StepMix's
    ``parametric=True``): the spread of the estimates agrees with StepMix's, and a null
    model as the ``sampler`` gives the likelihood ratios of a BLRT."""
    rng, z, X = data
    X, z = X[:800], z[:800]
    Y = np.random.default_rng(5).normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    ref, ours = both(X, Y, n_steps=2, structural="gaussian_diag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref.bootstrap_stats(X, Y, n_repetitions=60, parametric=True, progress_bar=False)
    mine = ours.bootstrap_stats(X, Y, n_repetitions=60, parametric=True)
    for key in ("mm_std", "sm_std", "cw_std"):
        assert mine[key].index.equals(theirs[key].index)
    np.testing.assert_allclose(mine["sm_mean"].to_numpy(), theirs["sm_mean"].to_numpy(), atol=0.05)
    for key in ("sm_std", "cw_std"):
        ratio = mine[key].to_numpy() / theirs[key].to_numpy()
        assert np.all((ratio > 0.6) & (ratio < 1.6)), (key, ratio)
    # repetitions differ (fresh data each time) and a seed repeats them
    again = ours.bootstrap(X, Y, n_repetitions=60, parametric=True)[1]
    np.testing.assert_allclose(again["LL"], mine["rep_stats"]["LL"], rtol=1e-12)
    assert mine["rep_stats"]["LL"].std() > 0
    # a BLRT's null distribution: data from the 2-class model, fitted by 2 and 3 classes
    null = bigem.StepMix(2, random_state=0).fit(X)
    alternative = bigem.StepMix(K, random_state=0).fit(X)
    _, alt = alternative.bootstrap(X, n_repetitions=5, parametric=True, sampler=null, identify_classes=False)
    _, base = null.bootstrap(X, n_repetitions=5, parametric=True, sampler=null, identify_classes=False)
    assert np.all(alt["LL"].to_numpy() >= base["LL"].to_numpy() - 1e-6)  # more classes fit the same data better


@pytest.mark.parametrize("structural", ["binary", "categorical"])
def test_permuting_classes_and_predicting_the_outcome_are_stepmixs(data, structural):
    rng, z, X = data
    Y = (rng.random(len(z)) < np.array([0.2, 0.5, 0.9])[z]).astype(float)[:, None]
    if structural == "categorical":
        Y = Y + (rng.random(Y.shape) < 0.4)
    ref, ours = both(X, Y, n_steps=2, structural=structural, abs_tol=1e-12)
    np.testing.assert_allclose(ours.predict_proba_Y(X), ref.predict_proba_Y(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict_Y(X), ref.predict_Y(X))
    perm = np.array([2, 0, 1])
    ref.permute_classes(perm)
    ours.permute_classes(perm)
    close(ref.get_parameters(), ours.get_parameters(), 1e-5)
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-6)
    with pytest.raises(ParameterError, match="permutation of 0..2"):
        ours.permute_classes([0, 0, 1])


def report(module, X, Y=None, **kw):
    import contextlib
    import io

    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        model = module.StepMix(K, random_state=0, verbose=1, progress_bar=0, **kw).fit(X, Y)
    return out.getvalue(), model


@pytest.mark.parametrize("kw", [dict(), dict(n_steps=2, structural="gaussian_diag"), dict(n_steps=3, correction="BCH"),
                                dict(n_steps=3, correction="ML", assignment="soft", structural="binary"),
                                dict(measurement="categorical"), dict(structural=None)],
                         ids=["one-step", "two-step", "BCH", "ML-soft", "categorical", "measurement-alone"])
def test_verbose_prints_stepmixs_report(data, kw):
    import pandas as pd

    _, z, X = data
    rng = np.random.default_rng(1)
    X = pd.DataFrame(X, columns=[f"item{j}" for j in range(X.shape[1])])  # StepMix prints the names
    Y = pd.DataFrame({"income": rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)})
    if kw.get("structural") == "binary":
        Y = (Y > 1).astype(float)
    if kw.get("measurement") == "categorical":
        X = X + (rng.random(X.shape) < 0.3)
    if "structural" in kw and kw["structural"] is None:
        Y = kw.pop("structural")
    theirs, ref = report(stepmix, X, Y, abs_tol=1e-12, **kw)
    ours, model = report(bigem, X, Y, abs_tol=1e-12, **kw)
    assert "MODEL REPORT" in ours and "item5" in ours and ("income" in ours) == (Y is not None)
    same_text(ours, theirs)
    theirs_again, ours_again = (report_of(m, X, Y) for m in (ref, model))  # report() alone, after a fit
    assert ours_again == ours and theirs_again == theirs


def same_text(ours: str, theirs: str) -> None:
    """The same lines, word for word; a printed number may differ in its last digit only
    (the two fits agree to about 1e-9, which can round either way)."""
    a, b = ours.splitlines(), theirs.splitlines()
    assert len(a) == len(b), (ours, theirs)
    for line_a, line_b in zip(a, b):
        words_a, words_b = line_a.split(), line_b.split()
        assert len(words_a) == len(words_b) and line_a.startswith(" " * (len(line_b) - len(line_b.lstrip()))), \
            (line_a, line_b)
        for u, v in zip(words_a, words_b):
            try:
                x, y = float(u), float(v)
            except ValueError:
                assert u == v, (line_a, line_b)
                continue
            digits = len(v.split(".")[1]) if "." in v else 0
            assert abs(x - y) <= 1.01 * 10.0 ** -digits and len(u) - len(v) in (-1, 0, 1), (line_a, line_b)


def report_of(model, X, Y):
    import contextlib
    import io

    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        model.report(X, Y)
    return out.getvalue()


@pytest.mark.parametrize("measurement,structural", [("binary", "gaussian"), ("categorical", "categorical"),
                                                    ("gaussian_full", "binary_nan"), ("binary_nan", "gaussian_diag"),
                                                    ("gaussian_diag", "covariate"), ("categorical_nan", None)])
def test_set_parameters_gives_stepmixs_model_unfitted(data, measurement, structural):
    import copy

    _, z, X = data
    rng = np.random.default_rng(2)
    if measurement.startswith("gaussian"):
        X = rng.normal(3.0 * z[:, None], 1.0, (len(z), 2))
    elif measurement.startswith("categorical"):
        X = X + (rng.random(X.shape) < 0.3)
    Y = None if structural is None else rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    if structural == "binary_nan":
        Y = (Y > 1).astype(float)
        Y[:20] = np.nan
    elif structural == "categorical":
        Y = np.digitize(Y, [0.5, 2.0]).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if structural is None else {"structural": structural, "n_steps": 2}
        ref = stepmix.StepMix(K, measurement=measurement, random_state=0, verbose=0, progress_bar=0, **kw).fit(X, Y)
    ours = bigem.StepMix(K, measurement=measurement, **kw)  # never fitted
    ours.set_parameters(copy.deepcopy(ref.get_parameters()))
    close(ref.get_parameters(), ours.get_parameters(), 0.0)
    assert ours.n_parameters == ref.n_parameters
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-10)
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-12)
    assert ours.bic(X, Y) == pytest.approx(ref.bic(X, Y), rel=1e-12)


def test_set_parameters_refuses_what_makes_no_model(data):
    _, _, X = data
    ref, ours = both(X)
    params = ref.get_parameters()
    with pytest.raises(ParameterError, match="lacks 'pis'"):
        bigem.StepMix(K).set_parameters({**params, "measurement": {}})
    with pytest.raises(ParameterError, match=r"params\['measurement'\].*valid 'bernoulli' model"):
        bigem.StepMix(K).set_parameters({**params, "measurement": {"pis": params["measurement"]["pis"] + 1}})
    with pytest.raises(ParameterError, match="measurement_in is 5"):
        bigem.StepMix(K).set_parameters({**params, "measurement_in": 5})
    with pytest.raises(ParameterError, match="get_parameters"):
        bigem.StepMix(K).set_parameters({"weights": params["weights"]})


def test_sample_draws_from_the_model(data):
    _, z, X = data
    rng = np.random.default_rng(3)
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    _, ours = both(X, Y, n_steps=2, structural="gaussian_diag")
    n = 60_000
    Xs, Ys, labels = ours.sample(n)
    assert Xs.shape == (n, 6) and Ys.shape == (n, 1) and labels.shape == (n,)
    params = ours.get_parameters()
    share = np.bincount(labels, minlength=K) / n
    assert np.all(np.abs(share - ours.weights_) < 4 * np.sqrt(ours.weights_ * (1 - ours.weights_) / n))
    for k in range(K):
        rows = labels == k
        m = rows.sum()
        pis = params["measurement"]["pis"][k]
        assert np.all(np.abs(Xs[rows].mean(0) - pis) < 4 * np.sqrt(pis * (1 - pis) / m) + 1e-12)
        mean, var = params["structural"]["means"][k, 0], params["structural"]["covariances"][k, 0]
        assert abs(Ys[rows].mean() - mean) < 4 * np.sqrt(var / m)
        assert abs(Ys[rows].var() / var - 1) < 4 * np.sqrt(2 / m)
    again = ours.sample(5)  # one stream: the next draws differ, and a refit starts it again
    assert not np.array_equal(again[0], Xs[:5]) or not np.array_equal(again[2], labels[:5])
    ours.fit(X, Y)
    np.testing.assert_array_equal(ours.sample(n)[2], labels)
    given = np.array([2, 2, 0, 1])
    Xg, Yg, lg = ours.sample(4, labels=given)
    np.testing.assert_array_equal(lg, given)
    assert Xg.shape == (4, 6) and Yg.shape == (4, 1)
    alone = bigem.StepMix(K, random_state=0).fit(X)
    Xa, Ya, _ = alone.sample(10)
    assert Xa.shape == (10, 6) and Ya is None


def test_what_cannot_be_sampled_says_so(data):
    _, z, X = data
    rng = np.random.default_rng(4)
    _, ours = both(X, rng.normal(size=(len(z), 2)), n_steps=2, structural="covariate")
    with pytest.raises(NotImplementedError, match="covariate"):
        ours.sample(10)
    _, plain = both(X)
    with pytest.raises(ValueError, match="n_samples"):
        plain.sample(0)
    with pytest.raises(ParameterError, match="classes 0..2"):
        plain.sample(2, labels=[0, 3])


@pytest.fixture(scope="module")
def mixed():
    """StepMix's mixed-data set-up: a table of continuous, binary and categorical columns
    and its nested descriptor from StepMix's own get_mixed_descriptor."""
    import pandas as pd
    from stepmix.utils import get_mixed_descriptor

    rng = np.random.default_rng(7)
    n = 1500
    z = rng.integers(0, K, n)
    df = pd.DataFrame({"age": rng.normal(np.array([0.0, 2.0, 4.0])[z], 1.0),
                       "fare": rng.normal(np.array([1.0, -1.0, 0.0])[z], 1.0),
                       "sex": (rng.random(n) < np.array([.1, .5, .9])[z]).astype(float),
                       "alone": (rng.random(n) < np.array([.8, .5, .2])[z]).astype(float),
                       "pclass": np.minimum(rng.integers(0, 3, n) + (z == 2), 2).astype(float)})
    X, descriptor = get_mixed_descriptor(df, continuous=["age", "fare"], binary=["sex", "alone"],
                                         categorical=["pclass"])
    Y = pd.DataFrame({"income": rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0),
                      "owner": (rng.random(n) < np.array([.2, .5, .9])[z]).astype(float)})
    Y, outcomes = get_mixed_descriptor(Y, gaussian_unit=["income"], binary=["owner"])
    return X, descriptor, Y, outcomes


@pytest.mark.parametrize("kw", [dict(), dict(n_steps=2, structural=True), dict(n_steps=3, correction="ML",
                                                                                structural=True)],
                         ids=["measurement", "two-step", "ML"])
def test_a_nested_descriptor_is_stepmixs_mixed_model(mixed, kw):
    X, descriptor, Y, outcomes = mixed
    if kw.pop("structural", False):
        kw["structural"] = outcomes
    else:
        Y = None
    ref, ours = both(X, Y, measurement=descriptor, abs_tol=1e-12, **kw)
    a, b = ref.get_parameters(), ours.get_parameters()
    assert set(b["measurement"]) == {"continuous", "binary", "categorical"}
    close(a, b, 1e-5)
    assert ours.n_parameters == ref.n_parameters
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-8)
    assert ours.bic(X, Y) == pytest.approx(ref.bic(X, Y), rel=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-5)
    theirs, mine = ref.get_parameters_df(), ours.get_parameters_df()
    assert mine.index.equals(theirs.index)
    np.testing.assert_allclose(mine["value"], theirs["value"], atol=1e-5)
    same_text(report_of(ours, X, Y), report_of(ref, X, Y))


def test_one_step_with_gaps_is_stepmixs_without_a_long_start():
    """StepMix's complex simulation with gaps, one step: the joint optimum is StepMix's,
    in about StepMix's iterations. Started from the measurement model fitted alone (to
    tol=1e-10, a flat likelihood there), it took 1000 iterations, and the joint fit 154
    more from it (StepMix: 39); now it starts from StepMix's table."""
    from stepmix.datasets import data_bakk_complex
    from stepmix.utils import get_mixed_descriptor

    Xdf, Ydf, _ = data_bakk_complex(n_samples=600, sep_level=.8, random_state=42, nan_ratio=0.1)
    X, measurement = get_mixed_descriptor(Xdf, continuous_nan=["Continuous Measurement 1"],
                                          binary_nan=[f"Binary Measurement {i}" for i in (1, 2, 3)])
    Y, structural = get_mixed_descriptor(Ydf, binary_nan=[f"Binary Outcome {i}" for i in (1, 2, 3)],
                                         continuous_nan=["Continuous Outcome 1"])
    ref, ours = both(X, Y, measurement=measurement, structural=structural, n_steps=1)
    assert ref.converged_ and ours.converged_
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    # each '_nan' Gaussian feature from the rows observing it, as StepMix's M-step: the same path
    assert ours.n_iter_ == ref.n_iter_
    close(ref.get_parameters(), ours.get_parameters(), 1e-9)


@pytest.mark.parametrize("max_iter", [1, 3, 1000])
@pytest.mark.parametrize("measurement", ["gaussian_diag_nan", "continuous_nan"])
def test_a_gaussian_nan_measurement_is_stepmixs_step_by_step(measurement, max_iter):
    """Each mean and variance from the rows that observed its feature: StepMix's
    GaussianNan M-step, and the exact EM over the classes. Completing the gaps by the
    old mean and variance (bigem's step before) reached the same optimum by smaller
    steps: 1e-2 off after one iteration, 136 iterations against StepMix's 126."""
    rng = np.random.default_rng(7)
    z = rng.integers(0, K, 600)
    X = rng.normal(np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 1.0], [0.0, 3.0, -1.0]])[z], 1.0)
    X[rng.random(X.shape) < 0.2] = np.nan
    ref, ours = both(X, measurement=measurement, max_iter=max_iter)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    close(ref.get_parameters(), ours.get_parameters(), 1e-10)


def test_nan_gaussians_add_no_reg_covar_as_stepmixs():
    """StepMix's '_nan' Gaussian models add no reg_covar (its GaussianNan M-step has none);
    bigem.StepMix added its 1e-6, so a closed-form three-step naive estimate of a
    gaussian_diag_nan outcome's variances was 1.4e-6 off StepMix's. Its other Gaussian
    models keep scikit-learn's 1e-6, as StepMix's do."""
    from stepmix.datasets import data_bakk_complex

    rng = np.random.default_rng(5)
    Xdf, Ydf, _ = data_bakk_complex(n_samples=400, sep_level=.8, random_state=3, nan_ratio=0.0)
    X = Xdf[[c for c in Xdf.columns if c.startswith("Binary")]].to_numpy(float)
    Y = Ydf[["Continuous Outcome 1"]].to_numpy(float, copy=True)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    ref, ours = both(X, Y, measurement="binary", structural="gaussian_diag_nan", n_steps=3)
    np.testing.assert_allclose(ours.get_parameters()["structural"]["covariances"],
                               ref.get_parameters()["structural"]["covariances"], rtol=1e-10)
    assert ours._sm.reg_covar == 0.0
    assert bigem.StepMix(K, measurement="continuous_nan")._measurement_model(bigem.StepMix(
        K, measurement="continuous_nan")._settings()).reg_covar == 0.0
    assert bigem.StepMix(K, measurement="continuous")._measurement_model(bigem.StepMix(
        K, measurement="continuous")._settings()).reg_covar == 1e-6


@pytest.mark.parametrize("weighted", [False, True])
def test_one_step_takes_stepmixs_start_and_path(weighted):
    """One step starts as StepMix's ``em`` does: a table of random responsibilities over
    every row, an M-step of every part (unweighted), uniform weights. Started from the
    measurement model fitted alone, a class's variances collapsed to reg_covar on the
    0/1 columns of StepMix's gaussian_diag design: a lower bound of -0.61 against
    StepMix's -7.29 (and, weighted, +0.65 against -7.28)."""
    from stepmix.datasets import data_gaussian_diag

    X, Y, _ = data_gaussian_diag(n_samples=600, sep_level=.8, random_state=1, nan_ratio=0.0)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X)) if weighted else None
    kw = dict(measurement="gaussian_diag", structural="gaussian_diag", n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, random_state=0, verbose=0, progress_bar=0, **kw).fit(X, Y, sample_weight=w)
    ours = bigem.StepMix(K, random_state=0, **kw).fit(X, Y, sample_weight=w)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    assert ours.n_iter_ == ref.n_iter_
    close(ref.get_parameters(), ours.get_parameters(), 1e-10)
    inner = ours._sm.measurement_  # the joint fit's measurement part, and its record
    assert inner.n_iter_ == ours.n_iter_ and inner.converged_
    assert inner.lower_bound_ == pytest.approx(inner.score(X, sample_weight=w), abs=1e-12)


@pytest.mark.parametrize("measurement, data", [("bernoulli", "data_bakk_response"),
                                               ("gaussian_diag", "data_gaussian_binary")])
def test_one_step_restarts_are_stepmixs(measurement, data):
    """n_init restarts draw one table after another from the same stream, as StepMix's."""
    from stepmix import datasets

    design = dict(sep_level=0.7) if data == "data_bakk_response" else {}
    X, Y, _ = getattr(datasets, data)(n_samples=800, random_state=1, **design)
    structural = "gaussian_unit" if measurement == "bernoulli" else "binary"
    kw = dict(measurement=measurement, structural=structural, n_steps=1, n_init=3, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, verbose=0, progress_bar=0, **kw).fit(X, Y)
    ours = bigem.StepMix(K, **kw).fit(X, Y)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    assert ours.n_iter_ == ref.n_iter_
    close(ref.get_parameters(), ours.get_parameters(), 1e-10)


@pytest.mark.parametrize("measurement", ["bernoulli", "categorical", "gaussian_diag"])
def test_a_weighted_fit_follows_stepmixs_path(measurement):
    """StepMix's random start is an M-step of the rows as listed, the weights entering
    from the first E-step: seven iterations give its parameters (a weighted first M-step
    left them 1e-3 apart, and its Gaussian start had the table's weights, not uniform)."""
    from stepmix.datasets import data_bakk_response, data_gaussian_diag

    X = (data_gaussian_diag(600, 0.8, random_state=1, nan_ratio=0.0) if measurement == "gaussian_diag"
         else data_bakk_response(600, 0.7, random_state=1))[0]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    kw = dict(measurement=measurement, random_state=0, max_iter=7, abs_tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, verbose=0, progress_bar=0, **kw).fit(X, sample_weight=w)
        ours = bigem.StepMix(K, **kw).fit(X, sample_weight=w)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12)
    close(ref.get_parameters(), ours.get_parameters(), 1e-10)


def test_set_parameters_and_sample_take_a_nested_descriptor(mixed):
    import copy

    X, descriptor, Y, outcomes = mixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, measurement=descriptor, structural=outcomes, n_steps=2, random_state=0, verbose=0,
                              progress_bar=0).fit(X, Y)
    ours = bigem.StepMix(K, measurement=descriptor, structural=outcomes, n_steps=2, random_state=0)
    ours.set_parameters(copy.deepcopy(ref.get_parameters()))
    close(ref.get_parameters(), ours.get_parameters(), 0.0)
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-10)
    Xs, Ys, labels = ours.sample(30_000)
    assert Xs.shape == (30_000, 5) and Ys.shape == (30_000, 2)
    params = ours.get_parameters()
    for k in range(K):
        rows = labels == k
        m = rows.sum()
        cont = params["measurement"]["continuous"]
        assert np.all(np.abs(Xs[rows, :2].mean(0) - cont["means"][k]) < 4 * np.sqrt(cont["covariances"][k] / m))
        pis = params["measurement"]["binary"]["pis"][k]
        assert np.all(np.abs(Xs[rows, 2:4].mean(0) - pis) < 4 * np.sqrt(pis * (1 - pis) / m))
        assert np.all(np.isin(Xs[rows, 4], [0, 1, 2]))
        assert abs(Ys[rows, 0].mean() - params["structural"]["gaussian_unit"]["means"][k, 0]) < 4 / np.sqrt(m)


def test_a_nested_descriptor_bigem_cannot_build_says_so(mixed):
    X, descriptor, Y, _ = mixed
    with pytest.raises(ParameterError, match="'model' and an 'n_columns'"):
        bigem.StepMix(K, measurement={"a": {"model": "binary"}}).fit(X)
    with pytest.raises(ParameterError, match="'gaussian_full' model"):
        bigem.StepMix(K, measurement={"a": {"model": "gaussian_full", "n_columns": 5}}).fit(X)
    with pytest.raises(ParameterError, match="integer codes"):
        bigem.StepMix(K, measurement={"a": {"model": "categorical", "n_columns": 5, "integer_codes": False}}).fit(X)
    two = {"z1": {"model": "covariate", "n_columns": 1}, "z2": {"model": "covariate", "n_columns": 1}}
    with pytest.raises(ParameterError, match="Only one covariate model"):
        bigem.StepMix(K, measurement=descriptor, structural=two, n_steps=2).fit(X, Y)


def test_max_n_outcomes_alone_is_inferred_from_the_codes_as_stepmix_does(mixed):
    """StepMix infers both widths from the codes where either is None; bigem refused the
    key, and took an 'n_outcomes' key StepMix refuses."""
    X, descriptor, _, _ = mixed
    block = next(k for k, v in descriptor.items() if v["model"] == "categorical")
    given = {**descriptor, block: {**descriptor[block], "max_n_outcomes": 5}}
    ref, ours = both(X, measurement=given)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-10) and ours.n_parameters == ref.n_parameters
    assert ours.get_parameters()["measurement"][block]["max_n_outcomes"] == 3
    codes = X[["pclass"]].to_numpy()
    ref, ours = both(codes, measurement="categorical", measurement_params={"total_outcomes": 7})
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-10)
    with pytest.raises(ParameterError, match=r"does not pad the columns to given ones .*drop one or both"):
        bigem.StepMix(K, measurement="categorical", measurement_params={"max_n_outcomes": 5, "total_outcomes": 5}
                      ).fit(codes)
    with pytest.raises(ParameterError, match=r"block 'c': bigem does not read \['n_outcomes'\]"):
        bigem.StepMix(K, measurement={"c": {"model": "categorical", "n_columns": 1, "n_outcomes": 6}}).fit(codes)
    with pytest.raises(ParameterError, match=r"measurement_params \['max_n_outcomes'\] are not read"):
        bigem.StepMix(K, measurement="binary", measurement_params={"max_n_outcomes": 5}).fit(X[["sex"]])


def test_gaps_without_a_nan_model_are_refused_with_stepmixs_fix(mixed):
    X, descriptor, _, _ = mixed
    X = X.copy()
    X.iloc[3, 0] = np.nan
    with pytest.raises(Exception, match=r"use the models' '_nan' variants") as raised:
        bigem.StepMix(K, measurement=descriptor).fit(X)
    assert "missing_values" not in str(raised.value)


@pytest.mark.parametrize("structural", ["binary", "categorical"])
def test_the_classifier_predicts_the_outcome_as_stepmixs(data, structural):
    """StepMixClassifier: predict and predict_proba infer Y from X, StepMix's answers."""
    from stepmix.stepmix import StepMixClassifier as Theirs

    rng, z, X = data
    Y = (np.random.default_rng(6).random(len(z)) < np.array([0.1, 0.5, 0.9])[z]).astype(float)[:, None]
    if structural == "categorical":
        Y = Y + (np.random.default_rng(7).random(Y.shape) < 0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Theirs(K, n_steps=2, structural=structural, abs_tol=1e-12, random_state=0, verbose=0,
                     progress_bar=0).fit(X, Y)
    ours = bigem.StepMixClassifier(K, n_steps=2, structural=structural, abs_tol=1e-12, random_state=0).fit(X, Y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    # as StepMix's, no scikit-learn classifier (it has no classes_): accuracy scoring reads predict
    from sklearn.base import is_classifier, is_clusterer
    from sklearn.model_selection import cross_val_score

    assert is_classifier(ours) == is_classifier(ref) is False and is_clusterer(ours) == is_clusterer(ref) is False
    scores = cross_val_score(bigem.StepMixClassifier(K, n_steps=2, structural=structural, random_state=0), X, Y,
                             scoring="accuracy", cv=3)
    assert np.all((scores > 0.4) & (scores <= 1.0))
    with pytest.raises(ParameterError, match="binary or categorical outcome"):
        bigem.StepMixClassifier(K, structural="gaussian_unit").fit(X, Y)


def test_categorical_codes_are_places_as_in_stepmix(data):
    """StepMix reads a code as a position: answers 1..3 have four outcomes (0 never seen),
    and a column of codes {1, 3} keeps the unseen 0 and 2. Parameters, their count, the
    criteria and the frames' labels follow."""
    rng, z, _ = data
    X = 1 + (rng.random((1500, 4)) < np.array([[.2, .8, .5, .3], [.8, .2, .5, .7], [.5, .5, .1, .9]])[z]) \
        + (rng.random((1500, 4)) < 0.3)
    X[:, 3] = np.where(X[:, 3] == 2, 3, X[:, 3])
    ref, ours = both(X, measurement="categorical")
    assert ours.n_parameters == ref.n_parameters == 3 * (16 - 4) + 2
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-9)
    close(ref.get_parameters(), ours.get_parameters(), 1e-6)
    assert list(ours.get_mm_df().index) == list(ref.get_mm_df().index)


@pytest.mark.parametrize("max_iter, steps", [
    *((i, steps) for i in (1, 3) for steps in (dict(n_steps=1), dict(n_steps=2), dict(n_steps=2, n_init=3),
                                              dict(n_steps=3, correction="ML"))),
    (5000, dict(n_steps=1)), (5000, dict(n_steps=2)),  # to convergence (ML's takes 4700 slow steps here)
])
def test_a_covariate_fit_takes_stepmixs_start_and_path(max_iter, steps):
    """StepMix starts the covariate coefficients from its own draws (normal, sd 1e-3;
    in one step after the responsibility table; in two steps and ML's three, each
    restart of the EM that holds the measurement model draws anew), not from an M-step,
    and sets the class weights from the last E-step: bigem's were 0.008 off after one
    iteration, and on these data its one-step fit ended at another optimum (-2.66016
    against -2.65999); two steps took 263 iterations against StepMix's 258."""
    rng = np.random.default_rng(2)
    z = rng.integers(0, K, 500)
    X = np.c_[rng.random(500) < .2 + .3 * z, rng.random(500) < .7 - .2 * z, rng.random(500) < .5,
              rng.random(500) < .3 + .2 * z].astype(float)
    Z = np.c_[rng.normal(z, 1), rng.normal(size=500)]
    ref, ours = both(X, Z, measurement="binary", structural="covariate", max_iter=max_iter, **steps)
    # (a path of thousands of steps may stop a few later or earlier: the last changes are
    # near abs_tol, which rounding decides)
    assert abs(ours.n_iter_ - ref.n_iter_) <= (0 if max_iter < 10 else ref.n_iter_ // 200)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-12 if max_iter < 10 else 1e-9)
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-12 if max_iter < 10 else 1e-6)
    beta_a, beta_b = ref.get_parameters()["structural"]["beta"], ours.get_parameters()["structural"]["beta"]
    np.testing.assert_allclose(beta_b - beta_b[0], beta_a - beta_a[0], atol=1e-10 if max_iter < 10 else 1e-5)
    np.testing.assert_allclose(ours.get_parameters()["measurement"]["pis"], ref.get_parameters()["measurement"]["pis"],
                               atol=1e-12 if max_iter < 10 else 1e-6)


def test_a_one_step_covariate_fit_leaves_stepmixs_class_weights():
    """StepMix's M-step sets the class weights to the posteriors' mean even with a
    covariate, and predict_proba(X) and score(X) read them."""
    from stepmix.datasets import data_bakk_covariate

    X, Z, _ = data_bakk_covariate(1200, 0.8, random_state=3)
    kw = dict(measurement="bernoulli", structural="covariate", n_steps=1, structural_params={"max_iter": 100},
              abs_tol=1e-10)
    ref, ours = both(X, Z, **kw)
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-4)  # the measurement fit's were 0.09 apart
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=5e-4)
    assert ours.score(X) == pytest.approx(ref.score(X), abs=1e-5)
    # given Z, the structural model's own weights: setting StepMix's in place moved
    # predict_proba(X, Z) by up to 0.1 and score(X, Z) above the fit's own lower bound
    assert ours.score(X, Z) == pytest.approx(ours.lower_bound_, abs=1e-9)
    assert ours.score(X, Z) == pytest.approx(ref.score(X, Z), abs=1e-6)
    assert ours.bic(X, Z) == pytest.approx(ref.bic(X, Z), rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X, Z), ref.predict_proba(X, Z), atol=5e-4)
    before, weights = ours.predict_proba(X, Z), ours.weights_.copy()
    ours.permute_classes([2, 0, 1])
    np.testing.assert_allclose(ours.predict_proba(X, Z), before[:, [2, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(ours.weights_, weights[[2, 0, 1]], atol=1e-15)
    assert ours.score(X, Z) == pytest.approx(ours.lower_bound_, abs=1e-9)


@pytest.mark.parametrize("structural", ["gaussian_nan", "gaussian_unit_nan"])
def test_unit_variance_outcomes_with_gaps_list_stepmixs_covariances(data, structural):
    rng, z, X = data
    Y = rng.normal(size=(len(z), 2)) + z[:, None]
    Y[::7, 0] = np.nan
    ref, ours = both(X, Y, measurement="bernoulli", structural=structural)
    close(ref.get_parameters()["structural"], ours.get_parameters()["structural"], 1e-5)
    assert list(ours.get_sm_df().index) == list(ref.get_sm_df().index)


def test_stepmixs_small_conventions(data, capsys):
    """verbose=2 prints no report (StepMix tests verbose == 1), progress_bar takes 0, 1 or
    2, n_features_in_ is set, a wrong width names StepMix, and binary draws are integers."""
    _, _, X = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, random_state=0, verbose=2, progress_bar=0).fit(X)
        ours = bigem.StepMix(K, random_state=0, verbose=2, progress_bar=0).fit(X)
    assert capsys.readouterr().out == ""
    assert ours.n_features_in_ == ref.n_features_in_ == 6
    for model in (ref, ours):
        with pytest.raises(ValueError, match="X has 5 features, but StepMix is expecting 6 features as input"):
            model.predict(X[:, :5])
    assert ours.sample(4)[0].dtype == ref.sample(4)[0].dtype == np.int64
    for cls in (stepmix.StepMix, bigem.StepMix):
        with pytest.raises(ValueError, match=r"progress_bar value 3 not recognized. Choose from \[0, 1, 2\]"):
            cls(K, progress_bar=3, verbose=0).fit(X)


def test_a_fit_that_did_not_converge_warns_in_stepmixs_words(data):
    """bigem's StepMix warned with scikit-learn's text, which advises ``tol``, a parameter
    StepMix does not take, and pointed inside bigem; now StepMix's text at the caller."""
    from sklearn.exceptions import ConvergenceWarning

    _, _, X = data
    texts = []
    for make in (stepmix.StepMix, bigem.StepMix):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make(K, measurement="bernoulli", max_iter=2, random_state=0, progress_bar=0, verbose=0).fit(X)
        ours = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        assert len(ours) == 1
        texts.append(str(ours[0].message))
    assert texts[1] == texts[0] and "abs_tol, rel_tol" in texts[1]
    assert ours[0].filename == __file__


def test_an_array_after_a_data_frame_fit_is_read_in_order_and_silently(data):
    """StepMix reads an array's columns as the fitted frame's, in order, and warns of
    nothing (bigem's measurement model, fitted on names, warned that X had none, naming
    itself); a frame whose columns are renamed or reordered is refused (StepMix reads it
    by position, and a reordered frame gives another answer without a word)."""
    pd = pytest.importorskip("pandas")
    _, _, X = data
    frame = pd.DataFrame(X, columns=[f"q{i}" for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = bigem.StepMix(K, measurement="binary", random_state=0).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ours.predict_proba(X), ours.predict_proba(frame))
        np.testing.assert_array_equal(ours.predict(X.tolist()), ours.predict(frame))
        assert ours.score(X) == ours.score(frame)
    with pytest.raises(bigem.errors.DataError, match="feature names should match"):
        ours.score(frame[frame.columns[::-1]])


def test_predicting_a_continuous_outcome_is_stepmixs_not_implemented(data):
    """StepMix raises NotImplementedError for predict_Y of a Gaussian outcome; code that
    catches it runs unchanged (bigem's error is a ParameterError too)."""
    rng, z, X = data
    Y = rng.normal(z, 1.0)[:, None]
    ref, ours = both(X, Y, n_steps=2, structural="gaussian_diag")
    for model in (ref, ours):
        with pytest.raises(NotImplementedError):
            model.predict_Y(X)
    with pytest.raises(ParameterError, match="binary or categorical outcome"):
        ours.predict_proba_Y(X)


def test_feature_names_in_is_stepmixs(data):
    """Fitted on a DataFrame, StepMix keeps scikit-learn's feature_names_in_ (bigem's had
    none); fitted on an array, neither has it."""
    import pandas as pd

    _, _, X = data
    frame = pd.DataFrame(X[:300], columns=[f"item{i}" for i in range(X.shape[1])])
    ref, ours = both(frame)
    np.testing.assert_array_equal(ours.feature_names_in_, ref.feature_names_in_)
    assert ours.feature_names_in_.dtype == ref.feature_names_in_.dtype
    ref, ours = both(X[:300])
    assert not hasattr(ref, "feature_names_in_") and not hasattr(ours, "feature_names_in_")


def test_the_helpers_stepmix_users_import_give_stepmixs_results():
    import stepmix.bootstrap as theirs_boot
    import stepmix.utils as theirs

    import bigem.stepmix.bootstrap as ours_boot
    import bigem.stepmix.utils as ours

    rng = np.random.default_rng(0)
    resp = rng.random((30, 4))
    for clip in (False, True):
        np.testing.assert_array_equal(ours.modal(resp, clip=clip), theirs.modal(resp, clip=clip))
    codes = rng.integers(0, 4, (40, 3)).astype(float)
    codes[3, 1] = np.nan
    (a, m_a, t_a), (b, m_b, t_b) = ours.max_one_hot(codes.copy()), theirs.max_one_hot(codes.copy())
    np.testing.assert_array_equal(a, b)
    assert (m_a, t_a) == (m_b, t_b)
    assert ours.max_one_hot(codes, 5, 15)[0].shape == theirs.max_one_hot(codes, 5, 15)[0].shape == (40, 15)
    coef = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(ours.identify_coef(coef.copy()), theirs.identify_coef(coef.copy()))
    for K in (4, 10):  # every permutation (StepMix's search), and an assignment beyond 8 columns
        reference = rng.random((60, K))
        target = reference[:, rng.permutation(K)] + rng.normal(0, 0.01, (60, K))
        perm = ours_boot.find_best_permutation(reference, target)
        if K <= 8:
            np.testing.assert_array_equal(perm, theirs_boot.find_best_permutation(reference, target))
        assert ours_boot.mse(reference, target[:, perm]) < 1e-3
    assert ours_boot.mse(reference, target) == pytest.approx(theirs_boot.mse(reference, target), rel=1e-15)


def test_print_report_is_the_models_report_and_names_columns_as_stepmixs(capsys):
    import stepmix.utils as theirs

    import bigem.stepmix.utils as ours

    rng = np.random.default_rng(1)
    classes = rng.integers(0, 2, 300)
    X = (rng.random((300, 4)) < np.where(classes[:, None] == 1, 0.85, 0.15)).astype(float)
    model = bigem.StepMix(n_components=2, measurement="binary", random_state=0, verbose=0, progress_bar=0).fit(X)
    ours.print_report(model, X)
    printed = capsys.readouterr().out
    model.report(X)
    assert printed == capsys.readouterr().out and "Measurement model parameters" in printed
    names = ["a", "b", "c", "d"]
    ours.print_report(model, X, x_names=names)
    printed = capsys.readouterr().out
    reference = stepmix.StepMix(n_components=2, measurement="binary", random_state=0, verbose=0,
                                progress_bar=0).fit(X)
    theirs.print_report(reference, X, x_names=names)
    assert printed == capsys.readouterr().out
    assert getattr(model, "x_names_", None) is None  # the model's own names, untouched


def _stepwise(cls, X, Y, kw, how):
    """StepMix's class docstring's steps, one by one, on ``cls``."""
    model = cls(K, random_state=0, abs_tol=1e-12, **kw)
    if how == "docstring":  # em(X); probs = predict_proba(X); m_step_structural(probs, Y)
        model.em(X)
        model.m_step_structural(model.predict_proba(X), Y)
    elif how == "one step":
        model.em(X, Y)
    else:  # two steps
        model.em(X)
        model.em(X, Y, freeze_measurement=True)
    return model


@pytest.mark.parametrize("how", ["docstring", "one step", "two steps"])
@pytest.mark.parametrize("structural", ["gaussian_unit", "binary"])
def test_the_steps_stepmix_users_call_one_by_one_are_stepmixs(data, how, structural):
    rng, z, X = data
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    if structural == "binary":
        Y = (Y > 1).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _stepwise(stepmix.StepMix, X, Y, dict(structural=structural, verbose=0, progress_bar=0), how)
        ours = _stepwise(bigem.StepMix, X, Y, dict(structural=structural), how)
    close(ref.get_parameters(), ours.get_parameters(), 1e-6)
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X, Y), ref.predict_proba(X, Y), atol=1e-6)
    if how != "docstring":  # the fit that does the same steps
        fitted = bigem.StepMix(K, random_state=0, abs_tol=1e-12, structural=structural,
                               n_steps=1 if how == "one step" else 2).fit(X, Y)
        close(fitted.get_parameters(), ours.get_parameters(), 1e-12)


def test_the_steps_refuse_what_they_cannot_take(data):
    rng, z, X = data
    model = bigem.StepMix(K, random_state=0, structural="gaussian_unit")
    Y = rng.normal(size=(len(X), 1))
    with pytest.raises(NotFittedError, match="call em\\(X\\) first"):
        model.em(X, Y, freeze_measurement=True)
    with pytest.raises(NotFittedError, match="Call 'em' \\(or 'fit'\\) with X first"):
        model.m_step_structural(np.full((len(X), K), 1 / K), Y)
    with pytest.raises(ParameterError, match="log_emission_pm: bigem's ML correction runs inside fit"):
        model.em(X, Y, log_emission_pm=np.zeros((len(X), K)))
    model.em(X)
    with pytest.raises(bigem.errors.DataError, match=r"resp has shape \(1500, 2\); give one probability per class"):
        model.m_step_structural(np.full((len(X), 2), 0.5), Y)


@pytest.mark.parametrize("kw", [dict(), dict(n_steps=1, structural="gaussian_unit"),
                                dict(n_steps=2, structural="gaussian_unit")], ids=["measurement", "one", "two"])
def test_rel_tol_stops_every_em_as_stepmixs_does(data, kw):
    """It was refused; StepMix stops a run on either tolerance, in each EM its fit runs."""
    rng, z, X = data
    Y = rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None] if kw else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(K, random_state=0, verbose=0, progress_bar=0, rel_tol=1e-5, **kw).fit(X, Y)
        ours = bigem.StepMix(K, random_state=0, rel_tol=1e-5, **kw).fit(X, Y)
        tight = bigem.StepMix(K, random_state=0, **kw).fit(X, Y)
    # two steps: bigem's EM starts one M-step on (its start), and counts one iteration fewer
    # at any tolerance
    assert ours.n_iter_ == ref.n_iter_ - (kw.get("n_steps") == 2) < tight.n_iter_
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-7 if kw.get("n_steps") == 2 else 1e-12)
    close(ref.get_parameters(), ours.get_parameters(), 1e-5)


@pytest.mark.parametrize("kw", [dict(), dict(n_steps=1), dict(n_steps=2), dict(n_steps=3),
                                dict(n_steps=3, correction="ML")])
def test_progress_bar_prints_stepmixs_line_at_each_em(data, capsys, kw):
    rng, z, X = data
    Y = None if not kw else rng.normal(np.array([0.0, 1.0, 3.0])[z], 1.0)[:, None]
    printed = []
    for cls in (stepmix.StepMix, bigem.StepMix):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(K, random_state=0, verbose=0, structural="gaussian_unit", **kw).fit(X, Y)
        printed.append(capsys.readouterr().out)
    assert printed[1] == printed[0] and printed[0].startswith("Fitting StepMix...\n")
    with pytest.raises(ValueError):  # data refused: no line, as StepMix prints its line once the data are taken
        bigem.StepMix(K, structural="gaussian_unit", **kw).fit(X[:, :0], Y)
    assert capsys.readouterr().out == ""
