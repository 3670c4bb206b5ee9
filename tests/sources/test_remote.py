"""Files behind a URL read like local files: same rows, same fit, same errors."""

from __future__ import annotations

import gzip
import sys
import uuid

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import torch

from bigem import GaussianMixture
from bigem._core.errors import DataError
from bigem._core.optional import MissingDependencyError
from bigem.sources import open_source
from bigem.sources.remote import is_url, local_path
from tests.conftest import make_blobs

COLS = ["a", "b", "c"]


@pytest.fixture
def store():
    """A fresh folder of fsspec's in-memory file system: (filesystem, its memory:// URL)."""
    fs = fsspec.filesystem("memory")
    root = f"/bigem-{uuid.uuid4().hex}"
    yield fs, f"memory://{root}"
    fs.rm(root, recursive=True)


def _frame():
    X, _, _ = make_blobs(0, n_per=200)
    return pd.DataFrame(X, columns=COLS)


def _rows(X, **kw):
    source = open_source(X, dtype=torch.float64, device=torch.device("cpu"), memory_budget=1 << 20, chunk_size=128, **kw)
    return torch.cat([c.x for c in source.chunks()]).numpy()


def _write_lake(fs, url, df, local):
    """The same three Parquet parts, one in a nested folder, in the store (with a
    writer's marker) and in a local folder."""
    (local / "day=2").mkdir(parents=True)
    parts = np.array_split(np.arange(len(df)), 3)
    for i, rows in enumerate(parts):
        table = pa.Table.from_pandas(df.iloc[rows], preserve_index=False)
        sub = "" if i < 2 else "day=2/"
        with fs.open(f"{url.removeprefix('memory://')}/lake/{sub}part-{i}.parquet", "wb") as f:
            pq.write_table(table, f, row_group_size=77)
        pq.write_table(table, local / f"{sub}part-{i}.parquet", row_group_size=77)
    with fs.open(f"{url.removeprefix('memory://')}/lake/_SUCCESS", "wb") as f:
        f.write(b"")


def test_a_parquet_folder_url_fits_exactly_as_the_local_folder(store, tmp_path):
    fs, url = store
    df = _frame()
    _write_lake(fs, url, df, tmp_path / "lake")
    remote = GaussianMixture(3, covariance_type="full", random_state=0).fit(f"{url}/lake/")
    local = GaussianMixture(3, covariance_type="full", random_state=0).fit(str(tmp_path / "lake"))
    assert list(remote.feature_names_in_) == COLS
    assert remote.n_iter_ == local.n_iter_
    np.testing.assert_array_equal(remote.means_, local.means_)
    np.testing.assert_array_equal(remote.covariances_, local.covariances_)
    assert remote.score(f"{url}/lake/**/*.parquet") == local.score(str(tmp_path / "lake"))


@pytest.mark.parametrize("kind", ["parquet-file", "csv-gz", "tsv", "feather", "ipc-stream"])
def test_every_format_behind_a_url_yields_the_rows_in_memory(store, kind):
    fs, url = store
    df = _frame()
    path = f"{url.removeprefix('memory://')}/data"
    with fs.open({"parquet-file": f"{path}.parquet", "csv-gz": f"{path}.csv.gz", "tsv": f"{path}.tsv",
                  "feather": f"{path}.feather", "ipc-stream": f"{path}.arrow"}[kind], "wb") as f:
        if kind == "parquet-file":
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), f, row_group_size=100)
        elif kind == "csv-gz":
            f.write(gzip.compress(df.to_csv(index=False).encode()))
        elif kind == "tsv":
            f.write(df.to_csv(index=False, sep="\t").encode())
        elif kind == "feather":
            feather.write_feather(df, f)
        else:
            table = pa.Table.from_pandas(df, preserve_index=False)
            with ipc.new_stream(f, table.schema) as writer:
                for batch in table.to_batches(max_chunksize=150):
                    writer.write_batch(batch)
    (found,) = fs.glob(f"{path}.*")
    X = fs.unstrip_protocol(found)
    if kind == "tsv":
        from bigem import Files

        X = Files(X, delimiter="\t")
    np.testing.assert_array_equal(_rows(X), df.to_numpy())
    np.testing.assert_array_equal(_rows(X, columns=["c", "a"]), df[["c", "a"]].to_numpy())


def test_predictions_of_url_rows_go_to_a_local_file_never_to_a_url(store, tmp_path):
    fs, url = store
    df = _frame()
    _write_lake(fs, url, df, tmp_path / "lake")
    gm = GaussianMixture(3, random_state=0).fit(df)
    out = tmp_path / "labels.parquet"
    gm.predict(f"{url}/lake", out=str(out))
    np.testing.assert_array_equal(pq.read_table(out).column(0).to_numpy(), gm.predict(str(tmp_path / "lake")))
    with pytest.raises(DataError, match="writes its outputs to local files only"):
        gm.predict(f"{url}/lake", out=f"{url}/labels.parquet")
    assert not fs.glob(f"{url.removeprefix('memory://')}/labels*")


def test_bad_urls_say_what_is_wrong(store, monkeypatch):
    fs, url = store
    root = url.removeprefix("memory://")
    with fs.open(f"{root}/broken.parquet", "wb") as f:
        f.write(b"PAR1 not really parquet")
    with fs.open(f"{root}/x.npy", "wb") as f:
        np.save(f, np.zeros((10, 2)))
    fs.mkdir(f"{root}/empty")
    cases = [
        (f"{url}/missing.parquet", "no such file or folder; check the URL"),
        (f"{url}/*.csv", "the pattern matches no files"),
        (f"{url}/empty", "no such file or folder|holds no data files"),
        (f"{url}/broken.parquet", "broken.parquet: cannot be read"),
        (f"{url}/x.npy", "reads .npy files from a local disk only"),
        ("nosuchstore://bucket/x.parquet", "cannot open this URL .*check its scheme"),
    ]
    for X, message in cases:
        with pytest.raises(DataError, match=message):
            GaussianMixture(2).fit(X)

    def denied(*args, **kwargs):
        raise PermissionError("Access Denied")

    monkeypatch.setattr(type(fs), "isdir", denied)
    with pytest.raises(DataError, match=r"lake: cannot be listed \(Access Denied\)"):
        GaussianMixture(2).fit(f"{url}/lake")
    monkeypatch.undo()

    import fsspec.core

    def missing_package(u):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing_package)
    with pytest.raises(DataError, match=r"s3://bucket/x.parquet: a package for this store is missing \(Install s3fs"):
        GaussianMixture(2).fit("s3://bucket/x.parquet")
    monkeypatch.setitem(sys.modules, "fsspec.core", None)  # fsspec not installed
    with pytest.raises(MissingDependencyError, match=r"reading from a URL needs fsspec: pip install 'bigem\[remote\]'"):
        GaussianMixture(2).fit("s3://bucket/x.parquet")


def test_urls_and_local_paths_are_told_apart():
    assert is_url("s3://bucket/key.parquet") and is_url("memory://x") and is_url("gcs://b/*.parquet")
    assert not is_url("/data/x.parquet") and not is_url("C:\\data\\x.parquet") and not is_url("data/x://y")
    assert not is_url("file:///data/x.parquet") and local_path("file:///data/x.parquet") == "/data/x.parquet"


def test_a_file_url_reads_the_local_file(tmp_path):
    df = _frame()
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    np.testing.assert_array_equal(_rows(f"file://{path}"), df.to_numpy())


def test_the_command_line_fits_a_url_and_refuses_to_write_to_one(store, tmp_path, capsys):
    from bigem.cli import main

    fs, url = store
    _write_lake(fs, url, _frame(), tmp_path / "lake")
    model = tmp_path / "m.bigem"
    assert main(["fit", f"{url}/lake/", "-k", "3", "--seed", "0", "-o", str(model)]) == 0
    assert main(["predict", str(model), f"{url}/lake/", "-o", str(tmp_path / "labels.npy")]) == 0
    assert np.load(tmp_path / "labels.npy").shape == (600,)
    capsys.readouterr()
    assert main(["predict", str(model), f"{url}/lake/", "-o", f"{url}/labels.npy"]) == 2
    assert "writes its outputs to local files only" in capsys.readouterr().err
    assert main(["fit", f"{url}/nothing/", "-k", "2", "-o", str(tmp_path / "n.bigem")]) == 2
    assert "no such file or folder; check the URL" in capsys.readouterr().err


def test_an_existing_object_with_glob_characters_is_that_object(store):
    fs, url = store
    df = _frame()
    for name, part in (("d[1].csv", df.iloc[:100]), ("d1.csv", df.iloc[100:])):
        with fs.open(f"{url}/{name}".removeprefix("memory://"), "w") as f:
            part.to_csv(f, index=False)
    np.testing.assert_array_equal(_rows(f"{url}/d[1].csv"), df.to_numpy()[:100])
    np.testing.assert_array_equal(_rows(f"{url}/d[0-9].csv"), df.to_numpy()[100:])
