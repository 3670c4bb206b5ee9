"""Every mistake a user can make with X, the hyper-parameters or the initial parameters
raises an error that says what was wrong, where, and what to do (docs/architecture.md and the README).

Where scikit-learn raises for the same mistake, we raise the same builtin type and keep
its wording, so code written against ``sklearn.mixture.GaussianMixture`` keeps working:
``test_same_builtin_type_and_wording_as_sklearn`` runs both on the same input.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import torch

import bigem
import bigem.errors
from bigem import GaussianMixture
from bigem._core.errors import (
    BigemError,
    ConvergenceWarning,
    DataError,
    NotFittedError,
    ParameterError,
)

COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _X(rng, n=40, d=2):
    return rng.normal(size=(n, d))


def _with(value, *cells):
    """A copy of the seeded (40, 2) data with ``value`` written at each (row, column)."""

    def make(rng):
        X = _X(rng)
        for r, c in cells:
            X[r, c] = value
        return X

    return make


def _strings(rng):
    return np.array([["a", "b"], ["c", "d"], ["e", "f"]])


def _object_dict(rng):
    return np.array([[{"a": 1}, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=object)


def _frame_with_string_column(rng):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "name": ["a", "b", "c", "d"]})


def _sparse(rng):
    sp = pytest.importorskip("scipy.sparse")
    return sp.csr_matrix(_X(rng))


def _full_not_pd():
    return np.array([[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])  # eigenvalues 3 and -1


@dataclass(frozen=True)
class Case:
    """One mistake: the data and constructor arguments that make it, the bigem class and the
    builtin type sklearn raises, our full message (``match``), and sklearn's wording we keep
    (``shared``, matched against both messages; None when sklearn does not see the mistake)."""

    id: str
    make: Callable
    kwargs: dict
    bigem_type: type
    builtin: tuple[type, ...]
    match: str
    shared: str | None
    marks: tuple = field(default=())


CASES = [
    # ------------------------------------------------------------------ data
    Case(
        "nan",
        _with(np.nan, (17, 1), (20, 0)),
        {},
        DataError,
        (ValueError,),
        r"^Input X contains NaN\. \(2 NaN; first at row 17, column 1\)\. Drop or impute these values first",
        r"^Input X contains NaN",
    ),
    Case(
        "inf",
        _with(np.inf, (17, 0)),
        {},
        DataError,
        (ValueError,),
        r"^Input X contains infinity or a value too large for dtype\('float64'\)\. \(1 inf; first at row 17, "
        r"column 0\)\. Drop or impute",
        r"^Input X contains infinity or a value too large for dtype\('float64'\)",
    ),
    Case(
        "1-D",
        lambda rng: _X(rng)[:, 0],
        {},
        DataError,
        (ValueError,),
        r"^Expected 2D array, got 1D array instead: X has shape \(40,\)\. Reshape your data either using "
        r"array\.reshape\(-1, 1\)",
        r"^Expected 2D array, got 1D array instead:(.|\n)*Reshape your data either using array\.reshape\(-1, 1\) "
        r"if your data has a single feature or array\.reshape\(1, -1\) if it contains a single sample\.",
    ),
    Case(
        "3-D",
        lambda rng: _X(rng).reshape(40, 2, 1),
        {},
        DataError,
        (ValueError,),
        r"^Found array with dim 3, while dim <= 2 is required by GaussianMixture: X has shape \(40, 2, 1\); "
        r"pass a 2-D array of shape \(n_samples, n_features\)",
        r"^Found array with dim 3, while dim <= 2 is required by GaussianMixture",
    ),
    Case(
        "0 rows",
        lambda rng: np.empty((0, 2)),
        {},
        DataError,
        (ValueError,),
        r"^Found array with 0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 2 is required by GaussianMixture\.$",
        r"^Found array with 0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 2 is required by GaussianMixture",
    ),
    Case(
        "1 row",  # scikit-learn's GaussianMixture fits two rows at least, before it counts the components
        lambda rng: _X(rng)[:1],
        {"n_components": 2},
        DataError,
        (ValueError,),
        r"^Found array with 1 sample\(s\) \(shape=\(1, 2\)\) while a minimum of 2 is required by GaussianMixture\.$",
        r"^Found array with 1 sample\(s\) \(shape=\(1, 2\)\) while a minimum of 2 is required by GaussianMixture",
    ),
    Case(
        "0 features",
        lambda rng: np.empty((10, 0)),
        {},
        DataError,
        (ValueError,),
        r"^Found array with 0 feature\(s\) \(shape=\(10, 0\)\) while a minimum of 1 is required by GaussianMixture: "
        r"X has no columns",
        r"^Found array with 0 feature\(s\) \(shape=\(10, 0\)\) while a minimum of 1 is required by GaussianMixture",
    ),
    Case(
        "fewer rows than components",
        lambda rng: _X(rng)[:3],
        {"n_components": 5},
        DataError,
        (ValueError,),
        r"^Expected n_samples >= n_components but got n_components = 5, n_samples = 3: "
        r"pass more rows or lower n_components",
        r"^Expected n_samples >= n_components but got n_components = 5, n_samples = 3",
    ),
    Case(
        "strings",
        _strings,
        {},
        DataError,
        (ValueError,),
        r"^X is not numeric \(dtype <U1\): could not convert string to float: .*'a'.*\. "
        r"Encode or drop non-numeric columns before fitting\.",
        r"could not convert string to float: .*'a'",
    ),
    Case(
        "object dict",
        _object_dict,
        {},
        DataError,
        (TypeError,),
        r"^X is not numeric \(dtype object\): float\(\) argument must be a string or a real number, not 'dict'\. "
        r"Encode or drop",
        r"float\(\) argument must be a string or a real number, not 'dict'",
    ),
    Case(
        "DataFrame with a string column",
        _frame_with_string_column,
        {},
        DataError,
        (ValueError,),
        r"^X has non-numeric column\(s\) \['name'\]: could not convert string to float: 'a'\. "
        r"Encode or drop these columns before fitting\.",
        r"could not convert string to float: 'a'",
    ),
    Case(
        "complex",
        lambda rng: _X(rng) + 1j,
        {},
        DataError,
        (ValueError,),
        r"^Complex data not supported: X has dtype complex128; pass real numbers\.",
        r"^Complex data not supported",
    ),
    Case(
        "sparse",
        _sparse,
        {},
        DataError,
        (TypeError,),
        r"^Sparse data was passed for X, but dense data is required\. Use '\.toarray\(\)' to convert to a dense "
        r"numpy array if it fits in memory \(X is a csr_matrix; bigem does not read sparse input\)\.",
        r"^Sparse data was passed for X, but dense data is required\. "
        r"Use '\.toarray\(\)' to convert to a dense numpy array",
    ),
    # ------------------------------------------------------------------ initial parameters
    Case(
        "means_init shape",
        _X,
        {"n_components": 2, "means_init": np.zeros((3, 2))},
        ParameterError,
        (ValueError,),
        r"^The parameter 'means' should have the shape of \(2, 2\), but got \(3, 2\)$",
        r"^The parameter 'means' should have the shape of \(2, 2\), but got \(3, 2\)",
    ),
    Case(
        "verbose below 0",
        _X,
        {"verbose": -1},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'verbose' parameter of GaussianMixture must be an int in the range \[0, inf\), an instance of 'bool' "
        r"or an instance of 'numpy.bool'. Got -1 instead.$",
        r"^The 'verbose' parameter of GaussianMixture must be an int in the range \[0, inf\), an instance of 'bool' "
        r"or an instance of 'numpy.bool'. Got -1 instead.$",
    ),
    Case(
        "warm_start not a bool",
        _X,
        {"warm_start": "yes"},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'warm_start' parameter of GaussianMixture must be an instance of 'bool' or an instance of "
        r"'numpy.bool'. Got 'yes' instead.$",
        r"^The 'warm_start' parameter of GaussianMixture must be an instance of 'bool' or an instance of "
        r"'numpy.bool'. Got 'yes' instead.$",
    ),
    Case(
        "weights_init not summing to 1",
        _X,
        {"n_components": 2, "weights_init": [0.3, 0.3]},
        ParameterError,
        (ValueError,),
        r"^The parameter 'weights' should be normalized, but got sum\(weights\) = 0\.60000; "
        r"divide weights_init by its sum",
        r"^The parameter 'weights' should be normalized, but got sum\(weights\) = 0\.60000",
    ),
    Case(
        "weights_init outside [0, 1]",
        _X,
        {"n_components": 2, "weights_init": [1.5, -0.5]},
        ParameterError,
        (ValueError,),
        r"^The parameter 'weights' should be in the range \[0, 1\], but got max value 1\.50000, min value -0\.50000",
        r"^The parameter 'weights' should be in the range \[0, 1\], but got max value",
    ),
    Case(
        "weights_init shape",
        _X,
        {"n_components": 2, "weights_init": [0.2, 0.3, 0.5]},
        ParameterError,
        (ValueError,),
        r"^The parameter 'weights' should have the shape of \(2,\), but got \(3,\)$",
        r"^The parameter 'weights' should have the shape of \(2,\), but got \(3,\)",
    ),
    Case(
        "full precisions_init not positive definite",
        _X,
        {"n_components": 2, "covariance_type": "full", "precisions_init": _full_not_pd()},
        ParameterError,
        (ValueError,),
        r"^'full precision' should be symmetric, positive-definite: a precisions_init matrix has a non-positive "
        r"eigenvalue",
        r"^'full precision' should be symmetric, positive-definite",
    ),
    Case(
        "full precisions_init not symmetric",
        _X,
        {"n_components": 2, "covariance_type": "full", "precisions_init": np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)},
        ParameterError,
        (ValueError,),
        r"^'full precision' should be symmetric, positive-definite$",
        r"^'full precision' should be symmetric, positive-definite",
    ),
    Case(
        "tied precisions_init not positive definite",
        _X,
        {"n_components": 2, "covariance_type": "tied", "precisions_init": _full_not_pd()[0]},
        ParameterError,
        (ValueError,),
        r"^'tied precision' should be symmetric, positive-definite: a precisions_init matrix has a non-positive "
        r"eigenvalue",
        r"^'tied precision' should be symmetric, positive-definite",
    ),
    Case(
        "diag precisions_init not positive",
        _X,
        {"n_components": 2, "covariance_type": "diag", "precisions_init": np.array([[1.0, -1.0], [1.0, 1.0]])},
        ParameterError,
        (ValueError,),
        r"^'diag precision' should be positive$",
        r"^'diag precision' should be positive",
    ),
    Case(
        "spherical precisions_init zero",
        _X,
        {"n_components": 2, "covariance_type": "spherical", "precisions_init": np.array([1.0, 0.0])},
        ParameterError,
        (ValueError,),
        r"^'spherical precision' should be positive$",
        r"^'spherical precision' should be positive",
    ),
    *[
        Case(
            f"{ct} precisions_init shape",
            _X,
            {"n_components": 2, "covariance_type": ct, "precisions_init": bad},
            ParameterError,
            (ValueError,),
            rf"^The parameter '{ct} precision' should have the shape of {re.escape(str(want))}, "
            rf"but got {re.escape(str(bad.shape))}$",
            rf"^The parameter '{ct} precision' should have the shape of {re.escape(str(want))}, "
            rf"but got {re.escape(str(bad.shape))}",
        )
        for ct, bad, want in [
            ("full", np.ones((2, 3, 3)), (2, 2, 2)),
            ("tied", np.ones((3, 3)), (2, 2)),
            ("diag", np.ones((3, 2)), (2, 2)),
            ("spherical", np.ones(3), (2,)),
        ]
    ],
    # ------------------------------------------------------------------ hyper-parameters
    Case(
        "n_components 0",
        _X,
        {"n_components": 0},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'n_components' parameter of GaussianMixture must be an int in the range \[1, inf\)\. Got 0 instead\.$",
        r"^The 'n_components' parameter of GaussianMixture must be an int in the range \[1, inf\)\. Got 0 instead\.",
    ),
    Case(
        "n_components not an int",
        _X,
        {"n_components": 2.5},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'n_components' parameter of GaussianMixture must be an int in the range \[1, inf\)\. Got 2\.5 instead",
        r"^The 'n_components' parameter of GaussianMixture must be an int in the range \[1, inf\)\. Got 2\.5 instead",
    ),
    *[
        Case(
            f"{name}={value!r}",
            _X,
            {name: value},
            ParameterError,
            (ValueError, TypeError),
            rf"^The '{name}' parameter of GaussianMixture must be {expected}\. Got {re.escape(repr(value))} instead\.$",
            rf"^The '{name}' parameter of GaussianMixture must be {expected}\. Got {re.escape(repr(value))} instead\.",
        )
        for name, value, expected in [
            ("tol", -1.0, r"a float in the range \[0\.0, inf\)"),
            ("reg_covar", float("nan"), r"a float in the range \[0\.0, inf\)"),
            ("max_iter", -1, r"an int in the range \[0, inf\)"),
            ("n_init", 0, r"an int in the range \[1, inf\)"),
            ("verbose_interval", 0, r"an int in the range \[1, inf\)"),
        ]
    ],
    Case(
        "unknown covariance_type",
        _X,
        {"covariance_type": "banana"},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'covariance_type' parameter of GaussianMixture must be a str among "
        r"\{'full', 'tied', 'diag', 'spherical', 'EII', 'VII', .*'VVV', 'E', 'V'\}\. Got 'banana' instead\.$",
        r"^The 'covariance_type' parameter of GaussianMixture must be a str among \{.*\}\. Got 'banana' instead\.",
    ),
    Case(
        "bad init_params",
        _X,
        {"init_params": "bogus"},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'init_params' parameter of GaussianMixture must be a str among "
        r"\{'kmeans', 'k-means\+\+', 'random', 'random_from_data', 'hc'\}\. Got 'bogus' instead\.$",
        r"^The 'init_params' parameter of GaussianMixture must be a str among \{.*\}\. Got 'bogus' instead\.",
    ),
    Case(
        "means_init not an array",
        _X,
        {"means_init": "abc"},
        ParameterError,
        (ValueError, TypeError),
        r"^The 'means_init' parameter of GaussianMixture must be an array-like or None\. Got 'abc' instead\.$",
        r"^The 'means_init' parameter of GaussianMixture must be an array-like or None\. Got 'abc' instead\.$",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fit_error_says_what_where_and_how_to_fix(case, rng):
    X = case.make(rng)
    with pytest.raises(case.bigem_type, match=case.match) as info:
        GaussianMixture(random_state=0, **case.kwargs).fit(X)
    assert isinstance(info.value, BigemError)
    for builtin in case.builtin:
        assert isinstance(info.value, builtin)


@pytest.mark.parametrize("case", [c for c in CASES if c.shared], ids=[c.id for c in CASES if c.shared])
def test_same_builtin_type_and_wording_as_sklearn(case, rng):
    sk_mixture = pytest.importorskip("sklearn.mixture")
    X = case.make(rng)
    with pytest.raises(Exception) as theirs:
        sk_mixture.GaussianMixture(random_state=0, **case.kwargs).fit(X)
    with pytest.raises(BigemError) as ours:
        GaussianMixture(random_state=0, **case.kwargs).fit(X)
    for builtin in (ValueError, TypeError):
        if isinstance(theirs.value, builtin):
            assert isinstance(ours.value, builtin), f"sklearn raises {builtin.__name__}, bigem {type(ours.value)}"
    assert re.search(case.shared, str(theirs.value)), f"sklearn's wording changed: {theirs.value}"
    assert re.search(case.shared, str(ours.value)), f"bigem lost sklearn's wording: {ours.value}"


# ---------------------------------------------------------------------- X in more detail


def test_nan_and_inf_are_counted_and_the_first_row_is_named_across_chunks(rng):
    X = _X(rng)
    X[17, 0] = np.nan
    X[25, 1] = np.inf
    X[33, :] = np.nan
    with pytest.raises(DataError, match=r"^Input X contains NaN\. \(3 NaN, 1 inf; first at row 17, column 0\)\. "
                                             r"Drop or impute"):
        GaussianMixture(chunk_size=5).fit(X)


def test_nan_in_a_torch_tensor_is_found(rng):
    X = torch.from_numpy(_with(np.nan, (17, 1))(rng))
    with pytest.raises(DataError, match=r"^Input X contains NaN\. \(1 NaN; first at row 17, column 1\)"):
        GaussianMixture().fit(X)


@pytest.mark.parametrize("labels, named", [(["a", "b"], "'b'"), ([10, 20], "20")])
def test_nan_in_a_dataframe_is_named_by_its_columns_label(rng, labels, named):
    """A frame whose labels are not all strings has no feature names, but its reader finds
    the column by its label (df[20]), not by its position (it was named 1)."""
    frame = pd.DataFrame(_with(np.nan, (17, 1))(rng), columns=labels)
    with pytest.raises(DataError, match=rf"^Input X contains NaN\. \(1 NaN; first at row 17, column {named}\)"):
        GaussianMixture().fit(frame)


def test_nan_is_refused_by_predict_and_score_too(rng):
    est = GaussianMixture(2, random_state=0).fit(_X(rng))
    bad = _with(np.nan, (17, 1))(rng)
    for method in (est.predict, est.predict_proba, est.score_samples, est.score):
        with pytest.raises(DataError, match=r"^Input X contains NaN\. \(1 NaN; first at row 17, column 1\)"):
            method(bad)


def test_a_dataframe_names_every_non_numeric_column():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0],
            "city": ["a", "b", "c", "d"],
            "kind": pd.Categorical(["u", "v", "u", "v"]),
            "when": pd.to_datetime(["2020-01-01"] * 4),
        }
    )
    with pytest.raises(DataError, match=r"non-numeric column\(s\) \['city', 'kind', 'when'\]") as info:
        GaussianMixture().fit(frame)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_a_dataframe_object_column_of_numbers_is_accepted_like_sklearn():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.5], "y": pd.Series([1.0, 0.0, 2.0, 4.0], dtype=object)})
    est = GaussianMixture(random_state=0).fit(frame)
    np.testing.assert_allclose(est.means_, [[2.625, 1.75]])
    assert list(est.feature_names_in_) == ["x", "y"]


def test_ragged_rows_are_refused_with_a_fix():
    with pytest.raises(DataError, match=r"^X could not be converted to an array: .*inhomogeneous.*Pass a 2-D array"):
        GaussianMixture().fit([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("X", [None, "not a path.txt".encode()], ids=["None", "bytes"])
def test_x_of_the_wrong_kind_is_refused(X):
    with pytest.raises(DataError, match=r"^X must be an array, tensor, DataFrame, a path \(file, folder or glob\) or a Source; got"):
        GaussianMixture().fit(X)


def test_complex_torch_tensor_is_refused():
    with pytest.raises(DataError, match=r"^Complex data not supported: X has dtype torch\.complex64"):
        GaussianMixture().fit(torch.zeros(5, 2, dtype=torch.complex64))


def test_one_dimensional_torch_tensor_is_refused():
    with pytest.raises(DataError, match=r"^Expected 2D array, got 1D array instead: X has shape \(5,\)"):
        GaussianMixture().fit(torch.zeros(5))


# ---------------------------------------------------------------------- hyper-parameters in more detail


@pytest.mark.parametrize("dtype", ["float16", "int32", "double", torch.int64, None])
def test_bad_dtype(dtype, rng):
    with pytest.raises(ParameterError, match=r"^dtype must be 'float32' or 'float64' \(or the torch dtype\), got") as info:
        GaussianMixture(dtype=dtype).fit(_X(rng))
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "device, match",
    [
        ("gpu", r"^device 'gpu' is not a torch device: "),
        (3.5, r"^device 3\.5 is not a torch device: "),
        ("cuda:0", r"^device 'cuda:0' requested but CUDA is not available here; use device='cpu'$"),
    ],
    ids=["typo", "float", "cuda"],
)
def test_bad_device(device, match, rng):
    if str(device).startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ParameterError, match=match):
        GaussianMixture(device=device).fit(_X(rng))


@pytest.mark.parametrize("budget", ["lots", 0, -5, "0MB", "-1MB", 1.5, True, "12 parsecs", None])
def test_bad_memory_budget(budget, rng):
    with pytest.raises(
        ParameterError,
        match=r"^The 'memory_budget' parameter of GaussianMixture must be a positive number of bytes or a string "
        rf"like '256MB' or '2GiB', or 'auto'\. Got {re.escape(repr(budget))} instead\.$",
    ):
        GaussianMixture(memory_budget=budget).fit(_X(rng))


@pytest.mark.parametrize("budget", ["1.5GiB", "64kb", " 2 MB ", 4096, "auto"])
def test_memory_budget_spellings_are_accepted(budget, rng):
    assert GaussianMixture(memory_budget=budget, random_state=0).fit(_X(rng)).n_features_in_ == 2


def test_chunk_size_names_the_argument(rng):
    with pytest.raises(
        ParameterError,
        match=r"^The 'chunk_size' parameter of GaussianMixture must be an int in the range \[1, inf\) or None\. Got 0 instead",
    ):
        GaussianMixture(chunk_size=0).fit(_X(rng))


def test_initial_parameters_with_nan_are_refused(rng):
    with pytest.raises(ParameterError, match=r"^The parameter 'means' contains NaN or infinity; pass finite values"):
        GaussianMixture(2, means_init=[[0.0, np.nan], [1.0, 1.0]]).fit(_X(rng))


def test_initial_parameters_that_are_not_numbers_are_refused(rng):
    with pytest.raises(ParameterError, match=r"^The parameter 'weights' must be numeric: "):
        GaussianMixture(2, weights_init=["a", "b"]).fit(_X(rng))


# ---------------------------------------------------------------------- sample_weight


@pytest.mark.parametrize(
    "weight, match",
    [
        (np.ones(39), r"^sample_weight\.shape == \(39,\), expected \(40,\)! Pass one weight per row of X\.$"),
        (np.ones((40, 1)), r"^Sample weights must be 1D array or scalar: got sample_weight with 2 dimensions\.$"),
        (np.where(np.arange(40) == 5, -1.0, 1.0), r"^Negative values in data passed to `sample_weight` \(first at row 5\)"),
        (np.where(np.arange(40) == 7, np.nan, 1.0), r"^Input sample_weight contains NaN or infinity \(first at row 7\)"),
        (np.where(np.arange(40) == 9, np.inf, 1.0), r"^Input sample_weight contains NaN or infinity \(first at row 9\)"),
        (np.zeros(40), r"^Sample weights must contain at least one non-zero number: sample_weight sums to zero; give"),
        (0.0, r"^Sample weights must contain at least one non-zero number"),
    ],
    ids=["short", "2-D", "negative", "NaN", "inf", "all zero", "scalar zero"],
)
def test_bad_sample_weight(weight, match, rng):
    with pytest.raises(DataError, match=match):
        GaussianMixture().fit(_X(rng), sample_weight=weight)


@pytest.mark.parametrize(
    "weight, shared",
    [
        (np.ones(39), r"^sample_weight\.shape == \(39,\), expected \(40,\)!"),
        (np.ones((40, 1)), r"^Sample weights must be 1D array or scalar"),
        (np.where(np.arange(40) == 5, -1.0, 1.0), r"^Negative values in data passed to `sample_weight`"),
        (np.zeros(40), r"^Sample weights must contain at least one non-zero number"),
    ],
    ids=["short", "2-D", "negative", "all zero"],
)
def test_sample_weight_errors_keep_sklearns_type_and_wording(weight, shared, rng):
    # scikit-learn's GaussianMixture takes no sample_weight; its shared checker is the reference.
    validation = pytest.importorskip("sklearn.utils.validation")
    X = _X(rng)
    with pytest.raises(ValueError) as theirs:
        validation._check_sample_weight(weight, X, ensure_non_negative=True)
    with pytest.raises(DataError) as ours:
        GaussianMixture().fit(X, sample_weight=weight)
    assert re.search(shared, str(theirs.value)), f"sklearn's wording changed: {theirs.value}"
    assert re.search(shared, str(ours.value)), f"bigem lost sklearn's wording: {ours.value}"


def test_sample_weight_of_an_npy_file_is_an_array_of_its_length(tmp_path, rng):
    path = tmp_path / "x.npy"
    np.save(path, _X(rng))
    with pytest.raises(DataError, match=r"sample_weight.shape == \(39,\), expected \(40,\)"):
        GaussianMixture().fit(path, sample_weight=np.ones(39))
    with pytest.raises(DataError, match=r"x\.npy: a \.npy file has no column names, so id columns and a "):
        GaussianMixture().fit(path, sample_weight="w")
    with pytest.raises(DataError, match=r"^sample_weight='w' names a column, but X has no column names; pass"):
        GaussianMixture().fit(_X(rng), sample_weight="w")


# ---------------------------------------------------------------------- before and after fit


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic", "aic"])
def test_using_an_unfitted_estimator(method, rng):
    with pytest.raises(
        NotFittedError,
        match=r"^This GaussianMixture instance is not fitted yet\. Call 'fit' with appropriate arguments before "
        r"using this estimator\.$",
    ) as info:
        getattr(GaussianMixture(), method)(_X(rng))
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_float32_initial_weights_are_checked_in_float32_as_scikit_learn_does(rng):
    """pomegranate's priors [0.4, 0.6] are float32: 1 + 3e-8 in float64, which was refused."""
    sk_mixture = pytest.importorskip("sklearn.mixture")
    X = _X(rng)
    for weights in (np.array([0.4, 0.6], np.float32), torch.tensor([0.4, 0.6]), np.array([0.4, 0.6000001], np.float32)):
        GaussianMixture(2, weights_init=weights, random_state=0).fit(X)
        sk_mixture.GaussianMixture(2, weights_init=np.asarray(weights), random_state=0).fit(X)
    off = np.array([0.4, 0.61], np.float32)
    with pytest.raises(ParameterError, match="should be normalized"):
        GaussianMixture(2, weights_init=off).fit(X)
    with pytest.raises(ValueError, match="should be normalized"):
        sk_mixture.GaussianMixture(2, weights_init=off).fit(X)
    with pytest.raises(ParameterError, match="should be normalized"):  # float64 keeps its 1e-8
        GaussianMixture(2, weights_init=np.array([0.4, 0.6000001])).fit(X)


def test_pomegranates_sphere_is_named_spherical(rng):
    with pytest.raises(ParameterError, match=r"Got 'sphere' instead; use 'spherical' \(pomegranate's 'sphere'\)\.$"):
        GaussianMixture(2, covariance_type="sphere").fit(_X(rng))


def test_a_model_set_partly_by_hand_is_told_what_it_lacks(rng):
    """Some fitted attributes set by hand, not all: the not-fitted error names the rest."""
    from bigem import MultinomialMixture

    text = MultinomialMixture(2)
    text.weights_, text.probabilities_ = np.array([0.4, 0.6]), np.array([[0.7, 0.1, 0.1, 0.1], [0.25] * 4])
    with pytest.raises(NotFittedError, match=r"not fitted yet\. .*\(to set a model by hand, set mean_lengths_ as "
                       r"well as weights_, probabilities_\)$"):
        text.predict(np.array([[3, 0, 0, 1]]))
    text.mean_lengths_ = np.array([4.0, 4.0])
    assert text.predict(np.array([[3, 0, 0, 1]])).tolist() == [0]
    gauss = GaussianMixture(2)
    gauss.weights_, gauss.means_ = np.array([0.5, 0.5]), np.zeros((2, 4))
    with pytest.raises(NotFittedError, match=r"set covariances_ or precisions_cholesky_ as well as weights_, means_"):
        gauss.predict(_X(rng))


def test_sampling_from_an_unfitted_estimator():
    with pytest.raises(NotFittedError, match=r"^This GaussianMixture instance is not fitted yet"):
        GaussianMixture().sample(3)


def test_not_fitted_error_is_also_sklearns_when_sklearn_is_loaded(rng):
    exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(exceptions.NotFittedError) as info:
        GaussianMixture().predict(_X(rng))
    assert isinstance(info.value, NotFittedError)
    sk_mixture = pytest.importorskip("sklearn.mixture")
    with pytest.raises(exceptions.NotFittedError) as theirs:
        sk_mixture.GaussianMixture().predict(_X(rng))
    assert str(info.value) == str(theirs.value)


def test_parameter_error_is_also_sklearns_invalid_parameter_error(rng):
    validation = pytest.importorskip("sklearn.utils._param_validation")
    sk_mixture = pytest.importorskip("sklearn.mixture")
    with pytest.raises(validation.InvalidParameterError) as info:
        GaussianMixture(n_components=0).fit(_X(rng))
    assert isinstance(info.value, ParameterError) and type(info.value).__name__ == "ParameterError"
    with pytest.raises(validation.InvalidParameterError) as theirs:
        sk_mixture.GaussianMixture(n_components=0).fit(_X(rng))
    assert str(info.value) == str(theirs.value)


def test_errors_that_are_also_sklearns_pickle_as_bigems(rng):
    """A Dask worker's error crosses processes pickled: it arrives as bigem's class (and
    again scikit-learn's where that is loaded), not as a failure to pickle."""
    pytest.importorskip("sklearn.exceptions")
    pytest.importorskip("sklearn.utils._param_validation")
    for make in (lambda: GaussianMixture(n_components=0).fit(_X(rng)), lambda: GaussianMixture().predict(_X(rng))):
        with pytest.raises((ParameterError, NotFittedError)) as info:
            make()
        back = pickle.loads(pickle.dumps(info.value))
        assert type(back) is type(info.value) and back.args == info.value.args


@pytest.fixture(scope="module")
def fitted_on_4_features():
    X = np.random.default_rng(1).normal(size=(30, 4))
    return X, GaussianMixture(2, random_state=0).fit(X)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
def test_predict_with_the_wrong_number_of_features(fitted_on_4_features, method):
    X, est = fitted_on_4_features
    with pytest.raises(DataError, match=r"^X has 3 features, but GaussianMixture is expecting 4 features as input\.$"):
        getattr(est, method)(X[:, :3])


def test_predict_with_the_wrong_number_of_features_matches_sklearn(fitted_on_4_features):
    sk_mixture = pytest.importorskip("sklearn.mixture")
    X, est = fitted_on_4_features
    theirs = sk_mixture.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError) as sk_info:
        theirs.predict(X[:, :3])
    with pytest.raises(DataError) as info:
        est.predict(X[:, :3])
    assert str(info.value) == str(sk_info.value)


def test_predict_with_a_npy_file_of_the_wrong_width(fitted_on_4_features, tmp_path):
    X, est = fitted_on_4_features
    path = tmp_path / "three.npy"
    np.save(path, X[:, :3])
    with pytest.raises(DataError, match=r"^X has 3 features, but GaussianMixture is expecting 4 features as input\.$"):
        est.predict(path)


@pytest.fixture(scope="module")
def fitted_on_a_frame():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(30, 4)), columns=list("abcd"))
    return frame, GaussianMixture(2, random_state=0).fit(frame)


@pytest.mark.parametrize("columns", [list("abdc"), list("zbcd")], ids=["reordered", "renamed"])
def test_feature_names_must_match_those_seen_in_fit(fitted_on_a_frame, columns):
    """scikit-learn's message to the letter (the names unseen, missing, or another order),
    then how to pass the fitted columns."""
    sk_mixture = pytest.importorskip("sklearn.mixture")
    frame, est = fitted_on_a_frame
    other = frame.set_axis(columns, axis=1)
    with pytest.raises(ValueError) as theirs:
        sk_mixture.GaussianMixture(2, random_state=0).fit(frame).predict(other)
    with pytest.raises(DataError) as ours:
        est.predict(other)
    assert str(ours.value) == str(theirs.value) + "Pass X[list(est.feature_names_in_)] to give the fitted columns " \
        "in their order."


def test_feature_name_mismatch_matches_sklearns_type_and_first_line(fitted_on_a_frame):
    sk_mixture = pytest.importorskip("sklearn.mixture")
    frame, est = fitted_on_a_frame
    other = frame[list("abdc")]
    with pytest.raises(ValueError) as theirs:
        sk_mixture.GaussianMixture(2, random_state=0).fit(frame).predict(other)
    with pytest.raises(DataError) as ours:
        est.predict(other)
    first_line = str(theirs.value).splitlines()[0]
    assert first_line == "The feature names should match those that were passed during fit."
    assert str(ours.value).splitlines()[0] == first_line


def test_feature_names_missing_at_predict_warns_like_sklearn(fitted_on_a_frame):
    frame, est = fitted_on_a_frame
    with pytest.warns(UserWarning, match=r"^X does not have valid feature names, but GaussianMixture was fitted with"):
        est.predict(frame.to_numpy())


# ---------------------------------------------------------------------- .npy files


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_npy_path_that_does_not_exist(tmp_path):
    path = tmp_path / "nope.npy"
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no such file or folder; check the path$"):
        GaussianMixture().fit(path)


def test_path_that_is_not_a_npy_name(tmp_path):
    path = _write(tmp_path / "x.xlsx", b"1,2\n3,4\n")
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}: unsupported file type; bigem reads .*\.parquet.* \(by extension\): "
                         r"rename the file, or in Python pass bigem.Files\(path, format='csv'\)"
    ):
        GaussianMixture().fit(str(path))


def test_files_of_any_extension_read_in_the_format_given(tmp_path):
    """Files(format=) was checked after the extension, so a format named for a file of
    an extension bigem does not know was never reached."""
    from bigem import Files

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(100, 2)), rng.normal(4, 1, (100, 2))]
    frame = pd.DataFrame(X, columns=["a", "b"])
    frame.to_csv(tmp_path / "rows.dat", index=False, float_format="%.17g")
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:100].to_parquet(folder / "0.parquet.v1")
    frame.iloc[100:].to_parquet(folder / "1.parquet.v1")
    want = GaussianMixture(2, random_state=0, dtype="float64").fit(frame)
    import fsspec

    memory = fsspec.filesystem("memory")  # an object store's folder: every object, whatever its name
    for name in ("0.parquet.v1", "1.parquet.v1"):
        memory.pipe(f"/fmt-test/{name}", (folder / name).read_bytes())
    for spec in (Files(str(tmp_path / "rows.dat"), format="csv"), Files(str(folder), format="parquet"),
                 Files("memory://fmt-test", format="parquet")):
        got = GaussianMixture(2, random_state=0, dtype="float64").fit(spec)
        np.testing.assert_allclose(got.means_, want.means_, rtol=1e-12)
        np.testing.assert_array_equal(got.predict(spec), want.predict(frame))


@pytest.mark.parametrize(
    "content, why",
    [(b"1,2\n3,4\n", "it does not start with the .npy magic bytes"), (b"", "it is empty")],
    ids=["text", "empty"],
)
def test_npy_name_that_is_not_a_npy_file(tmp_path, content, why):
    path = _write(tmp_path / "fake.npy", content)
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(path))}: not a \.npy file \({re.escape(why)}\); write it with numpy\.save",
    ) as info:
        GaussianMixture().fit(path)
    assert "pickle" not in str(info.value)


@pytest.mark.parametrize("keep", [10, 100, 200], ids=lambda k: f"first {k} bytes")
def test_truncated_npy_file(tmp_path, rng, keep):
    whole = tmp_path / "whole.npy"
    np.save(whole, _X(rng))
    path = _write(tmp_path / "cut.npy", whole.read_bytes()[:keep])
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}: not a readable \.npy file \(.+\); write it with numpy\.save"
    ):
        GaussianMixture().fit(path)


def test_npy_file_holding_a_1d_array(tmp_path, rng):
    path = tmp_path / "one.npy"
    np.save(path, _X(rng)[:, 0])
    with pytest.raises(
        DataError,
        match=rf"^Expected 2D array, got 1D array instead: {re.escape(str(path))} has shape \(40,\)\. "
        r"Reshape your data",
    ):
        GaussianMixture().fit(path)


@pytest.mark.parametrize(
    "array, kind",
    [
        (np.array([["a", "b"], ["c", "d"]]), "<U1"),
        (np.ones((3, 2), dtype=complex), "complex128"),
    ],
    ids=["strings", "complex"],
)
def test_npy_file_holding_non_numbers(tmp_path, array, kind):
    path = tmp_path / "s.npy"
    np.save(path, array)
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(path))}: holds {re.escape(kind)}, expected a numeric \(float, integer or boolean\) "
        r"2-D array",
    ):
        GaussianMixture().fit(path)


def test_npy_file_holding_python_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([[1, "b"], [2, "c"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: not a readable \.npy file \(.*objects"):
        GaussianMixture().fit(path)


@pytest.mark.parametrize("chunk_size", [None, 7], ids=["one chunk", "chunks of 7"])
def test_npy_file_with_nan_names_the_file_and_row(tmp_path, rng, chunk_size):
    X = _X(rng)
    X[17, 0] = np.nan
    X[30, 1] = np.inf
    path = tmp_path / "nan.npy"
    np.save(path, X)
    with pytest.raises(
        DataError,
        match=rf"^Input {re.escape(str(path))} contains NaN\. \(1 NaN, 1 inf; first at row 17, column 0\)\. "
        r"Drop or impute",
    ):
        GaussianMixture(chunk_size=chunk_size).fit(path)


def test_empty_npy_array(tmp_path):
    path = tmp_path / "z.npy"
    np.save(path, np.empty((0, 2)))
    with pytest.raises(
        DataError,
        match=rf"^Found array with 0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 2 is required by "
        rf"GaussianMixture: {re.escape(str(path))} is empty",
    ):
        GaussianMixture().fit(path)


def test_npy_file_with_fewer_rows_than_components(tmp_path, rng):
    path = tmp_path / "few.npy"
    np.save(path, _X(rng)[:2])
    with pytest.raises(DataError, match=r"^Expected n_samples >= n_components but got n_components = 3, n_samples = 2"):
        GaussianMixture(3).fit(path)


@pytest.fixture(scope="module")
def fitted_on_2_features():
    return GaussianMixture(2, random_state=0, dtype="float64").fit(np.random.default_rng(5).normal(size=(40, 2)) * 10)


@pytest.mark.parametrize("byte_order", ["<f8", ">f8", "<f4", ">f4", ">i4"])
def test_npy_file_in_any_byte_order_reads_without_warnings(fitted_on_2_features, tmp_path, rng, byte_order):
    X = (_X(rng) * 10).astype(byte_order)
    path = tmp_path / "x.npy"
    np.save(path, X)
    est = fitted_on_2_features
    np.testing.assert_array_equal(est.score_samples(path), est.score_samples(X.astype(np.float64)))


def test_fit_from_a_big_endian_npy_file(tmp_path, rng):
    X = _X(rng) * 10
    path = tmp_path / "x.npy"
    np.save(path, X.astype(">f8"))
    kw = dict(n_components=2, random_state=0, dtype="float64")
    np.testing.assert_array_equal(GaussianMixture(**kw).fit(path).means_, GaussianMixture(**kw).fit(X).means_)


# ---------------------------------------------------------------------- numerics at the edges


def _worked_example(covariance_type: str, dtype: str) -> GaussianMixture:
    """1-D mixture with means (0, 5), variances (1, 1), weights (0.5, 0.5), fitted with 0 iterations."""
    precisions = {"full": np.ones((2, 1, 1)), "tied": np.ones((1, 1)), "diag": np.ones((2, 1)), "spherical": np.ones(2)}
    X = np.concatenate([np.random.default_rng(3).normal(m, 1.0, 20) for m in (0.0, 5.0)])[:, None]
    est = GaussianMixture(
        2,
        covariance_type=covariance_type,
        weights_init=[0.5, 0.5],
        means_init=[[0.0], [5.0]],
        precisions_init=precisions[covariance_type],
        max_iter=0,
        dtype=dtype,
    ).fit(X)
    np.testing.assert_array_equal(est.means_.ravel(), [0.0, 5.0])
    np.testing.assert_allclose(est.covariances_.reshape(-1)[:1], [1.0])
    return est


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_a_point_far_from_every_component_stays_finite(covariance_type, dtype):
    est = _worked_example(covariance_type, dtype)
    x = np.array([[1e4], [-1e4], [2.5]])
    # log p(1e4) = log(0.5) - log(2 pi)/2 - 9995^2/2 + log(1 + exp(-(1e4^2 - 9995^2)/2)), the last term 0.
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    expected = np.array(
        [
            np.log(0.5) - half_log_2pi - 9995.0**2 / 2,
            np.log(0.5) - half_log_2pi - 1e8 / 2,
            -half_log_2pi - 2.5**2 / 2,  # both components at distance 2.5: weights sum to 1
        ]
    )
    scores = est.score_samples(x)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-6 if dtype == "float32" else 1e-12)
    proba = est.predict_proba(x)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(proba, [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], atol=1e-6)
    np.testing.assert_array_equal(est.predict(x[:2]), [1, 0])


def _assert_finite_fit(est: GaussianMixture, X: np.ndarray) -> None:
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.isfinite(getattr(est, name)).all(), name
    assert np.isfinite(est.lower_bound_)
    assert np.isfinite(est.score_samples(X)).all()
    proba = est.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(est.weights_.sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_constant_feature_fits_without_nan(covariance_type, dtype):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=40), np.full(40, 3.0), rng.normal(size=40)])
    X[:20, [0, 2]] += 6.0
    est = GaussianMixture(2, covariance_type=covariance_type, dtype=dtype, random_state=0).fit(X)
    _assert_finite_fit(est, X)
    np.testing.assert_allclose(est.means_[:, 1], 3.0, rtol=1e-6)
    if covariance_type == "diag":
        variances = est.covariances_[:, 1]
    elif covariance_type in ("full", "tied"):
        variances = est.covariances_[..., 1, 1]
    else:
        variances = est.covariances_
    assert (variances >= est.reg_covar * (1 - 1e-6)).all()
    if covariance_type != "spherical":  # the constant column's variance is reg_covar alone
        assert (variances <= 2 * est.reg_covar).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_identical_rows_fit_without_nan(covariance_type, dtype):
    X = np.tile([[1.0, 2.0, -1.0]], (30, 1))
    # k-means finds one cluster of two: scikit-learn's KMeans warns so, and so does bigem's start
    with pytest.warns(ConvergenceWarning, match=r"^Number of distinct clusters \(1\) found smaller than "
                                                r"n_clusters \(2\)\. Possibly due to duplicate points in X\.$"):
        est = GaussianMixture(2, covariance_type=covariance_type, dtype=dtype, random_state=0).fit(X)
    _assert_finite_fit(est, X)
    np.testing.assert_allclose(est.means_, np.tile(X[:1], (2, 1)), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_identical_rows_fit_one_component(covariance_type, dtype):
    X = np.tile([[1.0, 2.0, -1.0]], (30, 1))
    est = GaussianMixture(1, covariance_type=covariance_type, dtype=dtype, random_state=0).fit(X)
    _assert_finite_fit(est, X)
    np.testing.assert_allclose(est.covariances_.reshape(-1)[0], est.reg_covar, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_duplicated_points_one_component_each_fit_without_nan(covariance_type, dtype):
    X = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 10, axis=0)
    est = GaussianMixture(3, covariance_type=covariance_type, dtype=dtype, random_state=0).fit(X)
    _assert_finite_fit(est, X)
    assert est.converged_


def test_the_finite_check_is_exact_when_the_sum_overflows_or_cancels():
    """check_finite answers from one sum when it can: a sum that overflows from finite
    values is not a bad value, and inf - inf (a NaN sum) still counts two infs."""
    from bigem.sources.validate import check_finite

    x = torch.full((10, 2), 3e38, dtype=torch.float32)
    assert not torch.isfinite(x.sum()) and check_finite(x) is None
    x[3, 1] = float("nan")
    assert check_finite(x, row_start=100) == (1, 0, 103, 1)
    y = torch.zeros(6, 3, dtype=torch.float64)
    y[2, 0], y[4, 2] = float("inf"), -float("inf")
    assert check_finite(y) == (0, 2, 2, 0)


@pytest.mark.parametrize("scale, dtype", [(1e20, "float32"), (1e160, "float64")])
def test_values_whose_squares_overflow_are_refused_with_the_scale(scale, dtype):
    """Squared distances of such rows overflow the arithmetic: k-means++ used to fail in
    torch.multinomial (a raw RuntimeError), the E-step with a misleading one."""
    from bigem import GaussianHMM

    X = np.random.default_rng(0).normal(size=(300, 2)) * scale
    fix = r"rescale X \(for instance divide it by 1e\+\d+\)" + (", or pass dtype='float64'" if dtype == "float32" else "")
    with pytest.raises(DataError, match=rf"X holds values of magnitude .*overflow {dtype}.*{fix}"):
        GaussianMixture(2, dtype=dtype, random_state=0).fit(X)
    with pytest.raises(DataError, match=rf"overflow {dtype}"):
        GaussianHMM(2, dtype=dtype, random_state=0).fit(X)
    GaussianMixture(2, dtype=dtype, random_state=0).fit(X / scale)  # the same rows, rescaled


def test_values_beyond_float32_say_so():
    X = np.random.default_rng(0).normal(size=(50, 2)) * 1e300
    with pytest.raises(DataError, match=r"beyond the range of float32 .* pass dtype='float64'"):
        GaussianMixture(2).fit(X)


@pytest.mark.parametrize("as_file", [None, "csv", "npy"])
def test_a_value_beyond_float32_is_named_at_its_own_row(tmp_path, as_file):
    """1e300 under float32: the shift subtracted before the cast took it into its column's
    mean, so every row of the column became inf ("3 inf; first at row 0"), and a file
    added numpy's overflow warning (a .npy file still did); the value alone is named now,
    at its row and column."""
    X = np.array([[1.0, 2.0], [1e300, 3.0], [4.0, 5.0]])
    column = "0"
    if as_file == "csv":
        path = tmp_path / "big.csv"
        np.savetxt(path, X, delimiter=",", header="a,b", comments="", fmt="%.17g")
        X, column = str(path), "'a'"
    elif as_file == "npy":
        np.save(tmp_path / "big.npy", X)
        X = str(tmp_path / "big.npy")
    # in memory the value itself is known, and named (a file's first pass sees its float32 cast)
    said = (r"^X holds 1e\+300 at row 1, column 0, beyond the range of float32" if as_file is None
            else rf"\(1 inf; first at row 1, column {column}\)\..*beyond float32's range")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(DataError, match=said):
            GaussianMixture(1).fit(X)


def test_matrices_symmetric_to_eight_digits_are_taken_as_scikit_learn_and_hmmlearn_take_them():
    """Their test is numpy's allclose (rtol 1e-5); bigem's was rtol 1e-8, and refused a
    precision or covariance typed or read back to 8 digits."""
    from hmmlearn.hmm import GaussianHMM as TheirHMM
    from sklearn.mixture import GaussianMixture as TheirMixture

    from bigem import GaussianHMM

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(200, 2)), rng.normal(4, 1, (200, 2))]
    typed = np.array([[1.0, 0.3 * (1 + 1e-7)], [0.3, 0.6]])
    kw = dict(covariance_type="full", precisions_init=np.stack([typed] * 2), means_init=[[0, 0], [4, 4]],
              weights_init=[0.5, 0.5], max_iter=3, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (three iterations do not converge)
        ours, theirs = GaussianMixture(2, dtype="float64", **kw).fit(X), TheirMixture(2, **kw).fit(X)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-7)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-7)
    scores = []
    for cls, extra in ((TheirHMM, {}), (GaussianHMM, dict(dtype="float64"))):
        model = cls(2, covariance_type="full", init_params="", **extra)
        model.startprob_, model.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
        model.means_, model.covars_ = np.array([[0.0, 0.0], [4.0, 4.0]]), np.stack([typed] * 2)
        scores.append(model.score(X))
    assert scores[1] == pytest.approx(scores[0], rel=1e-12)


def test_a_sample_count_that_is_no_whole_number_says_so():
    """scikit-learn's message for fewer than one sample; 2.5 got the same words ("requires
    at least one sample"), which did not say what was wrong with it, and so did the
    structural models' sample."""
    from bigem import BernoulliMixture, MultinomialMixture, StepMix, StructuralModel

    X = np.random.default_rng(0).integers(0, 3, (60, 4)).astype(float)
    for est in (GaussianMixture(2, random_state=0).fit(X), BernoulliMixture(2, random_state=0).fit(X > 0),
                MultinomialMixture(2, random_state=0).fit(X)):
        for bad in (2.5, 2.0):
            with pytest.raises(ValueError, match=rf"^Invalid value for 'n_samples': {bad} \. The sampling requires an "
                                                 r"int, at least one \(got a float\)\.$"):
                est.sample(bad)
        for bad in (0, -1):
            with pytest.raises(ValueError, match=rf"^Invalid value for 'n_samples': {bad} \. The sampling requires at "
                                                 r"least one sample\.$"):
                est.sample(bad)
    Y = np.random.default_rng(1).normal(size=(60, 1))
    for est in (StructuralModel(BernoulliMixture(2, random_state=0), "gaussian").fit(X > 0, Y),
                StepMix(2, measurement="binary", structural="gaussian_unit", random_state=0).fit(X > 0, Y)):
        with pytest.raises(ValueError, match=r"^Invalid value for 'n_samples': 2\.5 \. The sampling requires an int"):
            est.sample(2.5)


@pytest.mark.parametrize("seed", [-1, 2**32, "x", 1.5])
def test_random_state_in_sklearns_range(seed, rng):
    """scikit-learn takes ints in [0, 2^32) (numpy's RandomState takes no other), and says so."""
    sk_mixture = pytest.importorskip("sklearn.mixture")
    with pytest.raises(Exception) as theirs:
        sk_mixture.GaussianMixture(random_state=seed).fit(_X(rng))
    with pytest.raises(ParameterError) as ours:
        GaussianMixture(random_state=seed).fit(_X(rng))
    assert isinstance(theirs.value, (ValueError, TypeError))
    assert isinstance(ours.value, ValueError) and isinstance(ours.value, TypeError)  # as InvalidParameterError
    words = ("The 'random_state' parameter of GaussianMixture must be an int in the range [0, 4294967295], an "
             "instance of")
    assert str(theirs.value).startswith(words) and str(ours.value).startswith(words)
    assert str(ours.value).endswith(f"Got {seed!r} instead.")
    GaussianMixture(random_state=2**32 - 1, max_iter=2).fit(_X(rng))  # the ends of the range are taken
    GaussianMixture(random_state=0, max_iter=2).fit(_X(rng))


def test_a_npy_files_nan_is_named_at_the_files_column_when_columns_are_picked(tmp_path, rng):
    """columns=[2, 0] reads the file's columns 2 and 0: a NaN in column 2 was named as
    the selection's column 0 (audit AV)."""
    X = _X(rng, d=4)
    X[7, 2] = np.nan
    np.save(tmp_path / "c.npy", X)
    for columns in ([2, 0], [0, 2]):
        with pytest.raises(DataError, match=r"\(1 NaN; first at row 7, column 2\)"):
            GaussianMixture(2).fit(str(tmp_path / "c.npy"), columns=columns)


@pytest.mark.parametrize("where", ["bootstrap", "hmm sample", "hc", "blrt", "classifier cv", "stepmix bootstrap"])
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_every_method_that_takes_a_seed_takes_scikit_learns_range(where, seed, rng):
    """hmmlearn's sample and StepMix's bootstrap refuse these (numpy's RandomState takes
    no other int); bigem's took them, or failed in numpy (audit AV)."""
    import bigem

    X = _X(rng, n=60)
    y = np.repeat([0, 1], 30)
    call = {
        "bootstrap": lambda: GaussianMixture(2, random_state=0).fit(X).bootstrap(X, n_boot=2, random_state=seed),
        "hmm sample": lambda: bigem.GaussianHMM(2, n_iter=2, random_state=0).fit(X).sample(5, random_state=seed),
        "hc": lambda: bigem.hc(X, random_state=seed),
        "blrt": lambda: bigem.blrt(GaussianMixture(1), GaussianMixture(2), X, n_boot=2, random_state=seed),
        "classifier cv": lambda: bigem.MixtureClassifier().fit(X, y).cv(X, y, n_folds=2, random_state=seed),
        "stepmix bootstrap": lambda: bigem.StepMix(2, measurement="continuous", verbose=0).fit(X).bootstrap(
            X, n_repetitions=2, random_state=seed),
    }[where]
    with pytest.raises(ParameterError, match=r"^The 'random_state' parameter must be an int in the range "
                                             r"\[0, 4294967295\]"):
        call()


def test_a_memory_budget_below_one_byte_is_refused(rng):
    """'0.5' read as 0.5 bytes was taken as a budget of 0 (audit AV), where 0 is refused."""
    with pytest.raises(ParameterError, match=r"^The 'memory_budget' parameter of GaussianMixture must be a positive "
                                             r"number of bytes"):
        GaussianMixture(2, memory_budget="0.5").fit(_X(rng))
    assert GaussianMixture(2, cache_budget="0.5").fit(_X(rng)).converged_  # a cache of 0 bytes: none, as 0 is


def _blobs_frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))


@pytest.mark.parametrize("call, error, message", [
    # each raised a raw exception from numpy, torch or Python (audit BD)
    (lambda X: bigem.CategoricalMixture(2).fit(None), DataError, r"^X must be an array, tensor, DataFrame"),
    (lambda X: bigem.PoissonMixture(2).fit([[1, 2], [3]] * 10), DataError, r"^X could not be converted to an array"),
    (lambda X: bigem.CategoricalMixture(2).fit(np.random.default_rng(0).normal(size=40)), DataError,
     r"^Expected 2D array, got 1D array instead"),
    (lambda X: bigem.CategoricalMixture(2).fit(np.random.default_rng(0).normal(size=(40, 3)) * 1e300), DataError,
     r"too large to be a category's code"),
    (lambda X: GaussianMixture(2, unlabeled_weight=1.0).fit(X, y="zz"), DataError,
     r"^y='zz' names a label column, but X has no column 'zz'; it has \['a', 'b', 'c'\]"),
    # an array has no columns to name: this fit was unsupervised, warning that y labels no row (audit BK)
    (lambda X: GaussianMixture(2, unlabeled_weight=0.5).fit(X.to_numpy(), y="label"), DataError,
     r"^y='label' names a label column, but X is an array, whose columns have no names; pass y as labels"),
    (lambda X: bigem.CategoricalMixture(2, unlabeled_weight=0.5).fit(X.to_numpy() > 0, y="label"), DataError,
     r"^y='label' names a label column, but X is an array"),
    (lambda X: GaussianMixture(2).fit(X, columns=0), DataError,
     r"^columns= must be a list of column names .*got 0; for one column pass a list of it, columns=\[0\]"),
    (lambda X: GaussianMixture(2).fit(X).predict(X, columns="a"), DataError, r"columns=\['a'\]"),
    (lambda X: GaussianMixture(2).fit(X).predict(X, out=np.empty(60)), bigem.errors.OutputPathError,
     r"^the output path must be a str or os\.PathLike \(a file name\), got ndarray"),
    (lambda X: GaussianMixture(2).fit(X).save(None), bigem.errors.OutputPathError, r"^the model path must be a str"),
    (lambda X: bigem.load(None), bigem.errors.ModelFileError, r"^a model file's path must be a str or os\.PathLike"),
    (lambda X: bigem.blrt(bigem.GaussianHMM(1).fit(X), bigem.GaussianHMM(2).fit(X), X, n_boot=2), ParameterError,
     r"^blrt compares two bigem mixtures .*got GaussianHMM: an HMM's replicates would be sequences"),
    (lambda X: bigem.blrt("a", "b", X, n_boot=2), ParameterError, r"^blrt compares two bigem mixtures .*got str$"),
    (lambda X: bigem.hc(X.to_numpy()).labels("x"), ParameterError, r"^labels\(k\) takes the number of classes"),
    (lambda X: bigem.StepMix(2, measurement_params="x").fit(X), ParameterError,
     r"'measurement_params' parameter of StepMix must be a dict or None"),
    (lambda X: bigem.BayesianGaussianMixture(n_components=2, dtype="float64").fit(X.to_numpy() * 1e300), DataError,
     r"^X's covariance overflows float64"),
    (lambda X: bigem.PoissonHMM(2, lambdas_prior=-50).fit(np.ones((20, 2))), ParameterError,
     r"'lambdas_prior' parameter of PoissonHMM must be finite and non-negative"),
    (lambda X: bigem.GMMHMM(2, n_mix=2, weights_prior=-5).fit(X), ParameterError,
     r"'weights_prior' parameter of GMMHMM must be finite and non-negative"),
    (lambda X: bigem.MixtureClassifier(n_components={7: 2}).fit(X, np.r_[np.zeros(30), np.ones(30)]), ParameterError,
     r"n_components must be None, an int or an iterable of ints .* the candidates of every class; got \{7: 2\}"),
    (lambda X: GaussianMixture(2).fit(np.r_[X.to_numpy()[:-1], [[1e39, 0, 0]]]), DataError,
     r"^X holds 1e\+39 at row 59, column 0, beyond the range of float32 \(about 3\.4e\+38\), which the fit computes "
     r"in: pass dtype='float64', or rescale X"),
    (lambda X: GaussianMixture(2).fit(np.array(["2020-01-01", "2021-01-01"] * 20, dtype="datetime64[D]").reshape(20, 2)),
     DataError, r"is not numeric \(dtype datetime64\[D\]\): dates and times are not features as they are"),
    (lambda X: GaussianMixture(2).fit(bigem.Tokens("docs.parquet")), DataError,
     r"^Tokens \(documents as lists of word ids\) are read by MultinomialMixture and MultinomialHMM"),
], ids=lambda v: "" if callable(v) or isinstance(v, type) else v[:40])
def test_bad_arguments_get_bigems_words_not_a_raw_exception(call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the HMMs' fits before blrt: their monitor's lines)
        with pytest.raises(error, match=message):
            call(_blobs_frame())


def test_a_model_file_path_may_be_bytes(tmp_path):
    path = tmp_path / "m.bigem"
    GaussianMixture(2, random_state=0).fit(_blobs_frame().to_numpy()).save(path)
    assert type(bigem.load(bytes(path))).__name__ == "GaussianMixture"


def test_a_hand_set_means_of_another_width_is_named_not_the_covariances():
    X = _blobs_frame().to_numpy()
    hmm = bigem.GaussianHMM(2, init_params="stc")
    hmm.means_ = np.zeros((2, 5))
    with pytest.raises(ParameterError, match=r"^means_ holds 5 columns but X has 3 features: give it 3 columns"):
        hmm.fit(X)


def test_stepmix_refuses_nan_in_y_where_its_model_takes_none_as_stepmix_does():
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 2, (80, 4)), rng.normal(size=(80, 1))
    Y[5] = np.nan
    with pytest.raises(DataError, match=r"^Input Y contains NaN\. \(1 NaN; first at row 5, column 0\)\. Drop or "
                                        r"impute these values first, or use the models' '_nan' variants"):
        bigem.StepMix(2, structural="gaussian_unit", progress_bar=0).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bigem.errors.ConvergenceWarning)  # (noise data: EM's tolerance is 1e-10)
        fitted = bigem.StepMix(2, structural="gaussian_unit_nan", progress_bar=0, random_state=0).fit(X, Y)
    assert np.isfinite(fitted.get_parameters()["structural"]["means"]).all()
