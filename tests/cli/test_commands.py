"""The command line on real files: round trips through every subcommand, and every user error."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main
from bigem.estimators.selection import COLUMNS

BIGEM = str(Path(sys.executable).with_name("bigem"))  # the installed console script


def blobs(seed: int = 0, n_per: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    covs = [np.array([[1.0, 0.7], [0.7, 1.0]]), np.array([[1.5, -0.6], [-0.6, 0.8]]), np.eye(2) * 0.4]
    X = np.concatenate([rng.multivariate_normal(m, c, n_per) for m, c in zip([(0, 0), (6, 0), (0, 6)], covs)])
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    X = blobs()
    np.save(d / "d.npy", X)
    extra = np.arange(len(X)) % 3
    np.savetxt(d / "d.csv", np.c_[X, extra], delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    rng = np.random.default_rng(1)
    np.save(d / "one.npy", np.r_[rng.normal(0, 1.5, 200), rng.normal(5, 0.5, 200)])  # 1-D: one column
    return d, X


def named(X):
    """X as the model saw it: columns a and b."""
    return pd.DataFrame(X[:, :2], columns=["a", "b"])


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_round_trip_through_the_installed_script(files, tmp_path):
    d, X = files
    model = tmp_path / "m.bigem"
    fit = subprocess.run([BIGEM, "fit", d / "d.npy", "-k", "3", "--seed", "0", "--dtype", "float64", "-o", model, "--json"],
                         capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr
    result = json.loads(fit.stdout)
    est = bigem.load(model)
    assert result["n_components"] == 3 and result["converged"] and result["n_rows"] == 600
    assert result["bic"] == pytest.approx(est.bic(X), rel=1e-10)
    assert result["aic"] == pytest.approx(est.aic(X), rel=1e-10)
    assert result["mean_log_likelihood"] == pytest.approx(est.score(X), rel=1e-10)
    # the same fit from Python
    ref = bigem.GaussianMixture(3, random_state=0, dtype="float64").fit(X)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10)
    bad = subprocess.run([BIGEM, "predict", model, d / "missing.csv", "-o", tmp_path / "p.npy"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("bigem predict: error:") and "missing.csv: no such data file" in bad.stderr


def test_npy_columns_stream_from_the_file_through_every_command(files, tmp_path, capsys):
    d, X = files
    wide = np.c_[X[:, 1], np.arange(len(X)) % 5, X[:, 0]]  # the features at 2 and 0, a code between them
    np.save(tmp_path / "wide.npy", wide)
    from bigem.cli import _io

    data = _io.read_data(str(tmp_path / "wide.npy"), ["2", "0"])
    assert data.X == str(tmp_path / "wide.npy") and data.columns == ["2", "0"]  # the path: read chunk by chunk
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", tmp_path / "wide.npy", "--columns", "2,0", "-k", "3", "--seed", "0",
                       "--dtype", "float64", "-o", model)
    assert rc == 0, err
    assert "to 600 rows x 2 columns" in out
    est = bigem.load(model)
    ref = bigem.GaussianMixture(3, random_state=0, dtype="float64").fit(X)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10)
    rc, _, err = run(capsys, "predict", model, tmp_path / "wide.npy", "--columns", "2,0", "-o", tmp_path / "p.npy")
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), ref.predict(X))
    rc, _, err = run(capsys, "plot", model, tmp_path / "wide.npy", "--columns", "2,0", "-o", tmp_path / "fit.svg")
    assert rc == 0, err
    picked = _io.sample_rows(_io.read_data(str(tmp_path / "wide.npy"), ["2", "0"]), 50)
    assert picked.shape == (50, 2) and np.isin(picked, X).all(1).all()


def test_fit_predict_score_sample_info(files, tmp_path, capsys):
    d, X = files
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", d / "d.csv", "--columns", "a,b", "-k", "3", "--n-init", "2", "-o", model)
    assert rc == 0, err
    assert "fitted K=3 full to 600 rows x 2 columns" in out and f"wrote {model}" in out
    est = bigem.load(model)
    assert list(est.feature_names_in_) == ["a", "b"] and len(est.history_) == 2

    # predict picks the model's columns (a, b) out of d.csv's (a, b, c) by name
    rc, out, err = run(capsys, "predict", model, d / "d.csv", "-o", tmp_path / "labels.csv")
    assert rc == 0, err
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    assert lines[0] == '"label"' and len(lines) == 601
    labels = np.array(lines[1:], dtype=int)
    np.testing.assert_array_equal(labels, est.predict(named(X)))

    rc, _, err = run(capsys, "predict", model, d / "d.npy", "-o", tmp_path / "proba.csv", "--proba")
    assert rc == 0, err
    proba = np.loadtxt(tmp_path / "proba.csv", delimiter=",", skiprows=1)
    assert (tmp_path / "proba.csv").read_text().startswith('"proba_0","proba_1","proba_2"\n')
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, est.predict_proba(named(X)), rtol=1e-12, atol=1e-300)

    rc, _, err = run(capsys, "predict", model, d / "d.npy", "-o", tmp_path / "dens.npy", "--score")
    assert rc == 0, err
    dens = np.load(tmp_path / "dens.npy")
    np.testing.assert_allclose(dens, est.score_samples(named(X)), rtol=1e-12)

    rc, out, err = run(capsys, "score", model, d / "d.csv", "--json")
    assert rc == 0, err
    score = json.loads(out)
    assert score["mean_log_likelihood"] == pytest.approx(est.score(named(X)), rel=1e-12)
    assert score["bic"] == pytest.approx(est.bic(named(X)), rel=1e-12)
    for name in ("caic", "sabic", "relative_entropy"):
        assert score[name] == pytest.approx(getattr(est, name)(named(X)), rel=1e-12), name
    rc, out, _ = run(capsys, "score", model, d / "d.csv")
    assert "600 rows: mean log-likelihood" in out and "BIC" in out and "AIC" in out and "SABIC" in out
    assert "relative entropy" in out

    rc, out, err = run(capsys, "bootstrap", model, d / "d.csv", "-n", 5, "--seed", 3, "--json")
    assert rc == 0, err
    boot = json.loads(out)
    ref = est.bootstrap(named(X), n_boot=5, random_state=3)
    assert boot["n_boot"] == 5 and boot["method"] == "nonparametric"
    np.testing.assert_allclose(boot["parameters"]["means_"]["se"], ref.se()["means_"], rtol=1e-10)
    rc, out, err = run(capsys, "bootstrap", model, d / "d.csv", "-n", 3, "--method", "weighted")
    assert rc == 0 and out.startswith("Bootstrap of 3 replicates (weighted;") and "means_:" in out

    for seed, name in ((1, "s1.csv"), (1, "s1b.csv"), (2, "s2.csv")):
        rc, out, err = run(capsys, "sample", model, "-n", 500, "--seed", seed, "-o", tmp_path / name)
        assert rc == 0, err
    s1 = (tmp_path / "s1.csv").read_text()
    assert s1.startswith("a,b\n") and s1 == (tmp_path / "s1b.csv").read_text() != (tmp_path / "s2.csv").read_text()
    drawn = np.loadtxt(tmp_path / "s1.csv", delimiter=",", skiprows=1)
    assert drawn.shape == (500, 2)
    # the draws follow the model: their mean is the mixture mean within sampling error
    assert np.abs(drawn.mean(0) - est.weights_ @ est.means_).max() < 0.5

    # --labels: the same draws, with each row's component as a last column
    for name in ("l.csv", "l.parquet"):
        rc, out, err = run(capsys, "sample", model, "-n", 500, "--seed", 1, "--labels", "-o", tmp_path / name)
        assert rc == 0, err
    labelled = pd.read_csv(tmp_path / "l.csv")
    assert list(labelled.columns) == ["a", "b", "component"] and labelled["component"].dtype.kind == "i"
    np.testing.assert_array_equal(labelled[["a", "b"]].to_numpy(), drawn)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "l.parquet"), labelled, check_dtype=False)
    # each row lies nearest (in the model's own terms) the component it was drawn from, mostly
    assert (est.predict(labelled[["a", "b"]]) == labelled["component"].to_numpy()).mean() > 0.8
    assert set(labelled["component"]) <= {0, 1, 2}

    rc, out, err = run(capsys, "info", model)
    assert rc == 0, err
    assert "K=3, covariance full, 2 features (a, b)" in out and out.count("component ") == 3
    rc, out, _ = run(capsys, "info", model, "--json")
    info = json.loads(out)
    np.testing.assert_allclose(info["means"], est.means_, rtol=1e-15)
    assert info["feature_names"] == ["a", "b"] and info["n_parameters"] == 17


def test_select_table_plot_and_json(files, tmp_path, capsys):
    d, X = files
    model, table, picture = tmp_path / "best.bigem", tmp_path / "t.csv", tmp_path / "sel.png"
    rc, out, err = run(capsys, "select", d / "d.npy", "-k", "1..4", "--covariance", "full,spherical", "-o", model,
                       "--table", table, "--plot", picture, "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert (result["best"]["n_components"], result["best"]["covariance_type"]) == (3, "full")
    assert len(result["table"]) == 8 and result["dropped"] == []
    header, *rows = table.read_text().splitlines()
    assert header.split(",") == list(COLUMNS) and len(rows) == 8
    best = bigem.load(model)
    assert best.n_components == 3 and best.covariance_type == "full"
    assert best.bic(X) == pytest.approx(result["best"]["bic"], rel=1e-10)
    from matplotlib import image

    assert image.imread(picture).shape[:2] == (600, 800)
    rc, out, _ = run(capsys, "select", d / "d.npy", "-k", "2,3", "--covariance", "diag", "-o", model)
    assert rc == 0 and "chosen: K=3 diag" in out and out.count("diag") >= 3


def test_select_warns_about_degenerate_candidates(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "spike.npy"
    np.save(data, np.r_[rng.normal(0, 1, 400), np.full(60, 4.0)])
    rc, out, err = run(capsys, "select", data, "-k", "1..3", "--covariance", "full", "-o", tmp_path / "m.bigem")
    assert rc == 0
    assert "bigem select: warning: excluded degenerate candidates K=3 full" in err
    assert "degenerate, dropped" in out and "chosen: K=2 full" in out


def test_plot_fit_and_convergence(files, tmp_path, capsys):
    d, _ = files
    from matplotlib import image

    one = tmp_path / "one.bigem"
    assert run(capsys, "fit", d / "one.npy", "-k", "2", "--n-init", "3", "-o", one)[0] == 0
    for argv, name in (
        (("plot", one, d / "one.npy"), "hist.png"),
        (("plot", one, "--kind", "convergence"), "conv.png"),
    ):
        rc, out, err = run(capsys, *argv, "-o", tmp_path / name)
        assert rc == 0, err
        img = image.imread(tmp_path / name)
        assert img.shape[:2] == (600, 800) and (np.ptp(img[..., :3], axis=2) > 0.3).sum() > 300
    two = tmp_path / "two.bigem"
    assert run(capsys, "fit", d / "d.npy", "-k", "3", "-o", two)[0] == 0
    rc, _, err = run(capsys, "plot", two, d / "d.npy", "-o", tmp_path / "scatter.svg", "--max-points", 300)
    assert rc == 0, err
    svg = (tmp_path / "scatter.svg").read_text()
    assert "<svg" in svg and "300 rows (uniform sample)" in svg and "2 sigma ellipse" in svg


BAD = [
    (("fit", "{d}/d.npy", "-k", "0", "-o", "{t}/m.bigem"), "fit", "argument -k/--n-components: expected a whole number >= 1, got '0'"),
    (("fit", "{d}/d.npy", "-k", "700", "-o", "{t}/m.bigem"), "fit", "-k 700 is larger than the 600 rows"),
    (("select", "{d}/d.npy", "-k", "5..2", "-o", "{t}/m.bigem"), "select", "empty range '5..2'"),
    (("select", "{d}/d.npy", "-k", "1..x", "-o", "{t}/m.bigem"), "select", "expected K, LO..HI or K1,K2"),
    (("select", "{d}/d.npy", "-k", "2..900", "-o", "{t}/m.bigem"), "select", "-k 900 is larger than the 600 rows"),
    (("fit", "{d}/d.npy", "-k", "2", "-o", "{t}/nodir/m.bigem"), "fit", "nodir' does not exist; create it first"),
    (("fit", "{d}/d.npy", "-k", "2", "-o", "{d}/d.npy"), "fit", "is the input file; choose a different output path"),
    (("fit", "{t}/missing.npy", "-k", "2", "-o", "{t}/m.bigem"), "fit", "missing.npy: no such data file"),
    (("fit", "{d}/d.csv", "--columns", "a,zz", "-k", "2", "-o", "{t}/m.bigem"), "fit", "d.csv: no column(s) ['zz']; the file has ['a', 'b', 'c']"),
    (("fit", "{d}/d.npy", "--columns", "0,5", "-k", "2", "-o", "{t}/m.bigem"), "fit", "column index 5 is out of range"),
    (("fit", "{d}/docs.npz", "-k", "2", "-o", "{t}/m.bigem"), "fit",
     "docs.npz: a .npz file holds a sparse matrix of counts, which --family multinomial reads"),
    (("info", "{d}/d.npy"), "info", "not a valid bigem model file"),
    (("score", "{t}/missing.bigem", "{d}/d.npy"), "score", "no such model file"),
    (("fit", "{d}/d.npy", "-k", "2", "--tol", "-1", "-o", "{t}/m.bigem"), "fit", "argument --tol: expected a finite number >= 0"),
    (("fit", "{d}/d.npy", "-k", "2", "--covariance", "banana", "-o", "{t}/m.bigem"), "fit", "invalid choice: 'banana'"),
    (("fit", "{d}/d.npy", "-k", "2", "--dtype", "float16", "-o", "{t}/m.bigem"), "fit", "invalid choice: 'float16'"),
    (("fit", "{d}/d.npy", "-k", "2", "--n-init", "0", "-o", "{t}/m.bigem"), "fit", "argument --n-init"),
    (("fit", "{d}/d.npy", "-k", "2", "--device", "gpu9", "-o", "{t}/m.bigem"), "fit", "device 'gpu9' is not a torch device"),
    (("fit", "{d}/d.npy", "-k", "2"), "fit", "the following arguments are required: -o/--output"),
    (("select", "{d}/d.npy", "--covariance", "full,round", "-o", "{t}/m.bigem"), "select", "unknown covariance type(s) ['round']"),
    (("select", "{d}/d.npy", "-k", "2", "-o", "{t}/m.bigem", "--table", "{t}/t.txt"), "select", "table {t}/t.txt: unsupported file type '.txt'"),
    (("select", "{d}/d.npy", "-k", "2", "-o", "{t}/same.csv", "--table", "{t}/same.csv"), "select", "--table {t}/same.csv: -o writes to the same file; give each output a path of its own"),
    # a model never replaces a data set (only the input file itself was protected)
    (("fit", "{d}/d.npy", "-k", "2", "-o", "{d}/d.csv"), "fit", "names data (.csv), replacing whatever is there; give the model a path of its own, such as one ending in .bigem"),
    (("fit", "{d}/d.npy", "-k", "2", "-o", "{t}/holdout.parquet"), "fit", "names data (.parquet)"),
    (("select", "{d}/d.npy", "-k", "2", "-o", "{t}/m.npy"), "select", "names data (.npy)"),
    (("select", "{d}/d.npy", "-k", "2", "-o", "{t}/m.bigem", "--table", "{t}/s.csv", "--plot", "{t}/./s.csv"), "select", "--plot {t}/./s.csv: --table writes to the same file"),
    (("select", "{d}/d.npy", "--family", "multinomial", "-k", "2", "-o", "{t}/m.bigem", "--plot", "{t}/m.bigem"), "select", "--plot {t}/m.bigem: -o writes to the same file"),
    (("predict", "{d}/model.bigem", "{d}/d.npy", "-o", "{t}/out.txt"), "predict", "unsupported file type '.txt'; use .npy, .csv, .parquet"),
    (("predict", "{d}/model.bigem", "{d}/d.npy", "-o", "{d}/d.npy"), "predict", "is the input file"),
    (("predict", "{d}/model.bigem", "{d}/d.npy", "-o", "{t}/o.npy", "--proba", "--score"), "predict", "not allowed with argument"),
    (("predict", "{d}/model.bigem", "{d}/one.npy", "-o", "{t}/o.npy"), "predict", "has 1 columns but the model was fitted on 2"),
    (("predict", "{d}/model.bigem", "{d}/text.csv", "-o", "{t}/o.npy"), "predict", "column 'b' has a non-numeric value 'abc' at data row 1"),
    (("predict", "{d}/model.bigem", "{d}/nan.npy", "-o", "{t}/o.npy"), "predict", "NaN"),
    (("predict", "{d}/model.bigem", "{d}/gaps.csv", "-o", "{t}/o.npy"), "predict", "null (missing) value(s) in the file, in column(s) ['b']"),
    (("predict", "{d}/model.bigem", "{d}/d.xyz", "-o", "{t}/o.npy"), "predict", "d.xyz: unsupported file type"),
    (("sample", "{d}/model.bigem", "-n", "-3", "-o", "{t}/s.npy"), "sample", "argument -n/--n-samples: expected a whole number >= 1"),
    (("sample", "{d}/model.bigem", "-n", "3", "--labels", "-o", "{t}/s.npy"), "sample", "s.npy: --labels adds an integer column, and a .npy file holds one dtype"),
    (("plot", "{d}/model.bigem", "{d}/d.npy", "-o", "{t}/f.jpg"), "plot", "unsupported file type '.jpg'; use .png, .svg"),
    (("plot", "{d}/model.bigem", "-o", "{t}/f.png"), "plot", "--kind fit needs DATA"),
    (("plot", "{d}/model.bigem", "{d}/d.npy", "--pair", "0,q", "-o", "{t}/f.png"), "plot", "unknown column 'q'"),
    (("frobnicate",), "", "invalid choice: 'frobnicate'"),
    (("fit", "{d}/d.npy", "-k", "2", "--sample-weight", "c", "-o", "{t}/m.bigem"), "fit", "d.npy: a .npy file has no column names, so it has no weight column"),
    (("fit", "{d}/d.csv", "-k", "2", "--sample-weight", "q", "-o", "{t}/m.bigem"), "fit", "no column(s) ['q']; the file has ['a', 'b', 'c']"),
    # the file's own columns, not the empty list of those asked for that it has
    (("predict", "{d}/named.bigem", "{d}/other.csv", "-o", "{t}/o.csv"), "predict", "other.csv: no column(s) ['a', 'b']; the file has ['x', 'y']"),
    (("fit", "{d}/empty.npy", "-k", "1", "-o", "{t}/m.bigem"), "fit", "empty.npy: no rows; the data set is empty"),
    (("fit", "{d}/d.npy", "-k", "2", "--family", "poisson", "--init", "hc", "-o", "{t}/m.bigem"), "fit", "error: --init (PoissonMixture's init_params) must be"),
]


@pytest.fixture(scope="module")
def bad_files(files):
    d, X = files
    assert main(["fit", str(d / "d.npy"), "-k", "2", "-o", str(d / "model.bigem")]) == 0
    assert main(["fit", str(d / "d.csv"), "--columns", "a,b", "-k", "2", "-o", str(d / "named.bigem")]) == 0
    (d / "other.csv").write_text("x,y\n1,2\n3,4\n")
    np.save(d / "empty.npy", np.zeros((0, 2)))
    (d / "text.csv").write_text("a,b\n1,2\n3,abc\n")
    (d / "gaps.csv").write_text("a,b\n1,2\n3,\n")
    np.save(d / "nan.npy", np.array([[0.0, 1.0], [np.nan, 2.0]]))
    (d / "d.xyz").write_text("1 2\n")
    import scipy.sparse as sp

    sp.save_npz(d / "docs.npz", sp.csr_matrix(np.eye(3, dtype=np.int64)))
    return d


@pytest.mark.parametrize("argv, command, message", BAD, ids=[" ".join(b[0][:4]) for b in BAD])
def test_user_errors_are_one_clear_line_and_leave_no_file(bad_files, tmp_path, capsys, argv, command, message):
    d = bad_files
    before = sorted(os.listdir(d))
    argv = [a.format(d=d, t=tmp_path) for a in argv]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"bigem {command}: error:" if command else "bigem: error:")
    assert message.format(d=d, t=tmp_path) in err
    assert os.listdir(tmp_path) == [] and sorted(os.listdir(d)) == before  # nothing written, nothing partial


def test_debug_shows_the_traceback(bad_files, tmp_path, capsys):
    rc, _, err = run(capsys, "--debug", "info", bad_files / "d.npy")
    assert rc == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("bigem info: error:")


def test_progress_lines_on_request(files, tmp_path, capsys):
    d, _ = files
    rc, _, err = run(capsys, "fit", d / "d.npy", "-k", "3", "--n-init", "2", "--progress", "-o", tmp_path / "m.bigem")
    assert rc == 0
    lines = err.splitlines()
    assert lines and all(line.startswith("fit: restart ") for line in lines)
    assert any("restart 2/2" in line for line in lines) and "iteration 1/100" in lines[0]
    rc, _, err = run(capsys, "fit", d / "d.npy", "-k", "3", "-o", tmp_path / "m2.bigem")
    assert rc == 0 and err == ""  # not a terminal: quiet by default


def test_parquet_in_parquet_out(files, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    d, X = files
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": np.arange(len(X)), "a": X[:, 0], "b": X[:, 1]}), data)
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", data, "--columns", "a,b", "-k", "3", "--dtype", "float64", "-o", model)
    assert rc == 0, err
    rc, _, err = run(capsys, "predict", model, data, "--score", "-o", tmp_path / "dens.parquet")
    assert rc == 0, err
    dens = pq.read_table(tmp_path / "dens.parquet")
    assert dens.column_names == ["log_density"]
    est = bigem.load(model)
    np.testing.assert_allclose(dens.column("log_density").to_numpy(), est.score_samples(named(X)), rtol=1e-12)
    rc, _, err = run(capsys, "sample", model, "-n", 20, "-o", tmp_path / "s.parquet")
    assert rc == 0 and pq.read_table(tmp_path / "s.parquet").column_names == ["a", "b"]


def test_fit_and_select_with_a_weight_column(files, tmp_path, capsys):
    """--sample-weight c: c weighs the rows and is not a feature; the model and the reported
    mean log-likelihood are the weighted ones."""
    d, X = files
    w = (np.arange(len(X)) % 3).astype(float)
    model = tmp_path / "w.bigem"
    rc, out, err = run(capsys, "fit", d / "d.csv", "-k", "3", "--sample-weight", "c", "--dtype", "float64", "-o", model, "--json")
    assert rc == 0, err
    est = bigem.load(model)
    assert list(est.feature_names_in_) == ["a", "b"]
    ref = bigem.GaussianMixture(3, dtype="float64", random_state=0).fit(named(X), sample_weight=w)
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10, atol=1e-10)
    ll = ref.score_samples(named(X))
    assert json.loads(out)["mean_log_likelihood"] == pytest.approx(ll @ w / w.sum(), rel=1e-10)
    rc, out, err = run(capsys, "select", d / "d.csv", "-k", "2,3", "--sample-weight", "c", "-o", tmp_path / "s.bigem", "--json")
    assert rc == 0, err
    best = bigem.load(tmp_path / "s.bigem")
    assert list(best.feature_names_in_) == ["a", "b"]
    # score and bootstrap weigh the rows by the same column
    rc, out, err = run(capsys, "score", model, d / "d.csv", "--sample-weight", "c", "--json")
    assert rc == 0, err
    assert json.loads(out)["mean_log_likelihood"] == pytest.approx(ll @ w / w.sum(), rel=1e-9)
    rc, out, err = run(capsys, "bootstrap", model, d / "d.csv", "--sample-weight", "c", "-n", 3, "--json")
    assert rc == 0, err
    want = ref.bootstrap(named(X), n_boot=3, random_state=0, sample_weight=w).se()["weights_"]
    np.testing.assert_allclose(json.loads(out)["parameters"]["weights_"]["se"], want, rtol=1e-6)


def test_bootstrap_json_counts_the_replicates_left_out(tmp_path, capsys):
    """A replicate that lost a small component is left out of se and ci: the JSON said
    how many converged, not how many were left out."""
    from bigem.errors import ComponentReseededWarning

    rng = np.random.RandomState(0)
    pd.DataFrame({"x": np.r_[rng.randn(97), rng.randn(3) * 0.1 + 10]}).to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.bigem"
    assert main(["fit", str(tmp_path / "d.csv"), "-k", "2", "--dtype", "float64", "-o", str(model)]) == 0
    capsys.readouterr()
    rc, out, err = run(capsys, "bootstrap", model, tmp_path / "d.csv", "-n", 60, "--seed", 0, "--json")
    assert rc == 0, err
    assert "bootstrap replicates left a component without rows" in err  # the warning, on stderr
    boot = json.loads(out)
    with pytest.warns(ComponentReseededWarning):
        ref = bigem.load(model).bootstrap(pd.read_csv(tmp_path / "d.csv"), n_boot=60, random_state=0)
    assert boot["lost"] == int(ref.lost.sum()) > 0
    np.testing.assert_allclose(boot["parameters"]["means_"]["se"], ref.se()["means_"], rtol=1e-10)


def test_score_reports_the_weighted_mean_that_fit_reports(tmp_path, capsys):
    """score --sample-weight divided the weighted total by the row count: weights of 1
    and 3 (sum twice the rows) made its mean log-likelihood twice fit's."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(np.r_[rng.normal(0, 1, (150, 2)), rng.normal(5, 1, (150, 2))], columns=["a", "b"])
    frame["w"] = np.where(np.arange(300) % 2 == 0, 1.0, 3.0)
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", tmp_path / "d.csv", "-k", "2", "--sample-weight", "w", "--dtype", "float64",
                       "-o", model, "--json")
    assert rc == 0, err
    fitted = json.loads(out)["mean_log_likelihood"]
    rc, out, err = run(capsys, "score", model, tmp_path / "d.csv", "--sample-weight", "w", "--json")
    assert rc == 0, err
    scored = json.loads(out)["mean_log_likelihood"]
    want = bigem.load(model).score(frame[["a", "b"]], sample_weight=frame["w"].to_numpy())
    assert scored == pytest.approx(want, rel=1e-10) and fitted == pytest.approx(want, rel=1e-10)


def test_sample_labels_refuse_to_shadow_a_feature_named_component(tmp_path, capsys):
    data = tmp_path / "d.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)), columns=["x", "component"]).to_csv(data, index=False)
    assert main(["fit", str(data), "-k", "2", "-o", str(tmp_path / "m.bigem")]) == 0
    rc, out, err = run(capsys, "sample", tmp_path / "m.bigem", "-n", 5, "--labels", "-o", tmp_path / "s.csv")
    assert rc == 2 and "--labels writes a column named 'component', which is already a feature's name" in err
    assert not (tmp_path / "s.csv").exists()


def test_a_data_file_named_with_glob_characters_is_read_as_itself(files, tmp_path, capsys):
    d, X = files
    data = tmp_path / "d[1].csv"
    data.write_bytes((d / "d.csv").read_bytes())
    model = tmp_path / "m.bigem"
    rc, out, err = run(capsys, "fit", data, "--columns", "a,b", "-k", "3", "-o", model)
    assert rc == 0, err
    assert f"to 600 rows x 2 columns of {data}" in out
    rc, _, err = run(capsys, "predict", model, data, "-o", tmp_path / "p.npy")
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), bigem.load(model).predict(named(X)))


def test_an_output_that_cannot_be_created_is_named_before_any_work(files, tmp_path, capsys, monkeypatch):
    """A folder where no file can be created (read-only, no permission): the error names
    the output the user gave, not bigem's hidden temporary, and comes before the fit."""
    d, X = files
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refuse(path, flags, *args, **kw):
        if os.path.dirname(os.fspath(path)) == str(locked) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refuse)
    for argv, name in (
        (("fit", d / "d.npy", "-k", "2", "-o", locked / "m.bigem"), f"model {locked / 'm.bigem'}"),
        (("select", d / "d.npy", "-k", "2", "-o", tmp_path / "s.bigem", "--table", locked / "t.csv"),
         f"table {locked / 't.csv'}"),
    ):
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and out == "" and ".part" not in err
        assert f"{name}: cannot be written (Permission denied); choose another output path, in a folder you can " \
               "write to" in err
    assert sorted(os.listdir(tmp_path)) == ["locked"] and os.listdir(locked) == []


@pytest.mark.skipif(sys.platform == "win32", reason="a closed pipe and SIGPIPE's status are Unix's")
def test_a_reader_that_goes_away_stops_it_quietly(files, tmp_path, capsys):
    """bigem info MODEL --json | head -1: no message, the status SIGPIPE gives Unix tools."""
    d, _ = files
    model = tmp_path / "m.bigem"
    assert run(capsys, "fit", d / "d.npy", "-k", "2", "-o", model)[0] == 0
    for argv in (("info", model, "--json"), ("info", model)):
        read, write = os.pipe()
        os.close(read)  # the reader has gone before the first line
        try:
            proc = subprocess.run([BIGEM, *map(str, argv)], stdout=write, stderr=subprocess.PIPE, text=True)
        finally:
            os.close(write)
        assert (proc.returncode, proc.stderr) == (141, "")


def _start_with(import_hook: str):
    """``bigem --version`` in a fresh Python whose import of the command's modules runs
    ``import_hook`` (the body of a meta-path finder's find_spec for them, os and signal
    imported): its completed process."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import os, signal, sys

        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "bigem.cli.commands":
                    HOOK
                return None

        sys.meta_path.insert(0, Interrupt())
        from bigem._entry import main
        sys.exit(main(["--version"]))
    """).replace("HOOK", textwrap.indent(textwrap.dedent(import_hook), " " * 12).strip())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_ctrl_c_while_the_command_line_imports_stops_it_without_a_traceback():
    """torch and the command's modules take a second or more to import: Ctrl-C then
    stops the command with status 130, as it does later, not with Python's traceback.

    The interrupt comes as the command line's modules start to import (an import hook
    sends it), not at a moment of the wall clock: sent 0.3 s after start, it sometimes
    landed inside a native library's initialisation, which Python cannot turn into a
    KeyboardInterrupt (the process aborted; measured the same at earlier commits), so
    the test failed by chance."""
    done = _start_with("os.kill(os.getpid(), signal.SIGINT)")
    assert "Traceback" not in done.stderr
    assert done.returncode == 130 and done.stderr.strip() == "bigem: interrupted" and done.stdout == ""


def test_ctrl_c_that_a_library_turns_into_an_import_error_is_still_ctrl_c():
    """numpy's C extensions, interrupted mid-import, raise ImportError ("Importing the numpy
    C-extensions failed ... PyCapsule_Import could not import module 'datetime'"): Ctrl-C
    early in start-up then printed that page and exited 1. It is Ctrl-C all the same; an
    ImportError with no Ctrl-C behind it is still raised."""
    reported = """
        try:
            SIGNAL
        except KeyboardInterrupt:
            raise ImportError("Importing the C-extensions failed") from None
    """
    done = _start_with(reported.replace("SIGNAL", "os.kill(os.getpid(), signal.SIGINT)"))
    assert "Traceback" not in done.stderr
    assert done.returncode == 130 and done.stderr.strip() == "bigem: interrupted" and done.stdout == ""
    broken = _start_with(reported.replace("SIGNAL", "raise KeyboardInterrupt"))
    assert broken.returncode == 1 and "ImportError: Importing the C-extensions failed" in broken.stderr


def test_a_model_files_commands_say_to_fit_with_another_dtype():
    """predict, score, ... have no --dtype: the model's fit chose it."""
    from bigem.cli._flags import in_flags

    text = "drop or rescale that row, or use dtype='float64'"
    assert in_flags(text, "fit").endswith("or use --dtype float64")
    assert in_flags(text, "score").endswith("or fit the model with --dtype float64 (bigem fit ... --dtype float64)")


@pytest.mark.parametrize("argv, words", [
    (["fit", "{d}/g.csv", "-k", "2", "--columns", "x,x", "-o", "{d}/m.bigem"], "error: --columns lists "),
    (["fit", "{d}/neg.csv", "-k", "2", "--columns", "x", "--sample-weight", "w", "-o", "{d}/m.bigem"],
     "--sample-weight column 'w' has -1.0"),
    (["bootstrap", "{d}/g.bigem", "{d}/g.csv", "-n", "5", "--level", "1.5"], "error: --level must be in (0, 1)"),
    (["bootstrap", "{d}/g.bigem", "{d}/g.csv", "-n", "1"], "error: -n must be an int >= 2"),
    (["fit", "{d}/g.csv", "-k", "2", "--column-families", "nope=poisson", "-o", "{d}/m.bigem"],
     "--column-families names column 'nope', which the data do not have"),
    (["fit", "{d}/g.csv", "-k", "2", "--family", "categorical", "--columns", "x", "-o", "{d}/m.bigem"],
     "column 'x' holds 0.5, which is not a whole number"),
])
def test_messages_name_the_flags_a_shell_user_types(tmp_path, capsys, argv, words):
    """The library's keyword words (columns, sample_weight, level, n_boot, X) and numpy's
    reprs (np.float64(0.5)) came through to the command line."""
    frame = pd.DataFrame({"x": np.r_[0.5, np.arange(39.0)], "y": np.arange(40.0) % 7})
    frame.to_csv(tmp_path / "g.csv", index=False)
    frame.assign(w=-1.0).to_csv(tmp_path / "neg.csv", index=False)
    assert main(["fit", str(tmp_path / "g.csv"), "-k", "2", "-o", str(tmp_path / "g.bigem")]) == 0
    capsys.readouterr()
    rc = main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and words in err, err
    assert not (tmp_path / "m.bigem").exists() and not (tmp_path / "p.csv").exists()


def test_library_words_the_command_line_cannot_type_are_named_as_it_can():
    """structural= is --family there; n_trials has no flag (the message said to set it)."""
    from bigem.cli._flags import in_flags

    assert in_flags("structural is 'foo'; a family is one of 'gaussian'").startswith("--family is 'foo'")
    said = in_flags("For sampling, a single n_trials must be given: set n_trials to the number of trials of every row")
    assert "in Python (m = bigem.load(MODEL); m.n_trials = N; m.sample(n)): the command line has no flag" in said


def test_a_lengths_file_that_is_not_npy_is_named_without_numpys_pickle_advice(tmp_path):
    from bigem.errors import DataError
    from bigem.sources.sequences import check_lengths

    path = tmp_path / "lengths.txt"
    path.write_text("3\n4\n")
    with pytest.raises(DataError, match=r"lengths.txt: cannot read the lengths array \(not a \.npy file\)") as caught:
        check_lengths(str(path), 7)
    assert "pickle" not in str(caught.value)


@pytest.mark.parametrize("command", ["fit", "predict", "score", "impute", "bootstrap"])
def test_memory_flags_reach_the_reader(files, tmp_path, capsys, monkeypatch, command):
    """--chunk-size, --memory-budget and --cache-budget set how much of DATA a command
    holds, as the estimators' parameters do (audit AS: the command line had no way to
    stream a file it could cache, and held 4x the data)."""
    import bigem.estimators._mixture as mixture

    d, X = files
    model = tmp_path / "m.bigem"
    assert run(capsys, "fit", d / "d.npy", "-k", "3", "--max-iter", "3", "-o", model)[0] == 0
    seen = []
    real = mixture.open_source

    def spy(X, **kw):
        seen.append((kw["chunk_size"], kw["memory_budget"], kw["cache_bytes"]))
        return real(X, **kw)

    monkeypatch.setattr(mixture, "open_source", spy)
    flags = ["--chunk-size", "70", "--memory-budget", "8MB", "--cache-budget", "0"]
    argv = {"fit": ["fit", d / "d.npy", "-k", "3", "--max-iter", "3", "-o", tmp_path / "n.bigem"],
            "predict": ["predict", model, d / "d.npy", "-o", tmp_path / "p.npy"],
            "score": ["score", model, d / "d.npy"],
            "impute": ["impute", model, d / "d.npy", "-o", tmp_path / "i.npy"],
            "bootstrap": ["bootstrap", model, d / "d.npy", "-n", "2"]}[command]
    rc, _, err = run(capsys, *argv, *flags)
    assert rc == 0, err
    assert seen and all(s == (70, 8_000_000, 0) for s in seen), seen


def test_memory_flags_are_checked_and_named(files, tmp_path, capsys):
    d, X = files
    for flags, words in ((["--memory-budget", "lots"], "--memory-budget (GaussianMixture's memory_budget) must be"),
                         (["--cache-budget", "-1"], "--cache-budget (GaussianMixture's cache_budget) must be"),
                         (["--chunk-size", "0"], "argument --chunk-size: expected a whole number >= 1")):
        rc, _, err = run(capsys, "fit", d / "d.npy", "-k", "3", "-o", tmp_path / "m.bigem", *flags)
        assert rc == 2 and words in err, err
    hmm = tmp_path / "hmm.bigem"
    bigem.GaussianHMM(2, n_iter=2, random_state=0).fit(X).save(hmm)
    rc, _, err = run(capsys, "score", hmm, d / "d.npy", "--chunk-size", "100", "--cache-budget", "0")
    assert rc == 2 and "--chunk-size and --cache-budget: " in err and "reads whole sequences" in err, err
    rc, _, err = run(capsys, "score", hmm, d / "d.npy", "--memory-budget", "1MB")  # an HMM's batch: taken
    assert rc == 0, err
    assert not (tmp_path / "m.bigem").exists()


@pytest.mark.parametrize("value", ["-5", "4294967296", "x"])
def test_a_seed_out_of_range_names_the_flag(files, tmp_path, capsys, value):
    d, _ = files
    rc, _, err = run(capsys, "fit", d / "d.npy", "-k", "3", "--seed", value, "-o", tmp_path / "m.bigem")
    assert rc == 2 and f"argument --seed: expected a whole number from 0 to 4294967295, got '{value}'" in err, err


def test_a_model_of_named_columns_reads_a_npy_file_by_position_and_says_so(files, tmp_path, capsys):
    """Python warns of an array given to a model fitted on named columns; the command line
    read the .npy file by position in silence (audit AS)."""
    d, X = files
    model = tmp_path / "m.bigem"
    assert run(capsys, "fit", d / "d.csv", "-k", "3", "--columns", "a,b", "-o", model)[0] == 0
    rc, _, err = run(capsys, "predict", model, d / "d.npy", "-o", tmp_path / "p.npy")
    assert rc == 0
    assert "warning: " in err and "has no column names, but the model was fitted on named columns ['a', 'b']" in err
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), bigem.load(model).predict(named(X)))
