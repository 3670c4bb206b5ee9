"""scikit-learn's own estimator checks, run on the mixtures of discrete data.

Their input tags make the checks draw valid X: count columns (PoissonMixture) are
``positive_only`` and ``categorical``, so the checks round them to non-negative whole
numbers; categories (CategoricalMixture) are ``categorical``. No tag says "0/1 only", so
for BernoulliMixture the X the checks build through their tag enforcement is binarised
here (each column at its median), as the multinomial's checks once rounded it. Each check
that cannot apply is listed with its reason; what it would check is tested with valid
data elsewhere (sample weights: tests/unit/test_families_reference.py and
test_families_io.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.utils.estimator_checks as sk_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from bigem import BernoulliMixture, CategoricalMixture, PoissonMixture

OWN_X = "draws real-valued X on its own, past the tag enforcement: {} refuses it, as it should"
OWN_BINARY_X = "builds X of the integers 1..4 on its own, past the tag enforcement: 0/1 columns refuse 2, 3 and 4"
EXPECTED = {
    "PoissonMixture": {
        "check_sample_weight_equivalence_on_dense_data": OWN_X.format("a count column"),
    },
    "CategoricalMixture": {
        "check_sample_weight_equivalence_on_dense_data": OWN_X.format("a categorical column"),
        "check_estimators_nan_inf": "draws real-valued X beside its NaN and inf: refused first for its fractions",
    },
    "BernoulliMixture": {
        "check_sample_weight_equivalence_on_dense_data": OWN_X.format("a 0/1 column"),
        "check_sample_weights_pandas_series": OWN_BINARY_X,
        "check_sample_weights_not_an_array": OWN_BINARY_X,
        "check_sample_weights_shape": OWN_BINARY_X,
        "check_sample_weights_not_overwritten": OWN_BINARY_X,
    },
}

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Estimator .*Mixture does not inherit")
    checks = parametrize_with_checks(
        [PoissonMixture(n_components=2), CategoricalMixture(n_components=2), BernoulliMixture(n_components=2)],
        expected_failed_checks=lambda est: EXPECTED[type(est).__name__],
    )


def _binarised(X):
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim == 2:
        return (X > np.median(X, axis=0)).astype(np.float64)
    return X


@pytest.fixture
def zero_one(monkeypatch):
    """scikit-learn's tag enforcement, then each column of X as 0/1 (at its median)."""
    enforce = sk_checks._enforce_estimator_tags_X

    def binary(estimator, X, *args, **kwargs):
        out = enforce(estimator, X, *args, **kwargs)
        return tuple(_binarised(v) for v in out) if isinstance(out, tuple) else _binarised(out)

    monkeypatch.setattr(sk_checks, "_enforce_estimator_tags_X", binary)


@pytest.mark.filterwarnings("ignore:Estimator .*Mixture does not inherit")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
# the checks' few random rows may leave a component without support: bigem re-seeds it and says so
@pytest.mark.filterwarnings("ignore::bigem.errors.ComponentReseededWarning")
# and a partial_fit of those few rows starts online EM from fewer rows than parameters, which bigem says
@pytest.mark.filterwarnings("ignore::bigem.errors.SmallBatchWarning")
@checks
def test_sklearn_estimator_checks(estimator, check, request):
    if isinstance(estimator, BernoulliMixture):
        request.getfixturevalue("zero_one")
    check(estimator)


def test_the_tags_say_what_x_may_hold():
    from sklearn.utils import get_tags

    poisson, categorical, bernoulli = (get_tags(m(2)).input_tags for m in (PoissonMixture, CategoricalMixture,
                                                                         BernoulliMixture))
    assert (poisson.positive_only, poisson.categorical, poisson.string) == (True, True, False)
    assert (categorical.positive_only, categorical.categorical, categorical.string) == (False, True, True)
    assert (bernoulli.positive_only, bernoulli.categorical, bernoulli.string) == (True, False, False)


@pytest.mark.parametrize("name", ["PoissonHMM", "CategoricalHMM", "MultinomialHMM"])
def test_the_integer_hmms_tags_make_the_checks_draw_x_they_take(name):
    """scikit-learn's checks make X by the tags: for the HMMs of symbols and counts,
    non-negative whole numbers, which they fit (real-valued X with negatives is refused)."""
    import bigem
    from sklearn.utils import get_tags

    hmm = getattr(bigem, name)(n_components=2, random_state=0)
    assert get_tags(hmm).input_tags.positive_only and get_tags(hmm).input_tags.categorical
    X = np.random.default_rng(0).normal(size=(60, 1 if name == "CategoricalHMM" else 3))
    X = sk_checks._enforce_estimator_tags_X(hmm, X)
    assert X.min() >= 0 and np.array_equal(X, np.round(X))
    hmm.fit(X)
    assert np.isfinite(hmm.score(X))
