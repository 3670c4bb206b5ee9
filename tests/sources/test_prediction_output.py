"""Predictions streamed to files equal the in-memory ones, with the id column kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bigem import GaussianMixture
from tests.conftest import make_blobs


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X, _, _ = make_blobs(7, n_per=400)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df.insert(1, "key", np.arange(len(df)) * 10)
    folder = tmp_path_factory.mktemp("data")
    path = folder / "x.parquet"
    pq.write_table(__import__("pyarrow").Table.from_pandas(df, preserve_index=False), path, row_group_size=333)
    gm = GaussianMixture(n_components=3, random_state=0, chunk_size=256).fit(str(path), columns=["a", "b", "c"])
    return gm, df, str(path)


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_all_outputs_with_an_id_column(tmp_path, fitted, ext):
    gm, df, path = fitted
    out = tmp_path / f"pred.{ext}"
    assert gm.write_predictions(path, out, outputs=("label", "proba", "log_density"), id_column="key") == str(out)
    got = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
    assert list(got.columns) == ["key", "label", "proba_0", "proba_1", "proba_2", "log_density"]
    X = df[["a", "b", "c"]]
    np.testing.assert_array_equal(got["key"], df["key"])
    np.testing.assert_array_equal(got["label"], gm.predict(X))
    np.testing.assert_allclose(got[["proba_0", "proba_1", "proba_2"]].to_numpy(), gm.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["log_density"], gm.score_samples(X), rtol=1e-12)


def test_npy_outputs_one_array_each(tmp_path, fitted):
    gm, df, path = fitted
    X = df[["a", "b", "c"]]
    gm.predict(path, out=tmp_path / "l.npy")
    gm.predict_proba(path, out=tmp_path / "p.npy")
    gm.score_samples(path, out=tmp_path / "s.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), gm.predict(X))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), gm.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), gm.score_samples(X), rtol=1e-12)


def test_dataframe_input_keeps_its_id_column(tmp_path, fitted):
    gm, df, _ = fitted
    out = gm.predict(df, columns=["a", "b", "c"], out=tmp_path / "l.parquet", id_column="key")
    got = pd.read_parquet(out)
    np.testing.assert_array_equal(got["key"], df["key"])
    np.testing.assert_array_equal(got["label"], gm.predict(df[["a", "b", "c"]]))


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_an_id_column_that_is_also_a_feature(tmp_path, fitted, ext):
    """Column 'a' is read once, as a feature and as the ids copied to the output: a CSV
    as a Parquet file (a CSV read named 'a' twice and failed on the name)."""
    gm, df, path = fitted
    if ext == "csv":
        path = str(tmp_path / "x.csv")
        df.to_csv(path, index=False, float_format="%.17g")
    out = gm.write_predictions(path, tmp_path / "pred.csv", outputs=("label",), id_column="a")
    got = pd.read_csv(out)
    assert list(got.columns) == ["a", "label"]
    np.testing.assert_array_equal(got["a"], df["a"])
    np.testing.assert_array_equal(got["label"], gm.predict(df[["a", "b", "c"]]))


def test_an_id_column_named_as_an_output_is_refused_and_nothing_is_written(tmp_path, fitted):
    from bigem._core.errors import ParameterError

    gm, df, _ = fitted
    clash = df.rename(columns={"key": "label"})
    with pytest.raises(ParameterError, match="id_column='label' is also the name of an output column"):
        gm.predict(clash, columns=["a", "b", "c"], out=tmp_path / "l.parquet", id_column="label")
    with pytest.raises(ParameterError, match="id_column='a' is also the name of an output column"):
        gm.impute(df, columns=["a", "b", "c"], out=tmp_path / "i.parquet", id_column="a")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "impute"])
def test_an_id_column_without_out_is_refused(fitted, method):
    """id_column goes beside outputs written to out=; without out it was ignored silently
    (a misspelt one too), and the user got an array with no ids."""
    gm, _, path = fitted
    with pytest.raises(ValueError, match=r"id_column='key' names a column to write beside the outputs in out=, but "
                                         r"out is None.*pass out='predictions.parquet' too, or drop id_column"):
        getattr(gm, method)(path, id_column="key")
