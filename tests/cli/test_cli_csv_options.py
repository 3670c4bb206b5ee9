"""--delimiter and --no-header on every command that reads data (issue #15): `bigem fit
t.tsv` failed on the tab, and a headerless CSV silently lost its first row into the
column names."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem import GaussianHMM
from bigem.cli import main

X = np.random.default_rng(0).normal(size=(120, 2)) + [0.0, 5.0]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_reads_a_tsv_file_by_its_tabs(tmp_path, capsys):
    pd.DataFrame(X, columns=["a", "b"]).to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    rc, out, err = run(capsys, "fit", tmp_path / "t.tsv", "-k", "1", "-o", tmp_path / "m.bigem", "--json")
    assert rc == 0, err
    assert json.loads(out)["n_rows"] == 120 and list(bigem.load(tmp_path / "m.bigem").feature_names_in_) == ["a", "b"]


def test_a_file_separated_by_another_delimiter_is_named_with_the_flag_to_read_it(tmp_path, capsys):
    """A ';'-separated file read as CSV is one column whose values are not numbers; the
    error now says so and names the flag (it said only "non-numeric value")."""
    pd.DataFrame(X, columns=["a", "b"]).to_csv(tmp_path / "s.csv", sep=";", index=False)
    rc, _, err = run(capsys, "fit", tmp_path / "s.csv", "-k", "1", "-o", tmp_path / "m.bigem")
    assert rc == 2 and "its one column's name holds ';': if that separates the columns, read the file with " \
        "--delimiter ';'" in err and not (tmp_path / "m.bigem").exists()
    with pytest.raises(ValueError, match=r"read the file with delimiter=';' \(bigem.Files\)"):
        bigem.GaussianMixture(1).fit(str(tmp_path / "s.csv"))
    rc, _, err = run(capsys, "fit", tmp_path / "s.csv", "-k", "1", "--delimiter", ";", "-o", tmp_path / "m.bigem")
    assert rc == 0, err


@pytest.mark.parametrize("typed", [";", "\\t", "tab"])
def test_every_command_that_reads_data_takes_the_delimiter_and_no_header(tmp_path, capsys, typed):
    sep = "\t" if typed in ("\\t", "tab") else typed
    data = tmp_path / "h.csv"
    np.savetxt(data, X, delimiter=sep, fmt="%.17g")  # no header line
    flags = ["--delimiter", typed, "--no-header"]
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", data, "-k", "1", "--dtype", "float64", "-o", model, *flags, "--json")
    assert rc == 0, err
    assert json.loads(out)["n_rows"] == 120  # the first line is a row, not names
    est = bigem.load(model)
    assert list(est.feature_names_in_) == ["f0", "f1"]
    np.testing.assert_allclose(est.means_[0], X.mean(0), rtol=1e-12)
    rc, out, err = run(capsys, "predict", model, data, "--score", "-o", tmp_path / "d.npy", *flags)
    assert rc == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "d.npy"), est.score_samples(pd.DataFrame(X, columns=["f0", "f1"])),
                               rtol=1e-12)
    rc, out, err = run(capsys, "score", model, data, *flags, "--json")
    assert rc == 0 and json.loads(out)["n_rows"] == 120, err
    rc, out, err = run(capsys, "select", data, "-k", "1..2", "--covariance", "diag", "-o", tmp_path / "s.bigem", *flags)
    assert rc == 0 and "on 120 rows" in out, err
    pytest.importorskip("matplotlib")
    rc, out, err = run(capsys, "plot", model, data, "-o", tmp_path / "p.png", *flags)
    assert rc == 0, err


def test_an_hmm_reads_its_sequence_column_through_the_options(tmp_path, capsys):
    lengths = np.array([50, 70])
    hmm = GaussianHMM(2, random_state=0, n_iter=3).fit(X, lengths)
    hmm.save(tmp_path / "h.bigem")
    data = tmp_path / "s.csv"
    rows = [f"{sid};{a:.17g};{b:.17g}" for sid, (a, b) in zip(np.repeat(["p", "q"], lengths), X)]
    data.write_text("\n".join(rows) + "\n")
    rc, out, err = run(capsys, "score", tmp_path / "h.bigem", data, "--sequence-column", "f0", "--delimiter", ";",
                       "--no-header", "--json")
    assert rc == 0, err
    assert json.loads(out)["log_likelihood"] == pytest.approx(hmm.score(X, lengths), rel=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (("fit", "{d}/x.npy", "-k", "1", "-o", "{d}/m.bigem", "--no-header"),
         "bigem fit: error: {d}/x.npy: --no-header applies to CSV files, and this is a .npy file; drop it"),
        (("fit", "{d}/x.parquet", "-k", "1", "-o", "{d}/m.bigem", "--delimiter", ";", "--no-header"),
         "x.parquet: --delimiter and --no-header apply to CSV files, and this is a Parquet file; drop them"),
        (("fit", "{d}/x.npy", "-k", "1", "-o", "{d}/m.bigem", "--delimiter", "ab"),
         "argument --delimiter: expected one character such as ';' or '\\t' (tab), got 'ab'"),
    ],
    ids=["npy", "parquet", "two-characters"],
)
def test_csv_options_elsewhere_are_refused_in_one_line(tmp_path, capsys, argv, message):
    np.save(tmp_path / "x.npy", X)
    pd.DataFrame(X, columns=["a", "b"]).to_parquet(tmp_path / "x.parquet")
    rc, out, err = run(capsys, *(a.format(d=tmp_path) for a in argv))
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert message.format(d=tmp_path) in err
    assert not (tmp_path / "m.bigem").exists()


def test_the_multinomial_family_reads_the_csv_flags_too(tmp_path, capsys):
    """--family multinomial ignored --no-header (the first document became the column
    names: 99 of 100 fitted) and --delimiter."""
    counts = np.random.default_rng(0).poisson(3, (100, 3))
    counts[0] = [1, 2, 3]
    data = tmp_path / "c.csv"
    np.savetxt(data, counts, fmt="%d", delimiter=";")  # no header line
    flags = ["--family", "multinomial", "--delimiter", ";", "--no-header"]
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", data, "-k", "2", "-o", model, *flags, "--json")
    assert rc == 0, err
    assert json.loads(out)["n_rows"] == 100
    est = bigem.load(model)
    assert list(est.feature_names_in_) == ["f0", "f1", "f2"]
    ref = bigem.MultinomialMixture(**est.get_params()).fit(counts)  # the command line's settings
    np.testing.assert_allclose(est.weights_, ref.weights_, rtol=0, atol=1e-12)
    rc, out, err = run(capsys, "predict", model, data, "-o", tmp_path / "p.csv", *flags[2:])
    assert rc == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 100
    rc, out, err = run(capsys, "score", model, data, *flags[2:], "--json")
    assert rc == 0, err
    assert json.loads(out)["log_likelihood"] == pytest.approx(float(ref.score(counts)) * 100, rel=1e-12)
    sparse = pytest.importorskip("scipy.sparse")
    sparse.save_npz(tmp_path / "c.npz", sparse.csr_matrix(counts))
    rc, _, err = run(capsys, "predict", model, tmp_path / "c.npz", "-o", tmp_path / "q.csv", *flags[2:])
    assert rc == 2 and "--delimiter and --no-header apply to CSV files, and this is a .npz sparse matrix" in err
    assert not (tmp_path / "q.csv").exists()
