"""``bigem fit/select/info/predict/score/sample`` with --family and --column-families:
the same models as the Python API, text columns read from Parquet, bad flags refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 1200
    z = rng.integers(0, 2, n)
    colours = np.array(["red", "green", "blue"])
    df = pd.DataFrame({
        "colour": colours[np.where(z == 0, rng.choice(3, n, p=[0.7, 0.2, 0.1]), rng.choice(3, n, p=[0.1, 0.2, 0.7]))],
        "size": np.where(rng.random(n) < 0.3 + 0.4 * z, "big", "small"),
        "x": rng.normal(2.0 * z, 1.0),
        "k": rng.poisson(2 + 3 * z),
        "f": (rng.random(n) < 0.2 + 0.6 * z).astype(np.int64),
    })
    path = tmp_path_factory.mktemp("families") / "t.parquet"
    df.to_parquet(path)
    return df, str(path)


def test_fit_a_mixed_model_equals_the_python_fit(table, tmp_path, capsys):
    df, path = table
    model = str(tmp_path / "m.bigem")
    assert main(["fit", path, "-k", "2", "--column-families", "k=poisson,f=bernoulli", "--dtype", "float64",
                 "-o", model, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "MixedMixture" and out["covariance_type"] == "diag"
    est = bigem.MixedMixture(2, families={"k": "poisson", "f": "bernoulli"}, dtype="float64", random_state=0).fit(df)
    back = bigem.load(model)
    assert back.families_ == ["categorical", "categorical", "gaussian", "poisson", "bernoulli"]
    np.testing.assert_allclose(back.weights_, est.weights_, rtol=1e-10)
    assert out["mean_log_likelihood"] == pytest.approx(est.score(df), rel=1e-10)
    labels = tmp_path / "labels.csv"
    assert main(["predict", model, path, "-o", str(labels)]) == 0
    np.testing.assert_array_equal(pd.read_csv(labels)["label"], est.predict(df))
    assert main(["info", model]) == 0
    assert "families: colour=categorical, size=categorical, x=gaussian, k=poisson, f=bernoulli" in capsys.readouterr().out


def test_a_mixed_model_fits_empty_cells_with_missing_fiml_as_the_python_fit(table, tmp_path, capsys):
    df, _ = table
    holes = df.copy()
    rng = np.random.default_rng(1)
    holes["colour"] = holes["colour"].where(rng.random(len(df)) > 0.1, None)
    holes["k"] = holes["k"].astype(float).where(rng.random(len(df)) > 0.1)
    path = tmp_path / "holes.parquet"
    holes.to_parquet(path)
    model = str(tmp_path / "m.bigem")
    assert main(["fit", str(path), "-k", "2", "--column-families", "k=poisson,f=bernoulli", "--dtype", "float64",
                 "--missing", "fiml", "-o", model, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    est = bigem.MixedMixture(2, families={"k": "poisson", "f": "bernoulli"}, dtype="float64", random_state=0,
                             missing_values="fiml").fit(holes)
    assert out["mean_log_likelihood"] == pytest.approx(est.score(holes), rel=1e-10)
    labels = tmp_path / "labels.csv"
    assert main(["predict", model, str(path), "-o", str(labels)]) == 0
    np.testing.assert_array_equal(pd.read_csv(labels)["label"], est.predict(holes))


def test_info_of_a_mixed_model_without_categorical_columns(table, tmp_path, capsys):
    """The README's example: counts, flags and numbers, no categorical column (its
    probabilities_ is an empty list, which info concatenated and failed on)."""
    df, path = table
    model = str(tmp_path / "m.bigem")
    assert main(["fit", path, "-k", "2", "--columns", "x,k,f", "--column-families", "k=poisson,f=bernoulli",
                 "-o", model]) == 0
    capsys.readouterr()
    assert main(["info", model]) == 0
    out = capsys.readouterr().out
    assert "families: x=gaussian, k=poisson, f=bernoulli" in out
    est = bigem.load(model)
    assert est.probabilities_ == [] and f"lambdas [{est.lambdas_[0][0]:.4g}]" in out


def test_latent_class_fit_info_sample_and_select(table, tmp_path, capsys):
    df, path = table
    model = str(tmp_path / "c.bigem")
    assert main(["fit", path, "-k", "2", "--family", "categorical", "--columns", "colour,size", "--alpha", "0",
                 "-o", model]) == 0
    est = bigem.load(model)
    assert isinstance(est, bigem.CategoricalMixture) and est.alpha == 0.0
    capsys.readouterr()
    assert main(["info", model]) == 0
    assert "categories of colour: blue, green, red" in capsys.readouterr().out
    drawn = tmp_path / "s.csv"
    assert main(["sample", model, "-n", "50", "-o", str(drawn), "--labels"]) == 0
    sample = pd.read_csv(drawn)
    assert set(sample["colour"]) <= {"red", "green", "blue"} and list(sample.columns) == ["colour", "size", "component"]
    best = str(tmp_path / "best.bigem")
    capsys.readouterr()
    assert main(["select", path, "-k", "1..3", "--family", "poisson", "--columns", "k", "-o", best, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["covariance_type"] for r in result["table"]] == [None] * 3
    assert isinstance(bigem.load(best), bigem.PoissonMixture)


@pytest.mark.parametrize("family, column", [("poisson", "k"), ("bernoulli", "f")])
def test_binary_and_count_draws_are_integers_in_python_and_in_every_file(table, tmp_path, family, column):
    """As StepMix's draws: a Parquet file of counts holds int64 columns, not doubles."""
    df, path = table
    model = str(tmp_path / "m.bigem")
    assert main(["fit", path, "-k", "2", "--family", family, "--columns", column, "-o", model]) == 0
    X, _ = bigem.load(model).sample(40)
    assert X.dtype == np.int64 and set(np.unique(X)) <= set(df[column])
    for ext in ("parquet", "csv", "npy"):
        out = tmp_path / f"s.{ext}"
        assert main(["sample", model, "-n", "40", "-o", str(out)]) == 0
        drawn = np.load(out) if ext == "npy" else pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
        dtypes = [drawn.dtype] if ext == "npy" else list(drawn.dtypes)
        assert dtypes == [np.int64]


def test_a_mixed_models_draws_keep_integer_columns_integers_in_parquet(table, tmp_path):
    """A mixed model draws text, counts and numbers (an object array): the counts and the
    integer categories were written as doubles, the Python draw's are ints."""
    df, path = table
    model = str(tmp_path / "m.bigem")
    assert main(["fit", path, "-k", "2", "--family", "mixed", "--columns", "colour,k,x,f",
                 "--column-families", "k=poisson,f=categorical", "-o", model]) == 0
    out = tmp_path / "s.parquet"
    assert main(["sample", model, "-n", "40", "-o", str(out)]) == 0
    drawn = pd.read_parquet(out)
    assert drawn["k"].dtype == np.int64 and drawn["f"].dtype == np.int64 and drawn["x"].dtype == np.float64
    assert set(drawn["f"]) <= {0, 1} and set(drawn["colour"]) <= {"red", "green", "blue"}


def test_info_of_a_semi_supervised_gaussian_mixture_names_its_classes(table, tmp_path, capsys):
    df, _ = table
    y = np.where(np.arange(len(df)) % 10 == 0, np.where(df["x"] < 1, "low", "high"), None).astype(object)
    model = str(tmp_path / "g.bigem")
    bigem.GaussianMixture(2, random_state=0, unlabeled_weight=1.0).fit(df[["x"]], y).save(model)
    capsys.readouterr()
    assert main(["info", model]) == 0
    assert "classes: high, low" in capsys.readouterr().out
    assert main(["info", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == ["high", "low"]


@pytest.mark.parametrize("flags, message", [
    (["--family", "bernoulli", "--covariance", "full"], "the bernoulli family has no covariance type"),
    (["--family", "mixed", "--covariance", "tied"], "the mixed family takes diag or full"),
    (["--alpha", "2"], "a Gaussian mixture has none"),
    (["--alpha", "1"], "a Gaussian mixture has none"),  # even at the other families' default
    (["--family", "poisson", "--column-families", "k=poisson"], "use --family mixed"),
    (["--family", "multinomial", "--missing", "fiml"], "the multinomial family reads counts"),
    (["--family", "categorical", "--vocabulary-size", "9"], "--vocabulary-size applies to --family multinomial"),
    (["--family", "multinomial", "--covariance", "diag"], "the multinomial family has no covariance type"),
    # it was dropped without a word (its default was set for every family)
    (["--family", "categorical", "--reg-covar", "0.1"], "the categorical family does not have; drop it (its "
                                                          "regulariser is --alpha"),
    (["--family", "poisson", "--reg-covar", "1e-6"], "--reg-covar is added to the variances of Gaussian columns"),
])
def test_flags_of_another_family_are_refused(table, tmp_path, capsys, flags, message):
    _, path = table
    model = tmp_path / "x.bigem"
    assert main(["fit", path, "-k", "2", "--columns", "k", *flags, "-o", str(model)]) != 0
    assert message in capsys.readouterr().err
    assert not model.exists()


def test_a_column_named_twice_by_categories_is_refused(table, tmp_path, capsys):
    """The last list was kept without a word."""
    _, path = table
    model = tmp_path / "m.bigem"
    rc = main(["fit", path, "-k", "2", "--family", "categorical", "--columns", "colour", "--categories",
               "colour=red,green,blue", "--categories", "colour=red,green,blue,pink", "-o", str(model)])
    err = capsys.readouterr().err
    assert rc == 2 and "--categories names colour more than once; give each column's whole list in one flag" in err
    assert not model.exists()


def test_a_bad_column_family_is_refused(table, tmp_path, capsys):
    _, path = table
    assert main(["fit", path, "-k", "2", "--column-families", "k=counts", "-o", str(tmp_path / "x.bigem")]) != 0
    assert "FAMILY one of gaussian, categorical, bernoulli, poisson" in capsys.readouterr().err


def test_plot_profile_of_a_model_file(table, tmp_path, capsys):
    _, path = table
    model, picture = str(tmp_path / "c.bigem"), tmp_path / "profile.png"
    assert main(["fit", path, "-k", "2", "--family", "categorical", "--columns", "colour,size", "-o", model]) == 0
    assert main(["plot", model, "--kind", "profile", "-o", str(picture)]) == 0
    assert picture.stat().st_size > 10_000
    assert main(["plot", model, path, "-o", str(tmp_path / "fit.png")]) != 0
    assert "use --kind profile" in capsys.readouterr().err


def test_impute_fills_a_mixed_models_empty_cells_with_their_own_values(table, tmp_path, capsys):
    df, _ = table
    holes = df.copy()
    rng = np.random.default_rng(2)
    holes["colour"] = holes["colour"].where(rng.random(len(df)) > 0.1, None)
    holes["x"] = holes["x"].where(rng.random(len(df)) > 0.1)
    path = tmp_path / "holes.parquet"
    holes.to_parquet(path)
    model = str(tmp_path / "m.bigem")
    assert main(["fit", str(path), "-k", "2", "--column-families", "k=poisson,f=bernoulli", "--missing", "fiml",
                 "-o", model]) == 0
    done = tmp_path / "done.parquet"
    capsys.readouterr()
    assert main(["impute", model, str(path), "-o", str(done)]) == 0
    # (it said "conditional means" alone, though a category column takes a category)
    assert "replaced by conditional means (in a category column, its most probable category)" in \
        capsys.readouterr().out
    filled = pd.read_parquet(done)
    expected = bigem.load(model).impute(holes)
    assert filled["colour"].notna().all() and set(filled["colour"]) <= {"red", "green", "blue"}
    np.testing.assert_array_equal(filled["colour"].to_numpy(), expected[:, 0])
    np.testing.assert_allclose(filled["x"].to_numpy(), expected[:, 2].astype(float), rtol=1e-12)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """Answers as text (first), 0/1 integers, true/false values and counts, as CSV and Parquet."""
    rng = np.random.default_rng(3)
    n = 600
    z = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "q1": np.where(rng.random(n) < 0.2 + 0.6 * z, "yes", "no"),
        "q2": np.array(["a", "b", "c"])[rng.choice(3, n) * (1 - z) + 2 * z * (rng.random(n) < 0.8)],
        "b1": (rng.random(n) < 0.3 + 0.4 * z).astype(np.int64),
        "b2": rng.random(n) < 0.7 - 0.4 * z,
        "cnt": rng.poisson(1 + 2 * z),
    })
    d = tmp_path_factory.mktemp("survey")
    df.to_csv(d / "s.csv", index=False)
    df.to_parquet(d / "s.parquet")
    return d


@pytest.mark.parametrize("family, columns", [("categorical", "q1,q2"), ("bernoulli", "b1,b2"),
                                             ("categorical", "b2,cnt,q1")])
def test_csv_reads_text_and_true_false_columns_as_parquet_does(survey, tmp_path, capsys, family, columns):
    """Whichever column comes first (a CSV's rows were counted through it as numbers), and
    true/false text (read as numbers, it was refused): a CSV fits as its Parquet twin, and
    a model fitted on the Parquet file predicts, scores and imputes the CSV as the Parquet."""
    fits = {}
    for ext in ("csv", "parquet"):
        fits[ext] = tmp_path / f"{ext}.bigem"
        rc = main([str(a) for a in ("fit", survey / f"s.{ext}", "-k", "2", "--family", family, "--columns", columns,
                                    "--dtype", "float64", "-o", fits[ext])])
        assert rc == 0, capsys.readouterr().err
    np.testing.assert_allclose(bigem.load(fits["csv"]).weights_, bigem.load(fits["parquet"]).weights_, rtol=1e-10)
    outputs = {}
    for ext in ("csv", "parquet"):
        data = str(survey / f"s.{ext}")
        assert main(["predict", str(fits["parquet"]), data, "--proba", "-o", str(tmp_path / f"p_{ext}.csv")]) == 0
        assert main(["impute", str(fits["parquet"]), data, "-o", str(tmp_path / f"i_{ext}.csv")]) == 0
        capsys.readouterr()
        assert main(["score", str(fits["parquet"]), data, "--json"]) == 0
        outputs[ext] = json.loads(capsys.readouterr().out)
    assert outputs["csv"] == outputs["parquet"]
    for name in ("p", "i"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / f"{name}_csv.csv"), pd.read_csv(tmp_path / f"{name}_parquet.csv"))


def test_a_declared_categorical_csv_column_of_numbers_then_words_is_read_as_text(tmp_path, capsys):
    """pyarrow types a CSV column from the file's first block (1 MB): g's numbers there,
    its words far below. Declared categorical, g is text throughout: the CSV fits as its
    Parquet twin of strings, and the model predicts the CSV."""
    rng = np.random.default_rng(5)
    n = 30_000
    z = rng.integers(0, 2, n)
    g = rng.choice(3, n) + 3 * z
    df = pd.DataFrame({"x": rng.normal(3.0 * z, 1.0), "g": g.astype(str), "note": "-" * 40})
    df.loc[28_000:, "g"] = np.where(z[28_000:] == 1, "other", "none")
    df.to_csv(tmp_path / "late.csv", index=False)
    df.to_parquet(tmp_path / "late.parquet")
    models = {}
    for ext in ("csv", "parquet"):
        models[ext] = tmp_path / f"{ext}.bigem"
        rc = main([str(a) for a in ("fit", tmp_path / f"late.{ext}", "-k", "2", "--columns", "x,g", "--column-families",
                                    "g=categorical", "--dtype", "float64", "-o", models[ext])])
        assert rc == 0, capsys.readouterr().err
    csv_fit, parquet_fit = bigem.load(models["csv"]), bigem.load(models["parquet"])
    assert list(csv_fit.categories_[0]) == sorted(["0", "1", "2", "3", "4", "5", "none", "other"])
    np.testing.assert_array_equal(csv_fit.categories_[0], parquet_fit.categories_[0])
    np.testing.assert_allclose(csv_fit.weights_, parquet_fit.weights_, rtol=1e-10)
    assert main(["predict", str(models["parquet"]), str(tmp_path / "late.csv"), "-o", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), parquet_fit.predict(df[["x", "g"]]))
