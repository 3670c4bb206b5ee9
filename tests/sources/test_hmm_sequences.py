"""HMM sequences from a sequence-id column (files and DataFrames) equal the same data in
memory with explicit lengths; bad id columns are explained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from bigem import Files, GaussianHMM
from bigem._core.errors import DataError
from bigem.sources.sequences import lengths_from_ids

K = 3
LENGTHS = [40, 55, 23, 61, 37, 50, 34]  # 300 rows; file cuts at 100 and 200 fall inside sequences
MEANS = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 3.0]])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    states = rng.integers(0, K, size=sum(LENGTHS))
    states = np.repeat(states[::10], 10)[: sum(LENGTHS)]  # persistent states, like an HMM's
    return MEANS[states] + rng.normal(scale=0.7, size=(sum(LENGTHS), 2))


def _frame(X, string_ids=True):
    ids = np.repeat([f"s{i}" for i in range(len(LENGTHS))] if string_ids else
                    np.arange(len(LENGTHS)) * 7 + 100, LENGTHS)
    # the id column sits between the features: selection is by name
    return pd.DataFrame({"f0": X[:, 0], "session": ids, "f1": X[:, 1]})


def _write(df, folder, fmt, cuts=(100, 200)):
    folder.mkdir()
    parts = np.split(np.arange(len(df)), list(cuts))
    for i, rows in enumerate(parts):
        table = pa.Table.from_pandas(df.iloc[rows], preserve_index=False)
        path = folder / f"part-{i}.{ {'parquet': 'parquet', 'csv': 'csv', 'ipc': 'arrow'}[fmt] }"
        if fmt == "parquet":
            pq.write_table(table, path, row_group_size=30)
        elif fmt == "csv":
            pcsv.write_csv(table, path)
        else:
            feather.write_feather(table, path)
    return folder


def _model():
    m = GaussianHMM(K, covariance_type="full", n_iter=6, tol=0.0, init_params="", dtype="float64",
                    memory_budget="20KB")  # about 75 rows a batch: several batches, sequences cut by chunks
    m.startprob_ = np.full(K, 1.0 / K)
    m.transmat_ = np.full((K, K), 0.2) + np.eye(K) * 0.4
    m.means_ = MEANS + 0.5
    m.covars_ = np.stack([np.eye(2)] * K)
    return m


@pytest.mark.parametrize("fmt,string_ids", [("parquet", True), ("csv", False), ("csv", True), ("ipc", False)])
def test_files_with_sequence_column_equal_in_memory_with_lengths(tmp_path, fmt, string_ids):
    X = _data()
    folder = _write(_frame(X, string_ids), tmp_path / "d", fmt)
    ref = _model().fit(X, LENGTHS)
    got = _model().fit(str(folder), sequence_column="session")  # features: every other column
    assert got.monitor_.iter == ref.monitor_.iter == 6
    np.testing.assert_allclose(got.monitor_.history, ref.monitor_.history, rtol=1e-12)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-10, atol=1e-12)
    # a sequence split by a file boundary is one sequence: the fit saw the same 7 sequences
    lp, path = got.decode(str(folder), sequence_column="session", columns=["f0", "f1"])
    ref_lp, ref_path = ref.decode(X, LENGTHS)
    assert lp == pytest.approx(ref_lp, rel=1e-12)
    np.testing.assert_array_equal(path, ref_path)
    np.testing.assert_array_equal(got.predict(str(folder), sequence_column="session"), ref.predict(X, LENGTHS))
    assert got.score(str(folder), sequence_column="session") == pytest.approx(ref.score(X, LENGTHS), rel=1e-12)
    ll, post = got.score_samples(Files(str(folder), columns=["f0", "f1"]), sequence_column="session")
    ref_ll, ref_post = ref.score_samples(X, LENGTHS)
    assert ll == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(post, ref_post, atol=1e-12)
    np.testing.assert_allclose(got.predict_proba(str(folder), sequence_column="session"), ref_post, atol=1e-12)


def test_dataframe_with_sequence_column_equals_in_memory_with_lengths():
    X = _data(1)
    df = _frame(X, string_ids=False)
    ref = _model().fit(X, LENGTHS)
    got = _model().fit(df, sequence_column="session")
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-12)
    np.testing.assert_allclose(got.transmat_, ref.transmat_, rtol=1e-12)
    np.testing.assert_array_equal(got.predict(df, sequence_column="session"), ref.predict(X, LENGTHS))
    # the features may be chosen, in any order
    swapped = _model()
    swapped.means_ = swapped.means_[:, ::-1]
    swapped.fit(df, columns=["f1", "f0"], sequence_column="session")
    np.testing.assert_allclose(swapped.means_[:, ::-1], ref.means_, rtol=1e-10)


def test_lengths_from_ids_across_batches():
    batches = [(np.array([5, 5, 9]), "a", 0), (np.array([9, 9]), "a", 3), (np.array([], dtype=int), "b", 0),
               (np.array([9, 2, 2, 7]), "b", 0)]
    np.testing.assert_array_equal(lengths_from_ids(batches, "id"), [2, 4, 2, 1])
    with pytest.raises(DataError, match=r"b: sequence id 5 in column 'id' appears again at row 3"):
        lengths_from_ids([(np.array([5, 5, 9]), "a", 0), (np.array([9, 2, 5]), "b", 1)], "id")


def test_non_contiguous_ids_name_the_id_file_and_row(tmp_path):
    df = _frame(_data())
    df.loc[250, "session"] = "s1"  # s1 ended at row 94; row 250 is row 50 of part-2
    folder = _write(df, tmp_path / "d", "parquet")
    with pytest.raises(DataError) as err:
        _model().fit(str(folder / "*.parquet"), sequence_column="session")
    message = str(err.value)
    assert "part-2.parquet" in message and "'s1'" in message and "row 50" in message
    assert "rows of a sequence must be contiguous; sort by the id column" in message
    with pytest.raises(DataError, match="'s1'.*row 250.*contiguous"):
        _model().fit(df, sequence_column="session")


def test_missing_or_null_id_column_and_inputs_without_names(tmp_path):
    X = _data()
    df = _frame(X)
    folder = _write(df, tmp_path / "d", "csv")
    with pytest.raises(DataError, match=r"part-0.csv: no column 'sesion'; the file has \['f0', 'session', 'f1'\]"):
        _model().fit(str(folder), sequence_column="sesion")
    with pytest.raises(DataError, match=r"X has no column 'sesion'; it has \['f0', 'session', 'f1'\]"):
        _model().fit(df, sequence_column="sesion")
    holes = df.astype({"session": object})
    holes.loc[130, "session"] = None
    nulls = _write(holes, tmp_path / "n", "parquet")
    with pytest.raises(DataError, match=r"part-1.parquet: column 'session' has a null \(missing\) value at row 30"):
        _model().fit(str(nulls), sequence_column="session")
    with pytest.raises(DataError, match=r"column 'session' has a null \(missing\) value at row 130"):
        _model().fit(holes, sequence_column="session")
    with pytest.raises(DataError, match="no column names.*lengths="):
        _model().fit(X, sequence_column="session")
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(DataError, match=r"x.npy: a .npy file has no column names.*lengths="):
        _model().fit(str(tmp_path / "x.npy"), sequence_column="session")
    with pytest.raises(DataError, match="both lengths and sequence_column"):
        _model().fit(df, LENGTHS, sequence_column="session")
