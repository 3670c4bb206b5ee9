"""scikit-learn's own estimator checks, run on bigem.MultinomialMixture with count data.

Its input tags (``positive_only`` and ``categorical``) make the checks draw counts:
non-negative whole numbers. The few checks that draw X on their own, bypassing the tag
enforcement, cannot apply: they are the expected failures below, and what they would
check is tested with counts in this package (sparse input: test_fit.py and
test_sources.py; integer weights equal repeated rows: test_fit.py).
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bigem import MultinomialMixture

REAL_VALUED = "draws real-valued X without the tag enforcement; counts must be whole numbers"
EXPECTED = {name: REAL_VALUED for name in (
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
)}

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator MultinomialMixture does not inherit")
    checks = parametrize_with_checks([MultinomialMixture(n_components=2)],
                                     expected_failed_checks=lambda est: EXPECTED)


@pytest.mark.filterwarnings("ignore:Estimator MultinomialMixture does not inherit")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
