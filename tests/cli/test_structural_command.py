"""bigem structural: a saved mixture's classes related to columns of a data file, the
same estimates as StructuralModel in Python, a model file, info, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    d = tmp_path_factory.mktemp("survey")
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 3000)
    items = np.array([[.85, .85, .85, .2, .2, .2], [.2, .2, .85, .85, .85, .2], [.2, .2, .2, .2, .85, .85]])
    frame = pd.DataFrame((rng.random((3000, 6)) < items[z]).astype(float), columns=[f"q{j}" for j in range(6)])
    frame["income"] = rng.normal(np.array([0.0, 1.0, 2.0])[z], 1.0)
    frame["age"] = rng.normal(size=3000) + 0.5 * z
    frame.loc[::10, "income"] = np.nan
    frame.to_parquet(d / "survey.parquet")
    model = bigem.BernoulliMixture(3, n_init=3, random_state=0, dtype="float64")
    model.fit(frame[[f"q{j}" for j in range(6)]]).save(d / "lca.bigem")
    return d, frame


def test_the_command_gives_the_python_estimates_and_a_model_file(survey, capsys):
    d, frame = survey
    out_path = d / "structural.bigem"
    rc, out, err = run(capsys, "structural", d / "lca.bigem", d / "survey.parquet", "income,age",
                       "--family", "gaussian,covariate", "--steps", 3, "--correction", "BCH", "-o", out_path, "--json")
    assert rc == 0, err
    payload = json.loads(out)
    ref = bigem.StructuralModel(bigem.load(d / "lca.bigem"), ["gaussian", "covariate"], n_steps=3,
                                correction="BCH").fit(frame, ["income", "age"])
    rows = {(r["column"], r["parameter"]): r["values"] for r in payload["parameters"]}
    np.testing.assert_allclose(rows[("income", "mean")], ref.means_[:, 0], atol=1e-12)
    np.testing.assert_allclose(rows[("age", "log odds vs class 0")], ref.coef_[:, 0] - ref.coef_[0, 0], atol=1e-12)
    back = bigem.load(out_path)
    np.testing.assert_allclose(back.means_, ref.means_, atol=1e-12)
    rc, out, _ = run(capsys, "info", out_path)
    assert rc == 0 and "income (gaussian), age (covariate)" in out and "three steps, BCH, modal" in out
    # the commands of a mixture or an HMM refuse it in one line (it crashed them with an AttributeError)
    for argv in (("predict", out_path, d / "survey.parquet", "-o", d / "p.csv"),
                 ("score", out_path, d / "survey.parquet"), ("sample", out_path, "-n", 5, "-o", d / "s.csv"),
                 ("bootstrap", out_path, d / "survey.parquet", "-n", 2), ("plot", out_path, "-o", d / "p.png")):
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and "holds a StructuralModel: on the command line bigem info describes it" in err, (argv, err)
        assert "Traceback" not in err and not (d / "p.csv").exists() and not (d / "s.csv").exists()


def test_bootstrap_standard_errors_on_the_command_line(survey, capsys):
    d, _ = survey
    rc, out, err = run(capsys, "structural", d / "lca.bigem", d / "survey.parquet", "income", "--steps", 2, "-n", 5,
                       "--seed", 1)
    assert rc == 0, err
    assert "standard errors from 5 bootstrap replicates" in out and "income       mean" in out
    assert out.count("(") >= 6  # a standard error beside every class's mean and variance


@pytest.mark.parametrize("argv,message", [
    (["salary"], "no column 'salary'"),
    (["income", "--family", "normal"], "a family is one of"),
    (["income", "-n", "1"], "at least 2 replicates"),
    (["income,age", "--family", "gaussian,covariate,poisson"], "one per column"),
    # three-step flags beside one or two steps were ignored without a word
    (["income", "--steps", "1", "--correction", "BCH", "--assignment", "soft"],
     "--correction and --assignment apply to the three-step estimator, and this is --steps 1; drop them"),
    (["income", "--steps", "2", "--assignment", "modal"], "--assignment applies to the three-step estimator"),
])
def test_errors_are_one_line_and_leave_no_model_file(survey, capsys, tmp_path, argv, message):
    d, _ = survey
    out_path = tmp_path / "never.bigem"
    rc, out, err = run(capsys, "structural", d / "lca.bigem", d / "survey.parquet", *argv, "-o", out_path)
    assert rc != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not out_path.exists()


def test_a_weight_column_weighs_the_rows_of_the_fit_and_the_bootstrap(survey, capsys, tmp_path):
    d, frame = survey
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(frame))
    frame.assign(w=w).to_parquet(tmp_path / "weighted.parquet")
    rc, out, err = run(capsys, "structural", d / "lca.bigem", tmp_path / "weighted.parquet", "income", "--steps", 2,
                       "--sample-weight", "w", "-n", 3, "--json")
    assert rc == 0, err
    payload = json.loads(out)
    ref = bigem.StructuralModel(bigem.load(d / "lca.bigem"), n_steps=2).fit(frame, "income", sample_weight=w)
    unweighted = bigem.StructuralModel(bigem.load(d / "lca.bigem"), n_steps=2).fit(frame, "income")
    rows = {(r["column"], r["parameter"]): r for r in payload["parameters"]}
    np.testing.assert_allclose(rows[("income", "mean")]["values"], ref.means_[:, 0], atol=1e-12)
    assert np.abs(ref.means_ - unweighted.means_).max() > 1e-4  # the weights matter
    assert all(se > 0 for se in rows[("income", "mean")]["se"])
    rc, _, err = run(capsys, "structural", d / "lca.bigem", tmp_path / "weighted.parquet", "income",
                     "--sample-weight", "weight")
    assert rc != 0 and "weight" in err
