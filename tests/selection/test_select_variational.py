"""select(..., variational=True): a BayesianGaussianMixture row that answers "how many
components?" beside the BIC table, equal to scikit-learn's variational answer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

import bigem
from bigem.cli import main
from bigem.estimators.selection import COLUMNS, used_components
from tests.selection.test_select import mixture


@pytest.fixture(scope="module")
def three():
    return mixture(0, "full")


def test_variational_row_counts_the_generating_components(three):
    result = bigem.select(three, n_components=[2, 3, 6], covariance_types=("full",), variational=True,
                          random_state=0, max_iter=300)
    *plain, row = result.table
    assert [r["model"] for r in plain] == ["GaussianMixture"] * 3 and row["model"] == "BayesianGaussianMixture"
    assert set(row) == set(COLUMNS)
    bgm = result.estimators_[-1]
    assert isinstance(bgm, bigem.BayesianGaussianMixture) and bgm.n_components == 6 and row["converged"]
    assert row["n_components"] == 3  # the generating K, from 6 offered
    assert all(math.isnan(row[c]) for c in ("log_likelihood", "bic", "aic", "icl"))
    # scikit-learn's variational fit of the same data uses as many (components holding >= 1 row)
    ref = SkBayesianGaussianMixture(n_components=6, max_iter=300, random_state=0).fit(three)
    assert row["n_components"] == int((ref.mean_precision_ - ref.mean_precision_prior_ >= 1).sum())
    # the BIC choice is unchanged by the extra row, which is never chosen
    assert result.best_index_ == 1 and result.best_["model"] == "GaussianMixture"
    assert "variational (of 6)" in result.format_table().splitlines()[-1]


def test_used_components_hold_a_row(three):
    """Counted from the rows' responsibilities, not from weights_: a Dirichlet process's
    empty component still has weights_ * n of about one row (its stick's pseudo-row), when it
    comes before a used one in the sticks' order (as this start leaves it)."""
    bgm = bigem.BayesianGaussianMixture(n_components=6, random_state=0, max_iter=300, dtype="float64").fit(three)
    counts = bgm.predict_proba(three).sum(0)
    assert np.any((counts < 0.5) & (bgm.weights_ * len(three) > 1.0))  # the case that matters
    assert used_components(bgm) == [int(k) for k in np.flatnonzero(counts >= 1.0)] and len(used_components(bgm)) == 3
    weighted = bigem.BayesianGaussianMixture(n_components=6, random_state=0, max_iter=300).fit(
        three, sample_weight=np.full(len(three), 2.0))  # counts in the weights' units
    assert len(used_components(weighted)) == 3


def test_variational_flag_is_checked_and_the_cli_reports_it(three, tmp_path, capsys):
    with pytest.raises(bigem._core.errors.ParameterError, match="variational must be True or False"):
        bigem.select(three, n_components=2, variational="yes")
    np.save(tmp_path / "x.npy", three)
    table = tmp_path / "t.csv"
    rc = main(["select", str(tmp_path / "x.npy"), "-k", "2,4", "--covariance", "full", "--variational",
               "--max-iter", "300", "-o", str(tmp_path / "m.bigem"), "--table", str(table), "--plot",
               str(tmp_path / "p.png"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["table"][-1]["model"] == "BayesianGaussianMixture"
    assert out["table"][-1]["n_components"] == 3 and out["table"][-1]["bic"] is None  # JSON has no NaN
    assert table.read_text().splitlines()[-1].startswith("BayesianGaussianMixture,3,full,kmeans,nan")  # its start, then NaN
    assert isinstance(bigem.load(tmp_path / "m.bigem"), bigem.GaussianMixture)
