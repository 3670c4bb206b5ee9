"""scikit-learn's own estimator checks, run on bigem.GaussianMixture and BayesianGaussianMixture.

bigem does not import scikit-learn (it is optional), so it cannot inherit from its
BaseEstimator; the checks warn about that at collection, which we silence here only.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bigem import BayesianGaussianMixture, GaussianMixture

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator (Bayesian)?GaussianMixture does not inherit")
    checks = parametrize_with_checks([GaussianMixture(), GaussianMixture(covariance_type="diag", dtype="float64"),
                                      BayesianGaussianMixture()])


@pytest.mark.filterwarnings("ignore:Estimator GaussianMixture does not inherit")
@pytest.mark.filterwarnings("ignore:Estimator BayesianGaussianMixture does not inherit")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
