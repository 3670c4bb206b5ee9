"""Missing values from every source: NaN in arrays and tensors, nulls in Parquet, Arrow
and DataFrames, empty CSV fields; streamed, in-memory and Dask fits with gaps are equal."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

from bigem import GaussianMixture  # noqa: E402
from bigem._core.errors import DataError, EmptyRowWarning  # noqa: E402
from tests.conftest import make_blobs  # noqa: E402

COLS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def gappy():
    X, _, _ = make_blobs(7, n_per=400, k=3, d=4)
    rng = np.random.default_rng(7)
    X[rng.random(X.shape) < 0.25] = np.nan
    return X[~np.isnan(X).all(1)]  # rows with nothing observed are tested elsewhere


def _parquet(path, X, int_column=False):
    arrays = {n: pa.array(X[:, j], mask=np.isnan(X[:, j])) for j, n in enumerate(COLS)}
    if int_column:  # an integer column with nulls reads as floats with NaN
        arrays["d"] = pa.array([None if np.isnan(v) else int(v) for v in np.round(X[:, 3] * 100)], type=pa.int64())
    pq.write_table(pa.table(arrays), path)
    return path


def _fit(X, **kw):
    kw = dict(n_components=3, missing_values="fiml", dtype="float64", random_state=0, max_iter=30, tol=1e-10, **kw)
    return GaussianMixture(**kw).fit(X)


def _same(a, b, rtol=1e-10):
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_streamed_parquet_with_nulls_equals_the_fit_in_memory(tmp_path, gappy, covariance_type):
    path = _parquet(tmp_path / "gaps.parquet", gappy)
    ref = _fit(gappy, covariance_type=covariance_type)
    streamed = _fit(str(path), covariance_type=covariance_type, chunk_size=197, cache_budget=0)
    _same(ref, streamed)
    np.testing.assert_allclose(streamed.predict_proba(str(path)), ref.predict_proba(gappy), rtol=1e-9, atol=1e-12)
    frame = pd.DataFrame(gappy, columns=COLS)
    _same(ref, _fit(frame, covariance_type=covariance_type))


def test_integer_columns_with_nulls_and_empty_csv_fields_are_missing_values(tmp_path, gappy):
    X = gappy.copy()
    X[:, 3] = np.where(np.isnan(X[:, 3]), np.nan, np.round(X[:, 3] * 100))
    ref = _fit(X)
    _same(ref, _fit(str(_parquet(tmp_path / "ints.parquet", gappy, int_column=True)), chunk_size=301))
    csv = tmp_path / "gaps.csv"
    pd.DataFrame(X, columns=COLS).to_csv(csv, index=False, na_rep="")
    _same(ref, _fit(str(csv), chunk_size=301, cache_budget=0))
    npy = tmp_path / "gaps.npy"
    np.save(npy, X)
    _same(ref, _fit(str(npy), chunk_size=301, cache_budget=0))


def test_nulls_are_refused_by_default_naming_the_option(tmp_path, gappy):
    path = _parquet(tmp_path / "gaps.parquet", gappy)
    with pytest.raises(DataError, match=r"null \(missing\) value.*missing_values='fiml' \(bigem: --missing fiml\)"):
        GaussianMixture(3).fit(str(path))


def test_a_streamed_column_missing_in_every_row_is_named(tmp_path, gappy):
    X = gappy.copy()
    X[:, 1] = np.nan
    path = _parquet(tmp_path / "empty_column.parquet", X)
    with pytest.raises(DataError, match=r"column 'b' is missing in every row"):
        GaussianMixture(3, missing_values="fiml", cache_budget=0, chunk_size=50).fit(str(path))


def test_online_em_and_partial_fit_take_rows_with_gaps(gappy):
    online = GaussianMixture(3, missing_values="fiml", algorithm="online", batch_size=200, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # online EM's few passes: not converged
        online.fit(gappy)
    assert np.isfinite(online.means_).all() and online.score(gappy) > -10
    stepwise = GaussianMixture(3, missing_values="fiml", batch_size=200, random_state=0)
    for part in np.array_split(gappy, 4):
        stepwise.partial_fit(part)
    assert np.isfinite(stepwise.covariances_).all() and stepwise.n_steps_ == 8


def test_dask_fit_with_gaps_equals_local(gappy):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    ref = _fit(gappy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        X = da.from_array(gappy, chunks=(300, -1))
        on_dask = _fit(X, engine="dask", client=client)
        _same(ref, on_dask)
        np.testing.assert_allclose(on_dask.predict_proba(X).compute(), ref.predict_proba(gappy), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(on_dask.impute(X).compute(), ref.impute(gappy), rtol=1e-12)
        blank = gappy.copy()
        blank[:, 2] = np.nan
        with pytest.raises(DataError, match=r"column 2 is missing in every row"):
            _fit(da.from_array(blank, chunks=(300, -1)), engine="dask", client=client)


def test_a_row_with_nothing_observed_in_a_file_is_counted(tmp_path, gappy):
    X = gappy.copy()
    X[10] = np.nan
    with pytest.warns(EmptyRowWarning, match=r"^1 row\(s\) have every value missing"):
        gm = _fit(str(_parquet(tmp_path / "blank_row.parquet", X)), chunk_size=257)
    frame = pd.DataFrame(X, columns=COLS)
    assert gm.score(frame) == pytest.approx(gm.score(frame.drop(index=10)) * (len(X) - 1) / len(X), rel=1e-10)
    assert torch.isnan(torch.from_numpy(X)).all(1).sum() == 1


def test_dask_impute_into_a_file_streams_the_partitions_with_their_ids(gappy, tmp_path, monkeypatch):
    """impute(out=) of a Dask DataFrame writes each partition where it was completed, with
    its ids, in row order, and never brings the frame here whole (it was computed into
    this process first); the rows equal the in-memory impute of the same frame, the
    drawn ones too (each row's draw follows its position)."""
    distributed = pytest.importorskip("distributed")
    dd = pytest.importorskip("dask.dataframe")
    gm = _fit(pd.DataFrame(gappy, columns=COLS))
    frame = pd.DataFrame(gappy, columns=COLS).assign(rid=np.arange(len(gappy)) * 3 + 7)
    ddf = dd.from_pandas(frame, npartitions=3)

    def whole(*args, **kwargs):
        raise AssertionError("the Dask DataFrame was computed whole")

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"), \
            monkeypatch.context() as patch:
        patch.setattr(type(ddf), "compute", whole)
        for method, out in (("mean", tmp_path / "m.parquet"), ("sample", tmp_path / "s.csv")):
            written = gm.impute(ddf, method=method, random_state=3, out=str(out), id_column="rid")
            read = pd.read_parquet(written) if out.suffix == ".parquet" else pd.read_csv(written)
            np.testing.assert_array_equal(read["rid"], frame["rid"])
            here = gm.impute(frame, method=method, random_state=3)
            np.testing.assert_allclose(read[COLS].to_numpy(), here, rtol=1e-12)
            assert not np.isnan(read[COLS].to_numpy()).any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.parquet", "s.csv"]
