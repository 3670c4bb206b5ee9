"""Bad files: each mistake gets a message that names the file and says how to fix it,
and no model or output file is left behind."""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigem import Files, GaussianMixture
from bigem._core.errors import DataError


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400), "name": ["x"] * 400})


def _fit(X, **kw):
    return GaussianMixture(n_components=2, random_state=0, chunk_size=100, **kw).fit(X, **({} if "columns" in kw else {}))


def test_missing_column_lists_the_available_ones(tmp_path, df):
    path = tmp_path / "x.parquet"
    df.to_parquet(path)
    msg = rf"^{re.escape(str(path))}: no column\(s\) \['c'\]; the file has \['a', 'b', 'name'\]"
    with pytest.raises(DataError, match=msg):
        GaussianMixture().fit(str(path), columns=["a", "c"])


def test_non_numeric_column_is_named(tmp_path, df):
    path = tmp_path / "x.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError, match=r"non-numeric column\(s\) \['name \((large_)?string\)'\]; .*columns="):
        GaussianMixture().fit(str(path))
    csv = tmp_path / "x.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"column 'name' has a non-numeric value 'x' at data row 0 .*columns="):
        GaussianMixture().fit(str(csv))


def test_a_stray_word_in_a_numeric_csv_column_is_found_with_its_row(tmp_path, df):
    csv = tmp_path / "x.csv"
    frame = df[["a", "b"]].astype(object)
    frame.iloc[333, 1] = "oops"
    frame.to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"column 'b' has a non-numeric value 'oops' at data row 333"):
        GaussianMixture().fit(str(csv))


def test_true_false_csv_columns_are_read_as_booleans_and_a_stray_word_is_found_with_its_row(tmp_path):
    """pyarrow types a CSV column from the file's first block (1 MB): true/false there
    reads as 0/1, and a word far below is named with its row."""
    n = 80_000
    flags = np.arange(n) % 3 == 0
    path = tmp_path / "x.csv"
    pd.DataFrame({"flag": flags, "x": np.linspace(0, 1, n)}).to_csv(path, index=False)
    est = GaussianMixture(n_components=1).fit(str(path), columns=["flag"])
    np.testing.assert_allclose(est.means_[0], [flags.mean()], rtol=1e-6)
    lines = path.read_text().splitlines()
    lines[1 + 70_000] = "maybe," + lines[1 + 70_000].split(",")[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: column 'flag' holds true/false values, and "
                       r"'maybe' at data row 70000 is none \(0-based, header not counted\); fix or drop it"):
        GaussianMixture(n_components=1).fit(str(path), columns=["flag"])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_nulls_are_counted_with_the_first_row(tmp_path, df, fmt):
    frame = df[["a", "b"]].copy()
    frame.loc[[250, 260, 390], "b"] = None
    frame.loc[300, "a"] = None
    path = tmp_path / f"x.{fmt}"
    frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: 4 null \(missing\) value\(s\) in the file, in column\(s\) "
                       r"\['a', 'b'\]; the first in column 'b' at row 250\. Drop or impute"):
        _fit(str(path))


def test_nan_in_a_file_names_the_file_and_row(tmp_path, df):
    folder = tmp_path / "d"
    folder.mkdir()
    frame = df[["a", "b"]].copy()
    frame.loc[350, "a"] = np.inf
    frame.iloc[:200].to_parquet(folder / "p0.parquet")
    frame.iloc[200:].to_parquet(folder / "p1.parquet")
    with pytest.raises(DataError, match=rf"^Input {re.escape(str(folder / 'p1.parquet'))} contains infinity or a "
                       r"value too large for dtype\('float64'\)\. \(1 inf; first at row 350 of the data set "
                       r"\(row 150 of this file\), column 'a'\)\."):
        _fit(str(folder))


def test_csv_rows_of_the_wrong_width(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: a row has the wrong number of fields"):
        GaussianMixture().fit(str(path))


@pytest.mark.parametrize("name, header", [("x.csv", True), ("x.csv.gz", True), ("x.csv", False)])
def test_a_csv_row_of_the_wrong_width_is_found_far_down(tmp_path, name, header):
    """pyarrow names no row; the message does: the data row (blank lines skipped, as
    pyarrow skips them) and the line of the file."""
    rows = [f"{i},{i / 7:.17g}" for i in range(50_000)]
    rows[40_000] += ",3.0"
    rows.insert(10, "")
    text = ("a,b\n" if header else "") + "\n".join(rows) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    line = 40_000 + 2 + header
    expected = (rf"^{re.escape(str(path))}: a row has the wrong number of fields: data row 40000 \(0-based, header "
                rf"not counted; line {line} of the file\) has 3 fields where the {'header' if header else 'first row'} "
                r"has 2 \(.*\); every row needs one value per column$")
    with pytest.raises(DataError, match=expected):
        GaussianMixture().fit(Files(str(path), header=header))


@pytest.mark.parametrize("content", [b"", b"a,b\n"], ids=["empty", "header-only"])
def test_empty_csv(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: (cannot be read \(Empty CSV file\)|no rows)"):
        GaussianMixture().fit(str(path))


def test_empty_parquet_file(tmp_path, df):
    path = tmp_path / "x.parquet"
    df.iloc[:0].to_parquet(path)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no rows; the data set is empty"):
        GaussianMixture().fit(str(path), columns=["a"])


def test_empty_folder_and_glob_matching_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"the folder holds no data files"):
        GaussianMixture().fit(str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"the pattern matches no files"):
        GaussianMixture().fit(str(tmp_path / "*.parquet"))
    with pytest.raises(DataError, match=r"no such file or folder"):
        GaussianMixture().fit(str(tmp_path / "missing.parquet"))


def test_mixed_formats_are_refused(tmp_path, df):
    df.to_parquet(tmp_path / "a.parquet")
    df.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match=r"X mixes file formats"):
        GaussianMixture().fit(str(tmp_path))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_parquet_file_is_named_and_nothing_is_written(tmp_path, df, damage):
    folder = tmp_path / "d"
    folder.mkdir()
    df[["a", "b"]].iloc[:200].to_parquet(folder / "p0.parquet")
    bad = folder / "p1.parquet"
    df[["a", "b"]].iloc[200:].to_parquet(bad)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"PAR1" + os.urandom(len(data)))
    with pytest.raises(DataError, match=rf"^{re.escape(str(bad))}: cannot be read"):
        _fit(str(folder))
    # prediction from a fitted model: the output is never created
    good = GaussianMixture(n_components=2, random_state=0).fit(df[["a", "b"]])
    out = tmp_path / "labels.parquet"
    with pytest.raises(DataError, match=re.escape(str(bad))):
        good.predict(str(folder), out=str(out))
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


@pytest.mark.parametrize("deferring", [False, True], ids=["cpu", "deferred"])
def test_corrupt_data_in_the_middle_of_a_stream_leaves_no_output(tmp_path, df, deferring, monkeypatch):
    """The error comes after some output was written: the temporary file is removed.
    Where reads are deferred (a GPU's rows; forced here) the infinity is found when the
    pass ends, after its row failed to be explained: the same error, not the row's."""
    from bigem._core import numerics

    gm = GaussianMixture(n_components=2, random_state=0).fit(df[["a", "b"]])
    monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
    frame = df[["a", "b"]].copy()
    frame.loc[390, "b"] = -np.inf
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=50)
    out = tmp_path / "out.csv"
    out.write_text("previous content\n")
    with pytest.raises(DataError, match=r"contains infinity"):
        gm.predict_proba(Files(str(path)), out=str(out))
    assert out.read_text() == "previous content\n"  # replaced whole or not at all
    assert os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) and len(os.listdir(tmp_path)) == 2


def test_output_path_checks(tmp_path, df):
    path = tmp_path / "x.parquet"
    df[["a", "b"]].to_parquet(path)
    gm = GaussianMixture(n_components=2, random_state=0).fit(str(path))
    with pytest.raises(DataError, match=r"the folder .* does not exist; create it first"):
        gm.predict(str(path), out=str(tmp_path / "nope" / "out.parquet"))
    with pytest.raises(DataError, match=r"is the input file; choose a different output path"):
        gm.predict(str(path), out=str(path))
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'; use \.npy, \.csv, \.parquet"):
        gm.predict(str(path), out=str(tmp_path / "out.xlsx"))
    with pytest.raises(DataError, match=r"a \.npy file holds one array"):
        gm.predict(str(path), out=str(tmp_path / "out.npy"), id_column="a")
    assert sorted(os.listdir(tmp_path)) == ["x.parquet"]


def test_columns_do_not_apply_to_plain_arrays(df):
    with pytest.raises(DataError, match=r"columns= and id columns select by name, but X has no column names"):
        GaussianMixture().fit(df[["a", "b"]].to_numpy(), columns=["a"])
    with pytest.raises(DataError, match=r"X has no column\(s\) \['z'\]; it has \['a', 'b', 'name'\]"):
        GaussianMixture().fit(df, columns=["a", "z"])


def test_a_csv_reads_the_missing_values_pandas_reads(tmp_path):
    """'None' and '<NA>' (pandas' spellings) were values, not gaps: a file of them did
    not fit as pandas.read_csv of it does."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(100, 2)), rng.normal(4, 1, (100, 2))]
    X[3, 0] = X[7, 1] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b"])
    for spelling in ("None", "<NA>"):
        frame.to_csv(tmp_path / "gaps.csv", index=False, na_rep=spelling, float_format="%.17g")
        read = pd.read_csv(tmp_path / "gaps.csv")
        assert read.isna().to_numpy().sum() == 2
        kw = dict(n_components=2, random_state=0, dtype="float64", missing_values="fiml")
        got = GaussianMixture(**kw).fit(str(tmp_path / "gaps.csv"))
        want = GaussianMixture(**kw).fit(read)
        np.testing.assert_allclose(got.means_, want.means_, rtol=1e-12)


def test_a_decimal_comma_is_named(tmp_path):
    path = tmp_path / "dec.csv"
    path.write_text("a;b\n4,125;1,5\n-0,5;2\n")
    with pytest.raises(DataError, match=r"column 'a' has a non-numeric value '4,125' at data row 0 .*it looks like a "
                                         r"decimal comma: bigem reads numbers with a decimal point"):
        GaussianMixture(1).fit(Files(str(path), delimiter=";"))
