"""MultinomialMixture against truth: known generating parameters, a brute-force EM from
the same start, exact equality of sparse, dense and every sparse layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bigem import MultinomialMixture

from .conftest import aligned, make_documents, reference_em

# fits run a fixed number of iterations (tol=0) to compare paths: not converging is expected
pytestmark = pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning")


def test_recovers_known_generating_parameters(documents):
    X, z, weights, theta = documents
    est = MultinomialMixture(3, random_state=0, dtype="float64", tol=1e-8, alpha=0.01).fit(sp.csr_matrix(X))
    order = aligned(est.probabilities_, theta)
    np.testing.assert_allclose(est.probabilities_[order], theta, atol=0.02)
    np.testing.assert_allclose(est.weights_[order], np.bincount(z, minlength=3) / len(z), atol=1e-3)
    # documents go to the component that made them
    assert (order[z] == est.predict(sp.csr_matrix(X))).mean() > 0.99
    np.testing.assert_allclose(est.mean_lengths_[order], [X[z == k].sum(1).mean() for k in range(3)], rtol=1e-3)


@pytest.mark.parametrize("alpha", [1.0, 0.05])
def test_per_iteration_log_likelihood_matches_brute_force_em(documents, alpha):
    X, _, _, _ = documents
    rng = np.random.default_rng(1)
    w0 = np.full(3, 1 / 3)
    theta0 = rng.dirichlet(np.ones(X.shape[1]), size=3)
    sample_weight = rng.integers(0, 3, X.shape[0]).astype(float)
    est = MultinomialMixture(3, alpha=alpha, dtype="float64", max_iter=12, tol=0.0, weights_init=w0,
                             probabilities_init=theta0, chunk_size=128)
    est.fit(sp.csr_matrix(X), sample_weight=sample_weight)
    ours = est.history_[0]["log_likelihood"]
    ref = reference_em(X, w0, theta0, alpha, 12, sample_weight)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    assert est.score(sp.csr_matrix(X)) == pytest.approx(
        reference_em(X, est.weights_, est.probabilities_, alpha, 1)[0], rel=1e-12)


def test_an_iteration_takes_the_log_of_its_parameters_once(documents, monkeypatch):
    """The E-step's log theta and the prior's gain after the M-step (log new - log old)
    share their logs: one (K, V) log an iteration, not three; the fit is the brute force's."""
    X, _, _, _ = documents
    logs = []
    log = torch.log

    def counted(t, *args, **kw):
        if t.shape == (3, X.shape[1]):
            logs.append(t)
        return log(t, *args, **kw)

    monkeypatch.setattr(torch, "log", counted)
    w0, theta0 = np.full(3, 1 / 3), np.random.default_rng(2).dirichlet(np.ones(X.shape[1]), size=3)
    est = MultinomialMixture(3, alpha=0.5, dtype="float64", max_iter=8, tol=0.0, weights_init=w0,
                             probabilities_init=theta0).fit(sp.csr_matrix(X))
    assert len(logs) <= 8 + 2  # one an iteration (and the final parameters' for scoring)
    np.testing.assert_allclose(est.history_[0]["log_likelihood"], reference_em(X, w0, theta0, 0.5, 8), rtol=1e-10)


def test_float32_statistics_stay_close_to_float64(documents):
    X, _, _, _ = documents
    kw = dict(max_iter=8, tol=0.0, random_state=3, chunk_size=200)
    a = MultinomialMixture(3, dtype="float32", **kw).fit(sp.csr_matrix(X))
    b = MultinomialMixture(3, dtype="float64", **kw).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(a.history_[0]["log_likelihood"], b.history_[0]["log_likelihood"], rtol=1e-6)
    np.testing.assert_allclose(a.probabilities_, b.probabilities_, rtol=1e-4, atol=1e-7)


def test_sparse_dense_and_every_layout_give_the_same_fit(documents):
    X, _, _, _ = documents
    kw = dict(random_state=0, chunk_size=100, max_iter=20)
    ref = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    for data in (X, torch.from_numpy(X), sp.csc_matrix(X), sp.coo_matrix(X), sp.csr_array(X), sp.lil_matrix(X),
                 torch.from_numpy(X).to_sparse_csr()):
        est = MultinomialMixture(3, **kw).fit(data)
        np.testing.assert_array_equal(est.probabilities_, ref.probabilities_, err_msg=type(data).__name__)
        np.testing.assert_array_equal(est.weights_, ref.weights_)
        assert est.lower_bounds_ == ref.lower_bounds_


def test_coo_with_shuffled_and_repeated_entries_reads_as_scipy_does(documents):
    X, _, _, _ = documents
    coo = sp.coo_matrix(X)
    rng = np.random.default_rng(0)
    perm = rng.permutation(coo.nnz)
    half = coo.data // 2  # split every count into two entries of the same cell
    rows = np.concatenate([coo.row, coo.row])[np.concatenate([perm, perm])]
    cols = np.concatenate([coo.col, coo.col])[np.concatenate([perm, perm])]
    data = np.concatenate([half, coo.data - half])[np.concatenate([perm, perm + coo.nnz])]
    messy = sp.coo_matrix((data, (rows, cols)), shape=X.shape)
    kw = dict(random_state=0, chunk_size=77, max_iter=5, tol=0.0)
    a = MultinomialMixture(3, **kw).fit(messy)
    b = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(a.probabilities_, b.probabilities_)


@pytest.mark.parametrize("init, n_init", [("kmeans", 1), ("k-means++", 1), ("random_from_data", 6), ("random", 6)])
@pytest.mark.filterwarnings("ignore::bigem._core.errors.ComponentReseededWarning")
def test_every_initialisation_reaches_the_generating_clusters(init, n_init):
    """Spherical k-means finds the topics from one start; the random starts can stop at a
    local optimum (two seeds in one topic, where one may starve and be re-seeded), so the
    best of several runs is asked of them."""
    X, z, _, _ = make_documents(seed=4, n=400, V=40, length=60)
    est = MultinomialMixture(3, init_params=init, n_init=n_init, random_state=0, max_iter=200).fit(sp.csr_matrix(X))
    labels = est.predict(sp.csr_matrix(X))
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(z, labels) > 0.95
    assert np.all(np.diff(est.lower_bounds_) > -1e-4)  # MAP steps: the likelihood barely moves back, if at all


def test_the_best_of_n_init_runs_is_kept(documents):
    X, _, _, _ = documents
    est = MultinomialMixture(3, init_params="random", n_init=3, random_state=0, max_iter=30).fit(sp.csr_matrix(X))
    assert est.lower_bound_ == max(r["log_likelihood"][-1] for r in est.history_)


def test_integer_sample_weights_equal_repeated_documents(documents):
    X, _, _, _ = documents
    rng = np.random.default_rng(5)
    w = rng.integers(1, 4, X.shape[0])
    rep = np.repeat(X, w, axis=0)
    theta0 = rng.dirichlet(np.ones(X.shape[1]), size=3)
    kw = dict(dtype="float64", max_iter=6, tol=0.0, weights_init=np.full(3, 1 / 3), probabilities_init=theta0)
    a = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X), sample_weight=w)
    b = MultinomialMixture(3, **kw).fit(sp.csr_matrix(rep))
    np.testing.assert_allclose(a.probabilities_, b.probabilities_, rtol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-10)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    assert a.bic(sp.csr_matrix(X), ) == pytest.approx(b.bic(sp.csr_matrix(X)))


def test_empty_documents_move_only_the_weights():
    X, _, _, theta = make_documents(seed=6, n=300)
    empty = np.zeros((100, X.shape[1]), dtype=np.int64)
    kw = dict(dtype="float64", max_iter=1, tol=0.0, weights_init=np.array([0.2, 0.3, 0.5]), probabilities_init=theta)
    with_empty = MultinomialMixture(3, **kw).fit(sp.csr_matrix(np.vstack([X, empty])))
    without = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(with_empty.probabilities_, without.probabilities_, rtol=1e-12)
    # an empty document's posterior is the weights; its log-likelihood is 0 (probability 1)
    np.testing.assert_allclose(with_empty.predict_proba(sp.csr_matrix(empty[:2])), np.tile(with_empty.weights_, (2, 1)))
    np.testing.assert_allclose(with_empty.score_samples(sp.csr_matrix(empty[:2])), 0.0, atol=1e-12)
    n_k = without.weights_ * 300 + np.array([0.2, 0.3, 0.5]) * 100
    np.testing.assert_allclose(with_empty.weights_, n_k / 400, rtol=1e-9)


def test_unseen_words_never_have_probability_zero():
    X, _, _, _ = make_documents(seed=7, n=200, V=30)
    X[:, -5:] = 0  # five words never occur
    est = MultinomialMixture(2, random_state=0).fit(sp.csr_matrix(X))
    assert (est.probabilities_ > 0).all()
    new = np.zeros((1, 30), dtype=np.int64)
    new[0, -1] = 3
    assert np.isfinite(est.score_samples(sp.csr_matrix(new))).all()


def test_squarem_reaches_the_same_optimum_in_fewer_passes():
    # short documents of overlapping topics: posteriors stay soft and plain EM crawls
    X, _, _, _ = make_documents(seed=8, n=500, V=50, concentration=1.0, length=5)
    kw = dict(random_state=0, tol=1e-9, max_iter=2000, dtype="float64", init_params="random")
    plain = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    fast = MultinomialMixture(3, accelerate="squarem", **kw).fit(sp.csr_matrix(X))
    assert fast.n_iter_ < 0.7 * plain.n_iter_
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, abs=1e-6)
    np.testing.assert_allclose(fast.probabilities_, plain.probabilities_, atol=1e-3)


def test_sample_draws_documents_of_the_fitted_components(documents):
    X, _, _, _ = documents
    est = MultinomialMixture(3, random_state=0).fit(sp.csr_matrix(X))
    S, labels = est.sample(3000)
    assert sp.issparse(S) and S.shape == (3000, X.shape[1]) and S.dtype == np.int64
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 3000, est.weights_, atol=0.03)
    for k in range(3):
        words = np.asarray(S[labels == k].sum(0)).ravel()
        np.testing.assert_allclose(words / words.sum(), est.probabilities_[k], atol=0.01)
        assert S[labels == k].sum(1).mean() == pytest.approx(est.mean_lengths_[k], rel=0.05)


def test_online_em_and_partial_fit_take_sparse_rows(documents):
    X, z, _, _ = documents
    from sklearn.metrics import adjusted_rand_score

    est = MultinomialMixture(3, algorithm="online", batch_size=100, max_iter=3, random_state=0).fit(sp.csr_matrix(X))
    assert adjusted_rand_score(z, est.predict(sp.csr_matrix(X))) > 0.9
    part = MultinomialMixture(3, batch_size=100, random_state=0)
    for start in range(0, X.shape[0], 200):
        part.partial_fit(sp.csr_matrix(X[start : start + 200]))
    assert adjusted_rand_score(z, part.predict(sp.csr_matrix(X))) > 0.9
    assert part.n_steps_ == 6
