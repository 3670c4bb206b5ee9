"""A warm start's checkpoint: it resumes only the warm fit that wrote it, from the same
fitted parameters (a loaded copy of the model included), and a cold fit's checkpoint is
not taken for it (it was, silently: the warm start's own parameters were thrown away)."""

from __future__ import annotations

import numpy as np
import pytest

from bigem import GaussianMixture, load
from bigem._core.errors import ParameterError
from tests.conftest import Interrupted as _Stop
from tests.conftest import interrupt_at as _stop_at

pytestmark = pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(1.0, 1.2, (300, 3)),
                           rng.normal([2, 0, -1], 0.8, (300, 3))])


KW = dict(dtype="float64", tol=1e-8, max_iter=60, random_state=0)


def _started(X):
    """The user's own model, fitted a little on other rows, then set to continue."""
    est = GaussianMixture(3, **{**KW, "max_iter": 3}).fit(X[::-1] * 0.5)
    return est.set_params(warm_start=True, max_iter=KW["max_iter"])


def test_a_cold_checkpoint_is_refused_by_a_warm_fit(X, tmp_path):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Stop):
        GaussianMixture(3, **KW).fit(X, checkpoint=path, checkpoint_every=1, callback=_stop_at(8))
    with pytest.raises(ParameterError, match=r"written by a different fit.*\(they differ in: warm_start\); to start"):
        _started(X).fit(X, checkpoint=path)


def test_a_warm_fit_resumes_from_a_loaded_copy_of_its_model(X, tmp_path):
    path, saved = tmp_path / "fit.ckpt", tmp_path / "start.bigem"
    start = _started(X)
    start.save(saved)
    with pytest.raises(_Stop):
        _started(X).fit(X, checkpoint=path, checkpoint_every=1, callback=_stop_at(8))
    seen = []
    resumed = load(saved).set_params(warm_start=True, max_iter=KW["max_iter"]).fit(
        X, checkpoint=path, callback=lambda info: seen.append(info.iteration))
    whole = _started(X).fit(X)
    assert seen[0] > 1  # it resumed
    np.testing.assert_array_equal(resumed.means_, whole.means_)
    assert resumed.n_iter_ == whole.n_iter_ and resumed.lower_bound_ == whole.lower_bound_
    other = GaussianMixture(3, **{**KW, "max_iter": 4}).fit(X[::-1] * 0.5).set_params(warm_start=True,
                                                                                        max_iter=KW["max_iter"])
    with pytest.raises(_Stop):
        _started(X).fit(X, checkpoint=path, checkpoint_every=1, callback=_stop_at(8))
    with pytest.raises(ParameterError, match=r"differ in: warm_start\)"):  # another warm start
        other.fit(X, checkpoint=path)


def test_other_rows_of_the_same_kind_are_not_blamed_on_the_engine(X, tmp_path):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Stop):
        GaussianMixture(3, **KW).fit(X, checkpoint=path, checkpoint_every=1, callback=_stop_at(5))
    changed = X.copy()
    changed[500, 1] += 1.0
    with pytest.raises(ParameterError, match=r"\(they differ in: data\); to start fresh"):
        GaussianMixture(3, **KW).fit(changed, checkpoint=path)
