"""The command line as a newcomer meets it (issue #21): --version, --debug anywhere,
predict --id-column, the library's messages in flags, and which log-likelihood is which."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main
from bigem.cli._flags import in_flags
from tests.conftest import make_blobs


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    d = tmp_path_factory.mktemp("events")
    X, _, _ = make_blobs(0, n_per=150, k=2, d=2)
    frame = pd.DataFrame({"event_id": np.arange(5000, 5000 + len(X)), "x": X[:, 0], "y": X[:, 1]})
    frame.to_parquet(d / "events.parquet")
    return d, frame


def test_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out == f"bigem {bigem.__version__}\n"


def test_debug_works_after_the_command_too(tmp_path, capsys):
    missing = tmp_path / "missing.bigem"
    for argv in (("--debug", "info", missing), ("info", missing, "--debug")):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("bigem info: error:")
    rc, _, err = run(capsys, "info", missing)
    assert rc == 2 and "Traceback" not in err


def test_predict_with_an_id_column(events, tmp_path, capsys):
    d, frame = events
    model = tmp_path / "m.bigem"
    assert run(capsys, "fit", d / "events.parquet", "-k", "2", "--columns", "x,y", "-o", model)[0] == 0
    for out in (tmp_path / "labels.csv", tmp_path / "labels.parquet"):
        rc, text, err = run(capsys, "predict", model, d / "events.parquet", "--id-column", "event_id", "-o", out)
        assert rc == 0, err
        got = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
        assert list(got.columns) == ["event_id", "label"]
        np.testing.assert_array_equal(got["event_id"], frame["event_id"])
        np.testing.assert_array_equal(got["label"], bigem.load(model).predict(frame[["x", "y"]]))
    rc, _, err = run(capsys, "predict", model, d / "events.parquet", "--id-column", "event_id", "--proba",
                     "-o", tmp_path / "p.csv")
    assert rc == 0 and list(pd.read_csv(tmp_path / "p.csv").columns) == ["event_id", "proba_0", "proba_1"]
    rc, _, err = run(capsys, "predict", model, d / "events.parquet", "--id-column", "event_id", "-o", tmp_path / "l.npy")
    assert rc == 2 and "--id-column adds a column, and a .npy file holds one array" in err
    assert not (tmp_path / "l.npy").exists()


def test_hmm_predict_with_an_id_column(events, tmp_path, capsys):
    d, frame = events
    hmm = bigem.GaussianHMM(2, n_iter=5, random_state=0).fit(frame[["x", "y"]].to_numpy())
    hmm.save(tmp_path / "hmm.bigem")
    rc, _, err = run(capsys, "predict", tmp_path / "hmm.bigem", d / "events.parquet", "--columns", "x,y",
                     "--id-column", "event_id", "-o", tmp_path / "states.csv")
    assert rc == 0, err
    got = pd.read_csv(tmp_path / "states.csv")
    assert list(got.columns) == ["event_id", "state"]
    np.testing.assert_array_equal(got["event_id"], frame["event_id"])
    np.testing.assert_array_equal(got["state"], hmm.predict(frame[["x", "y"]].to_numpy()))


@pytest.fixture(scope="module")
def clashing(events, tmp_path_factory):
    """A CSV whose id-like columns are named as bigem's outputs, and a mixture and an HMM of x, y."""
    d, frame = events
    here = tmp_path_factory.mktemp("clashing")
    ids = np.arange(len(frame))
    table = frame[["x", "y"]].assign(label=ids, proba_0=ids, log_density=ids, state=ids)
    table.to_csv(here / "lab.csv", index=False)
    assert main(["fit", str(here / "lab.csv"), "-k", "2", "--columns", "x,y", "-o", str(here / "m.bigem")]) == 0
    bigem.GaussianHMM(2, n_iter=3, random_state=0).fit(frame[["x", "y"]].to_numpy()).save(here / "hmm.bigem")
    return here


@pytest.mark.parametrize("model, id_column, flags", [
    ("m.bigem", "label", ()),
    ("m.bigem", "proba_0", ("--proba",)),
    ("m.bigem", "log_density", ("--score",)),
    ("hmm.bigem", "state", ("--columns", "x,y")),
    ("hmm.bigem", "proba_0", ("--columns", "x,y", "--proba")),
])
def test_an_id_column_named_as_an_output_column_is_refused(clashing, tmp_path, capsys, model, id_column, flags):
    """The output would hold the name once: the ids would be lost without a word."""
    out = tmp_path / "p.csv"
    rc, _, err = run(capsys, "predict", clashing / model, clashing / "lab.csv", "--id-column", id_column, *flags,
                     "-o", out)
    assert rc == 2 and err.startswith("bigem predict: error: ") and err.count("\n") == 1
    assert (f"--id-column {id_column}: {out} gets a column {id_column!r} of its own (the predictions), so the ids "
            "would be lost; pass an id column of another name (rename it in DATA), or drop --id-column") in err
    assert not out.exists()


def test_an_id_column_named_as_another_output_is_copied(clashing, tmp_path, capsys):
    """label, with --proba (a model of 2 components writes proba_0 and proba_1): no clash."""
    out = tmp_path / "p.csv"
    rc, _, err = run(capsys, "predict", clashing / "m.bigem", clashing / "lab.csv", "--id-column", "label", "--proba",
                     "-o", out)
    assert rc == 0, err
    got = pd.read_csv(out)
    assert list(got.columns) == ["label", "proba_0", "proba_1"]
    np.testing.assert_array_equal(got["label"], np.arange(len(got)))


def test_predict_copies_an_id_column_that_is_also_a_feature_from_csv(clashing, tmp_path, capsys):
    out = tmp_path / "p.csv"
    rc, _, err = run(capsys, "predict", clashing / "m.bigem", clashing / "lab.csv", "--id-column", "x", "-o", out)
    assert rc == 0, err
    got, data = pd.read_csv(out), pd.read_csv(clashing / "lab.csv")
    assert list(got.columns) == ["x", "label"]
    np.testing.assert_array_equal(got["x"], data["x"])
    np.testing.assert_array_equal(got["label"], bigem.load(clashing / "m.bigem").predict(data[["x", "y"]]))


def test_impute_refuses_an_id_column_that_it_writes_as_a_feature(clashing, tmp_path, capsys):
    out = tmp_path / "i.csv"
    rc, _, err = run(capsys, "impute", clashing / "m.bigem", clashing / "lab.csv", "--id-column", "x", "-o", out)
    assert rc == 2 and "--id-column x: " in err and "gets a column 'x' of its own (one of the model's columns" in err
    assert not out.exists()


def test_a_multinomial_model_refuses_an_id_column_it_would_drop(tmp_path, capsys):
    rng = np.random.default_rng(0)
    docs = pd.DataFrame(rng.poisson(2, (100, 4)), columns=["w0", "w1", "w2", "w3"]).assign(doc=np.arange(100))
    docs.to_parquet(tmp_path / "docs.parquet")
    bigem.MultinomialMixture(2, random_state=0).fit(docs[["w0", "w1", "w2", "w3"]]).save(tmp_path / "m.bigem")
    rc, _, err = run(capsys, "predict", tmp_path / "m.bigem", tmp_path / "docs.parquet", "--columns", "w0,w1,w2,w3",
                     "--id-column", "doc", "-o", tmp_path / "p.csv")
    assert rc == 2 and "holds a MultinomialMixture, whose predictions come without ids; drop it" in err
    assert not (tmp_path / "p.csv").exists()


def test_proba_and_score_say_they_exclude_each_other(capsys):
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(not with --score: one output per run)" in text and "(mixtures; not with --proba)" in text
    assert "--id-column NAME" in text


def test_messages_name_flags_not_keyword_arguments(events, tmp_path, capsys):
    """The library says columns= ; the command line says --columns (errors and warnings)."""
    d, frame = events
    rc, _, err = run(capsys, "fit", d / "events.parquet", "-k", "2", "-o", tmp_path / "m.bigem")
    assert rc == 0
    assert "bigem fit: warning: " in err and "column 'event_id' looks like a row identifier" in err
    assert "pass --columns naming the features" in err and "--id-column" in err and "columns=" not in err
    rc, _, err = run(capsys, "fit", d / "events.parquet", "-k", "2", "--columns", "x,nope", "-o", tmp_path / "n.bigem")
    assert rc == 2 and "the --columns you passed" in err and "columns=" not in err
    # a missing id or weight column names its own flag (it said --columns)
    rc, _, err = run(capsys, "fit", d / "events.parquet", "-k", "2", "--columns", "x,y", "--sample-weight", "nope",
                     "-o", tmp_path / "n.bigem")
    assert rc == 2 and "no column(s) ['nope']" in err and "the --sample-weight you passed" in err
    assert not (tmp_path / "n.bigem").exists()
    rc, _, _ = run(capsys, "fit", d / "events.parquet", "-k", "2", "--columns", "x,y", "-o", tmp_path / "m.bigem")
    rc, _, err = run(capsys, "predict", tmp_path / "m.bigem", d / "events.parquet", "-o", tmp_path / "p.csv",
                     "--id-column", "nope")
    assert rc == 2 and "the --id-column you passed" in err and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("text, flags", [
    ("Check the columns= you passed", "Check the --columns you passed"),
    ("columns=[] selects no features", "--columns [] selects no features"),
    ("choose numeric columns with columns=[...]", "choose numeric columns with --columns"),
    ("sample_weight='w': X has no such column", "--sample-weight 'w': X has no such column"),
    ("delimiter= and header= apply to CSV files", "--delimiter and --no-header apply to CSV files"),
    ("with id_column=)", "with --id-column)"),
    ("n_components = 3", "n_components = 3"),
    ("stopping='aitken' does not apply with accelerate='squarem'", "--stopping aitken does not apply with --accelerate"),
    ("covariance_type='E' needs one feature", "--covariance E needs one feature"),
    ("pass dtype='float64'", "pass --dtype float64"),
    ("families={'g': 'categorical', 'n': 'poisson'} names", "--column-families g=categorical,n=poisson names"),
    ("missing_values='fiml' with init_params='hc'", "--missing fiml with --init hc"),
    ("n_components=3 exceeds", "-k 3 exceeds"),
    # a list as a shell user types it (it was Python's ['x', 'y'], which the shell breaks up)
    ("the model was fitted on ['x', 'y']; pass columns=['x', 'y'] (or no columns",
     "the model was fitted on ['x', 'y']; pass --columns x,y (or no columns"),
    ("requested but CUDA is not available here; use device='cpu'", "requested but CUDA is not available here; use "
                                                                    "--device cpu"),
])
def test_keyword_arguments_in_flags(text, flags):
    assert in_flags(text) == flags


def test_the_two_mean_log_likelihoods_are_labelled(events, tmp_path, capsys):
    """fit and score report the fitted model's mean log-likelihood; info, the lower bound
    (the parameters entering the last iteration). Each says which it is."""
    d, frame = events
    model = tmp_path / "m.bigem"
    rc, out, _ = run(capsys, "fit", d / "events.parquet", "-k", "2", "--columns", "x,y", "--dtype", "float64", "-o",
                     model)
    assert rc == 0 and "(of the fitted model, as bigem score reports)" in out
    fit_value = float(out.split("mean log-likelihood ")[1].split()[0])
    rc, out, _ = run(capsys, "score", model, d / "events.parquet", "--json")
    score = json.loads(out)["mean_log_likelihood"]
    est = bigem.load(model)
    assert fit_value == pytest.approx(score, abs=1e-6) and score == pytest.approx(est.score(frame[["x", "y"]]))
    rc, out, _ = run(capsys, "info", model)
    assert f"lower bound {est.lower_bound_:.6f} (the mean log-likelihood entering the last iteration" in out
    assert est.lower_bound_ <= score  # EM: the last M-step raises it
