"""Hidden Markov models: kernels against an independent log-space reference, invariants,
batching and streaming, recovery of known parameters, bad input, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bigem
from bigem import CategoricalHMM, GaussianHMM, PoissonHMM
from bigem._core.errors import DataError, ModelFileError, NotFittedError, ParameterError
from bigem._core.types import SequenceChunk
from bigem.estimators.hmm import ImpossibleSequenceWarning
from bigem.models.hmm import HMMModel, forward_backward, forward_backward_log, make_lanes, viterbi
from bigem.models import components
from bigem.models.gaussian import GaussianComponent

K, D = 3, 2
START = np.array([0.6, 0.3, 0.1])
TRANS = np.array([[0.8, 0.1, 0.1], [0.15, 0.8, 0.05], [0.1, 0.2, 0.7]])
MEANS = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 3.0]])


def sampled(n: int, seed: int = 0, covariance_type: str = "diag"):
    gen = GaussianHMM(K, covariance_type="diag", init_params="", random_state=seed, dtype="float64")
    gen.startprob_, gen.transmat_, gen.means_, gen.covars_ = START, TRANS, MEANS, np.full((K, D), 0.5)
    gen.n_features = D
    return gen.sample(n, random_state=seed)


def given(model, covariance_type="diag", **kw):
    model.startprob_ = np.full(K, 1.0 / K)
    model.transmat_ = np.full((K, K), 0.2) + np.eye(K) * 0.4
    model.means_ = MEANS + 0.5
    model.covars_ = {
        "diag": np.ones((K, D)), "full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "spherical": np.ones(K)
    }[covariance_type]
    return model


def log_b_for(X):
    em = GaussianComponent("diag")
    p = em.make_params(torch.tensor(MEANS), torch.full((K, D), 0.5, dtype=torch.float64))
    return components.log_prob(em, p, torch.tensor(X))


# ---------------------------------------------------------------- kernels
@pytest.mark.parametrize("segment", [None, 5, 64])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scaled_segmented_forward_backward_equals_log_space_reference(segment, dtype):
    X, _ = sampled(900, seed=1)
    lengths = np.array([400, 1, 17, 300, 182])
    log_b = log_b_for(X)
    pi, A = torch.tensor(START), torch.tensor(TRANS)
    ref = forward_backward_log(log_b, lengths, pi, A)
    got = forward_backward(log_b.to(dtype), lengths, pi, A, segment=segment)
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    np.testing.assert_allclose(got.loglik.numpy(), ref.loglik.numpy(), rtol=tol / 10)
    np.testing.assert_allclose(got.gamma.double().numpy(), ref.gamma.numpy(), atol=tol)
    np.testing.assert_allclose(got.trans.numpy(), ref.trans.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(got.start.numpy(), ref.start.numpy(), atol=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_transition_cross_sums_over_runs_of_rows_equal_one_float64_product(dtype):
    """The transition counts' a^T b is summed over runs of rows (several runs and a
    ragged tail here): the same as one product in float64, to rounding."""
    from bigem.models.hmm import _CROSS_ROWS, _cross_sums

    g = torch.Generator().manual_seed(0)
    n = 3 * _CROSS_ROWS + 123
    a, b = torch.rand(n, 4, generator=g, dtype=torch.float64), torch.rand(n, 5, generator=g, dtype=torch.float64)
    got = _cross_sums(a.to(dtype), b.to(dtype))
    assert got.dtype == torch.float64 and got.shape == (4, 5)
    want = a.to(dtype).double().T @ b.to(dtype).double()
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-13 if dtype == torch.float64 else 1e-5)


def test_segments_really_cut_long_sequences():
    lanes = make_lanes(np.array([1000, 10]), torch.device("cpu"), segment=100)
    assert lanes.n_lanes == 11 and lanes.chain.shape == (1, 10)
    assert lanes.counts[0] == 11 and len(lanes.counts) == 100


def test_one_long_sequence_is_practical_and_exact():
    """1e5 steps, cut into ~sqrt(T) segments: same log-likelihood as an uncut scaled pass."""
    X, _ = sampled(100_000, seed=2)
    log_b = log_b_for(X)
    pi, A = torch.tensor(START), torch.tensor(TRANS)
    cut = forward_backward(log_b, np.array([100_000]), pi, A)
    whole = forward_backward(log_b, np.array([100_000]), pi, A, segment=100_001)
    np.testing.assert_allclose(cut.loglik.numpy(), whole.loglik.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cut.trans.numpy(), whole.trans.numpy(), rtol=1e-9)
    np.testing.assert_allclose(cut.gamma.numpy(), whole.gamma.numpy(), atol=1e-9)


def test_extreme_outlier_falls_back_to_log_space_not_to_nan():
    """An emission gap of thousands of nats next to a forbidden transition underflows the
    scaled recursion; the log-space fallback must give the exact answer."""
    X, _ = sampled(50, seed=3)
    X[20] = [400.0, -400.0]
    lengths = np.array([30, 20])
    log_b = log_b_for(X)
    pi = torch.tensor(START)
    A = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.2, 0.2, 0.6]])
    got = forward_backward(log_b, lengths, pi, A)
    ref = forward_backward_log(log_b, lengths, pi, A)
    assert torch.isfinite(got.loglik).all()
    np.testing.assert_allclose(got.loglik.numpy(), ref.loglik.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got.gamma.numpy(), ref.gamma.numpy(), atol=1e-10)


def test_viterbi_is_the_best_path_by_brute_force():
    X, _ = sampled(6, seed=5)
    log_b = log_b_for(X).double()
    logp, path = viterbi(log_b, np.array([6]), torch.tensor(START), torch.tensor(TRANS))
    best, best_path = -math.inf, None
    for code in range(K**6):
        states = [(code // K**t) % K for t in range(6)]
        lp = math.log(START[states[0]]) + float(log_b[0, states[0]])
        for t in range(1, 6):
            lp += math.log(TRANS[states[t - 1], states[t]]) + float(log_b[t, states[t]])
        if lp > best:
            best, best_path = lp, states
    assert path.tolist() == best_path
    assert float(logp[0]) == pytest.approx(best, rel=1e-12)


# ---------------------------------------------------------------- invariants
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_loglik_non_decreasing_and_distributions_normalised(covariance_type):
    X, _ = sampled(600, seed=6)
    lengths = [200, 150, 250]
    m = given(GaussianHMM(K, covariance_type=covariance_type, init_params="", n_iter=15, tol=0.0), covariance_type)
    m.fit(X, lengths)
    h = np.array(m.monitor_.history)
    assert (np.diff(h) >= -1e-6 * np.abs(h[1:])).all()
    np.testing.assert_allclose(m.transmat_.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(m.startprob_.sum(), 1.0, rtol=1e-12)
    post = m.predict_proba(X, lengths)
    np.testing.assert_allclose(post.sum(1), 1.0, rtol=1e-6)
    assert (post >= 0).all()


def test_batched_equals_one_by_one():
    X, _ = sampled(500, seed=7)
    lengths = [100, 50, 200, 150]
    m = given(GaussianHMM(K, init_params="", dtype="float64"))
    ll_all, post_all = m.score_samples(X, lengths)
    starts = np.cumsum([0] + lengths[:-1])
    singles = [m.score_samples(X[s : s + n]) for s, n in zip(starts, lengths)]
    assert ll_all == pytest.approx(sum(s[0] for s in singles), rel=1e-12)
    np.testing.assert_allclose(post_all, np.concatenate([s[1] for s in singles]), atol=1e-12)
    paths = np.concatenate([m.predict(X[s : s + n]) for s, n in zip(starts, lengths)])
    np.testing.assert_array_equal(m.predict(X, lengths), paths)
    # the statistics of a batch are the sums of the statistics of its parts
    model = HMMModel(GaussianComponent("diag"), K, torch.float64, params="stmc")
    p = m._current_params(m._settings())
    x = torch.tensor(X)
    whole = model.e_step(p, SequenceChunk(x, torch.tensor(lengths), 0, 0))
    parts = model.e_step(p, SequenceChunk(x[:150], torch.tensor(lengths[:2]), 0, 0)) + model.e_step(
        p, SequenceChunk(x[150:], torch.tensor(lengths[2:]), 150, 2)
    )
    for a, b in ((whole.trans, parts.trans), (whole.start, parts.start), (whole.emission.sum_xx, parts.emission.sum_xx)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    assert float(whole.loglik) == pytest.approx(float(parts.loglik), rel=1e-12)


def test_streamed_from_npy_file_equals_in_memory(tmp_path):
    X, _ = sampled(3000, seed=8)
    lengths = np.array([700, 300, 1000, 999, 1])
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "lengths.npy", lengths)
    kw = dict(init_params="", n_iter=3, tol=0.0, dtype="float64", memory_budget=20_000)  # several batches
    a = given(GaussianHMM(K, **kw)).fit(X, lengths)
    b = given(GaussianHMM(K, **kw)).fit(str(tmp_path / "x.npy"), str(tmp_path / "lengths.npy"))
    c = given(GaussianHMM(K, init_params="", n_iter=3, tol=0.0, dtype="float64")).fit(X, lengths)  # one batch
    np.testing.assert_allclose(a.monitor_.history, b.monitor_.history, rtol=1e-12)
    np.testing.assert_allclose(a.monitor_.history, c.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.means_, c.means_, rtol=1e-9)
    assert b.score(str(tmp_path / "x.npy"), lengths) == pytest.approx(a.score(X, lengths), rel=1e-12)


# ---------------------------------------------------------------- recovery
def _align(est_means: np.ndarray, true_means: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmin(((est_means - m) ** 2).sum(1))) for m in true_means])


def test_gaussian_hmm_recovers_known_parameters():
    X, _ = sampled(20_000, seed=9)
    # random_state=2: from 0 and 1, hmmlearn's start (which bigem's is) ends in a local
    # optimum that merges two states, in hmmlearn's fit as in bigem's (its Dirichlet(1/K)
    # transition rows can start near 0)
    m = GaussianHMM(K, covariance_type="diag", n_iter=50, random_state=2, tol=1e-4).fit(X)
    order = _align(m.means_, MEANS)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(m.means_[order], MEANS, atol=0.05)
    np.testing.assert_allclose(m.transmat_[np.ix_(order, order)], TRANS, atol=0.03)
    np.testing.assert_allclose(m._covars_[order], 0.5, atol=0.05)


def test_categorical_and_poisson_hmms_recover_known_parameters():
    cat = CategoricalHMM(2, init_params="", dtype="float64")
    cat.startprob_, cat.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
    cat.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    X, _ = cat.sample(20_000, random_state=1)
    fit = CategoricalHMM(2, n_iter=100, tol=1e-6, random_state=1, dtype="float64").fit(X)
    order = np.argsort(fit.emissionprob_[:, 0])[::-1]
    np.testing.assert_allclose(fit.emissionprob_[order], cat.emissionprob_, atol=0.03)
    np.testing.assert_allclose(fit.transmat_[np.ix_(order, order)], cat.transmat_, atol=0.03)

    poi = PoissonHMM(2, init_params="", dtype="float64")
    poi.startprob_, poi.transmat_ = np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.05, 0.95]])
    poi.lambdas_ = np.array([[1.0, 8.0], [10.0, 2.0]])
    poi.n_features = 2
    X, _ = poi.sample(10_000, random_state=2)
    fit = PoissonHMM(2, n_iter=50, tol=1e-6, random_state=0).fit(X)
    order = np.argsort(fit.lambdas_[:, 0])
    np.testing.assert_allclose(fit.lambdas_[order], poi.lambdas_, rtol=0.05)


# ---------------------------------------------------------------- bad input
def test_lengths_must_sum_to_rows_and_be_positive():
    X, _ = sampled(100)
    m = GaussianHMM(K)
    with pytest.raises(DataError, match="lengths sum to 90 but X has 100 rows"):
        m.fit(X, [50, 40])
    with pytest.raises(DataError, match=r"lengths\[1\] is 0: every sequence needs at least one row"):
        m.fit(X, [50, 0, 50])
    with pytest.raises(DataError, match="lengths must hold integers"):
        m.fit(X, [50.5, 49.5])
    with pytest.raises(DataError, match=r"lengths must be a 1-D array of sequence lengths \(or a single row or "
                                        r"column of them\), got shape \(2, 2\)"):
        m.fit(X, [[25, 25], [25, 25]])


def test_lengths_as_a_row_or_a_column_are_read_as_hmmlearn_reads_them():
    """hmmlearn fits with lengths of shape (1, n) or (n, 1) (its cumulative sums flatten
    them); bigem refused them (audit AW)."""
    X, _ = sampled(100)
    kw = dict(n_components=K, random_state=0, n_iter=5, dtype="float64")
    plain = GaussianHMM(**kw).fit(X, [50, 50])
    for shaped in (np.array([[50, 50]]), np.array([[50], [50]])):
        np.testing.assert_array_equal(GaussianHMM(**kw).fit(X, shaped).means_, plain.means_)
        assert plain.score(X, shaped) == plain.score(X, [50, 50])


def test_nan_and_inf_rejected():
    X, _ = sampled(100)
    X[7, 1] = np.nan
    with pytest.raises(DataError, match="Input X contains NaN"):
        GaussianHMM(K).fit(X)
    X[7, 1] = np.inf
    with pytest.raises(DataError, match="infinity"):
        GaussianHMM(K).fit(X)


def test_categorical_symbols_must_be_integers_in_range():
    X = np.array([[0], [1], [2], [1]])
    with pytest.raises(DataError, match="row 2 holds 2.5: CategoricalHMM symbols must be non-negative integers"):
        CategoricalHMM(2).fit(np.array([[0], [1], [2.5], [1]]))
    with pytest.raises(DataError, match="X holds symbol 2, outside 0..1"):
        CategoricalHMM(2, n_features=2).fit(X)
    with pytest.raises(DataError, match="row 1 holds -1"):
        CategoricalHMM(2).fit(np.array([[0], [-1]]))


def test_poisson_counts_must_be_non_negative():
    with pytest.raises(DataError, match="row 1, column 0 holds -3: PoissonHMM models counts"):
        PoissonHMM(2).fit(np.array([[1, 2], [-3, 1], [0, 0]]))


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("transmat_", np.array([[0.5, 0.6, 0.0], [0.2, 0.8, 0], [0, 0, 1]]), "row 0 of transmat_ sums to 1.1"),
        ("transmat_", np.array([[1.2, -0.2, 0.0], [0.2, 0.8, 0], [0, 0, 1]]), "transmat_ has negative entries"),
        ("startprob_", np.array([0.5, 0.4, 0.0]), "startprob_ sums to 0.9"),
        ("startprob_", np.array([np.nan, 0.5, 0.5]), "contains NaN or infinity"),
    ],
)
def test_user_probabilities_are_validated(name, value, message):
    X, _ = sampled(50)
    m = given(GaussianHMM(K, init_params=""))
    setattr(m, name, value)
    with pytest.raises(ParameterError, match=message):
        m.fit(X)


def test_impossible_sequence_scores_minus_inf_warns_and_fits_without_nan():
    cat = CategoricalHMM(2, init_params="", n_iter=5, tol=0.0, dtype="float64")
    cat.startprob_ = np.array([1.0, 0.0])
    cat.transmat_ = np.array([[0.9, 0.1], [0.0, 1.0]])  # state 1 never returns to 0
    cat.emissionprob_ = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])  # symbol 2 only in state 1
    X = np.array([[0], [0], [2], [0], [0], [1], [0], [1], [2], [2]])
    lengths = [4, 2, 4]  # sequence 0: 0 0 2 0 needs 1 -> 0: impossible
    with pytest.warns(ImpossibleSequenceWarning, match="first: sequence 0"):
        assert cat.score(X, lengths) == -np.inf
    with pytest.warns(ImpossibleSequenceWarning, match="impossible"):
        _, post = cat.score_samples(X, lengths)
    assert np.isnan(post[:4]).all() and np.allclose(post[4:].sum(1), 1.0)
    with pytest.warns(ImpossibleSequenceWarning, match="impossible"):  # hmmlearn's: NaN, and state 0 there
        value, path = cat.decode(X, lengths, algorithm="map")
    assert np.isnan(value) and (path[:4] == 0).all() and (path[4:] == post[4:].argmax(1)).all()
    with pytest.warns(ImpossibleSequenceWarning, match="left out of this fit"):
        cat.fit(X, lengths)
    for p in (cat.startprob_, cat.transmat_, cat.emissionprob_):
        assert np.isfinite(p).all()
    np.testing.assert_allclose(cat.transmat_.sum(1), 1.0)


def test_not_fitted_and_bad_hyper_parameters():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        GaussianHMM(K).score(np.zeros((3, D)))
    with pytest.raises(ParameterError, match="'params' parameter of GaussianHMM must be a string of letters"):
        GaussianHMM(K, params="stx").fit(np.zeros((10, D)))
    with pytest.raises(ParameterError, match="'covariance_type' parameter"):
        GaussianHMM(K, covariance_type="bogus").fit(np.zeros((10, D)))
    with pytest.raises(ParameterError, match="'algorithm' parameter"):
        GaussianHMM(K, algorithm="beam").fit(np.zeros((10, D)))


# ---------------------------------------------------------------- API
def test_save_load_round_trip_and_damaged_file(tmp_path):
    X, _ = sampled(400, seed=10)
    for model in (
        given(GaussianHMM(K, covariance_type="full", init_params="", n_iter=3, dtype="float64"), "full"),
        PoissonHMM(2, n_iter=3, random_state=0).fit(np.abs(np.round(X)).astype(int)),
        CategoricalHMM(2, n_iter=3, random_state=0).fit((X[:, :1] > 0).astype(int)),
    ):
        data = X if isinstance(model, GaussianHMM) else (
            np.abs(np.round(X)).astype(int) if isinstance(model, PoissonHMM) else (X[:, :1] > 0).astype(int)
        )
        if isinstance(model, GaussianHMM):
            model.fit(data, [200, 200])
        path = tmp_path / f"{type(model).__name__}.bigem"
        model.save(path)
        back = bigem.load(path)
        assert type(back) is type(model)
        assert back.score(data) == pytest.approx(model.score(data), rel=1e-12)
        np.testing.assert_array_equal(back.predict(data), model.predict(data))
        assert back.monitor_.history == model.monitor_.history
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(raw[:-8]))
    with pytest.raises(ModelFileError, match="truncated|modified"):
        bigem.load(path)


def test_sample_is_reproducible_and_follows_the_model():
    m = given(GaussianHMM(K, init_params=""))
    m.transmat_ = TRANS
    a, sa = m.sample(5000, random_state=3)
    b, sb = m.sample(5000, random_state=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    counts = np.zeros((K, K))
    np.add.at(counts, (sa[:-1], sa[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), TRANS, atol=0.04)
    np.testing.assert_allclose(a[sa == 1].mean(0), MEANS[1] + 0.5, atol=0.1)


def test_every_constructor_parameter_is_documented():
    import inspect

    for cls in (GaussianHMM, CategoricalHMM, PoissonHMM, bigem.GMMHMM):
        for name in inspect.signature(cls).parameters:
            assert f"{name} :" in cls.__doc__ or f"{name}," in cls.__doc__, (cls.__name__, name)


@pytest.mark.parametrize("segment", [7, 50])
def test_segmented_viterbi_equals_uncut(segment):
    X, _ = sampled(1200, seed=11)
    X = X + np.random.default_rng(1).normal(0, 1.5, X.shape)
    lengths = np.array([700, 3, 497])
    log_b = log_b_for(X)
    pi, A = torch.tensor(START), torch.tensor(TRANS)
    lp_cut, path_cut = viterbi(log_b, lengths, pi, A, segment=segment)
    lp, path = viterbi(log_b, lengths, pi, A, segment=10_000)
    np.testing.assert_allclose(lp_cut.numpy(), lp.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(path_cut.numpy(), path.numpy())


# ---------------------------------------------------------------- GMMHMM
def test_gmmhmm_with_one_component_equals_gaussian_hmm():
    """n_mix=1 without priors is a Gaussian HMM: a different emission code path must
    give the same start and the same optimum. (hmmlearn's GMMHMM takes covariances about
    the E-step's means, GaussianHMM about the new ones, so the paths between differ.)"""
    from bigem import GMMHMM

    X, _ = sampled(800, seed=12)
    lengths = [300, 500]
    for ct, cov in (("diag", np.ones((K, 1, D))), ("full", np.tile(np.eye(D), (K, 1, 1, 1)))):
        kw = dict(covariance_type=ct, init_params="", n_iter=500, tol=1e-9, dtype="float64")
        g = given(GaussianHMM(K, covars_prior=0.0, covars_weight=0.0, **kw), ct).fit(X, lengths)
        m = GMMHMM(K, n_mix=1, min_covar=0.0, **kw)
        m.startprob_, m.transmat_ = np.full(K, 1.0 / K), np.full((K, K), 0.2) + np.eye(K) * 0.4
        m.means_, m.weights_, m.covars_ = (MEANS + 0.5)[:, None, :], np.ones((K, 1)), cov
        m.fit(X, lengths)
        assert m.monitor_.converged and g.monitor_.converged
        assert m.monitor_.history[0] == pytest.approx(g.monitor_.history[0], rel=1e-12)
        assert m.monitor_.history[-1] == pytest.approx(g.monitor_.history[-1], rel=1e-10)
        np.testing.assert_allclose(m.means_[:, 0], g.means_, rtol=1e-5)
        np.testing.assert_allclose(m.transmat_, g.transmat_, rtol=1e-5)


def test_gmmhmm_recovers_mixture_means_and_round_trips(tmp_path):
    """Each state's mixture is a group of nearby Gaussians (the model GMMHMM's
    initialisation assumes, as hmmlearn's does: k-means of the states, then of each
    state's mixture)."""
    from bigem import GMMHMM

    gen = GMMHMM(2, n_mix=2, init_params="", dtype="float64")
    gen.startprob_, gen.transmat_ = np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.05, 0.95]])
    gen.weights_ = np.array([[0.3, 0.7], [0.6, 0.4]])
    gen.means_ = np.array([[[0.0, 0.0], [3.0, 3.0]], [[-6.0, 6.0], [-9.0, 3.0]]])
    gen.covars_ = np.full((2, 2, 2), 0.3)
    gen.n_features = 2
    X, _ = gen.sample(8000, random_state=1)
    m = GMMHMM(2, n_mix=2, covariance_type="full", n_iter=30, tol=1e-3, random_state=0).fit(X)
    found = m.means_.reshape(-1, 2)
    for mu in gen.means_.reshape(-1, 2):
        assert np.min(np.linalg.norm(found - mu, axis=1)) < 0.1
    assert m.score(X) > GaussianHMM(2, n_iter=30, random_state=0).fit(X).score(X)
    m.save(tmp_path / "g.bigem")
    back = bigem.load(tmp_path / "g.bigem")
    assert back.score(X) == pytest.approx(m.score(X), rel=1e-10)


def test_cpu_e_step_holds_numpy_blas_to_one_thread_and_restores_it(monkeypatch):
    from threadpoolctl import threadpool_info

    import bigem.models.hmm as hmm_module

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    # the libraries are looked up once per process: look them up now, with every one
    # an earlier test loaded (scikit-learn's scipy brings its own BLAS)
    monkeypatch.setattr(hmm_module._blas_one_thread, "_controller", [])
    before = blas_threads()
    seen = []
    inner = hmm_module.forward_backward

    def spy(*args, **kw):
        seen.append(blas_threads())
        return inner(*args, **kw)

    monkeypatch.setattr(hmm_module, "forward_backward", spy)
    X, _ = sampled(300)
    limited = given(GaussianHMM(K, n_iter=3, init_params="", dtype="float64")).fit(X)
    limited.predict_proba(X)
    assert seen and all(threads and set(threads) == {1} for threads in seen)
    assert blas_threads() == before
    # without threadpoolctl (an optional dependency) nothing changes but the speed
    monkeypatch.setattr(hmm_module._blas_one_thread, "_controller", [None])
    free = given(GaussianHMM(K, n_iter=3, init_params="", dtype="float64")).fit(X)
    np.testing.assert_allclose(free.means_, limited.means_, rtol=1e-12)
    np.testing.assert_allclose(free.monitor_.history, limited.monitor_.history, rtol=1e-12)


def test_default_batch_budget_is_small_on_the_cpu_and_explicit_values_win():
    """None: 128MB on the CPU (peak memory within hmmlearn's); an explicit budget is kept."""
    assert GaussianHMM(2)._settings().memory_budget == 128 * 10**6
    assert GaussianHMM(2, memory_budget="1GB")._settings().memory_budget == 10**9


def test_overlapping_e_steps_leave_numpy_blas_threads_as_they_were(monkeypatch):
    """Dask runs E-steps in threads: one E-step ending must not lift the BLAS limit
    under another, and the last one out restores the limit the process had."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bigem.models.hmm import _blas_one_thread

    monkeypatch.setattr(_blas_one_thread, "_controller", [])  # looked up now, with every library loaded so far

    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("numpy's BLAS is not visible to threadpoolctl")

    def threads():
        return [c.num_threads for c in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]

    cpu = torch.device("cpu")
    with blas.limit(limits=2):  # a known starting point above the E-step's limit
        before = threads()
        first, second = _blas_one_thread(cpu), _blas_one_thread(cpu)
        first.__enter__()
        second.__enter__()
        assert set(threads()) == {1}
        first.__exit__(None, None, None)
        assert set(threads()) == {1}  # the second E-step still runs
        second.__exit__(None, None, None)
        assert threads() == before


def test_poisson_hmm_with_large_counts_keeps_its_digits_in_float32():
    """Counts near 1e7: the terms of log p(x) cancel to a number of order log x, which
    float32 lost entirely (-6798 against -5909); the emissions now run in float64."""
    rng = np.random.default_rng(0)
    lam = np.array([[1e7, 2e7], [1.5e7, 0.5e7]])
    X = rng.poisson(lam[rng.integers(0, 2, 300)]).astype(np.int64)

    def given(dtype):
        m = PoissonHMM(2, n_iter=5, init_params="", tol=0.0, dtype=dtype)
        m.startprob_, m.transmat_, m.lambdas_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]), lam * 1.1
        return m.fit(X)

    f32, f64 = given("float32"), given("float64")
    assert f32.score(X) == pytest.approx(f64.score(X), rel=1e-8)
    # at tol=0 a fall of float32's total by its rounding (4e-9 of it) ends the run, as
    # hmmlearn's monitor ends it: with a GPU's order of sums, one iteration sooner
    done = len(f32.monitor_.history)
    assert done >= 4
    np.testing.assert_allclose(list(f32.monitor_.history), list(f64.monitor_.history)[:done], rtol=1e-7)
    assert f32.score(X) < 0
    one = PoissonHMM(1, init_params="", dtype="float32")
    one.startprob_, one.transmat_, one.lambdas_ = np.ones(1), np.ones((1, 1)), np.array([[2.0**25]])
    # log p(2^25 | 2^25) = -0.5 log(2 pi 2^25) + O(1/x): about -9.59, not 0.0
    assert one.score(np.array([[2**25]])) == pytest.approx(-0.5 * np.log(2 * np.pi * 2**25), abs=1e-3)


@pytest.mark.parametrize("kind, own", [("GaussianHMM", r"increase min_covar \(now 0\) or covars_prior \(now 0\.0\)"),
                                       ("GMMHMM", r"set min_covar > 0 \(now 0\)")])
def test_hmm_numerical_errors_name_the_hmms_own_parameters(kind, own):
    """A state whose rows all coincide has a singular covariance: the message named
    reg_covar (a GaussianMixture parameter) or asked for matrices the user never passed."""
    from bigem import GMMHMM

    X = np.r_[np.zeros((60, 2)), np.random.default_rng(0).normal(5, 1, (60, 2))]
    if kind == "GaussianHMM":
        m = GaussianHMM(2, covariance_type="full", covars_prior=0.0, min_covar=0.0, n_iter=3, init_params="")
        m.means_, m.covars_ = np.array([[0.0, 0.0], [5.0, 5.0]]), np.stack([np.eye(2)] * 2)
    else:
        m = GMMHMM(2, covariance_type="full", min_covar=0.0, n_iter=3, init_params="")
        m.weights_, m.means_ = np.ones((2, 1)), np.array([[[0.0, 0.0]], [[5.0, 5.0]]])
        m.covars_ = np.stack([np.eye(2)[None]] * 2)
    m.startprob_, m.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"state 0 cannot be estimated.*" + own) as info:
        m.fit(X)
    assert "reg_covar" not in str(info.value) and "pass symmetric" not in str(info.value)


@pytest.mark.parametrize("kind", ["GaussianHMM", "GMMHMM"])
def test_float32_hmm_fits_data_far_from_the_origin_as_float64_does(kind):
    """A GaussianHMM on data 1e7 from the origin was silently worse in float32 (-1613.8
    against -1568.3): the cast to float32 had dropped the spread's digits."""
    from bigem import GMMHMM

    X, _ = sampled(800, seed=3)
    X = X + 1e7
    lengths = [300, 500]

    def fit(dtype):
        if kind == "GaussianHMM":
            m = GaussianHMM(K, n_iter=5, tol=0.0, init_params="", dtype=dtype)
            m.means_, m.covars_ = MEANS + 1e7 + 0.5, np.ones((K, D))
        else:
            m = GMMHMM(K, n_mix=1, n_iter=5, tol=0.0, init_params="", dtype=dtype)
            m.weights_, m.means_, m.covars_ = np.ones((K, 1)), (MEANS + 1e7 + 0.5)[:, None], np.ones((K, 1, D))
        m.startprob_, m.transmat_ = np.full(K, 1.0 / K), np.full((K, K), 0.2) + np.eye(K) * 0.4
        return m.fit(X, lengths)

    f32, f64 = fit("float32"), fit("float64")
    np.testing.assert_allclose(f32.monitor_.history, f64.monitor_.history, rtol=1e-6)
    assert f32.score(X, lengths) == pytest.approx(f64.score(X, lengths), rel=1e-6)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=1e-12, atol=1e-4)
    np.testing.assert_array_equal(f32.predict(X, lengths), f64.predict(X, lengths))


def test_poisson_hmm_counts_beyond_float32_stay_exact():
    """float32 rounds 2**24 + 1 to 2**24: PoissonHMM reads its counts in float64 whatever
    ``dtype`` says, so the fitted rate of one state is the counts' exact mean."""
    X = np.full((10, 1), 2**24 + 1, dtype=np.int64)
    X[::2] += 2  # 2**24 + 3 on every other row: mean 2**24 + 2 (float32 reads 2**24 and 2**24 + 4)
    X[:4] = 2**24 + 1  # mean now 2**24 + 1.6 exactly; the float32 rows would give 2**24 + 1.2
    m = PoissonHMM(1, n_iter=1, dtype="float32", random_state=0).fit(X)
    assert m.lambdas_[0, 0] == X.mean()


def test_pieces_and_whole_sequences_count_alike_where_reads_are_deferred(monkeypatch):
    """On a GPU a batch of whole sequences counts its rows and sequences in 0-d device
    tensors; a piece of a cut sequence counted them in ints, so the processes of a
    torch.distributed fit could disagree on the statistics' layout and fall back from
    one all-reduce to a gather of pickles every E-step. Both now count alike."""
    from bigem._core import numerics
    from bigem.models import hmm as hmm_model

    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(m, 1.0, (400, 2)) for m in (0.0, 4.0, -3.0)] * 5)
    lengths = [5000, 1000]  # the first longer than a batch: cut into pieces
    plain = GaussianHMM(3, n_iter=3, tol=0.0, random_state=0, dtype="float64", memory_budget=150_000).fit(X, lengths)
    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    kinds = []
    original = hmm_model.HMMModel._piece_stats

    def counted(self, *args, **kwargs):
        stats = original(self, *args, **kwargs)
        kinds.append(tuple((type(v), getattr(v, "dtype", None)) for v in
                           (stats.rows, stats.sequences, stats.impossible, stats.first_impossible)))
        return stats

    monkeypatch.setattr(hmm_model.HMMModel, "_piece_stats", counted)
    deferred = GaussianHMM(3, n_iter=3, tol=0.0, random_state=0, dtype="float64", memory_budget=150_000).fit(X, lengths)
    assert kinds and set(kinds) == {((torch.Tensor, torch.int64),) * 4}
    np.testing.assert_allclose(deferred.monitor_.history, plain.monitor_.history, rtol=1e-12)
