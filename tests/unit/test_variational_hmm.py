"""VariationalGaussianHMM and VariationalCategoricalHMM: the bound never falls, known
generating parameters are recovered, files round-trip, fits resume from checkpoints, and
bad input says what is wrong."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bigem import CategoricalHMM, GaussianHMM, VariationalCategoricalHMM, VariationalGaussianHMM, load
from bigem._core.errors import DataError, ModelFileError, ParameterError
from bigem.io import read_model_file, write_model_file

TRUE_A = np.array([[0.9, 0.1], [0.2, 0.8]])
TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 3.0]])
TRUE_COVARS = np.array([[[1.0, 0.4], [0.4, 0.5]], [[0.5, -0.2], [-0.2, 1.5]]])
TRUE_E = np.array([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])


def _gaussian_sample(n=3000, seed=0):
    true = GaussianHMM(2, covariance_type="full", init_params="", dtype="float64")
    true.startprob_, true.transmat_, true.means_, true.covars_ = np.array([0.5, 0.5]), TRUE_A, TRUE_MEANS, TRUE_COVARS
    return true.sample(n, random_state=seed)


def _categorical_sample(n=3000, seed=0):
    true = CategoricalHMM(2, init_params="", dtype="float64")
    true.startprob_, true.transmat_, true.emissionprob_ = np.array([0.5, 0.5]), TRUE_A, TRUE_E
    return true.sample(n, random_state=seed)


LENGTHS = [1000, 1, 1999]


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_the_gaussian_bound_never_falls(covariance_type):
    X, _ = _gaussian_sample(1000)
    m = VariationalGaussianHMM(3, covariance_type=covariance_type, n_iter=15, tol=-np.inf, random_state=0)
    history = np.array(m.fit(X, [500, 1, 499]).monitor_.history)
    assert len(history) == 15
    assert (np.diff(history) >= -1e-9 * np.abs(history[1:])).all(), np.diff(history).min()


def test_the_categorical_bound_never_falls():
    X, _ = _categorical_sample()
    history = np.array(VariationalCategoricalHMM(3, n_iter=25, tol=-np.inf, random_state=0)
                       .fit(X, LENGTHS).monitor_.history)
    assert (np.diff(history) >= -1e-9 * np.abs(history[1:])).all(), np.diff(history).min()


def test_gaussian_recovers_the_generating_parameters():
    X, states = _gaussian_sample()
    m = VariationalGaussianHMM(2, random_state=0).fit(X, LENGTHS)
    assert m.monitor_.converged
    order = np.argsort(m.means_[:, 0])
    np.testing.assert_allclose(m.means_[order], TRUE_MEANS, atol=0.1)
    np.testing.assert_allclose(m.covars_[order], TRUE_COVARS, atol=0.12)
    np.testing.assert_allclose(m.transmat_[np.ix_(order, order)], TRUE_A, atol=0.04)
    assert (m.predict(X, LENGTHS) == order.argsort()[states]).mean() > 0.97
    # the posterior's counts: every row and (but for the first of each sequence) transition
    np.testing.assert_allclose(m.beta_posterior_.sum() - m.beta_prior_.sum(), len(X), rtol=1e-8)
    np.testing.assert_allclose(m.transmat_posterior_.sum() - m.transmat_prior_.sum(), len(X) - len(LENGTHS),
                               rtol=1e-8)


def test_categorical_recovers_the_generating_parameters():
    X, states = _categorical_sample()
    # random_state=4: from 0 (hmmlearn's start, which bigem's now is) the posteriors start
    # nearly alike and 60 iterations do not part them, in hmmlearn's fit as in bigem's
    m = VariationalCategoricalHMM(2, n_iter=60, tol=1e-3, random_state=4).fit(X, LENGTHS)
    order = np.argsort(-m.emissionprob_[:, 0])
    np.testing.assert_allclose(m.emissionprob_[order], TRUE_E, atol=0.04)
    np.testing.assert_allclose(m.transmat_[np.ix_(order, order)], TRUE_A, atol=0.05)
    np.testing.assert_allclose(m.emissionprob_posterior_.sum() - m.emissionprob_prior_.sum(), len(X), rtol=1e-8)


def test_float32_follows_float64():
    X, _ = _gaussian_sample(600)
    ref = VariationalGaussianHMM(2, n_iter=5, tol=-np.inf, random_state=0).fit(X)
    f32 = VariationalGaussianHMM(2, n_iter=5, tol=-np.inf, random_state=0, dtype="float32").fit(X)
    np.testing.assert_allclose(f32.monitor_.history, ref.monitor_.history, rtol=1e-5)
    np.testing.assert_allclose(f32.means_posterior_, ref.means_posterior_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(f32.scale_posterior_, ref.scale_posterior_, rtol=1e-4, atol=1e-5)


def test_files_and_small_batches_give_the_in_memory_fit(tmp_path):
    """The statistics of batches of sequences add (each carries the q it ran under), so a
    .npy file and a budget of a few rows per batch give the in-memory answer."""
    X, _ = _gaussian_sample(400)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "lengths.npy", np.array([150, 250]))
    whole = VariationalGaussianHMM(2, n_iter=4, tol=-np.inf, random_state=0).fit(X, [150, 250])
    for fitted in (VariationalGaussianHMM(2, n_iter=4, tol=-np.inf, random_state=0).fit(tmp_path / "x.npy",
                                                                                        tmp_path / "lengths.npy"),
                   VariationalGaussianHMM(2, n_iter=4, tol=-np.inf, random_state=0, memory_budget=2000).fit(
                       X, [150, 250])):
        np.testing.assert_allclose(fitted.monitor_.history, whole.monitor_.history, rtol=1e-12)
        np.testing.assert_allclose(fitted.scale_posterior_, whole.scale_posterior_, rtol=1e-10)


def test_aic_and_bic_count_hmmlearn_s_variational_parameters():
    X, _ = _gaussian_sample(500)
    m = VariationalGaussianHMM(2, covariance_type="diag", n_iter=5, random_state=0).fit(X)
    K, D = 2, 2
    n = (K - 1) + K * (K - 1) + (K * D + K) + (K + K * D)
    score = m.score(X)
    assert m.aic(X) == pytest.approx(-2 * score + 2 * n)
    assert m.bic(X) == pytest.approx(-2 * score + n * np.log(len(X)))


@pytest.mark.parametrize("make", [
    lambda: VariationalGaussianHMM(2, covariance_type="tied", n_iter=5, random_state=0),
    lambda: VariationalGaussianHMM(2, covariance_type="spherical", n_iter=5, random_state=0),
    lambda: VariationalCategoricalHMM(2, n_iter=5, random_state=0),
], ids=["gaussian-tied", "gaussian-spherical", "categorical"])
def test_a_saved_model_loads_with_its_posteriors(tmp_path, make):
    m = make()
    X = _categorical_sample(500)[0] if isinstance(m, VariationalCategoricalHMM) else _gaussian_sample(500)[0]
    m.fit(X)
    m.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert type(back) is type(m)
    kept = list(m._kept_arrays)
    assert len(kept) == (3 if isinstance(m, VariationalCategoricalHMM) else 2)
    for name in [*back._fitted_arrays, *kept]:
        np.testing.assert_array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(m, name)), err_msg=name)
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    assert back.score(X) == m.score(X)
    assert back.monitor_.history == m.monitor_.history
    if getattr(m, "covariance_type", None) == "tied":
        assert isinstance(back.dof_posterior_, float)  # hmmlearn's tied dof is a number


def test_a_damaged_posterior_in_a_model_file_is_refused(tmp_path):
    X, _ = _gaussian_sample(300)
    VariationalGaussianHMM(2, n_iter=3, random_state=0).fit(X).save(tmp_path / "m.bigem")
    tensors, meta = read_model_file(tmp_path / "m.bigem")
    tensors["beta_posterior_"] = -tensors["beta_posterior_"]
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="beta_posterior_"):
        load(tmp_path / "bad.bigem")


@pytest.mark.parametrize("change, match", [
    (lambda t: t[..., :1], r"transmat_subnorm_ has shape \(2, 1\), expected \(2, 2\)"),
    (lambda t: t + 1.0, r"transmat_subnorm_ holds values outside \(0, 1\]"),
])
def test_damaged_sub_normalised_parameters_in_a_model_file_are_refused(tmp_path, change, match):
    X, _ = _gaussian_sample(300)
    VariationalGaussianHMM(2, n_iter=3, random_state=0).fit(X).save(tmp_path / "m.bigem")
    tensors, meta = read_model_file(tmp_path / "m.bigem")
    tensors["transmat_subnorm"] = change(tensors["transmat_subnorm"]).contiguous()
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path / "bad.bigem")


def test_a_model_set_by_hand_saves_without_sub_normalised_parameters(tmp_path):
    m = VariationalCategoricalHMM(2, n_iter=3, random_state=0).fit(_categorical_sample(300)[0])
    for name in m._kept_arrays:
        delattr(m, name)
    m.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert not any(hasattr(back, name) for name in m._kept_arrays)
    np.testing.assert_array_equal(back.emissionprob_posterior_, m.emissionprob_posterior_)


class _Killed(Exception):
    pass


def test_a_killed_fit_resumes_to_the_uninterrupted_answer(tmp_path):
    X, _ = _gaussian_sample(800)

    def make(seed):
        return VariationalGaussianHMM(2, n_iter=10, tol=-np.inf, random_state=seed)

    def die(info):
        if info.iteration == 7:
            raise _Killed

    whole = make(0).fit(X, [400, 400])
    with pytest.raises(_Killed):
        make(0).fit(X, [400, 400], checkpoint=tmp_path / "fit.ckpt", checkpoint_every=5, callback=die)
    resumed = make(0).fit(X, [400, 400], checkpoint=tmp_path / "fit.ckpt")
    np.testing.assert_allclose(resumed.monitor_.history, whole.monitor_.history, rtol=1e-12)
    for name in ("means_posterior_", "scale_posterior_", "transmat_posterior_"):
        np.testing.assert_allclose(getattr(resumed, name), getattr(whole, name), rtol=1e-12, err_msg=name)


def test_overwriting_set_posteriors_is_logged_as_hmmlearn_does(caplog):
    """hmmlearn's messages, one per letter, naming the first attribute it checks of each."""
    X, _ = _categorical_sample(200)
    m = VariationalCategoricalHMM(2, n_iter=1, random_state=0)
    m.emissionprob_prior_ = np.ones((2, 3))
    with caplog.at_level(logging.WARNING):
        m.fit(X)
    assert "will be overwritten" not in caplog.text  # hmmlearn checks the posterior first, and stops there
    m.fit(X)
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"Even though the '{name}' attribute is set, it will be overwritten during initialization because "
                    f"'init_params' contains '{code}'" for name, code in (("startprob_posterior_", "s"),
                                                                          ("transmat_posterior_", "t"),
                                                                          ("emissionprob_posterior_", "e"))]
    caplog.clear()
    Y, _ = _gaussian_sample(100)
    g = VariationalGaussianHMM(2, n_iter=1, random_state=0).fit(Y)
    with caplog.at_level(logging.WARNING):
        g.fit(Y)
    assert [r.getMessage().split("'")[1] for r in caplog.records] == [
        "startprob_posterior_", "transmat_posterior_", "means_prior_", "dof_prior_"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name, value, match", [
    ("dof_posterior_", np.array([0.5, 3.0]), "dof_posterior_ must be greater than 1"),
    ("beta_prior_", np.array([1.0, 0.0]), "beta_prior_ must be greater than 0"),
    ("means_posterior_", np.zeros((3, 2)), r"means_posterior_"),
    ("scale_posterior_", np.tile(np.array([[1.0, 2.0], [2.0, 1.0]]), (2, 1, 1)), "scale_posterior_ must be positive"),
])
def test_bad_posteriors_set_by_hand_are_named(name, value, match):
    X, _ = _gaussian_sample(200)
    fitted = VariationalGaussianHMM(2, n_iter=1, random_state=0).fit(X)
    m = VariationalGaussianHMM(2, init_params="", n_iter=1)
    for attr in fitted._fitted_arrays:
        setattr(m, attr, np.copy(getattr(fitted, attr)))
    setattr(m, name, value)
    with pytest.raises(ParameterError, match=match):
        m.fit(X)


@pytest.mark.parametrize("kwargs, match", [
    (dict(startprob_prior=-1.0), "'startprob_prior' parameter of VariationalGaussianHMM must be"),
    (dict(transmat_prior=0.0), "'transmat_prior' parameter of VariationalGaussianHMM must be positive"),
    (dict(covariance_type="block"), "'covariance_type' parameter"),
    (dict(n_iter=-1), "'n_iter' parameter"),
    (dict(covariance_type="tied", dof_prior=[5.0, 6.0]), "'dof_prior' parameter of VariationalGaussianHMM must be a "
                                                         "number with covariance_type='tied'"),
    (dict(covariance_type="diag", scale_prior=-1.0), "scale_prior_ must be positive definite"),
    (dict(scale_prior=-1.0), r"'scale_prior' parameter of VariationalGaussianHMM must have shape \(2, 2, 2\)"),
    (dict(beta_prior=[1.0, 2.0, 3.0]), "'beta_prior' parameter of VariationalGaussianHMM must broadcast"),
])
def test_bad_hyper_parameters_are_named(kwargs, match):
    X, _ = _gaussian_sample(100)
    with pytest.raises(ParameterError, match=match):
        VariationalGaussianHMM(2, **kwargs).fit(X)


def test_bigem_only_settings_of_the_other_hmms_are_not_parameters_here():
    with pytest.raises(ParameterError, match="Invalid parameter 'accelerate'"):
        VariationalGaussianHMM().set_params(accelerate="squarem")


def test_bad_data_is_named():
    X, _ = _gaussian_sample(100)
    with pytest.raises(DataError, match="n_samples >= n_components"):
        VariationalGaussianHMM(5).fit(X[:3])
    m = VariationalGaussianHMM(2, n_iter=2, random_state=0).fit(X)
    with pytest.raises(DataError, match="X has 3 features, but VariationalGaussianHMM is expecting 2"):
        m.predict(np.zeros((4, 3)))
    with pytest.raises(DataError, match="non-negative integers"):
        VariationalCategoricalHMM(2).fit(np.array([[0], [1], [-1]]))
    with pytest.raises(DataError, match="one column"):
        VariationalCategoricalHMM(2).fit(np.zeros((5, 2), dtype=int))
    with pytest.raises(ParameterError, match="'emissionprob_prior' parameter of VariationalCategoricalHMM must be "
                                             "positive"):
        VariationalCategoricalHMM(2, emissionprob_prior=0.0).fit(np.array([[0], [1], [2]]))


def test_inference_before_fit_is_refused():
    with pytest.raises(ValueError, match="not fitted yet"):
        VariationalCategoricalHMM(2).predict(np.array([[0], [1]]))


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_number_as_the_scale_prior_of_matrices_is_refused_naming_the_shape(covariance_type):
    """It filled every entry of the matrix and was refused as 'not positive definite'."""
    from bigem.errors import ParameterError

    X = np.random.default_rng(0).normal(size=(60, 3))
    shape = r"\(3, 3\)" if covariance_type == "tied" else r"\(2, 3, 3\) or \(3, 3\)"
    with pytest.raises(ParameterError, match=rf"'scale_prior' .* must have shape {shape} .*got \(\)"):
        VariationalGaussianHMM(2, covariance_type=covariance_type, scale_prior=0.5, n_iter=2).fit(X)
    fitted = VariationalGaussianHMM(2, covariance_type=covariance_type, scale_prior=0.5 * np.eye(3), n_iter=2).fit(X)
    assert np.allclose(fitted.scale_prior_, 0.5 * np.eye(3))
