"""The command line on HMM model files (issue #15): info, score, predict and sample
used to fail on every one with a raw AttributeError (no n_features_in_)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bigem import GMMHMM, CategoricalHMM, GaussianHMM, GaussianMixture, MultinomialHMM, PoissonHMM
from bigem._core.errors import DataError
from bigem.cli import main

LENGTHS = np.array([100, 120, 80])


def rows(kind) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind is CategoricalHMM:
        return rng.integers(0, 5, size=(300, 1))
    if kind is PoissonHMM:
        return rng.poisson(3.0, size=(300, 2))
    if kind is MultinomialHMM:
        return rng.multinomial(6, [0.2, 0.3, 0.5], size=300)
    return rng.normal(size=(300, 2))


KINDS = {GaussianHMM: dict(n_components=3), GMMHMM: dict(n_components=2, n_mix=2), CategoricalHMM: dict(n_components=2),
         PoissonHMM: dict(n_components=2), MultinomialHMM: dict(n_components=2, n_trials=6)}


@pytest.fixture(params=list(KINDS), ids=lambda k: k.__name__)
def model(request, tmp_path):
    kind = request.param
    X = rows(kind)
    est = kind(**KINDS[kind], random_state=0, n_iter=5).fit(X, LENGTHS)
    path = tmp_path / "hmm.bigem"
    est.save(path)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "lengths.npy", LENGTHS)
    ids = np.repeat(["s1", "s2", "s3"], LENGTHS)
    pd.DataFrame({"session": ids, **{f"f{j}": X[:, j] for j in range(X.shape[1])}}).to_csv(tmp_path / "x.csv", index=False)
    return est, X, path, tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_info_describes_the_hmm(model, capsys):
    est, _, path, _ = model
    rc, out, err = run(capsys, "info", path)
    assert rc == 0, err
    what = {CategoricalHMM: "5 symbols", MultinomialHMM: "counts of 3 categories"}.get(type(est), "2 features")
    assert f"{est.n_components} states" in out and what in out and out.count("  state ") == est.n_components
    rc, out, err = run(capsys, "info", path, "--json")
    info = json.loads(out)
    assert info["kind"] == type(est).__name__ and info["n_components"] == est.n_components
    np.testing.assert_allclose(info["transmat"], est.transmat_, rtol=1e-15)
    assert info["n_iter"] == est.monitor_.iter and info["log_likelihood"] == est.monitor_.history[-1]
    assert info["feature_names"] is None


def test_info_names_the_features_of_an_hmm_fitted_from_a_table(tmp_path, capsys):
    """As every mixture's info does (the HMMs' lacked them)."""
    X = rows(GaussianHMM)
    frame = pd.DataFrame({"speed": X[:, 0], "heading": X[:, 1]})
    path = tmp_path / "named.bigem"
    GaussianHMM(2, n_iter=3, random_state=0).fit(frame, LENGTHS).save(path)
    rc, out, err = run(capsys, "info", path)
    assert rc == 0 and "2 features (speed, heading)" in out, err
    rc, out, err = run(capsys, "info", path, "--json")
    assert json.loads(out)["feature_names"] == ["speed", "heading"]


@pytest.mark.parametrize("sequences", ["lengths", "sequence-column", "one"])
def test_score_and_predict_read_the_sequences(model, capsys, sequences):
    est, X, path, d = model
    data, flags, lengths = {
        "lengths": (d / "x.npy", ["--lengths", d / "lengths.npy"], LENGTHS),
        "sequence-column": (d / "x.csv", ["--sequence-column", "session"], LENGTHS),
        "one": (d / "x.npy", [], None),
    }[sequences]
    rc, out, err = run(capsys, "score", path, data, *flags, "--json")
    assert rc == 0, err
    score = json.loads(out)
    assert score["log_likelihood"] == pytest.approx(est.score(X, lengths), rel=1e-12)
    assert score["n_rows"] == 300 and score["n_sequences"] == (3 if lengths is not None else 1)
    rc, out, err = run(capsys, "predict", path, data, *flags, "-o", d / "states.npy")
    assert rc == 0 and "wrote states of 300 rows" in out, err
    np.testing.assert_array_equal(np.load(d / "states.npy"), est.predict(X, lengths))
    rc, out, err = run(capsys, "predict", path, data, *flags, "--proba", "-o", d / "proba.parquet")
    assert rc == 0, err
    proba = pd.read_parquet(d / "proba.parquet")
    assert list(proba.columns) == [f"proba_{k}" for k in range(est.n_components)]
    np.testing.assert_allclose(proba.to_numpy(), est.predict_proba(X, lengths), rtol=1e-12)


def test_sample_writes_one_sequence(model, capsys):
    est, X, path, d = model
    rc, out, err = run(capsys, "sample", path, "-n", 50, "--seed", 3, "--labels", "-o", d / "s.csv")
    assert rc == 0, err
    drawn = pd.read_csv(d / "s.csv")
    expected, states = est.sample(50, random_state=3)
    assert list(drawn.columns) == [f"x{j}" for j in range(X.shape[1])] + ["state"]
    np.testing.assert_allclose(drawn.iloc[:, :-1].to_numpy(), expected, rtol=1e-15)
    np.testing.assert_array_equal(drawn["state"], states)


@pytest.mark.parametrize(
    "argv, message",
    [
        (("predict", "{m}", "{d}/x.npy", "--score", "-o", "{d}/s.npy"),
         "bigem predict: error: --score writes each row's log-density, which an HMM's rows do not have on their own"),
        (("plot", "{m}", "{d}/x.npy", "-o", "{d}/p.png"), "bigem plot: error: {m} holds a "),
        (("score", "{m}", "{d}/x.npy", "--lengths", "{d}/square.npy"),
         "bigem score: error: --lengths must be a 1-D array"),
        (("score", "{m}", "{d}/x.npy", "--sequence-column", "session"), "has no column names, so it has no sequence id"),
        (("score", "{m}", "{d}/x.csv", "--sequence-column", "nope"), "no column 'nope'"),
    ],
    ids=["score-per-row", "plot", "bad-lengths", "npy-ids", "missing-ids"],
)
def test_what_an_hmm_cannot_do_is_refused_in_one_line(model, capsys, argv, message):
    _, _, path, d = model
    np.save(d / "square.npy", np.full((2, 2), 50))  # no list of lengths (a row or a column of them is one)
    rc, out, err = run(capsys, *(a.format(m=path, d=d) for a in argv))
    assert rc == 2 and out == "" and err.count("\n") == 1, err
    assert message.format(m=path) in err


def test_sequence_options_are_refused_for_a_mixture(tmp_path, capsys):
    X = rows(GaussianHMM)
    GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "g.bigem")
    np.save(tmp_path / "x.npy", X)
    rc, out, err = run(capsys, "score", tmp_path / "g.bigem", tmp_path / "x.npy", "--lengths", tmp_path / "x.npy")
    assert rc == 2 and "--lengths applies to HMM models, but" in err and "holds a GaussianMixture; drop it" in err


def test_an_hmm_fitted_on_named_columns_reads_them_again_by_name(model, capsys):
    """An HMM fitted on some columns of a file forgot which: scoring or predicting on the
    same file (an id column beside them) failed ("has 4 columns but the model was fitted
    on 2") unless the columns were given again. Now feature_names_in_ keeps them, as
    the mixtures do, in the model file too."""
    est, X, _, tmp = model
    cols = [f"f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame({"event": np.arange(len(X))[::-1], "session": np.repeat(["s1", "s2", "s3"], LENGTHS),
                          **dict(zip(cols, X.T))})
    frame.to_parquet(tmp / "named.parquet")
    kind = type(est)
    named = kind(**KINDS[kind], random_state=0, n_iter=5).fit(tmp / "named.parquet", columns=cols,
                                                               sequence_column="session")
    assert list(named.feature_names_in_) == cols
    plain = kind(**KINDS[kind], random_state=0, n_iter=5).fit(X, LENGTHS)
    assert not hasattr(plain, "feature_names_in_")  # an array names no columns (hmmlearn's fit)
    want = plain.predict(X, LENGTHS)
    np.testing.assert_array_equal(named.predict(tmp / "named.parquet", sequence_column="session"), want)
    np.testing.assert_array_equal(named.predict(frame[cols[::-1] + ["session"]], sequence_column="session"), want)
    np.testing.assert_array_equal(named.predict(X, LENGTHS), want)  # an array: its columns in order
    if len(cols) > 1:  # columns= naming the fitted ones in another order: read by position, so refused
        for given in (tmp / "named.parquet", frame):  # (it was read silently, each column as another feature)
            with pytest.raises(DataError, match="name the model's features at other positions"):
                named.predict(given, columns=cols[::-1], sequence_column="session")
    assert named.score(frame, sequence_column="session") == pytest.approx(plain.score(X, LENGTHS), rel=1e-6)
    named.save(tmp / "named.bigem")
    rc, out, err = run(capsys, "score", tmp / "named.bigem", tmp / "named.parquet", "--sequence-column", "session")
    assert rc == 0, err
    rc, _, err = run(capsys, "predict", tmp / "named.bigem", tmp / "named.parquet", "--sequence-column", "session",
                     "-o", tmp / "states.csv", "--id-column", "event")
    assert rc == 0, err
    written = pd.read_csv(tmp / "states.csv")
    np.testing.assert_array_equal(written["event"], frame["event"])
    np.testing.assert_array_equal(written["state"], want)
    from bigem import load

    assert list(load(tmp / "named.bigem").feature_names_in_) == cols
