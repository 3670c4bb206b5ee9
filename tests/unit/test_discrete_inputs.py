"""Inputs of the discrete families that scikit-learn's checks exposed: DataFrames whose
column names are not strings, sparse, complex and object X, negative values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bigem import BernoulliMixture, CategoricalMixture, MixedMixture, PoissonMixture
from bigem.errors import NonNumericDataError, SparseDataError
from bigem._core.errors import DataError

X = np.random.default_rng(0).integers(0, 3, (40, 3))


def test_a_dataframe_with_integer_column_names_is_read_as_its_array():
    """pandas' default names (0, 1, ...) are not strings: the columns are still found."""
    kw = dict(n_components=2, random_state=0, dtype="float64")
    frame = CategoricalMixture(**kw).fit(pd.DataFrame(X), sample_weight=pd.Series(np.ones(len(X))))
    array = CategoricalMixture(**kw).fit(X, sample_weight=np.ones(len(X)))
    for a, b in zip(frame.probabilities_, array.probabilities_):
        np.testing.assert_array_equal(a, b)


def test_sparse_x_is_refused_as_scikit_learn_refuses_it():
    with pytest.raises(SparseDataError, match="Sparse data was passed for X, but dense data is required"):
        CategoricalMixture(2).fit(sp.csr_matrix(X))


def test_complex_categories_are_refused_by_scikit_learns_words():
    with pytest.raises(DataError, match=r"^Complex data not supported: X has dtype complex128; pass real numbers"):
        CategoricalMixture(2).fit(X + 0.5j)


def test_an_unhashable_category_is_named():
    Xo = X.astype(object)
    Xo[0, 0] = {"foo": "bar"}
    with pytest.raises(NonNumericDataError, match=r"column 0 holds a dict \(\{'foo': 'bar'\}\), which is not a "
                                                  "category"):
        CategoricalMixture(2).fit(Xo)


def test_an_object_count_column_that_is_not_numeric_says_why_as_a_type_error():
    Xo = X.astype(object)
    Xo[0, 0] = {"foo": "bar"}
    with pytest.raises(TypeError, match="column 0 is not numeric .*argument must be a string or a real number"):
        PoissonMixture(2).fit(Xo)


@pytest.mark.parametrize("make", [PoissonMixture, BernoulliMixture])
def test_a_negative_value_is_called_what_scikit_learn_calls_it(make):
    with pytest.raises(DataError, match=r"column 0 holds -1 at row 1: .* there \(Negative values in data\); "):
        make(2).fit(np.where(np.arange(40)[:, None] == 1, -1, X.clip(0, 1)))


@pytest.mark.parametrize("make", [CategoricalMixture, MixedMixture])
def test_an_empty_x_says_it_is_empty_not_that_a_column_has_no_values(make):
    for X in (np.zeros((0, 3)), pd.DataFrame({"a": pd.Series([], dtype=str)})):
        with pytest.raises(DataError, match=r"Found array with 0 sample\(s\) .* X is empty"):
            make(2).fit(X)
