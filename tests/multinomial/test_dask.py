"""The multinomial mixture on a Dask cluster: the same fit as in this process, counts
checked by the workers that read them, lazy predictions equal to local ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from bigem import MultinomialMixture  # noqa: E402
from bigem._core.errors import DataError, ParameterError  # noqa: E402

# one given start, so these tests check the engines and not the initialisation
START = np.random.default_rng(5).dirichlet(np.ones(60), size=3)
KW = dict(n_components=3, random_state=0, dtype="float64", max_iter=30, tol=1e-8, probabilities_init=START)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def local(documents):
    X = documents[0]
    return MultinomialMixture(**KW).fit(sp.csr_matrix(X))


def _same(a: MultinomialMixture, b: MultinomialMixture, rtol: float = 1e-9) -> None:
    assert a.n_iter_ == b.n_iter_ > 2
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol)
    np.testing.assert_allclose(a.probabilities_, b.probabilities_, rtol=rtol)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


def _frame(X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"w{j}" for j in range(X.shape[1])])


@pytest.mark.parametrize("chunks", [137, (0, 250, 1, 349)], ids=["137-rows", "uneven-with-empty"])
def test_a_dask_array_fit_equals_the_sparse_fit_here(client, documents, local, chunks):
    X = documents[0]
    dx = da.from_array(X, chunks=(chunks, -1) if isinstance(chunks, int) else (chunks, (X.shape[1],)))
    _same(local, MultinomialMixture(**KW, client=client).fit(dx))


def test_dataframes_and_parquet_files_read_by_workers_fit_the_same(client, documents, local, tmp_path):
    X = documents[0]
    _same(local, MultinomialMixture(**KW, client=client).fit(dd.from_pandas(_frame(X), npartitions=3)))
    for i, part in enumerate(np.array_split(X, 2)):
        _frame(part).to_parquet(tmp_path / f"part{i}.parquet")
    _same(local, MultinomialMixture(**KW, client=client, engine="dask").fit(str(tmp_path / "*.parquet")))


def test_lazy_predictions_and_scores_equal_the_local_ones(client, documents, local):
    X = documents[0]
    dx = da.from_array(X, chunks=(200, -1))
    np.testing.assert_array_equal(local.predict(dx).compute(), local.predict(X))
    np.testing.assert_allclose(local.predict_proba(dx).compute(), local.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert local.score(dx) == pytest.approx(local.score(X), rel=1e-12)


@pytest.mark.parametrize("value, says", [(0.5, "not a whole number"), (-1.0, "negative count"),
                                         (np.nan, "holds NaN")])
def test_workers_refuse_what_is_not_a_count_naming_its_row(client, documents, value, says):
    X = documents[0].astype(np.float64)
    X[305, 7] = value
    with pytest.raises(DataError, match=rf"row 305, column 7.*{says}"):
        MultinomialMixture(**KW, client=client).fit(da.from_array(X, chunks=(137, -1)))
    with pytest.raises(DataError, match=r"partition 1 \(rows counted from its start\): row 105, column 7"):
        MultinomialMixture(**KW, client=client).fit(dd.from_pandas(_frame(X), npartitions=3, sort=False))
    with pytest.raises(DataError, match="row 305, column 7"):
        MultinomialMixture(**KW).fit(documents[0]).predict(da.from_array(X, chunks=(137, -1))).compute()


@pytest.mark.parametrize("engine", ["dask", "auto"])
def test_a_sparse_matrix_here_is_not_sent_to_the_cluster(client, documents, engine):
    with pytest.raises(ParameterError, match=r"sparse csr_matrix in this process: fit it with engine='local' and "
                                             r"client=None, which streams its rows without densifying them"):
        MultinomialMixture(**KW, client=client, engine=engine).fit(sp.csr_matrix(documents[0]))


def test_kmeans_seeds_drawn_from_the_workers_start_as_here(client, documents):
    X = documents[0]
    kw = dict(n_components=3, random_state=2, dtype="float64", max_iter=0)
    here = MultinomialMixture(**kw).fit(X)
    there = MultinomialMixture(**kw, client=client).fit(da.from_array(X, chunks=(137, -1)))
    np.testing.assert_allclose(there.probabilities_, here.probabilities_, rtol=1e-9)


def test_semi_supervised_on_the_cluster_equals_the_local_fit(client, documents):
    """Labels as an array beside a dask array, or as a column of a dask dataframe: the
    fit of the same CSR matrix and labels in this process (one component per class, so
    the start from the labelled rows does not depend on the chunking)."""
    X, z = documents[0], documents[1]
    y = np.where(np.random.default_rng(0).random(len(z)) < 0.1, z, -1)
    kw = dict(n_components=3, unlabeled_weight=0.5, random_state=0, dtype="float64", max_iter=30, tol=1e-8)
    here = MultinomialMixture(**kw).fit(sp.csr_matrix(X), y)
    frame = pd.DataFrame(X, columns=[f"w{j}" for j in range(X.shape[1])]).assign(topic=y)
    for data, labels in [(da.from_array(X, chunks=(150, -1)), y), (dd.from_pandas(frame, npartitions=3), "topic")]:
        there = MultinomialMixture(**kw, client=client).fit(data, labels)
        _same(here, there)
        np.testing.assert_array_equal(there.classes_, [0, 1, 2])


@pytest.mark.filterwarnings("ignore::bigem._core.errors.ComponentReseededWarning", "ignore::bigem._core.errors.ConvergenceWarning")
def test_random_starts_do_not_depend_on_the_chunking(client, documents):
    """init_params="random" and Nigam's start with two components per class draw each
    row's numbers from (seed, row), so the cluster's partitions give the local fit (a
    class's spare component collapses and is re-seeded the same way in both)."""
    X, z = documents[0], documents[1]
    y = np.where(np.random.default_rng(1).random(len(z)) < 0.2, z, -1)
    for kw, labels in [(dict(init_params="random"), None), (dict(n_components=6, unlabeled_weight=0.3), y)]:
        kw = dict(n_components=3, random_state=4, dtype="float64", max_iter=20, tol=0.0) | kw
        here = MultinomialMixture(**kw).fit(sp.csr_matrix(X), labels)
        there = MultinomialMixture(**kw, client=client).fit(da.from_array(X, chunks=(137, -1)), labels)
        _same(here, there)
