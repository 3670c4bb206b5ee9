"""Bad count data and bad settings: each error says what, where (row, column, file) and
the fix, and leaves nothing half-written."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bigem import MultinomialMixture, Tokens
from bigem._core.errors import DataError, ParameterError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def counts():
    rng = np.random.default_rng(0)
    return rng.poisson(1.0, (50, 12)).astype(np.int64)


def _with(X, row, col, value, dtype=np.float64):
    bad = X.astype(dtype)
    bad[row, col] = value
    return bad


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, np.asarray, torch.from_numpy],
                         ids=["csr", "csc", "coo", "dense", "tensor"])
@pytest.mark.parametrize("value, says", [(-2.0, "negative count -2"), (0.5, "0.5, not a whole number"),
                                         (np.nan, "holds NaN"), (np.inf, "holds inf")])
def test_values_that_are_not_counts_are_refused_naming_row_and_column(counts, make, value, says):
    X = make(_with(counts, 37, 5, value))
    with pytest.raises(DataError, match=rf"row 37, column 5 .*{says}.*raw counts"):
        MultinomialMixture(2).fit(X)


@pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning")
def test_counts_float32_cannot_hold_ask_for_float64(counts):
    X = sp.csr_matrix(_with(counts, 3, 2, 2**24 + 1, np.int64))
    with pytest.raises(DataError, match=r"row 3, column 2 .*beyond 2\*\*24.*dtype='float64'"):
        MultinomialMixture(2).fit(X)
    MultinomialMixture(2, dtype="float64", max_iter=2).fit(X)  # exact in float64
    # beyond float64's: rounded silently before; 1e308 was refused later as 'rescale that row'
    for value in (2**53 + 1, 1e308):
        X = sp.csr_matrix(_with(counts, 3, 2, value, np.int64 if value == 2**53 + 1 else np.float64))
        with pytest.raises(DataError, match=r"row 3, column 2 .*beyond 2\*\*53, which float64 cannot hold exactly"):
            MultinomialMixture(2, dtype="float64").fit(X)


def test_a_matrix_of_another_width_is_refused_at_predict(counts):
    est = MultinomialMixture(2, random_state=0).fit(sp.csr_matrix(counts))
    with pytest.raises(DataError, match="X has 13 features, but MultinomialMixture is expecting 12"):
        est.predict(sp.csr_matrix(np.hstack([counts, counts[:, :1]])))


def test_sample_weight_of_the_wrong_length_is_refused(counts):
    with pytest.raises(DataError, match=r"sample_weight.shape == \(49,\), expected \(50,\)"):
        MultinomialMixture(2).fit(sp.csr_matrix(counts), sample_weight=np.ones(49))


def _lists(X):
    S = sp.csr_matrix(X)
    ids = [S.indices[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    cnt = [S.data[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    return ids, cnt


def test_token_ids_beyond_the_vocabulary_are_refused(tmp_path, counts):
    ids, cnt = _lists(counts)
    ids[41] = ids[41] + [12]
    cnt[41] = cnt[41] + [1]
    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"ids": ids, "n": cnt}), path)
    # the initialisation's sample holds row 41 (it takes every row of a small file): it is
    # checked as it is read, whichever seed the k-means draws
    for seed in range(4):
        with pytest.raises(DataError, match=r"docs.parquet: row 41 has a word \(column\) id 12, outside the "
                                            r"vocabulary of 12 words.*vocabulary size"):
            MultinomialMixture(2, random_state=seed).fit(Tokens(path, "ids", "n", vocabulary_size=12))
    # the vocabulary a fit learnt bounds what its predictions read
    est = MultinomialMixture(2, random_state=0).fit(sp.csr_matrix(counts))
    with pytest.raises(DataError, match="row 41 has a word .* id 12, outside the vocabulary of 12"):
        est.predict(Tokens(path, "ids", "n"))


def test_token_and_count_lists_of_different_lengths_are_refused(tmp_path, counts):
    ids, cnt = _lists(counts)
    cnt[7] = cnt[7][:-1]
    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"ids": ids, "n": cnt}), path)
    with pytest.raises(DataError, match=r"row 7 has \d+ token ids but \d+ counts"):
        MultinomialMixture(2).fit(Tokens(path, "ids", "n"))


def test_missing_documents_and_negative_ids_are_refused(tmp_path, counts):
    ids, cnt = _lists(counts)
    path = str(tmp_path / "nulls.parquet")
    pq.write_table(pa.table({"ids": ids[:4] + [None] + ids[5:]}), path)
    with pytest.raises(DataError, match="null at row 4 .*empty list"):
        MultinomialMixture(2).fit(Tokens(path, "ids", None, vocabulary_size=12))
    path = str(tmp_path / "negative.parquet")
    pq.write_table(pa.table({"ids": ids[:4] + [[3, -1]] + ids[5:]}), path)
    with pytest.raises(DataError, match="negative word id -1"):
        MultinomialMixture(2).fit(path)


def test_token_lists_without_their_default_counts_column_are_told_of_counts_none(tmp_path, counts):
    ids, _ = _lists(counts)
    path = str(tmp_path / "ids.parquet")
    pq.write_table(pa.table({"ids": ids}), path)
    with pytest.raises(DataError, match=r"no column\(s\) \['counts'\]; the file has \['ids'\].*Tokens\(\.\.\., "
                       r"counts=None\)"):
        MultinomialMixture(2).fit(Tokens(path, "ids"))
    with pytest.raises(DataError, match=r"no column\(s\) \['idz'\]; the file has \['ids'\]\. Check the spelling "
                       r"\(names are case-sensitive\)$"):
        MultinomialMixture(2).fit(Tokens(path, "idz", None))


def test_a_file_with_several_list_columns_asks_which(tmp_path, counts):
    ids, cnt = _lists(counts)
    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"ids": ids, "n": [[float(c) for c in row] for row in cnt]}), path)
    with pytest.raises(DataError, match=r"columns=\['ids', 'n'\]"):
        MultinomialMixture(2).fit(path)
    with pytest.raises(DataError, match="not a list of integer word ids"):
        MultinomialMixture(2).fit(Tokens(path, "n", "ids"))


@pytest.mark.parametrize("fmt", ["csc", "coo"])
def test_an_npz_that_does_not_stream_by_rows_says_how_to_convert_it(tmp_path, counts, fmt):
    path = str(tmp_path / "docs.npz")
    sp.save_npz(path, sp.csr_matrix(counts).asformat(fmt))
    with pytest.raises(DataError, match=r"holds a (CSC|COO) matrix.*save_npz\(path, X.tocsr\(\)\)"):
        MultinomialMixture(2).fit(path)


def test_damaged_npz_files_are_refused(tmp_path, counts):
    path = str(tmp_path / "docs.npz")
    np.savez(path, a=np.arange(3))
    with pytest.raises(DataError, match="not a sparse matrix saved by scipy.sparse.save_npz"):
        MultinomialMixture(2).fit(path)
    sp.save_npz(path, sp.csr_matrix(counts), compressed=False)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataError, match="docs.npz"):
        MultinomialMixture(2).fit(path)


def test_a_bad_count_met_while_writing_predictions_leaves_no_file(tmp_path, counts):
    est = MultinomialMixture(2, random_state=0).fit(sp.csr_matrix(counts))
    bad = sp.csr_matrix(_with(counts, 48, 1, -1.0))
    out = tmp_path / "labels.parquet"
    with pytest.raises(DataError, match="row 48, column 1"):
        est.write_predictions(bad, str(out))
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize("params, says", [
    (dict(alpha=0.0), r"'alpha' parameter of MultinomialMixture must be a float in the range \(0.0, inf\)"),
    (dict(alpha=-1), "'alpha' parameter"),
    (dict(init_params="kmeans++"), "'init_params' parameter"),
    (dict(probabilities_init=np.full((2, 11), 1 / 11)), r"should have the shape \(2, 12\)"),
    (dict(probabilities_init=np.eye(2, 12)), "positive probabilities"),
    (dict(probabilities_init=np.full((2, 12), 0.1)), "row 0 sums to 1.2"),
])
def test_bad_settings_are_refused(counts, params, says):
    with pytest.raises(ParameterError, match=says):
        MultinomialMixture(2, **params).fit(sp.csr_matrix(counts))


def test_more_components_than_non_empty_documents_is_refused():
    X = np.zeros((30, 5), dtype=np.int64)
    X[:2, 0] = 3
    with pytest.raises(DataError, match="holds 2 that are not empty, fewer than n_components=3"):
        MultinomialMixture(3).fit(sp.csr_matrix(X))
