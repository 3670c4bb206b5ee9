"""File sources yield exactly the rows of the same data in memory, and fits agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import torch

from bigem import Files, GaussianMixture
from bigem.sources import open_source
from tests.conftest import make_blobs

COLS = ["a", "b", "c"]


def _frame(seed=0, n_per=300):
    X, _, _ = make_blobs(seed, n_per=n_per)
    df = pd.DataFrame(X, columns=COLS)
    df.insert(0, "id", [f"row{i}" for i in range(len(df))])  # a non-numeric column to select around
    df["count"] = np.arange(len(df)) % 7  # an integer column
    return df


def _write_parquet_folder(df, folder, parts=3, row_group_size=101):
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), parts)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), folder / f"part-{i}.parquet",
                       row_group_size=row_group_size)
    (folder / "_SUCCESS").write_text("")  # writers' markers are skipped
    return folder


def _open(X, chunk_rows=128, dtype=torch.float64, **kw):
    return open_source(X, dtype=dtype, device=torch.device("cpu"), memory_budget=1 << 20, chunk_size=chunk_rows, **kw)


def _all_rows(source):
    chunks = list(source.chunks())
    assert all(c.n_rows == 128 for c in chunks[:-1])  # fixed-size chunks whatever the files' layout
    assert [c.row_start for c in chunks] == list(range(0, source.n_rows, 128))
    return torch.cat([c.x for c in chunks]).numpy()


@pytest.mark.parametrize("fmt", ["parquet-folder", "parquet-glob", "parquet-list", "csv", "tsv", "feather", "ipc-stream"])
def test_every_file_source_yields_the_rows_in_memory(tmp_path, fmt):
    df = _frame()
    if fmt.startswith("parquet"):
        folder = _write_parquet_folder(df, tmp_path / "data")
        X = {"parquet-folder": str(folder), "parquet-glob": str(folder / "*.parquet"),
             "parquet-list": sorted(str(p) for p in folder.glob("*.parquet"))}[fmt]
    elif fmt in ("csv", "tsv"):
        X = str(tmp_path / f"data.{fmt}")
        df.to_csv(X, index=False, sep="," if fmt == "csv" else "\t")
        X = Files(X, delimiter="," if fmt == "csv" else "\t")
    elif fmt == "feather":
        X = str(tmp_path / "data.feather")
        feather.write_feather(df, X, chunksize=77)
    else:
        X = str(tmp_path / "data.arrow")
        table = pa.Table.from_pandas(df, preserve_index=False)
        with ipc.new_stream(X, table.schema) as w:
            for b in table.to_batches(max_chunksize=50):
                w.write_batch(b)
    source = _open(X, columns=["a", "count", "c"])
    assert source.n_rows == len(df) and source.feature_names == ["a", "count", "c"]
    np.testing.assert_array_equal(_all_rows(source), df[["a", "count", "c"]].to_numpy(np.float64))
    rows = torch.tensor([0, 5, 299, 300, 301, 899])
    np.testing.assert_array_equal(source.take(rows).numpy(), df[["a", "count", "c"]].to_numpy()[rows.numpy()])


def test_csv_without_header_names_columns_f0_f1(tmp_path):
    X = np.random.default_rng(1).normal(size=(50, 2))
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=";")
    source = _open(Files(str(path), delimiter=";", header=False))
    assert source.feature_names == ["f0", "f1"]
    np.testing.assert_allclose(torch.cat([c.x for c in source.chunks()]).numpy(), X, rtol=1e-15)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_from_parquet_and_csv_equals_the_fit_in_memory(tmp_path, covariance_type):
    df = _frame(seed=3)
    folder = _write_parquet_folder(df, tmp_path / "data")
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, chunk_size=200, dtype="float64")
    ref = GaussianMixture(**kw).fit(df[COLS])
    fits = []
    for X in (str(folder), str(csv)):
        gm = GaussianMixture(**kw).fit(X, columns=COLS)
        fits.append(gm)
        # same chunks; file chunks are column-major views, which BLAS may sum in another order
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-12, atol=1e-12)
        assert list(gm.feature_names_in_) == COLS
        # predict reads the fitted columns from the file, whatever else it holds
        np.testing.assert_array_equal(gm.predict(X), ref.predict(df[COLS]))
        assert gm.score(X) == pytest.approx(ref.score(df[COLS]), rel=1e-12)
    # how the rows are split into files and row groups does not change a single bit
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


def test_cached_and_uncached_passes_and_overlap_give_identical_fits(tmp_path, monkeypatch):
    df = _frame(seed=4)
    folder = _write_parquet_folder(df, tmp_path / "data")
    kw = dict(n_components=3, random_state=1, chunk_size=128)
    cached = GaussianMixture(cache_budget="1GB", **kw).fit(str(folder), columns=COLS)
    uncached = GaussianMixture(cache_budget=0, **kw).fit(str(folder), columns=COLS)
    from bigem.engines import local

    monkeypatch.setattr(local.LocalEngine.__init__, "__defaults__", (False,))  # no prefetch thread
    serial = GaussianMixture(cache_budget=0, **kw).fit(str(folder), columns=COLS)
    for other in (uncached, serial):
        np.testing.assert_array_equal(cached.means_, other.means_)
        np.testing.assert_array_equal(cached.covariances_, other.covariances_)
        assert cached.n_iter_ == other.n_iter_


def test_cache_keeps_data_after_the_first_complete_pass_only(tmp_path):
    df = _frame()
    path = tmp_path / "x.parquet"
    df[COLS].to_parquet(path)
    source = _open(str(path), cache_bytes=1 << 30)
    first = next(iter(source.chunks()))  # an interrupted pass caches nothing
    assert not source.cached and first.n_rows == 128
    rows = _all_rows(source)
    assert source.cached
    path.unlink()  # later passes no longer touch the file
    np.testing.assert_array_equal(_all_rows(source), rows)
    np.testing.assert_array_equal(source.take(torch.tensor([3, 400])).numpy(), rows[[3, 400]])


def test_a_source_object_is_accepted_as_is(tmp_path):
    df = _frame()
    X = df[COLS].to_numpy()
    inner = _open(X)
    gm = GaussianMixture(n_components=3, random_state=0, chunk_size=128).fit(inner)
    ref = GaussianMixture(n_components=3, random_state=0, chunk_size=128).fit(X)
    np.testing.assert_array_equal(gm.means_, ref.means_)


def test_a_model_fitted_with_names_reads_an_unnamed_npy_file_by_position(tmp_path):
    df = _frame(seed=2)
    path = tmp_path / "x.parquet"
    df.to_parquet(path)
    gm = GaussianMixture(n_components=3, random_state=0).fit(str(path), columns=COLS)
    npy = tmp_path / "x.npy"
    np.save(npy, df[COLS].to_numpy())
    np.testing.assert_array_equal(gm.predict(str(npy)), gm.predict(str(path)))
