"""A checkpoint of a semi-supervised fit resumes only with the labels it was written
with: the same rows relabelled (same classes) resumed, and ended between two fits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bigem import GaussianMixture, MultinomialMixture
from bigem._core.errors import ParameterError


class _Stop(Exception):
    pass


def _stop_at(iteration):
    def callback(info):
        if info.iteration == iteration:
            raise _Stop

    return callback


def _interrupted(est, X, y, path):
    with pytest.raises(_Stop):
        est.fit(X, y, checkpoint=path, checkpoint_every=2, callback=_stop_at(5))


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("form", ["array", "frame", "sparse"])
def test_other_labels_on_the_same_rows_are_refused_and_the_same_resume(form, tmp_path):
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 600)
    if form == "sparse":
        X = sp.csr_matrix(rng.poisson(np.array([[5, 1, 1], [1, 5, 1], [1, 1, 5]])[z] + 0.5))
        make = lambda: MultinomialMixture(3, unlabeled_weight=1.0, max_iter=12, tol=0, random_state=0)  # noqa: E731
    else:
        X = rng.normal(3.0 * z[:, None], 1.0, (600, 2))
        make = lambda: GaussianMixture(3, unlabeled_weight=1.0, max_iter=12, tol=0, random_state=0,  # noqa: E731
                                       dtype="float64")
    y = np.where(rng.random(600) < 0.2, z, -1)
    other = np.where(y >= 0, (y + 1) % 3, -1)  # the same rows and classes, relabelled
    if form == "frame":
        import pandas as pd

        X = pd.DataFrame(X, columns=["a", "b"]).assign(label=y)
        y, other = "label", X.assign(label=other)
    path = tmp_path / "fit.ckpt"
    _interrupted(make(), X, y, path)
    again = X if form != "frame" else other
    with pytest.raises(ParameterError, match=r"written by a different fit.*\(they differ in: data\)"):
        make().fit(again, other if form != "frame" else "label", checkpoint=path)
    seen = []
    resumed = make().fit(X, y, checkpoint=path, callback=lambda info: seen.append(info.iteration))
    assert seen[0] > 1  # it resumed
    whole = make().fit(X, y)
    np.testing.assert_array_equal(resumed.weights_, whole.weights_)
