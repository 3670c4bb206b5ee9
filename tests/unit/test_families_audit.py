"""What an audit of the families found wrong, each checked against its closed form or
the documented rule: a semi-supervised bootstrap needs its labels, y has one label per
row even when it labels none, weighted criteria count the weights as rows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bigem import BernoulliMixture, GaussianMixture
from bigem._core.errors import DataError, ParameterError


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _items(n: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = (rng.random(n) < 0.7).astype(int)
    X = (rng.random((n, 5)) < np.where(z[:, None] == 1, 0.85, 0.15)).astype(float)
    y = np.where(rng.random(n) < 0.2, z, -1)
    return X, y


def test_a_semi_supervised_bootstrap_needs_the_labels_and_gets_their_spread():
    X, y = _items()
    m = BernoulliMixture(2, unlabeled_weight=0.0, random_state=0).fit(X, y)
    with pytest.raises(ParameterError, match=r"fitted with labels .* pass them, est.bootstrap\(X, y\)"):
        m.bootstrap(X, n_boot=5)
    se = m.bootstrap(X, y, n_boot=60, random_state=0).se()["weights_"]
    labelled = (y >= 0).sum()
    w = m.weights_[1]
    assert se[1] == pytest.approx(np.sqrt(w * (1 - w) / labelled), rel=0.35)  # the labelled rows' binomial spread


@pytest.mark.parametrize("y", [np.full(10, -1), [-1] * 5])
def test_y_of_another_length_is_refused_even_when_it_labels_no_row(y):
    X, _ = _items(300)
    with pytest.raises(DataError, match="y has .* labels but X has 300 rows"):
        BernoulliMixture(2, unlabeled_weight=0.5).fit(X, y)


def test_no_labels_and_unlabelled_rows_that_count_nothing_leave_nothing_to_fit():
    X, _ = _items(300)
    with pytest.raises(DataError, match="nothing to fit"):
        GaussianMixture(2, unlabeled_weight=0.0).fit(X, np.full(300, -1))


def test_weighted_criteria_equal_those_of_the_rows_repeated():
    X, _ = _items(400)
    w = np.random.default_rng(1).integers(1, 4, 400)
    m = BernoulliMixture(2, random_state=0, dtype="float64").fit(X, sample_weight=w)
    repeated = np.repeat(X, w, axis=0)
    for name in ("bic", "aic", "caic", "sabic", "score"):
        assert getattr(m, name)(X, sample_weight=w) == pytest.approx(getattr(m, name)(repeated), rel=1e-10), name


def test_a_class_new_to_a_partial_fit_batch_names_the_fixes_that_work():
    """The classes' message named handle_unknown= (which a GaussianMixture does not take)
    and categories= (which is about feature columns), not partial_fit's classes=."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = rng.normal(size=(300, 2)) + y[:, None] * 3.0
    model = GaussianMixture(3, unlabeled_weight=0.5, random_state=0)
    model.partial_fit(X[y != 2], y[y != 2])
    with pytest.raises(DataError, match=r"has class 2 at row \d+, which the model did not see at fit.*pass -1 for that "
                                        r"row.*list every class on the first call with classes=\[\.\.\.\]") as raised:
        model.partial_fit(X, y)
    assert "handle_unknown" not in str(raised.value) and "categories=" not in str(raised.value)
    listed = GaussianMixture(3, unlabeled_weight=0.5, random_state=0)
    listed.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    listed.partial_fit(X, y)  # what the message says works


def test_a_first_partial_fit_with_no_labels_and_no_classes_says_what_follows():
    """It went on without classes, silently; the next labelled batch was refused."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    model = GaussianMixture(2, unlabeled_weight=0.5, random_state=0)
    with pytest.warns(UserWarning, match=r"labels none of the rows of this first partial_fit call.*classes=\[\.\.\.\]"):
        model.partial_fit(X, np.full(200, -1))
    listed = GaussianMixture(2, unlabeled_weight=0.5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listed.partial_fit(X, np.full(200, -1), classes=[0, 1])  # what it says to do: no warning
    listed.partial_fit(X, (X[:, 0] > 0).astype(int))
