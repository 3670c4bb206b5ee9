"""The command line on a MixtureClassifier model file: info describes it (mclust's
summary, or JSON); the other commands refuse it in words, not with a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bigem import MixtureClassifier
from bigem.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("classifier")
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 3]
    y = np.repeat(["no", "yes"], [40, 30])
    clf = MixtureClassifier("EDDA", covariance_types=["EEE", "VVV"]).fit(X, y)
    clf.save(d / "clf.bigem")
    np.save(d / "x.npy", X)
    return clf, d


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_info_prints_mclusts_summary_and_json(model, capsys):
    clf, d = model
    rc, out, err = run(capsys, "info", d / "clf.bigem")
    assert rc == 0, err
    assert "MixtureClassifier, 2 classes, 2 features" in out and f"{clf.log_likelihood_:.4f}" in out
    assert out.count(f" {clf.covariance_types_[0]} ") == 2
    rc, out, err = run(capsys, "info", d / "clf.bigem", "--json")
    info = json.loads(out)
    assert info["classes"] == ["no", "yes"] and info["class_counts"] == [40, 30]
    assert info["covariance_types"] == clf.covariance_types_ and info["bic"] == clf.bic_


@pytest.mark.parametrize("argv", [["predict", "{m}", "{x}", "-o", "{d}/p.csv"], ["score", "{m}", "{x}"],
                                  ["sample", "{m}", "-n", "3", "-o", "{d}/s.csv"]])
def test_other_commands_refuse_it_with_the_way_forward(model, capsys, argv):
    _, d = model
    args = [a.format(m=d / "clf.bigem", x=d / "x.npy", d=d) for a in argv]
    rc, out, err = run(capsys, *args)
    assert rc != 0 and "holds a MixtureClassifier" in err and "bigem.load(path).predict(X)" in err
    assert "Traceback" not in err and not (d / "p.csv").exists() and not (d / "s.csv").exists()
