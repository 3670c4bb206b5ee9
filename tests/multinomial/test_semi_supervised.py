"""Semi-supervised EM for the multinomial mixture (Nigam, McCallum, Thrun & Mitchell 2000):
a few labelled documents and many unlabelled ones, from sparse and dense input alike."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from bigem import MultinomialMixture, Tokens
from bigem._core.errors import DataError

from .conftest import make_documents


def zipf_topics(seed: int, n: int, C: int = 4, V: int = 400, length: int = 25, share: float = 0.3):
    """Documents of C topics over a Zipfian vocabulary: every topic draws most of its
    tokens from the common Zipfian words and ``share`` of them from its own ordering of
    the same law (text-like: a few frequent words all topics use, a long tail)."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, V + 1) ** 1.1
    zipf /= zipf.sum()
    theta = np.stack([(1 - share) * zipf + share * rng.permutation(zipf) for _ in range(C)])
    z = rng.integers(C, size=n)
    X = np.stack([rng.multinomial(max(1, rng.poisson(length)), theta[c]) for c in z]).astype(np.int64)
    return X, z


def few_labels(z: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.full(len(z), -1)
    for c in np.unique(z):
        rows = np.flatnonzero(z == c)
        y[rng.choice(rows, per_class, replace=False)] = c
    return y


def test_semi_supervised_em_beats_naive_bayes_from_the_labelled_documents_alone():
    """Nigam et al.'s result: with 3 labelled documents per topic, EM over the unlabelled
    documents too classifies them better than scikit-learn's MultinomialNB fitted on the
    labelled ones (the supervised-only classifier, same smoothing)."""
    from sklearn.naive_bayes import MultinomialNB

    X, z = zipf_topics(0, 3000)
    y = few_labels(z, 3)
    unlabelled = y < 0
    nb = MultinomialNB(alpha=1.0).fit(X[~unlabelled], y[~unlabelled])
    semi = MultinomialMixture(4, unlabeled_weight=0.2, dtype="float64", random_state=0, max_iter=200,
                              tol=1e-6).fit(sp.csr_matrix(X), y)
    acc_nb = (nb.predict(X[unlabelled]) == z[unlabelled]).mean()
    acc_semi = (semi.predict(sp.csr_matrix(X[unlabelled])) == z[unlabelled]).mean()
    assert acc_semi > acc_nb + 0.05, (acc_nb, acc_semi)
    np.testing.assert_array_equal(semi.classes_, [0, 1, 2, 3])


def reference_semi_em(X, y, classes_of_components, weights, theta, alpha, lam, n_iter):
    """Semi-supervised EM written from its definition: a labelled row's responsibilities
    are its posterior over its class's components only (fixed to 1 when the class has one
    component), an unlabelled row's the usual posterior times ``lam``."""
    X = X.astype(np.float64)
    labelled = y >= 0
    barred = labelled[:, None] & (classes_of_components[None, :] != y[:, None])
    for _ in range(n_iter):
        joint = X @ np.log(theta).T + np.log(weights)
        joint[barred] = -np.inf
        resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        resp[~labelled] *= lam
        sums = resp.T @ X
        theta = (sums + alpha) / (sums.sum(1, keepdims=True) + X.shape[1] * alpha)
        weights = resp.sum(0) / resp.sum()
    return weights, theta


@pytest.mark.parametrize("per_class", [1, 2], ids=["one component per class", "two per class"])
def test_matches_a_brute_force_reference_with_labelled_rows_fixed(per_class):
    """Same start, same data: bigem's parameters after 6 iterations equal the reference's,
    whose labelled rows keep their class (one component per class: fixed one-hot
    responsibilities) and whose unlabelled rows count unlabeled_weight each (exact to
    1e-10: it failed at 2e-8 while the weight 0.3 was applied in float32)."""
    K = 2 * per_class
    X, z, _, truth = make_documents(seed=3, n=500, K=K, V=40)
    groups = np.repeat([0, 1], per_class)
    z = groups[z]  # two classes, each of per_class topics (Nigam's several components per class)
    y = np.where(np.random.default_rng(0).random(len(z)) < 0.2, z, -1)
    rng = np.random.default_rng(1)
    w0 = np.full(K, 1.0 / K)
    theta0 = 0.5 * truth + 0.5 * rng.dirichlet(np.ones(40), size=K)  # a start near the topics, not at them
    labels = np.array(["politics", "sports"], dtype=object)[np.maximum(y, 0)]
    labels[y < 0] = -1  # strings for classes, -1 for unlabelled rows
    m = MultinomialMixture(K, alpha=0.5, unlabeled_weight=0.3, weights_init=w0, probabilities_init=theta0,
                           dtype="float64", max_iter=6, tol=0.0)
    with pytest.warns(Warning, match="converge"):
        m.fit(sp.csr_matrix(X), labels)
    weights, theta = reference_semi_em(X, y, groups, w0, theta0, 0.5, 0.3, 6)
    np.testing.assert_allclose(m.weights_, weights, rtol=1e-10)
    np.testing.assert_allclose(m.probabilities_, theta, rtol=1e-10)
    np.testing.assert_array_equal(m.classes_, ["politics", "sports"])
    assert set(m.predict(sp.csr_matrix(X))) <= {"politics", "sports"}
    assert m.predict_proba(X).shape == (len(X), 2)
    # predict: the class of largest posterior, summed over its components
    joint = X @ np.log(theta).T + np.log(weights)
    by_class = np.stack([logsumexp(joint[:, groups == c], axis=1) for c in (0, 1)], 1)
    expected = np.array(["politics", "sports"])[by_class.argmax(1)]
    np.testing.assert_array_equal(m.predict(X), expected)


def test_sparse_dense_npz_tokens_and_frames_give_equal_fits(tmp_path):
    """The same documents and labels as CSR, a dense array, a streamed .npz, Parquet token
    lists (labels as an array) and a DataFrame whose label column y names: one fit."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, z, _, _ = make_documents(seed=4, n=400, K=4, V=30)
    z = z % 2  # two classes of two topics each
    y = np.where(np.random.default_rng(2).random(len(z)) < 0.15, z, -1)
    S = sp.csr_matrix(X)
    sp.save_npz(tmp_path / "x.npz", S, compressed=False)
    pq.write_table(pa.table({"ids": [S.indices[S.indptr[i]:S.indptr[i + 1]].tolist() for i in range(len(X))],
                             "counts": [S.data[S.indptr[i]:S.indptr[i + 1]].tolist() for i in range(len(X))]}),
                   tmp_path / "t.parquet")
    frame = pd.DataFrame(X, columns=[f"w{j}" for j in range(30)]).assign(topic=y)
    kw = dict(n_components=4, unlabeled_weight=0.5, dtype="float64", random_state=0, max_iter=30, chunk_size=128)
    fits = [MultinomialMixture(**kw).fit(data, labels) for data, labels in [
        (S, y), (X, y), (str(tmp_path / "x.npz"), y), (Tokens(str(tmp_path / "t.parquet"), "ids", "counts", 30), y),
        (frame, "topic")]]
    for m in fits[1:]:
        np.testing.assert_allclose(m.probabilities_, fits[0].probabilities_, rtol=1e-12, atol=0)
        np.testing.assert_allclose(m.weights_, fits[0].weights_, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(m.classes_, [0, 1])
    assert (fits[0].predict(S) == z).mean() > 0.9


def test_online_partial_fit_reads_labels_from_sparse_rows():
    X, z, _, _ = make_documents(seed=5, n=600, K=2, V=30)
    y = np.where(np.random.default_rng(3).random(len(z)) < 0.1, z, -1)
    m = MultinomialMixture(2, unlabeled_weight=0.5, batch_size=100, random_state=0, dtype="float64")
    m.partial_fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(m.classes_, [0, 1])
    assert (m.predict(sp.csr_matrix(X)) == z).mean() > 0.95


@pytest.mark.parametrize("form", ["csr", "dense", "npz"])
def test_y_of_the_wrong_length_is_refused(form, tmp_path):
    X, z, _, _ = make_documents(seed=6, n=100, K=2, V=20)
    data = {"csr": sp.csr_matrix(X), "dense": X}.get(form)
    if form == "npz":
        sp.save_npz(tmp_path / "x.npz", sp.csr_matrix(X))
        data = str(tmp_path / "x.npz")
    m = MultinomialMixture(2, unlabeled_weight=1.0)
    with pytest.raises(DataError, match="y has 99 labels but X has 100 rows; pass one label per row"):
        m.fit(data, z[:-1])
    assert not hasattr(m, "weights_")


def test_a_label_column_name_needs_named_count_columns(tmp_path):
    X, z, _, _ = make_documents(seed=6, n=100, K=2, V=20)
    with pytest.raises(DataError, match="y='topic' names a column, but X is a sparse matrix.*pass y as an array"):
        MultinomialMixture(2, unlabeled_weight=1.0).fit(sp.csr_matrix(X), "topic")


def test_y_is_ignored_without_unlabeled_weight():
    """As scikit-learn's clusterers: no unlabeled_weight, an unsupervised fit (no classes_)."""
    X, z, _, _ = make_documents(seed=6, n=200, K=2, V=20)
    kw = dict(n_components=2, random_state=0, dtype="float64")
    m = MultinomialMixture(**kw).fit(sp.csr_matrix(X), z)
    assert not hasattr(m, "classes_")
    np.testing.assert_array_equal(m.probabilities_, MultinomialMixture(**kw).fit(sp.csr_matrix(X)).probabilities_)


def test_string_classes_survive_save_and_load(tmp_path):
    """None marks an unlabelled row as -1 does; the classes travel in the model file."""
    from bigem import load

    X, z, _, _ = make_documents(seed=7, n=300, K=2, V=30)
    y = np.array(["ham", "spam"], dtype=object)[z]
    y[np.random.default_rng(0).random(len(z)) > 0.2] = None
    m = MultinomialMixture(2, unlabeled_weight=0.3, random_state=0).fit(sp.csr_matrix(X), y)
    m.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    np.testing.assert_array_equal(back.classes_, ["ham", "spam"])
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    assert (m.predict(X) == np.array(["ham", "spam"])[z]).mean() > 0.95
