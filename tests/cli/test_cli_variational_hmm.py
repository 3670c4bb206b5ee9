"""The command line on variational HMM model files: info names the kind and its lower
bound, predict and score run on the point estimates."""

from __future__ import annotations

import numpy as np
import pytest

from bigem import VariationalCategoricalHMM, VariationalGaussianHMM
from bigem.cli import main


@pytest.mark.parametrize("kind, X, words", [
    (VariationalGaussianHMM, np.random.default_rng(0).normal(size=(200, 2)), "variational Gaussian HMM, 2 states, "
                                                                             "covariance full, 2 features"),
    (VariationalCategoricalHMM, np.random.default_rng(0).integers(0, 3, (200, 1)), "variational categorical HMM, "
                                                                                   "2 states, 3 symbols"),
])
def test_info_predict_and_score_know_the_variational_hmms(tmp_path, capsys, kind, X, words):
    est = kind(2, n_iter=3, random_state=0).fit(X)
    est.save(tmp_path / "m.bigem")
    np.save(tmp_path / "x.npy", X)
    assert main(["info", str(tmp_path / "m.bigem")]) == 0
    out = capsys.readouterr().out
    assert words in out and f"lower bound {est.monitor_.history[-1]:.8g}" in out
    assert main(["predict", str(tmp_path / "m.bigem"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), est.predict(X))
