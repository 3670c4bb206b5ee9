"""The Dask engine: same answers as the local engine, lazy prediction, faults, bad input.

One thread-based LocalCluster serves the module (fast); one test runs worker
processes and kills one of them in the middle of a fit.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import warnings


import numpy as np
import pandas as pd
import pytest
import torch

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import bigem  # noqa: E402
from bigem import GaussianMixture  # noqa: E402
from bigem._core.errors import (ClusterError, ConvergenceWarning, DataError, NumericalError,  # noqa: E402
                               OutputPathError, ParameterError)
from bigem._core.protocols import Task  # noqa: E402
from bigem.em.init import kmeans_plusplus  # noqa: E402
from bigem.engines import LocalEngine  # noqa: E402
from bigem.engines.dask import DaskEngine, session  # noqa: E402
from bigem.models.kmeans import KMeansModel, KMeansParams  # noqa: E402
from bigem.sources import TensorSource  # noqa: E402
from bigem.sources.dask import open_dask_source  # noqa: E402

from ..conftest import COV_TYPES, make_blobs  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    X, _, _ = make_blobs(3, n_per=300, k=3, d=4)
    return X


def _assert_same_fit(a: GaussianMixture, b: GaussianMixture, rtol: float = 1e-9) -> None:
    assert a.n_iter_ == b.n_iter_
    scale = max(1.0, float(np.abs(a.covariances_).max()))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol * scale, err_msg=name)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


# ---------------------------------------------------------------------- same answer
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("chunks", [900, 137, (0, 250, 0, 1, 649)], ids=["one", "137-rows", "uneven-with-empty"])
def test_dask_fit_equals_local_fit(client, data, covariance_type, chunks):
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=1, dtype="float64", max_iter=30)
    local = GaussianMixture(**kw).fit(data)
    dx = da.from_array(data, chunks=(chunks, 4) if isinstance(chunks, int) else (chunks, (4,)))
    dist = GaussianMixture(**kw, client=client).fit(dx)
    _assert_same_fit(local, dist)
    assert local.converged_ and dist.converged_


def test_partial_fit_reads_a_dask_batch_here_as_it_reads_its_rows(data):
    """A Dask DataFrame given to partial_fit raised AttributeError (and, for a categorical
    mixture, dask's error from a lazy comparison): a batch is read in this process."""
    from bigem import CategoricalMixture

    frame = pd.DataFrame(data, columns=list("abcd"))
    batches = [frame.iloc[:450], frame.iloc[450:]]
    ours, local = GaussianMixture(3, random_state=0), GaussianMixture(3, random_state=0)
    for batch in batches:
        ours.partial_fit(dd.from_pandas(batch, npartitions=3))
        local.partial_fit(batch)
    np.testing.assert_array_equal(ours.means_, local.means_)
    words = pd.DataFrame({"w": np.where(data[:, 0] > data[:, 0].mean(), "hi", "lo")})
    cat, cat_local = CategoricalMixture(2, random_state=0), CategoricalMixture(2, random_state=0)
    cat.partial_fit(dd.from_pandas(words, npartitions=3))
    cat_local.partial_fit(words)
    np.testing.assert_array_equal(cat.probabilities_[0], cat_local.probabilities_[0])


def test_clone_and_cross_validation_share_the_client(client, data):
    """scikit-learn's clone deep-copies parameters, and a Client cannot be copied: the
    clone shares it, so cross_val_score runs each fold on the cluster, as local folds."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    est = GaussianMixture(3, client=client, engine="dask", random_state=0, dtype="float64", reg_covar=1e-5)
    twin = clone(est)
    assert twin.client is client and twin is not est
    assert {k: v for k, v in twin.get_params().items() if k != "client"} == {
        k: v for k, v in est.get_params().items() if k != "client"}
    there = cross_val_score(est, data, cv=3)
    here = cross_val_score(GaussianMixture(3, random_state=0, dtype="float64", reg_covar=1e-5), data, cv=3)
    np.testing.assert_allclose(there, here, rtol=1e-9)


def test_float32_dask_fit_equals_local_fit(client, data):
    kw = dict(n_components=3, random_state=0, max_iter=30)
    local = GaussianMixture(**kw).fit(data)
    dist = GaussianMixture(**kw, client=client).fit(da.from_array(data, chunks=(200, 2)))
    _assert_same_fit(local, dist, rtol=1e-5)


def test_n_init_restarts_match_local(client, data):
    """Every restart follows the local one. The three find the same optimum here, their
    lower bounds equal but for the last digits, which the two engines sum in other orders:
    either may keep another restart, the same fit in another component order."""
    kw = dict(n_components=3, covariance_type="diag", random_state=4, dtype="float64", n_init=3, init_params="k-means++")
    local = GaussianMixture(**kw).fit(data)
    dist = GaussianMixture(**kw, client=client).fit(da.from_array(data, chunks=(333, 4)))
    for a, b in zip(local.history_, dist.history_):
        assert a["n_iter"] == b["n_iter"]
        np.testing.assert_allclose(a["log_likelihood"], b["log_likelihood"], rtol=1e-12)
    order = [np.argsort(m[:, 0]) for m in (local.means_, dist.means_)]
    np.testing.assert_allclose(local.means_[order[0]], dist.means_[order[1]], rtol=1e-9)
    np.testing.assert_allclose(local.covariances_[order[0]], dist.covariances_[order[1]], rtol=1e-9)
    assert local.lower_bound_ == pytest.approx(dist.lower_bound_, rel=1e-12)


def test_data_not_persisted_is_reread_with_the_same_result(client, data):
    source = open_dask_source(
        da.from_array(data, chunks=(100, 4)), client=client, dtype=torch.float64, device="cpu", memory_budget=1 << 20
    )
    engine = DaskEngine(client)
    assert engine.persist(source, fraction=0.0) is source  # too big for a zero budget: re-read each E-step
    assert source.n_rows == 900 and source.row_starts == list(range(0, 900, 100))
    centres = kmeans_plusplus(torch.from_numpy(data), 3, torch.Generator().manual_seed(0))
    model = KMeansModel(3, torch.float64)
    stats = engine.reduce(Task(model, "e_step", (KMeansParams(centres),)), source)
    ref = LocalEngine().reduce(Task(model, "e_step", (KMeansParams(centres),)), TensorSource(torch.from_numpy(data), None, 64))
    torch.testing.assert_close(stats.counts, ref.counts, rtol=0, atol=0)
    torch.testing.assert_close(stats.sums, ref.sums, rtol=1e-12, atol=1e-12)
    assert stats.rows == 900


# ---------------------------------------------------------------------- dataframes and files
def _frame(data):
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    df["label"] = ["x", "y", "z"] * (len(df) // 3)
    return df


def test_dask_dataframe_with_columns_equals_local(client, data):
    ddf = dd.from_pandas(_frame(data), npartitions=4)
    kw = dict(n_components=3, random_state=2, dtype="float64")
    dist = GaussianMixture(**kw, client=client).fit(ddf, columns=["a", "b", "c", "d"])
    local = GaussianMixture(**kw).fit(_frame(data), columns=["a", "b", "c", "d"])
    _assert_same_fit(local, dist)
    assert list(dist.feature_names_in_) == ["a", "b", "c", "d"]


def test_parquet_and_csv_paths_are_read_by_the_workers(client, data, tmp_path):
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
        df.iloc[part].to_csv(tmp_path / f"part{i}.csv", index=False)
    kw = dict(n_components=3, random_state=2, dtype="float64")
    local = GaussianMixture(**kw).fit(df)
    pq = GaussianMixture(**kw, engine="dask", client=client).fit(str(tmp_path / "*.parquet"))
    csv = GaussianMixture(**kw, engine="dask", client=client).fit(str(tmp_path / "*.csv"), columns=["a", "b", "c", "d"])
    _assert_same_fit(local, pq)
    _assert_same_fit(local, csv)


def test_a_folder_of_csv_tsv_and_compressed_files_is_read_as_the_local_engine_reads_it(client, data, tmp_path):
    """A folder was always read as Parquet (Dask's error about Parquet extensions for CSV files);
    .tsv and .csv.gz were refused."""
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    parts = np.array_split(np.arange(len(df)), 3)
    for kind, write in {"csv": lambda f, p: f.to_csv(p, index=False),
                        "tsv": lambda f, p: f.to_csv(p, index=False, sep="\t"),
                        "csv.gz": lambda f, p: f.to_csv(p, index=False)}.items():
        folder = tmp_path / kind.replace(".", "_")
        folder.mkdir()
        for i, part in enumerate(parts):
            write(df.iloc[part], folder / f"part{i}.{kind}")
        (folder / "_SUCCESS").write_text("")  # a writer's marker, skipped as a local read skips it
        kw = dict(n_components=3, random_state=2, dtype="float64")
        _assert_same_fit(GaussianMixture(**kw).fit(str(folder)),
                         GaussianMixture(**kw, engine="dask", client=client).fit(str(folder)))
    # compressed beside plain (Dask inferred every file's compression from the first's name),
    # and a file's columns in another order (read by name, as the local engine reads them)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    df.iloc[parts[0]].to_csv(mixed / "p0.csv", index=False)
    df.iloc[parts[1]].to_csv(mixed / "p1.csv.gz", index=False)
    df.iloc[parts[2]][["c", "a", "d", "b"]].to_csv(mixed / "p2.csv", index=False)
    kw = dict(n_components=3, random_state=2, dtype="float64")
    _assert_same_fit(GaussianMixture(**kw).fit(str(mixed)),
                     GaussianMixture(**kw, engine="dask", client=client).fit(str(mixed)))


def test_a_file_unlike_the_first_is_named_before_the_workers_read(client, data, tmp_path):
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    df.iloc[:450].to_parquet(tmp_path / "p0.parquet")
    df.iloc[450:].drop(columns="b").to_parquet(tmp_path / "p1.parquet")
    with pytest.raises(DataError, match=r"the files disagree on their columns: .*p0\.parquet \(\['a', 'b', 'c', "
                       r"'d'\]\), but .*p1\.parquet has \['a', 'c', 'd'\] \(no \['b'\]\)"):  # the local engine's words
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"))
    with pytest.raises(DataError, match=r"p1\.parquet: no column\(s\) \['b'\]; the file has \['a', 'c', 'd'\]\. "
                       r"Check the spelling \(names are case-sensitive\) or the columns= you passed"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"), columns=["a", "b"])
    with pytest.raises(DataError, match=r"p0\.parquet: no column\(s\) \['e'\]"):  # the first file too
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"), columns=["a", "e"])
    with pytest.raises(DataError, match=r"^columns lists \['a'\] more than once; name each feature once"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"), columns=["a", "c", "a"])
    df.iloc[450:].assign(b="x").to_parquet(tmp_path / "p1.parquet")
    with pytest.raises(DataError, match=r"p1\.parquet: column 'b' holds text values, where .*p0\.parquet holds "
                       r"numeric: give every file the same column types"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"))
    kw = dict(n_components=2, random_state=0, dtype="float64")  # a column left out is not checked, as locally
    _assert_same_fit(GaussianMixture(**kw).fit(str(tmp_path / "*.parquet"), columns=["a", "c"]),
                     GaussianMixture(**kw, engine="dask", client=client).fit(str(tmp_path / "*.parquet"),
                                                                          columns=["a", "c"]))
    df.iloc[450:].assign(e=1.0).to_parquet(tmp_path / "p1.parquet")
    with pytest.raises(DataError, match=r"the files disagree on their columns: .*p1\.parquet has \['a', 'b', 'c', "
                       r"'d', 'e'\] \(also \['e'\]\)"):  # the local engine's words
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.parquet"))
    (tmp_path / "c").mkdir()
    df.iloc[:450].to_csv(tmp_path / "c" / "a.csv", index=False)
    df.iloc[450:].assign(b=[f"x{i}" for i in range(450)]).to_csv(tmp_path / "c" / "b.csv", index=False)
    with pytest.raises(DataError, match=r"(?s)a CSV file holds values of another type than Dask read in the first rows "
                       r"of the first file:\n.*\| b +\| str"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "c"))


def test_a_bad_value_in_files_the_workers_read_names_its_file_and_row(client, data, tmp_path, monkeypatch):
    """Dask named the glob and the row of the data set; the local engine names the file
    and its row there. Parquet by its footers' rows (Dask fuses small files' partitions
    once columns are chosen); CSV by each file's blocks (several partitions a file here)."""
    import bigem.sources.dask as dask_source

    monkeypatch.setattr(dask_source, "_CSV_BLOCK", 2000)
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    df.loc[520, "c"] = np.nan  # the second file's row 220
    for kind in ("parquet", "csv"):
        folder = tmp_path / kind
        folder.mkdir()
        for i, (lo, hi) in enumerate([(0, 300), (300, 700), (700, len(df))]):
            part = df.iloc[lo:hi]
            part.to_parquet(folder / f"p{i}.parquet") if kind == "parquet" else part.to_csv(folder / f"p{i}.csv",
                                                                                             index=False)
        for columns in (None, ["a", "c"]):
            with pytest.raises(DataError, match=rf"^Input \S*{kind}/p1\.{kind} contains NaN\. \(1 NaN; first at row 520 "
                                                 r"of the data set \(row 220 of this file\), column 'c'\)"):
                GaussianMixture(2, engine="dask", client=client).fit(str(folder), columns=columns)
        with pytest.raises(DataError, match=rf"^Input \S*{kind}/p1\.{kind} contains NaN\. \(1 NaN; first at row 220, "
                                             r"column 'c'\)"):  # one file: its rows are the data set's
            GaussianMixture(2, engine="dask", client=client).fit(str(folder / f"p1.{kind}"))


def test_predictions_of_a_parquet_folder_of_small_files_and_outputs_over_its_input(client, data, tmp_path):
    """Dask fuses small Parquet files into fewer tasks once columns are chosen, and its
    to_dask_array(lengths=True) then failed ("lengths does not match"); an out= that a
    collection reads replaced the input with the predictions."""
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    folder = tmp_path / "small"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(folder / f"p{i}.parquet")
    est = GaussianMixture(3, random_state=0, dtype="float64").fit(df)
    ddf = dd.read_parquet(str(folder))[["a", "b", "c", "d"]]
    np.testing.assert_array_equal(client.compute(est.predict(ddf)).result(), est.predict(df))
    assert est.score(ddf) == pytest.approx(est.score(df), rel=1e-12)
    written = pd.read_parquet(est.predict(ddf, out=tmp_path / "labels.parquet"))
    np.testing.assert_array_equal(written["label"], est.predict(df))
    df.to_csv(tmp_path / "in.csv", index=False)
    df.to_parquet(tmp_path / "in.parquet")
    for read, path in ((dd.read_csv, tmp_path / "in.csv"), (dd.read_parquet, tmp_path / "in.parquet")):
        before = path.read_bytes()
        with pytest.raises(OutputPathError, match="is the input file"):
            est.predict(read(str(path)), out=path)
        assert path.read_bytes() == before
    with pytest.raises(OutputPathError, match="is inside the input folder"):
        est.predict(dd.read_parquet(str(folder)), out=folder / "labels.parquet")
    for derived in (dd.read_parquet(str(folder)).values, dd.read_csv(str(tmp_path / "in.csv")).to_dask_array()):
        target = folder / "p0.parquet" if derived.name.startswith("read_parquet") else tmp_path / "in.csv"
        before = target.read_bytes()
        with pytest.raises(OutputPathError, match="is the input file"):  # an array made from the files, too
            est.predict(derived, out=target)
        assert target.read_bytes() == before


def test_paths_with_columns_a_label_column_and_categories_fit_as_locally(client, data, tmp_path):
    """columns= beside paths went to the Dask reader as a local Files object ('X is a dask
    array') wherever the columns were surveyed: a label column, a categorical family."""
    from bigem import CategoricalMixture, Files

    rng = np.random.default_rng(0)
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"]).assign(
        label=np.where(rng.random(len(data)) < 0.2, rng.integers(0, 3, len(data)), -1),
        colour=rng.choice(["red", "blue", "green"], len(data)), size=rng.choice(["s", "m"], len(data)))
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    path, kw = str(tmp_path), dict(n_components=3, random_state=2, dtype="float64")
    features = ["a", "b", "c"]
    semi = dict(kw, unlabeled_weight=1.0)
    local = GaussianMixture(**semi).fit(path, "label", columns=features)
    _assert_same_fit(local, GaussianMixture(**semi, engine="dask", client=client).fit(path, "label", columns=features))
    given = GaussianMixture(**semi, engine="dask", client=client).fit(Files(path, columns=features), "label")
    _assert_same_fit(local, given)
    latent = CategoricalMixture(2, random_state=0, dtype="float64")
    ours = latent.fit(path, columns=["colour", "size"]).probabilities_
    theirs = CategoricalMixture(2, random_state=0, dtype="float64", engine="dask", client=client).fit(
        path, columns=["colour", "size"]).probabilities_
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    with pytest.raises(ParameterError, match="with engine=.dask. the workers read Parquet, comma-separated CSV files"):
        GaussianMixture(2, engine="dask", client=client).fit(Files(path, format="ipc"))


def _outside_150_450(frame):
    return frame.loc[(frame.index < 150) | (frame.index >= 450)]


def test_empty_dataframe_partitions_are_skipped(client, data):
    df = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    ddf = dd.from_pandas(df, npartitions=6)
    ddf = ddf.map_partitions(_outside_150_450, meta=df.iloc[:0])  # partitions 1 and 2 become empty
    kept = _outside_150_450(df)
    kw = dict(n_components=3, random_state=5, dtype="float64")
    _assert_same_fit(GaussianMixture(**kw).fit(kept), GaussianMixture(**kw, client=client).fit(ddf))


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_rows_get_scikit_learns_sentence(client, n):
    X = da.from_array(np.zeros((n, 2)), chunks=(max(n, 1), 2))
    for estimator in (GaussianMixture(2, client=client), bigem.BayesianGaussianMixture(n_components=2, client=client)):
        name = type(estimator).__name__
        with pytest.raises(DataError, match=rf"^Found array with {n} sample\(s\) \(shape=\({n}, 2\)\) while a "
                           rf"minimum of 2 is required by {name}\.$"):
            estimator.fit(X)


# ---------------------------------------------------------------------- prediction
def test_prediction_on_dask_input_is_lazy_and_equals_local(client, data):
    est = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    dx = da.from_array(data, chunks=(250, 4))
    labels, proba, dens = est.predict(dx), est.predict_proba(dx), est.score_samples(dx)
    for lazy in (labels, proba, dens):
        assert isinstance(lazy, da.Array) and lazy.numblocks[0] == 4
    np.testing.assert_array_equal(client.compute(labels).result(), est.predict(data))
    np.testing.assert_allclose(client.compute(proba).result(), est.predict_proba(data), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(client.compute(dens).result(), est.score_samples(data), rtol=1e-10)
    ddf = dd.from_pandas(pd.DataFrame(data, columns=list("abcd")), npartitions=3)
    est_df = GaussianMixture(3, random_state=0, dtype="float64").fit(pd.DataFrame(data, columns=list("abcd")))
    np.testing.assert_array_equal(client.compute(est_df.predict(ddf)).result(), est.predict(data))


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_predictions_of_a_dask_dataframe_stream_to_a_file_with_their_ids(data, tmp_path, ext):
    """out= with a Dask DataFrame raised AttributeError (it took the in-memory path); each
    partition's log-joints now come back one at a time, with its ids, to be written."""
    frame = pd.DataFrame(data, columns=list("abcd"))
    frame.insert(0, "key", [f"row{i}" for i in range(len(frame))][::-1])
    frame.insert(1, "n", np.arange(len(frame)) * 7)
    ddf = dd.from_pandas(frame, npartitions=4)
    est = GaussianMixture(3, random_state=0, dtype="float64").fit(frame, columns=list("abcd"))
    X = frame[list("abcd")]
    out = est.write_predictions(ddf, tmp_path / f"p.{ext}", outputs=("label", "proba", "log_density"), id_column="key")
    got = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
    assert list(got.columns) == ["key", "label", "proba_0", "proba_1", "proba_2", "log_density"]
    np.testing.assert_array_equal(got["key"], frame["key"])
    np.testing.assert_array_equal(got["label"], est.predict(X))
    np.testing.assert_allclose(got[["proba_0", "proba_1", "proba_2"]], est.predict_proba(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["log_density"], est.score_samples(X), rtol=1e-10)
    labels = pd.read_parquet(est.predict(ddf, out=tmp_path / "l.parquet", id_column="n"))
    np.testing.assert_array_equal(labels["n"], frame["n"])
    np.testing.assert_array_equal(labels["label"], est.predict(X))
    dx = da.from_array(data, chunks=(250, 4))  # a dask array: no ids, every output to .npy
    plain = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    np.testing.assert_allclose(np.load(plain.score_samples(dx, out=tmp_path / "s.npy")), plain.score_samples(data),
                               rtol=1e-10)
    with pytest.raises(DataError, match="X is a dask array with no column names"):
        plain.predict(dx, out=tmp_path / "x.parquet", id_column="key")
    with pytest.raises(DataError, match=r"X has no column 'nope' \(the id_column\)"):
        est.predict(ddf, out=tmp_path / "x.parquet", id_column="nope")
    assert not (tmp_path / "x.parquet").exists()


def test_an_id_column_beside_the_features_of_a_model_fitted_on_an_array_is_no_feature(data, tmp_path):
    """The README's Dask block refits on an array, then writes predictions of a frame
    with its ids: the id column counted as a feature ("X has 5 features, but
    GaussianMixture is expecting 4"), in memory, in files and on Dask alike."""
    frame = pd.DataFrame(data, columns=list("abcd"))
    frame.insert(2, "id", np.arange(len(frame)) * 3)
    frame.to_parquet(tmp_path / "rows.parquet")
    plain = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    given = {"frame": frame, "file": tmp_path / "rows.parquet", "dask": dd.from_pandas(frame, npartitions=3)}
    for what, X in given.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-learn's: named X, a model fitted without names
            out = pd.read_parquet(plain.predict_proba(X, out=tmp_path / f"{what}.parquet", id_column="id"))
        np.testing.assert_array_equal(out["id"], frame["id"])
        np.testing.assert_allclose(out[["proba_0", "proba_1", "proba_2"]], plain.predict_proba(data), rtol=1e-10,
                                   atol=1e-12)
    # a model that was fitted with the id among its features reads it as one (the ids are written beside too)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bigem's: 'id' looks like a row identifier (so it is, and fitted on purpose)
        named = GaussianMixture(3, random_state=0, dtype="float64").fit(frame)
    out = pd.read_parquet(named.predict(frame, out=tmp_path / "named.parquet", id_column="id"))
    np.testing.assert_array_equal(out["label"], named.predict(frame))


def test_a_copy_of_a_model_on_a_cluster_shares_its_client(client):
    """copy.deepcopy copied the Client ("cannot pickle '_asyncio.Task' object"), and so
    failed a one-step StructuralModel, which copies its fitted measurement model."""
    import copy

    from bigem import StructuralModel

    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 600)
    X, Y = rng.normal(3.0 * z[:, None], 1.0, (600, 2)), rng.normal(1.0 + 2.0 * z, 1.0)[:, None]
    kw = dict(max_iter=20, dtype="float64", random_state=0)
    on_dask = GaussianMixture(2, engine="dask", client=client, **kw)
    assert copy.deepcopy(on_dask).client is client
    fitted = copy.deepcopy(on_dask.fit(X))
    assert fitted.client is client and fitted.means_ is not on_dask.means_
    np.testing.assert_array_equal(fitted.means_, on_dask.means_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = StructuralModel(GaussianMixture(2, engine="dask", client=client, **kw), "gaussian", n_steps=1,
                               max_iter=20).fit(X, Y)
        local = StructuralModel(GaussianMixture(2, **kw), "gaussian", n_steps=1, max_iter=20).fit(X, Y)
    assert ours.score(X, Y) == pytest.approx(local.score(X, Y), rel=1e-8)


def test_an_in_memory_frame_sent_to_the_cluster_keeps_its_columns(client):
    """engine='dask' made an in-memory DataFrame an array of its values: a float column
    beside a string one became objects, refused as "column 0 holds the number ..., which
    is not a whole number" (a categorical's rule), and a numeric frame lost its names."""
    from bigem import MixedMixture

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(0, 1.0, 300), "colour": np.where(rng.random(300) < 0.5, "red", "blue")})
    frame.index = rng.permutation(300)  # kept in its order, not sorted by its index
    kw = dict(max_iter=6, dtype="float64", random_state=0, init_params="random_from_data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = MixedMixture(2, **kw).fit(frame)
        ours = MixedMixture(2, engine="dask", client=client, **kw).fit(frame)
        # arrays of weights and labels beside a numeric frame go with it, as before
        w, y = rng.uniform(0.5, 2.0, 300), np.where(rng.random(300) < 0.5, -1, (frame["x"] > 0).astype(int))
        weighted = [GaussianMixture(2, unlabeled_weight=1.0, **kw, **e).fit(frame[["x"]], y, sample_weight=w)
                    for e in ({}, dict(engine="dask", client=client))]
    np.testing.assert_allclose(ours.means_, local.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted[1].means_, weighted[0].means_, rtol=1e-10)


def test_pandas_nullable_columns_fit_and_predict_as_on_the_local_engine(client):
    """Int64 and Float64 columns (how pandas holds counts with gaps) raised TypeError on
    Dask ("Cannot interpret 'Int64Dtype()' as a data type"), and their pd.NA broke
    prediction; they read as float64, a gap as NaN, as the local engine reads them."""
    from bigem import MixedMixture

    rng = np.random.default_rng(5)
    z = rng.integers(0, 2, 400)
    frame = pd.DataFrame({"cnt": pd.array(rng.poisson(1 + 5 * z), dtype="Int64"),
                          "g": pd.array(rng.normal(3.0 * z, 1.0), dtype="Float64")})
    frame.loc[[3, 250], "cnt"] = pd.NA
    ddf = dd.from_pandas(frame, npartitions=3)
    kw = dict(families={"cnt": "poisson"}, missing_values="fiml", random_state=0, dtype="float64")
    local = MixedMixture(2, **kw).fit(frame)
    dist = MixedMixture(2, client=client, **kw).fit(ddf)
    np.testing.assert_allclose(dist.weights_, local.weights_, rtol=1e-9)
    np.testing.assert_allclose(dist.lambdas_, local.lambdas_, rtol=1e-9)
    np.testing.assert_array_equal(client.compute(dist.predict(ddf)).result(), local.predict(frame))
    assert dist.score(ddf) == pytest.approx(local.score(frame), rel=1e-10)
    plain = frame[["g"]]
    np.testing.assert_allclose(GaussianMixture(2, random_state=0, dtype="float64", client=client).fit(
        dd.from_pandas(plain, npartitions=2)).means_, GaussianMixture(2, random_state=0, dtype="float64").fit(
        plain).means_, rtol=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_dask_array_of_unknown_chunk_sizes_fits_as_one_of_known_sizes(client, data, dtype):
    """A filtered dask array (chunks (nan, ...)) failed in float32 alone, inside the probe
    for the shift (a slice needs known chunk sizes), with Dask's own error."""
    dx = da.from_array(data + 1e5, chunks=(250, 4))
    unknown = dx[dx[:, 0] > -np.inf]
    assert np.isnan(unknown.chunks[0][0])
    known = GaussianMixture(3, random_state=0, dtype=dtype, client=client).fit(dx)
    found = GaussianMixture(3, random_state=0, dtype=dtype, client=client).fit(unknown)
    np.testing.assert_array_equal(found.means_, known.means_)


# ---------------------------------------------------------------------- checkpoints
def _interrupt_at(iteration):
    class Interrupted(Exception):
        pass

    def callback(info):
        if info.iteration == iteration:
            raise Interrupted

    return Interrupted, callback


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_resumed_fit_equals_uninterrupted_fit(client, data, tmp_path, engine):
    path = tmp_path / "fit.ckpt"
    kw = dict(n_components=3, random_state=50, dtype="float64", n_init=2, tol=1e-6, max_iter=100, init_params="k-means++")
    kw.update(dict(client=client, engine="dask") if engine == "dask" else {})
    overlapping, _, _ = make_blobs(3, n_per=300, k=3, d=4, sep=1.5)  # restarts take 6 and 11 iterations
    X = da.from_array(overlapping, chunks=(300, 4)) if engine == "dask" else overlapping
    whole = GaussianMixture(**kw).fit(X)
    # interrupted in the second restart, after a checkpoint at its iteration 8
    Interrupted, stop = _interrupt_at(9)
    calls = []

    def callback(info):
        calls.append((info.restart, info.iteration))
        if info.restart == 1:
            stop(info)

    with pytest.raises(Interrupted):
        GaussianMixture(**kw).fit(X, callback=callback, checkpoint=path, checkpoint_every=4)
    assert path.exists()
    resumed_calls = []
    resumed = GaussianMixture(**kw).fit(
        X, checkpoint=path, checkpoint_every=4, callback=lambda i: resumed_calls.append((i.restart, i.iteration))
    )
    assert resumed_calls[0] == (1, 9)  # continued after the saved iteration 8; restart 0 not redone
    assert whole.history_[1]["n_iter"] > 9
    assert not path.exists()  # removed once the fit completed
    rtol = 0 if engine == "local" else 1e-9
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(resumed, name), getattr(whole, name), rtol=rtol, atol=rtol)
    for mine, theirs in zip(resumed.history_, whole.history_, strict=True):
        np.testing.assert_allclose(mine["log_likelihood"], theirs["log_likelihood"], rtol=rtol)


def test_checkpoint_from_another_fit_is_refused(data, tmp_path):
    path = tmp_path / "fit.ckpt"
    Interrupted, stop = _interrupt_at(3)
    with pytest.raises(Interrupted):
        GaussianMixture(3, random_state=0, tol=1e-9).fit(data, callback=stop, checkpoint=path, checkpoint_every=1)
    with pytest.raises(ParameterError, match="fit.ckpt: the checkpoint was written by a different fit"):
        GaussianMixture(2, random_state=0).fit(data, checkpoint=path)
    with pytest.raises(ParameterError, match="'checkpoint_every' parameter of GaussianMixture must be an int"):
        GaussianMixture(3).fit(data, checkpoint=tmp_path / "other", checkpoint_every=0)


# ---------------------------------------------------------------------- bad input
def test_unreachable_scheduler_is_a_clear_error_not_a_hang(data):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    address = f"tcp://127.0.0.1:{port}"
    started = time.perf_counter()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterError, match=f"could not reach a Dask scheduler at '{address}' within 1s"):
            GaussianMixture(2, client=address).fit(da.from_array(data, chunks=(300, 4)))
    assert time.perf_counter() - started < 20


@pytest.mark.parametrize("engine", ["local", "torch"])
def test_a_client_with_an_engine_that_would_not_use_it_is_refused(data, engine):
    """It went unused without a word: the fit ran in this process."""
    from bigem import GaussianHMM

    for est in (GaussianMixture(2, client="tcp://10.0.0.1:8786", engine=engine),
                GaussianHMM(2, client="tcp://10.0.0.1:8786", engine=engine)):
        with pytest.raises(ParameterError, match=rf"{type(est).__name__}: client='tcp://10.0.0.1:8786' is the cluster "
                                                 rf"of engine='dask', but engine='{engine}' runs .*, so the client "
                                                 rf"would go unused; set engine='dask' to run on the cluster, or "
                                                 rf"client=None"):
            est.fit(data)


def test_a_client_sends_an_in_memory_fit_to_its_cluster_under_engine_auto(client, data):
    with distributed.get_task_stream(client=client) as tasks:
        sent = GaussianMixture(3, client=client, random_state=0).fit(data)
    assert tasks.data  # it ran on the cluster's workers, not here
    here = GaussianMixture(3, random_state=0).fit(data)
    _assert_same_fit(sent, here)
    # predictions on data here run here, and need no open client
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        gone = distributed.Client(cluster, set_as_default=False)
        fitted = GaussianMixture(3, client=gone, random_state=0).fit(data)
        gone.close()
    np.testing.assert_array_equal(fitted.predict(data), here.predict(data))
    assert fitted.score(data) == pytest.approx(here.score(data), rel=1e-9)
    # a sparse matrix is refused as here, not made a 0-d array ("X has shape ()")
    from scipy import sparse

    from bigem.errors import SparseDataError

    with pytest.raises(SparseDataError, match="Sparse data was passed for X, but dense data is required"):
        GaussianMixture(3, client=client).fit(sparse.csr_matrix(data))


def test_select_with_a_client_surveys_and_builds_its_tree_on_the_cluster(client, data, monkeypatch):
    """The survey (rows, features) and the hierarchical tree every candidate starts from
    ran here while the candidates' fits went to the cluster (files the workers alone
    see were then no such file here)."""
    import bigem
    from bigem.estimators import selection

    engines, build = [], selection.build

    def recorded(source, **kwargs):
        engines.append(type(kwargs["engine"]).__name__)
        return build(source, **kwargs)

    monkeypatch.setattr(selection, "build", recorded)
    bigem.select(data, n_components=[2, 3], covariance_types=["full"], client=client)
    assert engines == ["DaskEngine"]


def test_a_closed_client_is_a_clear_error(data):
    """A client whose close() was called failed deep inside distributed (AttributeError:
    'NoneType' object has no attribute 'broadcast')."""
    from bigem import MultinomialMixture

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        closed = distributed.Client(cluster, set_as_default=False)
        closed.close()
        for est in (GaussianMixture(2, client=closed), MultinomialMixture(2, client=closed, engine="dask")):
            with pytest.raises(ClusterError, match=r"client= is closed \(its close\(\) was called, or its cluster "
                                                   r"shut down\); pass an open distributed.Client"):
                est.fit(da.from_array(np.abs(np.round(data)), chunks=(300, 4)))


def test_partitions_with_different_columns_are_named(client, data):
    good = pd.DataFrame(data[:450], columns=list("abcd"))
    bad = pd.DataFrame(data[450:], columns=list("abce"))
    ddf = dd.from_delayed([dask.delayed(good), dask.delayed(bad)], meta=good.iloc[:0], verify_meta=False)
    with pytest.raises(DataError, match=r"partition 1 has columns \['a', 'b', 'c', 'e'\].*missing \['d'\]"):
        GaussianMixture(2, client=client).fit(ddf)


def test_non_numeric_columns_are_named(client, data):
    ddf = dd.from_pandas(_frame(data), npartitions=2)
    with pytest.raises(DataError, match=r"non-numeric column\(s\) \['label'\]") as err:
        GaussianMixture(2, client=client).fit(ddf)
    assert isinstance(err.value, TypeError)
    with pytest.raises(DataError, match=r"column\(s\) \['nope'\] not found"):
        GaussianMixture(2, client=client).fit(ddf, columns=["a", "nope"])


def test_paths_the_workers_cannot_read_are_refused(client, data, tmp_path):
    (tmp_path / "x.feather").write_bytes(b"")
    with pytest.raises(DataError, match=r"x.feather: Arrow \(.arrow, .feather, .ipc\) files are read by the local "
                       r"engine only; with engine='dask' bigem reads Parquet and CSV files"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "x.feather"))
    with pytest.raises(DataError, match="nothing.parquet: no such file or folder"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "nothing.parquet"))
    np.save(tmp_path / "a.npy", data)
    np.save(tmp_path / "b.npy", data)
    with pytest.raises(DataError, match=r"a.npy and 1 more .npy files: bigem reads one .npy file at a time"):
        GaussianMixture(2, engine="dask", client=client).fit(str(tmp_path / "*.npy"))
    with pytest.raises(DataError, match=r"a.npy: column index 7 is out of range; the file has 4 columns"):
        GaussianMixture(2, client=client).fit(str(tmp_path / "a.npy"), columns=[2, 7])
    with pytest.raises(DataError, match=r"a.npy: unknown column -1; a .npy file has no column names: use indices "
                                        r"0..3"):  # the local fit's words
        GaussianMixture(2, client=client).fit(str(tmp_path / "a.npy"), columns=[-1])
    gap = data.copy()
    gap[57, 1] = np.nan
    np.save(tmp_path / "gap.npy", gap)  # named as locally
    with pytest.raises(DataError, match=r"Input \S*gap.npy contains NaN. \(1 NaN; first at row 57, column 1\)"):
        GaussianMixture(2, client=client).fit(str(tmp_path / "gap.npy"))


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_npy_file_is_read_by_the_workers_as_a_local_fit_reads_it(client, data, tmp_path, order):
    """A .npy file (its columns by index, a Files of one, a folder of one) fits on the
    cluster as here: the same parameters and feature_indices_, where it was refused."""
    path = tmp_path / "rows" / "x.npy"
    path.parent.mkdir()
    np.save(path, np.asarray(data, order=order))
    local = GaussianMixture(3, random_state=0, dtype="float64").fit(str(path), columns=[2, 0, 3])
    for X, columns in ((str(path), [2, 0, 3]), (bigem.Files(str(path), columns=[2, 0, 3]), None),
                       (str(path.parent), ["2", "0", "3"])):
        remote = GaussianMixture(3, random_state=0, dtype="float64", client=client, chunk_size=170).fit(X, columns=columns)
        np.testing.assert_allclose(remote.means_, local.means_, rtol=0, atol=1e-12)
        np.testing.assert_allclose(remote.covariances_, local.covariances_, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(remote.feature_indices_, [2, 0, 3])
        np.testing.assert_array_equal(remote.predict(str(path)), local.predict(str(path)))
    every = GaussianMixture(3, random_state=0, dtype="float64", client=client).fit(str(path))
    np.testing.assert_allclose(every.means_, GaussianMixture(3, random_state=0, dtype="float64").fit(data).means_,
                               rtol=0, atol=1e-12)


def test_a_npy_file_travels_to_worker_processes_as_its_path(data, tmp_path):
    from bigem.sources.dask import npy_rows

    np.save(tmp_path / "x.npy", data)
    rows = npy_rows(str(tmp_path / "x.npy"), [1, 3], 100)
    assert len(pickle.dumps(dict(rows.dask))) < 20_000  # the graph holds the path, not the 28 kB of rows
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl, set_as_default=False) as c:
        np.testing.assert_array_equal(c.compute(rows).result(), data[:, [1, 3]])


def test_nan_in_a_partition_names_its_global_row(client, data):
    bad = data.copy()
    bad[611, 2] = np.nan
    with pytest.raises(DataError, match=r"Input X contains NaN.*1 NaN; first at row 611, column 2\)"):
        GaussianMixture(2, client=client).fit(da.from_array(bad, chunks=(200, 4)))


def _first_300(frame):
    return frame.loc[frame.index < 300]


def test_scores_of_a_collection_with_an_empty_partition_are_the_local_ones(client, data):
    """A filtered collection has empty partitions; score's totals crashed on them in torch's argmax."""
    est = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    holed = da.from_array(data, chunks=((300, 0, 600),  4))
    assert est.score(holed) == pytest.approx(est.score(data), rel=1e-12)
    assert est.bic(holed) == pytest.approx(est.bic(data), rel=1e-12)
    frame = dd.from_pandas(pd.DataFrame(data, columns=list("abcd")), npartitions=3)
    kept = frame.map_partitions(_first_300, meta=frame._meta)  # partitions 1 and 2 empty
    fitted = GaussianMixture(3, random_state=0, dtype="float64").fit(pd.DataFrame(data, columns=list("abcd")))
    assert fitted.score(kept) == pytest.approx(fitted.score(pd.DataFrame(data[:300], columns=list("abcd"))),
                                               rel=1e-12)


def test_prediction_errors_name_the_row_of_x_or_of_its_partition(client, data):
    """Row numbers in predict's and score's messages were counted from each partition's start,
    without saying which partition."""
    est = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    bad = data.copy()
    bad[611, 2] = np.nan
    nan = r"Input X contains NaN\. \(1 NaN in partition 3; first at row 611, column 2\)"
    with pytest.raises(DataError, match=nan):
        client.compute(est.predict(da.from_array(bad, chunks=(200, 4)))).result()
    with pytest.raises(DataError, match=nan):
        est.score(da.from_array(bad, chunks=(200, 4)))
    far = data.copy()
    far[611] = 1e200
    with pytest.raises(NumericalError, match=r"^row 611 of X has zero density"):
        est.score(da.from_array(far, chunks=(200, 4)))
    with pytest.raises(NumericalError, match=r"^row 611 of X has zero density"):
        client.compute(est.predict_proba(da.from_array(far, chunks=(200, 4)))).result()
    # partitions of unknown length (a boolean selection): the row in its partition, which is named
    unknown = da.from_array(far, chunks=(200, 4))
    unknown = unknown[unknown[:, 0] > -1e300]
    assert np.isnan(unknown.chunks[0]).all()
    with pytest.raises(NumericalError, match=r"^row 11 of partition 3 of X \(counted from its start\) has zero"):
        est.score(unknown)
    named = GaussianMixture(3, random_state=0, dtype="float64").fit(pd.DataFrame(data, columns=list("abcd")))
    frame = dd.from_pandas(pd.DataFrame(bad, columns=list("abcd")), npartitions=3)  # partitions of 300 rows
    with pytest.raises(DataError, match=r"\(1 NaN in partition 2; first at row 611, column 'c'\)"):
        named.score(frame)
    gone = da.from_array(data, chunks=(200, 4))
    gone = gone[gone[:, 0] > 1e9]  # no row left (it said: sample_weight sums to zero)
    with pytest.raises(DataError, match=r"^Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1 "
                       r"is required by GaussianMixture\.$"):
        est.score(gone)
    labelled = pd.DataFrame(bad, columns=[10, 20, 30, 40])  # integer labels: named by the label, as locally
    fitted = GaussianMixture(2, random_state=0).fit(pd.DataFrame(data, columns=[10, 20, 30, 40]))
    for call in (lambda: fitted.score(dd.from_pandas(labelled, npartitions=3)),
                 lambda: GaussianMixture(2, client=client).fit(dd.from_pandas(labelled, npartitions=3)),
                 lambda: fitted.score(labelled)):
        with pytest.raises(DataError, match=r"first at row 611, column 30\)"):
            call()
    weights = da.from_array(np.where(np.arange(900) == 611, -1.0, 1.0), chunks=200)
    with pytest.raises(DataError, match=r"sample_weight has -1\.0 at row 611 of X; weights must be"):
        est.score(da.from_array(data, chunks=(200, 4)), sample_weight=weights)


@pytest.fixture
def deserted(data):
    """(a client whose cluster has just lost its only worker, a source of its partitions)."""
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        source = open_dask_source(
            da.from_array(data, chunks=(300, 4)), client=c, dtype=torch.float64, device="cpu", memory_budget=1 << 20
        )
        cluster.scale(0)
        while c.scheduler_info()["workers"]:
            time.sleep(0.05)
        yield c, source


def test_cluster_left_without_workers_is_an_error_not_a_hang(deserted):
    c, source = deserted
    model = KMeansModel(3, torch.float64)
    started = time.perf_counter()
    with pytest.raises(ClusterError, match="has had no workers for 1s in the middle of an E-step"):
        DaskEngine(c, no_workers_timeout=1.0).reduce(Task(model, "e_step", (KMeansParams(torch.zeros(3, 4)),)), source)
    assert time.perf_counter() - started < 15


def test_worker_without_bigem_is_named(client):
    workers = sorted(client.scheduler_info()["workers"])
    with pytest.raises(ClusterError, match="not-a-bigem-dist is not installed on Dask worker") as err:
        DaskEngine(client).check_workers("not-a-bigem-dist")
    assert all(w in str(err.value) for w in workers)


def test_bad_client_is_refused(client, data):
    dx = da.from_array(data, chunks=(300, 4))
    with pytest.raises(ParameterError, match="'client' parameter of GaussianMixture must be a distributed.Client"):
        GaussianMixture(2, client=42).fit(dx)


# ---------------------------------------------------------------------- sample weights
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_weighted_dask_fits_equal_the_local_weighted_fit(client, data, covariance_type, tmp_path):
    """Weights travel with the partitions (a column, an array beside a dask array, a dask
    array) and the k-means initialisation samples rows by weight on the workers: every
    fit equals the local one, initialisation included."""
    w = np.random.default_rng(4).integers(0, 4, len(data)).astype(float)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=3, dtype="float64", max_iter=30)
    local = GaussianMixture(**kw).fit(data, sample_weight=w)
    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"]).assign(w=w)
    frame.to_parquet(tmp_path / "weighted.parquet")
    dx = da.from_array(data, chunks=((0, 250, 0, 1, 649), (4,)))
    fits = [
        GaussianMixture(**kw, client=client).fit(dd.from_pandas(frame, npartitions=4), sample_weight="w"),
        GaussianMixture(**kw, client=client).fit(dx, sample_weight=w),
        GaussianMixture(**kw, client=client).fit(dx, sample_weight=da.from_array(w, chunks=200)),
        GaussianMixture(**kw, engine="dask", client=client).fit(str(tmp_path / "weighted.parquet"), sample_weight="w"),
    ]
    for dist in fits:
        _assert_same_fit(local, dist)
    assert list(fits[0].feature_names_in_) == ["a", "b", "c", "d"]


def test_bad_weights_on_dask_are_named(client, data):
    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    dx = da.from_array(data, chunks=(300, 4))
    fit = GaussianMixture(2, client=client).fit
    # a local fit's words (scikit-learn's), with the global row
    with pytest.raises(DataError, match=r"^Negative values in data passed to `sample_weight` \(first at row 400\)\.$"):
        fit(dx, sample_weight=da.from_array(np.where(np.arange(900) == 400, -2.0, 1.0), chunks=300))
    both = np.where(np.arange(900) == 401, np.inf, np.where(np.arange(900) == 400, -2.0, 1.0))
    with pytest.raises(DataError, match=r"^Input sample_weight contains NaN or infinity \(first at row 401\)\.$"):
        fit(dx, sample_weight=da.from_array(both, chunks=300))  # infinity named before an earlier negative
    with pytest.raises(DataError, match=r"^Input sample_weight contains NaN or infinity \(first at row 401\)\.$"):
        fit(dx, sample_weight=both)  # as a local fit names it
    with pytest.raises(DataError, match=r"^Sample weights must contain at least one non-zero number: sample_weight sums "
                                        r"to zero; give at least one row a positive weight\.$"):
        fit(dd.from_pandas(frame.assign(w=0.0), npartitions=3), sample_weight="w")
    with pytest.raises(DataError, match=r"^sample_weight\.shape == \(899,\), expected \(900,\)! Pass one weight"):
        fit(dx, sample_weight=np.ones(899))
    with pytest.raises(DataError, match=r"sample_weight='w' names a column, but X is a dask array without column names"):
        fit(dx, sample_weight="w")
    with pytest.raises(DataError, match=r"X is a dask.dataframe: give its weights as one of its columns"):
        fit(dd.from_pandas(frame, npartitions=3), sample_weight=np.ones(900))
    with pytest.raises(DataError, match=r"sample_weight='q': X has no such column; it has \['a', 'b', 'c', 'd'\]"):
        fit(dd.from_pandas(frame, npartitions=3), sample_weight="q")
    with pytest.raises(DataError, match=r"sample_weight='a' is also in columns="):
        fit(dd.from_pandas(frame, npartitions=3), sample_weight="a", columns=["a", "b"])


def test_import_bigem_does_not_import_dask():
    code = "import sys, bigem; bigem.GaussianMixture(); assert 'dask' not in sys.modules and 'distributed' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- processes and faults
def test_worker_process_killed_mid_fit_on_the_default_cluster_changes_nothing():
    X, _, _ = make_blobs(5, n_per=300, k=3, d=4, sep=1.5)
    X = np.concatenate([X] * 10)  # 9000 rows, 3 partitions; about 12 iterations
    kw = dict(n_components=3, covariance_type="full", random_state=3, dtype="float64", tol=1e-6)
    local = GaussianMixture(**kw).fit(X)
    with session(None) as engine:  # the embedded default: a LocalCluster of single-threaded worker processes
        c = engine.client
        pids = c.run(os.getpid)
        assert len(pids) == (os.cpu_count() or 1) and os.getpid() not in pids.values()
        victim = sorted(pids)[0]
        killed = []

        def callback(info):
            if info.iteration == 2 and not killed:  # iteration 3 then runs with a third of its data lost
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)

        dist = GaussianMixture(**kw, client=c).fit(da.from_array(X, chunks=(3000, 4)), callback=callback)
        assert killed and dist.n_iter_ >= 4
        with pytest.raises(ProcessLookupError):
            os.kill(pids[victim], 0)
    assert c.status == "closed"  # the embedded cluster is closed with its block
    _assert_same_fit(local, dist)


def test_select_on_dask_with_a_weight_column_equals_local(client, data):
    """select() scores each candidate where the partitions live (criteria read them one
    partition at a time), the weight column excluded from the features."""
    import bigem

    w = np.random.default_rng(5).integers(0, 3, len(data)).astype(float)
    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"]).assign(w=w)
    kw = dict(random_state=0, dtype="float64")
    local = bigem.select(frame, [2, 3], ["full", "diag"], sample_weight="w", **kw)
    dist = bigem.select(dd.from_pandas(frame, npartitions=3), [2, 3], ["full", "diag"], sample_weight="w",
                        client=client, **kw)
    for a, b in zip(local.table, dist.table):
        for name in ("log_likelihood", "bic", "aic", "icl"):
            assert b[name] == pytest.approx(a[name], rel=1e-9), name
    assert list(dist.best_estimator_.feature_names_in_) == ["a", "b", "c", "d"]


def test_scores_of_a_dask_dataframe_are_summed_where_the_partitions_live(client, data):
    """score, bic and aic reduce partition totals: a dataframe's partitions of unknown
    length included (its row count is summed, not read from a shape, which is nan)."""
    from bigem.estimators.selection import criteria

    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    gm = GaussianMixture(3, random_state=0, dtype="float64").fit(frame)
    ll, p, n = gm.score_samples(frame), gm._n_parameters(), len(frame)
    ddf = dd.from_pandas(frame, npartitions=3)
    assert gm.score(ddf) == pytest.approx(ll.mean(), rel=1e-12)
    assert gm.bic(ddf) == pytest.approx(-2 * ll.sum() + p * np.log(n), rel=1e-12)
    assert gm.aic(ddf) == pytest.approx(-2 * ll.sum() + 2 * p, rel=1e-12)
    r = gm.predict_proba(frame)
    entropy = -(r * np.log(np.where(r > 0, r, 1.0))).sum()
    assert gm.entropy(ddf) == pytest.approx(entropy, rel=1e-9) == gm.entropy(frame)
    assert gm.relative_entropy(ddf) == pytest.approx(1 - entropy / (n * np.log(3)), rel=1e-9)
    w = np.where(np.arange(n) == 700, -1.0, 1.0)
    with pytest.raises(DataError, match=r"X: sample_weight has -1\.0 at row 700 of X; weights must be finite"):
        criteria(gm, dd.from_pandas(frame.assign(w=w), npartitions=3), sample_weight="w")


def test_a_dask_dataframe_with_integer_column_labels_is_scored_and_predicted(data):
    """Names are compared as strings but selected by the labels the frame has."""
    gm = GaussianMixture(3, random_state=0, dtype="float64").fit(data)
    ddf = dd.from_pandas(pd.DataFrame(data), npartitions=3)  # labels 0..3, not strings
    assert gm.score(ddf) == pytest.approx(gm.score(data), rel=1e-12)  # integer labels are not names: no warning
    np.testing.assert_array_equal(gm.predict(ddf).compute(), gm.predict(data))


def test_a_non_numeric_weight_column_is_named_when_scoring_on_dask(data):
    from bigem.estimators.selection import criteria

    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    ddf = dd.from_pandas(frame.assign(w=["x"] * len(frame)), npartitions=3)
    with pytest.raises(DataError, match=r"X has non-numeric column\(s\) \['w'\]"):
        criteria(gm, ddf, sample_weight="w")


def _same_online_fit(a: GaussianMixture, b: GaussianMixture) -> None:
    assert a.n_steps_ == b.n_steps_ and a.n_iter_ == b.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_


def test_online_em_on_dask_equals_the_local_online_fit(client, data, tmp_path):
    """The workers read and convert each partition, this process steps through them in
    row order: the same mini-batches as a local fit, so the same fit, bit for bit,
    however the rows are partitioned (weights and a weighted initial sample included)."""
    kw = dict(n_components=3, algorithm="online", batch_size=128, max_iter=2, random_state=0, dtype="float64")
    local = GaussianMixture(**kw).fit(data)
    for chunks in ((1000, 4), ((0, 250, 0, 1, 649), (4,))):
        _same_online_fit(local, GaussianMixture(**kw, client=client).fit(da.from_array(data, chunks=chunks)))
    w = np.random.default_rng(4).integers(0, 4, len(data)).astype(float)
    local_w = GaussianMixture(**kw).fit(data, sample_weight=w)
    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"]).assign(w=w)
    _same_online_fit(local_w, GaussianMixture(**kw, client=client).fit(dd.from_pandas(frame, npartitions=3),
                                                                        sample_weight="w"))
    frame.to_parquet(tmp_path / "weighted.parquet")
    files = GaussianMixture(**kw, engine="dask", client=client).fit(str(tmp_path / "weighted.parquet"), sample_weight="w")
    _same_online_fit(local_w, files)
    assert list(files.feature_names_in_) == ["a", "b", "c", "d"]


def test_online_em_on_dask_with_labels_equals_the_local_online_fit(client, data):
    """A partly labelled online fit starts from the first rows' labels; the pass that read
    them cancelled the partition it had asked for ahead, which the next pass needed at once
    (FuturesCancelledError, "lost dependencies")."""
    y = np.where(np.random.default_rng(2).random(len(data)) < 0.3, np.arange(len(data)) % 3, -1)
    kw = dict(n_components=3, algorithm="online", batch_size=128, max_iter=2, random_state=0, dtype="float64",
              unlabeled_weight=0.4)
    local = GaussianMixture(**kw).fit(data, y)
    for chunks in ((128, 4), ((0, 250, 0, 1, 649), (4,))):
        _same_online_fit(local, GaussianMixture(**kw, client=client).fit(da.from_array(data, chunks=chunks), y))


def test_streaming_dask_partitions_keeps_one_ahead_and_stops_cleanly(client, data):
    source = open_dask_source(da.from_array(data, chunks=(100, 4)), client=client, dtype=torch.float64,
                              device=torch.device("cpu"), memory_budget=1 << 20, chunk_size=64)
    chunks = list(DaskEngine(client).stream(source))
    np.testing.assert_array_equal(torch.cat([c.x for c in chunks]).numpy(), data)
    assert [c.row_start for c in chunks][:3] == [0, 64, 100]  # chunks never span partitions
    stream = DaskEngine(client).stream(source)
    next(stream)
    stream.close()  # the partition computing ahead is released, nothing raises


def test_streaming_from_a_cluster_left_without_workers_is_an_error_not_a_hang(deserted):
    c, source = deserted
    started = time.perf_counter()
    with pytest.raises(ClusterError, match="no workers for 1s in the middle of reading a partition for online EM"):
        next(DaskEngine(c, no_workers_timeout=1.0).stream(source))
    assert time.perf_counter() - started < 15


def test_the_model_is_shipped_once_per_fit_not_once_per_iteration(client, data, monkeypatch):
    """Every E-step names the same model: the engine persists it as one cluster key the
    first time and refers to that key afterwards, so its bytes (and the workers' copy
    with its scratch buffers) serve the whole fit."""
    keys = []
    ask = DaskEngine._model_key

    def spy(self, model):
        key = ask(self, model)
        keys.append((type(model).__name__, id(model), key.key))
        return key

    monkeypatch.setattr(DaskEngine, "_model_key", spy)
    gm = GaussianMixture(3, max_iter=6, tol=0.0, n_init=2, random_state=0, client=client)
    with pytest.warns(ConvergenceWarning):
        gm.fit(da.from_array(data, chunks=(300, 4)))
    lockstep = [k for name, _, k in keys if name == "Lockstep"]
    assert len(lockstep) == 6  # one E-step of both restarts per iteration ...
    assert len(set(lockstep)) == 1  # ... all of them on one shipped model
    assert len({k for _, _, k in keys}) == len({i for _, i, _ in keys})  # one key per model object


@pytest.mark.parametrize("where", ["memory", "parquet"])
def test_checkpoint_of_other_data_with_the_same_shape_is_refused(data, client, tmp_path, where):
    """A stale checkpoint from different rows of the same shape was resumed silently: the
    history mixed both data sets and the 'bug' warning fired."""
    path = tmp_path / "fit.ckpt"
    other = data + 1.0
    if where == "parquet":
        first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
        pd.DataFrame(data, columns=list("abcd")).to_parquet(first)
        pd.DataFrame(other, columns=list("abcd")).to_parquet(second)
        data, other = str(first), str(second)
    Interrupted, stop = _interrupt_at(2)
    with pytest.raises(Interrupted):
        GaussianMixture(3, random_state=0, tol=1e-8, dtype="float64").fit(data, callback=stop, checkpoint=path, checkpoint_every=1)
    # rows of the same reader, other values: no word of another engine
    with pytest.raises(ParameterError, match=r"fit\.ckpt: the checkpoint was written by a different fit, of other "
                                             r"data or settings \(they differ in: data\); to start fresh"):
        GaussianMixture(3, random_state=0, tol=1e-8, dtype="float64").fit(other, checkpoint=path, checkpoint_every=1)
    if where == "memory":  # the same rows on a cluster: another reader, so the message names the engines
        with pytest.raises(ParameterError, match=r"\(they differ in: data\) \(or the same data read by another "
                                                 r"engine: resume on the engine that wrote it\); to start fresh"):
            GaussianMixture(3, random_state=0, tol=1e-8, dtype="float64", client=client).fit(
                da.from_array(data, chunks=(250, 4)), checkpoint=path)
    resumed = GaussianMixture(3, random_state=0, tol=1e-8, dtype="float64").fit(data, checkpoint=path, checkpoint_every=1)
    assert not path.exists()  # the same data resumes, and the completed fit removes it
    assert resumed.converged_


def test_checkpoint_of_rows_changed_between_their_ends_is_refused(tmp_path):
    """Rows in memory were known by their first and last 1024 rows: a checkpoint resumed
    on data whose middle had changed, and the fit mixed two data sets. Rows sampled
    between the ends now join the digest."""
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(-4.0, 1.0, (6000, 2)), rng.normal(4.0, 1.0, (6000, 2))])[rng.permutation(12000)]
    changed = X.copy()
    changed[2000:-2000] *= 3.0
    path = tmp_path / "fit.ckpt"
    Interrupted, stop = _interrupt_at(2)
    with pytest.raises(Interrupted):
        GaussianMixture(2, random_state=0, dtype="float64").fit(X, callback=stop, checkpoint=path, checkpoint_every=1)
    with pytest.raises(ParameterError, match=r"differ in: data"):
        GaussianMixture(2, random_state=0, dtype="float64").fit(changed, checkpoint=path, checkpoint_every=1)
    GaussianMixture(2, random_state=0, dtype="float64").fit(X, checkpoint=path, checkpoint_every=1)
    assert not path.exists()  # the same rows resumed and completed


def test_checkpoint_of_the_same_rows_moved_by_a_constant_is_refused(tmp_path):
    """Far from the origin float32 sources hold the rows less a shift chosen from the data,
    so X and X + 1 are held identically; the shift is part of what a checkpoint checks."""
    rng = np.random.default_rng(3)
    X = 1e7 + np.concatenate([rng.normal(-4.0, 1.0, (300, 2)), rng.normal(4.0, 1.0, (300, 2))])
    path = tmp_path / "fit.ckpt"
    Interrupted, stop = _interrupt_at(2)
    with pytest.raises(Interrupted):
        GaussianMixture(2, random_state=0).fit(X, callback=stop, checkpoint=path, checkpoint_every=1)
    with pytest.raises(ParameterError, match=r"differ in: data"):
        GaussianMixture(2, random_state=0).fit(X + 1.0, checkpoint=path, checkpoint_every=1)
    GaussianMixture(2, random_state=0).fit(X, checkpoint=path, checkpoint_every=1)
    assert not path.exists()  # the same rows resumed and completed


def test_persisted_partitions_are_shared_equally_among_the_workers(client):
    """Four equal partitions on two single-threaded workers: two each, consecutive ones
    together (every iteration waits on the busiest worker)."""
    from dask import delayed

    from bigem.engines.dask import DaskEngine

    parts = [delayed(np.full)((1000, 2), float(i)) for i in range(4)]
    workers = client.scheduler_info()["workers"]
    held = DaskEngine(client)._spread(parts, workers)
    futures = [distributed.futures_of(p)[0] for p in held]
    client.gather(futures)
    homes = [next(iter(client.who_has(f)[f.key])) for f in futures]
    slots = sorted(workers)
    assert homes == [slots[0], slots[0], slots[1], slots[1]]
    np.testing.assert_array_equal(client.compute(held[3]).result(), np.full((1000, 2), 3.0))


def test_small_arguments_travel_inline_and_large_ones_as_one_key_with_the_same_fit(client, data, monkeypatch):
    """The parameters of most models (a few kB) ride inside each partition's task; above
    INLINE_BYTES they go as one key that the tasks share. Each way gives the local fit,
    on held partitions (tasks submitted on their futures) as on partitions read again
    every pass (a graph)."""
    from bigem.engines import dask as dask_engine

    def fit(**kw):
        with pytest.warns(ConvergenceWarning):
            return GaussianMixture(3, max_iter=8, tol=0.0, random_state=0, dtype="float64", **kw).fit(
                da.from_array(data, chunks=(300, 4)) if kw else data)

    paths, inline = [], []
    for name in ("_submitted", "_graph"):
        original = getattr(DaskEngine, name)
        monkeypatch.setattr(DaskEngine, name, lambda self, *a, _o=original, _n=name: paths.append(_n) or _o(self, *a))
    payload = DaskEngine._payload
    monkeypatch.setattr(DaskEngine, "_payload", lambda self, task: inline.append(
        isinstance(p := payload(self, task), dask_engine._Payload)) or p)
    local = fit()
    for limit, held, path in [(1 << 20, True, "_submitted"), (0, True, "_submitted"), (0, False, "_graph"),
                              (1 << 20, False, "_graph")]:
        paths.clear(), inline.clear()
        monkeypatch.setattr(dask_engine, "INLINE_BYTES", limit)
        # three partitions summed two at a time: one combine task on a worker, then the client
        monkeypatch.setattr(DaskEngine.__init__, "__defaults__", (2, dask_engine.NO_WORKERS_TIMEOUT))
        if not held:  # every pass reads the partitions again
            monkeypatch.setattr(DaskEngine, "persist", lambda self, source, fraction=0.5: source)
        _assert_same_fit(local, fit(client=client))
        assert set(paths) == {path} and set(inline) == {limit > 0}


def test_workers_started_by_dask_keep_freed_memory_during_a_fit_and_give_it_back_after():
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, so that each large
    temporary is a fresh, page-faulted mapping; within a session the workers keep freed
    blocks for the next ones (as glibc's adaptive thresholds do), and after it they are
    as they were started."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt")

    def faults_of_temporaries() -> int:
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(40):
            block = np.ones(1 << 18)  # 2 MB (numpy asks for huge pages from 4 MB), freed at once
            del block
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        def faults() -> int:
            return next(iter(c.run(faults_of_temporaries).values()))

        started = faults()
        with session(c):
            during = faults()
        after = faults()
    assert started > 40 * 400  # each 2 MB block mapped afresh: about 512 faults
    assert during < started / 5
    assert after > started / 2


def test_y_naming_a_column_of_a_dask_array_is_refused(client, data):
    """As for a numpy array: the fit went on unsupervised, warning that y labels no row."""
    with pytest.raises(DataError, match=r"^y='label' names a label column, but X is a dask array, whose columns have "
                                        r"no names; pass y as labels"):
        GaussianMixture(2, client=client, unlabeled_weight=0.5).fit(da.from_array(data, chunks=(250, 4)), y="label")
