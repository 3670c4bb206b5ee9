"""scikit-learn's own estimator checks, run on bigem.MixtureClassifier (EDDA, the fast one)."""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bigem import MixtureClassifier

# the checks scikit-learn's classifiers pass and this one does not, on purpose
EXPECTED = {
    "check_supervised_y_2d": "y of shape (n, 1) is read as (n,) without scikit-learn's DataConversionWarning "
                             "(bigem does not import scikit-learn)",
    "check_non_transformer_estimators_n_iter": "n_iter_ belongs to each class density (estimators_[c].n_iter_); "
                                               "the classifier runs many fits",
}

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator MixtureClassifier does not inherit")
    checks = parametrize_with_checks([MixtureClassifier("EDDA", covariance_types=["VVV", "EEE"], dtype="float64")],
                                     expected_failed_checks=lambda est: EXPECTED)


@pytest.mark.filterwarnings("ignore:Estimator MixtureClassifier does not inherit")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_default_mclustda_refuses_sparse_input_as_edda_does():
    """MclustDA took each class's rows out of a sparse matrix first, and failed there with
    an IndexError; scikit-learn's sparse checks run on EDDA above."""
    import numpy as np
    import scipy.sparse as sp

    from bigem.errors import SparseDataError

    X = np.random.default_rng(0).normal(size=(60, 3))
    for model in ("MclustDA", "EDDA"):
        with pytest.raises(SparseDataError, match="Sparse data was passed for X, but dense data is required"):
            MixtureClassifier(model).fit(sp.csr_matrix(X), np.repeat([0, 1], 30))


@pytest.mark.parametrize("model", ["MclustDA", "EDDA"])
def test_feature_name_warnings_name_the_classifier_once(model):
    """Fitted on a DataFrame, predicting an array: scikit-learn's warning, naming the
    classifier (it named GaussianMixture, once per class's density)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2)) + np.repeat([0.0, 3.0, 6.0], 30)[:, None]
    est = MixtureClassifier(model, covariance_types=["VVV"], dtype="float64").fit(pd.DataFrame(X, columns=["a", "b"]),
                                                                                    np.repeat([0, 1, 2], 30))
    with pytest.warns(UserWarning) as caught:
        est.predict(X)
    texts = [str(w.message) for w in caught]
    assert texts == ["X does not have valid feature names, but MixtureClassifier was fitted with feature names"]
