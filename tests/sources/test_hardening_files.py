"""Files and id columns from an adversarial corpus (issue #15): duplicate column names,
tab-separated and headerless CSV, id columns of mixed types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigem import Files, GaussianHMM, GaussianMixture
from bigem._core.errors import DataError, ParameterError

X = np.random.default_rng(0).normal(size=(200, 2))


# ---------------------------------------------------------------------- duplicate names
def test_a_csv_with_two_columns_of_one_name_is_refused_by_name(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("x,x,y\n" + "\n".join(f"{a},{b},{a + b}" for a, b in X))
    message = (rf"^{path}: more than one column is named 'x' at positions \[0, 1\]; bigem reads columns by name, so "
               r"rename them, or pick other columns with columns=")
    with pytest.raises(DataError, match=message):
        GaussianMixture(2).fit(str(path))
    with pytest.raises(DataError, match=message):
        GaussianMixture(2).fit(str(path), columns=["x"])
    with pytest.raises(DataError, match=message):
        GaussianHMM(2).fit(str(path), columns=["y"], sequence_column="x")
    assert GaussianMixture(1).fit(str(path), columns=["y"]).n_features_in_ == 1  # the other columns are fine


def test_a_parquet_file_with_two_columns_of_one_name_is_refused_by_name(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(X[:, 0]), pa.array(X[:, 1])], names=["x", "x"]), path)
    with pytest.raises(DataError, match=rf"^{path}: more than one column is named 'x' at positions \[0, 1\]"):
        GaussianMixture(2).fit(str(path))


# ---------------------------------------------------------------------- delimiters and headers
def test_a_tsv_file_is_read_with_tabs_by_default(tmp_path):
    path = tmp_path / "t.tsv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(path, sep="\t", index=False)
    gm = GaussianMixture(2, random_state=0).fit(str(path))
    assert list(gm.feature_names_in_) == ["a", "b"]
    np.testing.assert_allclose(gm.means_, GaussianMixture(2, random_state=0).fit(pd.DataFrame(X, columns=["a", "b"])).means_,
                               rtol=1e-6)
    assert GaussianMixture(2).fit(Files(str(path), delimiter="\t")).n_features_in_ == 2


def test_a_headerless_csv_keeps_its_first_row_as_data(tmp_path):
    path = tmp_path / "h.csv"
    np.savetxt(path, X, delimiter=";")
    gm = GaussianMixture(1).fit(Files(str(path), delimiter=";", header=False))
    assert list(gm.feature_names_in_) == ["f0", "f1"]
    np.testing.assert_allclose(gm.means_[0], X.mean(0), rtol=1e-5)  # all 200 rows, the first included


def test_csv_options_on_other_formats_are_refused(tmp_path):
    path = tmp_path / "x.parquet"
    pd.DataFrame(X, columns=["a", "b"]).to_parquet(path)
    with pytest.raises(DataError, match=rf"^{path}: delimiter= and header= apply to CSV files, and this is a Parquet file"):
        GaussianMixture(2).fit(Files(str(path), delimiter=";"))
    with pytest.raises(DataError, match="delimiter= and header= apply to CSV files"):
        GaussianHMM(2).fit(Files(str(path), header=False), sequence_column="a")


# ---------------------------------------------------------------------- id columns
def test_an_id_column_of_mixed_ints_and_strings_is_refused_before_any_output(tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(id=[1, "a"] * 100)
    gm = GaussianMixture(2, random_state=0).fit(frame[["a", "b"]])
    out = tmp_path / "p.parquet"
    with pytest.raises(DataError, match=r"^id column 'id' mixes values of different types \(int at row 0, str at row 1\); "
                                        r"an output column holds one type: convert it first, e.g\. "
                                        r"X\['id'\]\.astype\(str\)$"):
        gm.predict(frame, columns=["a", "b"], out=out, id_column="id")
    assert not out.exists() and not list(tmp_path.iterdir())
    written = gm.predict(frame.assign(id=frame["id"].astype(str)), columns=["a", "b"], out=out, id_column="id")
    assert pd.read_parquet(written)["id"].tolist()[:2] == ["1", "a"]


def test_id_columns_of_one_type_with_missing_values_are_written(tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(id=["x", None] * 100, n=[1, 2.5] * 100)
    gm = GaussianMixture(2, random_state=0).fit(frame[["a", "b"]])
    for id_column in ("id", "n"):
        path = gm.predict(frame, columns=["a", "b"], out=tmp_path / f"{id_column}.parquet", id_column=id_column)
        assert len(pd.read_parquet(path)) == 200


def test_bad_delimiters_are_refused_when_made():
    with pytest.raises(ParameterError, match=r"Files\(delimiter=\.\.\.\) must be one character"):
        Files("x.csv", delimiter="\n")


# ---------------------------------------------------------------------- encodings, pipes, booleans
def test_a_csv_not_in_utf8_is_refused_by_name_with_the_fix(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("température,b\n1,2\n3,4\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"^{path}: not UTF-8 text .*re-encode it, for instance with iconv"):
        GaussianMixture(1).fit(str(path))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="POSIX pipes")
def test_a_pipe_as_data_is_refused_rather_than_waited_on(tmp_path):
    import os

    path = tmp_path / "rows.csv"
    os.mkfifo(path)  # with no writer, opening it blocked the fit for ever
    with pytest.raises(DataError, match=rf"^{path}: not a regular file \(a pipe, socket or device\); a fit reads its "
                                        "data once a pass"):
        GaussianMixture(1).fit(str(path))


def test_a_boolean_npy_file_fits_as_its_array_does(tmp_path):
    from bigem import BernoulliMixture

    B = np.random.default_rng(1).random((300, 4)) < np.r_[[0.2] * 150, [0.8] * 150][:, None]
    np.save(tmp_path / "b.npy", B)  # refused before, while the same booleans in memory, Parquet or CSV fitted
    from_file = BernoulliMixture(2, random_state=0, dtype="float64").fit(str(tmp_path / "b.npy"))
    in_memory = BernoulliMixture(2, random_state=0, dtype="float64").fit(B)
    np.testing.assert_array_equal(from_file.probabilities_, in_memory.probabilities_)
