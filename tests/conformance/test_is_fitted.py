"""scikit-learn's check_is_fitted, which a Pipeline's predict asks before it runs, sees
StepMix, StepMixClassifier and StructuralModel fitted once they are (it saw them unfitted
for ever, and the Pipeline refused to predict)."""

from __future__ import annotations

import numpy as np
import pytest

import bigem

pytest.importorskip("sklearn")
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402


def _data():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 200)
    X = (rng.random((200, 5)) < np.where(z[:, None] == 1, 0.8, 0.2)).astype(float)
    return X, rng.normal(2.0 * z, 1.0)[:, None]


@pytest.mark.parametrize("make, outcome", [
    (lambda: bigem.StepMix(2, measurement="binary", structural="gaussian_unit", random_state=0), "gaussian"),
    (lambda: bigem.StepMixClassifier(2, measurement="binary", structural="binary", random_state=0), "binary"),
    (lambda: bigem.StructuralModel(bigem.BernoulliMixture(2, random_state=0), "gaussian"), "gaussian"),
])
def test_fitted_means_fitted_to_scikit_learn(make, outcome):
    X, Y = _data()
    Y = (Y > 1.0).astype(float) if outcome == "binary" else Y
    est = make()
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    est.fit(X, Y)
    check_is_fitted(est)
    if not isinstance(est, bigem.StructuralModel):  # its predict takes Y too, which a Pipeline does not pass
        pipe = make_pipeline(FunctionTransformer(), make()).fit(X, Y)
        np.testing.assert_array_equal(pipe.predict(X), est.predict(X))


def test_a_nested_estimators_parameters_are_scikit_learns_name__param():
    """StructuralModel's measurement: get_params(deep=True) lists its parameters, and
    set_params and a grid search set them (they were refused as invalid)."""
    from sklearn.model_selection import GridSearchCV

    X, Y = _data()
    est = bigem.StructuralModel(bigem.BernoulliMixture(2, random_state=0), "gaussian")
    deep = est.get_params(deep=True)
    assert deep["measurement__n_components"] == 2 and "measurement__n_components" not in est.get_params(deep=False)
    est.set_params(measurement__n_components=3, tol=1e-6)
    assert est.measurement.n_components == 3 and est.tol == 1e-6
    with pytest.raises(ValueError, match="Invalid parameter 'tol__x'"):
        est.set_params(tol__x=1)
    search = GridSearchCV(bigem.StructuralModel(bigem.BernoulliMixture(2, random_state=0), "gaussian"),
                          {"measurement__n_components": [2, 3]}, cv=2).fit(X, Y)
    assert search.best_params_["measurement__n_components"] in (2, 3)
