"""Missing values on the command line: --missing fiml on fit, select, predict and score,
and bigem impute, against the same calls in Python."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main


@pytest.fixture(scope="module")
def gaps(tmp_path_factory):
    """A CSV with an id column and empty fields in every feature column."""
    d = tmp_path_factory.mktemp("gaps")
    rng = np.random.default_rng(0)
    X = np.r_[rng.multivariate_normal([0, 0, 0], np.eye(3), 150),
              rng.multivariate_normal([5, 5, 0], 0.5 * np.eye(3) + 0.2, 150)]
    X[rng.random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(1)]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame.insert(0, "id", np.arange(len(X)) * 10)
    frame.to_csv(d / "g.csv", index=False, na_rep="")
    return d, frame


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def model(gaps):
    d, _ = gaps
    path = d / "m.bigem"
    argv = ["fit", d / "g.csv", "-k", "2", "--columns", "a,b,c", "--missing", "fiml", "--dtype", "float64", "-o", path]
    assert main([str(a) for a in argv]) == 0
    return path


def test_fit_with_missing_fiml_equals_the_python_fit(gaps, model, capsys):
    _, frame = gaps
    est = bigem.load(model)
    assert est.missing_values == "fiml"
    assert main(["info", str(model)]) == 0
    assert "dtype=float64, missing_values=fiml\n" in capsys.readouterr().out
    ref = bigem.GaussianMixture(2, missing_values="fiml", dtype="float64", random_state=0).fit(frame[["a", "b", "c"]])
    np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(est.covariances_, ref.covariances_, rtol=1e-10)


def test_fit_without_the_option_names_it_and_writes_nothing(gaps, capsys, tmp_path):
    d, _ = gaps
    rc, _, err = run(capsys, "fit", d / "g.csv", "-k", "2", "--columns", "a,b,c", "-o", tmp_path / "m.bigem")
    assert rc == 2 and "null (missing) value(s) in the file, in column(s) ['a', 'b', 'c']" in err and "--missing fiml" in err
    assert not (tmp_path / "m.bigem").exists()


def test_predict_and_score_read_gaps_as_the_model_was_fitted(gaps, model, capsys, tmp_path):
    d, frame = gaps
    est = bigem.load(model)
    X = frame[["a", "b", "c"]]
    rc, _, err = run(capsys, "predict", model, d / "g.csv", "--proba", "-o", tmp_path / "p.npy")
    assert rc == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), est.predict_proba(X), rtol=1e-12, atol=1e-15)
    rc, out, err = run(capsys, "score", model, d / "g.csv", "--json")
    assert rc == 0, err
    assert json.loads(out)["mean_log_likelihood"] == pytest.approx(est.score(X), rel=1e-12)
    # --missing error overrides the model's setting: the gaps are refused again
    rc, _, err = run(capsys, "predict", model, d / "g.csv", "--missing", "error", "-o", tmp_path / "q.npy")
    assert rc == 2 and "--missing fiml" in err and not (tmp_path / "q.npy").exists()


def test_predict_with_missing_fiml_on_a_model_fitted_without_gaps(gaps, capsys, tmp_path):
    d, frame = gaps
    complete = frame.dropna()
    complete.to_csv(tmp_path / "complete.csv", index=False)
    assert main(["fit", str(tmp_path / "complete.csv"), "-k", "2", "--columns", "a,b,c", "--dtype", "float64",
                 "-o", str(tmp_path / "c.bigem")]) == 0
    est = bigem.load(tmp_path / "c.bigem")
    assert est.missing_values == "error"
    rc, _, err = run(capsys, "predict", tmp_path / "c.bigem", d / "g.csv", "--score", "--missing", "fiml",
                     "-o", tmp_path / "s.npy")
    assert rc == 0, err
    est.set_params(missing_values="fiml")
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), est.score_samples(frame[["a", "b", "c"]]), rtol=1e-12)


def test_select_with_missing_fiml(gaps, capsys, tmp_path):
    d, frame = gaps
    rc, out, err = run(capsys, "select", d / "g.csv", "-k", "1..2", "--covariance", "diag", "--columns", "a,b,c",
                       "--missing", "fiml", "--dtype", "float64", "-o", tmp_path / "s.bigem")
    assert rc == 0, err
    best = bigem.load(tmp_path / "s.bigem")
    assert best.n_components == 2 and best.missing_values == "fiml"
    # the same selection in Python (its start: mclust's hierarchical tree on the complete rows)
    ref = bigem.select(frame[["a", "b", "c"]], n_components=[1, 2], covariance_types="diag", missing_values="fiml",
                       dtype="float64", random_state=0).best_estimator_
    np.testing.assert_allclose(best.means_, ref.means_, rtol=1e-10)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_impute_writes_the_conditional_means_with_the_ids(gaps, model, capsys, tmp_path, suffix):
    d, frame = gaps
    out = tmp_path / f"i{suffix}"
    rc, stdout, err = run(capsys, "impute", model, d / "g.csv", "--id-column", "id", "-o", out)
    assert rc == 0, err
    assert f"wrote {len(frame)} rows with their missing values replaced by conditional means" in stdout
    written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(written.columns) == ["id", "a", "b", "c"]
    np.testing.assert_array_equal(written["id"], frame["id"])
    expected = bigem.load(model).impute(frame[["a", "b", "c"]])
    np.testing.assert_allclose(written[["a", "b", "c"]].to_numpy(), expected, rtol=1e-15)
    observed = frame[["a", "b", "c"]].notna().to_numpy()
    np.testing.assert_array_equal(written[["a", "b", "c"]].to_numpy()[observed], frame[["a", "b", "c"]].to_numpy()[observed])


def test_impute_sample_is_the_python_draw_for_its_seed(gaps, model, capsys, tmp_path):
    d, frame = gaps
    for seed in (3, 4):
        rc, _, err = run(capsys, "impute", model, d / "g.csv", "--sample", "--seed", seed, "-o", tmp_path / f"s{seed}.npy")
        assert rc == 0, err
    est = bigem.load(model)
    X = frame[["a", "b", "c"]]
    np.testing.assert_array_equal(np.load(tmp_path / "s3.npy"), est.impute(X, method="sample", random_state=3))
    assert not np.array_equal(np.load(tmp_path / "s3.npy"), np.load(tmp_path / "s4.npy"))


def test_impute_user_errors(gaps, model, capsys, tmp_path):
    d, frame = gaps
    rc, _, err = run(capsys, "impute", model, d / "g.csv", "--id-column", "id", "-o", tmp_path / "i.npy")
    assert rc == 2 and err.startswith("bigem impute: error:") and "--id-column adds a column of ids" in err
    hmm = bigem.GaussianHMM(2, n_iter=3, random_state=0).fit(frame[["a", "b", "c"]].dropna().to_numpy())
    hmm.save(tmp_path / "hmm.bigem")
    rc, _, err = run(capsys, "impute", tmp_path / "hmm.bigem", d / "g.csv", "-o", tmp_path / "i.csv")
    assert rc == 2 and "holds a GaussianHMM: bigem impute fills gaps under a mixture of columns" in err
    assert not (tmp_path / "i.npy").exists() and not (tmp_path / "i.csv").exists()


def test_the_multinomial_family_refuses_missing_values(capsys, tmp_path):
    from tests.multinomial.conftest import make_documents

    X, _, _, _ = make_documents(0, n=120, V=20)
    np.save(tmp_path / "docs.npy", X)
    for command in ("fit", "select"):
        rc, _, err = run(capsys, command, tmp_path / "docs.npy", "--family", "multinomial", "-k", "2", "--missing", "fiml",
                         "-o", tmp_path / "m.bigem")
        assert rc == 2 and "the multinomial family reads counts" in err
    assert not (tmp_path / "m.bigem").exists()
    est = bigem.MultinomialMixture(2, random_state=0).fit(X)
    assert not hasattr(est, "impute") and "missing_values" not in est.get_params()
    est.save(tmp_path / "m.bigem")
    rc, _, err = run(capsys, "predict", tmp_path / "m.bigem", tmp_path / "docs.npy", "--missing", "fiml",
                     "-o", tmp_path / "p.npy")
    assert rc == 2 and "--missing applies to the mixtures of columns and the HMMs" in err and "MultinomialMixture" in err
    rc, _, err = run(capsys, "impute", tmp_path / "m.bigem", tmp_path / "docs.npy", "-o", tmp_path / "i.npy")
    assert rc == 2 and "holds a MultinomialMixture: bigem impute fills gaps under a mixture of columns" in err
    assert not (tmp_path / "p.npy").exists() and not (tmp_path / "i.npy").exists()


def test_impute_says_it_writes_the_models_columns(gaps, model, capsys, tmp_path):
    """DATA's other columns (id here) are not written; the help says so, and names --id-column."""
    d, _ = gaps
    assert main(["impute", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Write the columns of DATA that MODEL reads (its columns, or --columns), every row" in text
    assert "DATA's other columns are not written: --id-" in text and "copies one of them first" in text
    assert main(["--help"]) == 0
    listing = " ".join(capsys.readouterr().out.split())
    assert "write the model's columns of a data file with their missing values filled" in listing
    assert main(["impute", str(model), str(d / "g.csv"), "-o", str(tmp_path / "i.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "i.csv").columns) == ["a", "b", "c"]
