"""Inputs from an adversarial corpus (issue #15): each used to end in a raw or misleading
error, or in a silent wrong answer; each now fails with a message that says what, where
and how to fix it, or does what a careful user expects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bigem import Files, GaussianHMM, GaussianMixture
from bigem._core.errors import DataError, ParameterError
from bigem.sources.validate import NonNumericDataError

X = np.random.default_rng(0).normal(size=(300, 2))


# ---------------------------------------------------------------------- sample_weight
@pytest.mark.parametrize(
    "weights, detail",
    [
        (["a"] * 300, "could not convert string to float: 'a'"),
        ({"a": 1.0}, "got a dict"),
        ([[1.0, 2.0], [3.0]], "inhomogeneous"),
    ],
    ids=["strings", "dict", "ragged"],
)
def test_sample_weight_that_is_not_numbers_names_sample_weight(weights, detail):
    with pytest.raises(NonNumericDataError, match="sample_weight") as info:
        GaussianMixture(2).fit(X, sample_weight=weights)
    assert detail in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_weights_whose_total_overflows_are_named_not_blamed_on_a_row():
    """Each 1e307 is finite, their sum is not: fit blamed row 0 for zero density, and
    score returned NaN."""
    from bigem import CategoricalMixture

    weights = np.full(300, 1e307)
    with pytest.raises(DataError, match=r"sample_weight sums to more than float64 holds .*rescale the weights"):
        GaussianMixture(2).fit(X, sample_weight=weights)
    fitted = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(DataError, match="sample_weight sums to more than float64 holds"):
        fitted.score(X, sample_weight=weights)
    with pytest.raises(DataError, match="sample_weight sums to more than float64 holds"):
        CategoricalMixture(2).fit(np.where(X > 0, "a", "b"), sample_weight=weights)
    GaussianMixture(2, random_state=0).fit(X, sample_weight=np.full(300, 1e305))  # the total holds: fits


# ---------------------------------------------------------------------- devices
@pytest.mark.parametrize(
    "device, why",
    [("meta", "a 'meta' tensor holds no values"), ("mps", "MPS backend has no float64"), ("xla", "'cpu' or 'cuda' only")],
)
@pytest.mark.parametrize("kind", [GaussianMixture, GaussianHMM])
def test_devices_bigem_cannot_compute_on_are_refused_before_any_work(kind, device, why):
    with pytest.raises(ParameterError, match=rf"^device '{device}' is not supported: .*{why}.*; use device='cpu'"):
        kind(2, device=device).fit(X)


def test_a_cuda_device_beyond_those_present_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ParameterError, match=r"device 'cuda:3' requested but this machine has 1 CUDA device\(s\)"):
        GaussianMixture(2, device="cuda:3").fit(X)


# ---------------------------------------------------------------------- callables and flags
def test_a_callback_that_is_not_callable_is_refused_before_fitting():
    with pytest.raises(ParameterError, match=r"^callback must be a function of one argument .* got 5$"):
        GaussianMixture(2).fit(X, callback=5)


def test_verbose_true_is_verbose_one_as_in_scikit_learn(capsys):
    GaussianMixture(2, verbose=True, random_state=0).fit(X)
    assert "Initialization 0" in capsys.readouterr().out


# ---------------------------------------------------------------------- Files
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(path=None), r"Files\(path=\.\.\.\) must be a path, a folder, a glob or a non-empty list of them; got None"),
        (dict(path=[]), r"Files\(path=\.\.\.\) must be a path"),
        (dict(path="a.csv", columns="x"), r"Files\(columns=\.\.\.\) must be a list of column names"),
        (dict(path="a.csv", format="xlsx"), r"Files\(format=\.\.\.\) must be one of"),
        (dict(path="a.csv", delimiter=",,"), r"Files\(delimiter=\.\.\.\) must be one character"),
        (dict(path="a.csv", delimiter='"'), r"Files\(delimiter=\.\.\.\) must be one character"),
        (dict(path="a.csv", header="no"), r"Files\(header=\.\.\.\) must be True or False"),
    ],
)
def test_files_options_are_checked_when_made(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        Files(**kwargs)


# ---------------------------------------------------------------------- HMM lengths
@pytest.mark.parametrize(
    "lengths, message",
    [
        ([2**62, 2**62, 2**62, 2**62 + 300], r"lengths\[0\] is 4611686018427387904, more than the 300 rows of X"),
        ([2**63 - 1, 2], r"lengths\[0\] is 9223372036854775807, more than the 300 rows of X"),
        (np.array([2**64 - 1, 1], dtype=np.uint64), r"lengths\[0\] is 18446744073709551615, more than the 300 rows"),
        ([1e30, 3.0], r"lengths\[0\] is 1000000000000000019884624838656, more than the 300 rows"),
        ([-(2**70), 3], r"lengths\[0\] is -1180591620717411303424: a sequence.s length is its number of rows, "
                        r"which cannot be negative"),
        # the negative length came first; the long one after it was blamed
        ([-10, 310], r"lengths\[0\] is -10: a sequence.s length is its number of rows, which cannot be negative"),
    ],
    ids=["sum-wraps", "int64-max", "uint64", "float", "below-int64", "negative-first"],
)
def test_lengths_whose_sum_would_wrap_around_are_refused_by_the_culprit(lengths, message):
    with pytest.raises(DataError, match=message):
        GaussianHMM(2).fit(X, lengths)


# ---------------------------------------------------------------------- DataFrames
def test_a_dataframe_with_two_columns_of_one_name_is_refused_when_selected_by_name():
    df = pd.DataFrame(np.c_[X, X[:, :1]], columns=["a", "b", "a"])
    with pytest.raises(DataError, match=r"X has more than one column named 'a' at positions \[0, 2\]; .*rename or drop"):
        GaussianMixture(2).fit(df, columns=["a", "b"])
    with pytest.raises(DataError, match=r"columns lists \['b'\] more than once"):
        GaussianMixture(2).fit(df, columns=["b", "b"])
    with pytest.raises(DataError, match="more than one column named 'a'"):
        GaussianMixture(2).fit(df.assign(w=1.0), sample_weight="a")
    with pytest.raises(DataError, match="more than one column named 'a'"):
        GaussianHMM(2).fit(df, columns=["b"], sequence_column="a")


# ---------------------------------------------------------------------- sample sizes
@pytest.mark.parametrize("kind", [GaussianMixture, GaussianHMM])
def test_a_sample_larger_than_memory_is_refused_before_allocating(kind):
    est = kind(2, random_state=0).fit(X)
    with pytest.raises(ParameterError, match=r"^n_samples=99,999,999,999,999 draws of 2 value\(s\) and a label would "
                                             r"need 2\.4 PB of memory, more than this machine's .*draw at most about"):
        est.sample(99_999_999_999_999)


# ---------------------------------------------------------------------- MAP steps of HMMs
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.filterwarnings("ignore::bigem._core.errors.CollapsedStateWarning")
def test_a_tiny_gaussian_hmm_fit_reports_no_likelihood_decrease(covariance_type, rows):
    """One row: its covariance starts at min_covar (1e-3); the MAP step under
    hmmlearn's default prior (covars_prior=1e-2) moves it to 1e-2, trading likelihood for
    prior, which is no bug (filterwarnings=error turns the warning into a failure). A
    full or tied matrix of one row is singular (hmmlearn's scalar covars_prior adds to
    every entry): min_covar mends it, with a warning of its own, not a decrease."""
    GaussianHMM(1, covariance_type=covariance_type, random_state=0).fit(X[:rows])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_map_steps_raise_likelihood_plus_prior_by_what_they_report(covariance_type, monkeypatch):
    """The prior gain a MAP step reports is what lets the next likelihood fall: likelihood
    plus prior never falls (the likelihood alone falls in the diag fit here)."""
    from bigem.models import hmm

    seen = []
    m_step = hmm.HMMModel.m_step

    def recording(self, stats, params):
        step = m_step(self, stats, params)
        seen.append((float(stats.loglik), step.report.prior_gain * stats.rows))
        return step

    monkeypatch.setattr(hmm.HMMModel, "m_step", recording)
    GaussianHMM(2, covariance_type=covariance_type, covars_prior=0.5, covars_weight=4, means_weight=2.0, means_prior=1.0,
                startprob_prior=3.0, transmat_prior=2.0, random_state=0, n_iter=20, tol=0.0, dtype="float64",
                ).fit(np.random.default_rng(1).normal(size=(12, 3)), [6, 6])
    for (ll, gain), (ll_next, _) in zip(seen, seen[1:]):
        assert ll_next - ll + gain >= -1e-9 * (abs(ll) + 1)


# ---------------------------------------------------------------------- categorical symbols
@pytest.mark.parametrize("symbol", [2**20, 10**9, 2**62])
def test_a_huge_symbol_is_refused_with_a_hint_to_re_code(symbol):
    """A symbol of 1e9 made emissionprob_ (K, 1e9) (killed for memory); 2**62 overflowed."""
    from bigem import CategoricalHMM

    X = np.tile(np.arange(4), 10)[:, None]
    X[5, 0] = symbol
    with pytest.raises(DataError, match=rf"^X holds symbol {symbol} at row 5: CategoricalHMM takes symbols 0\.\.1048575 "
                                        r"\(2\*\*20\) unless n_features says more.*re-code the symbols as 0\.\.M-1"):
        CategoricalHMM(2).fit(X)
    X[5, 0] = 2**20 - 1  # the largest symbol taken without n_features
    assert CategoricalHMM(2, n_iter=1).fit(X).emissionprob_.shape == (2, 2**20)


def test_symbols_beyond_exact_float32_integers_need_float64():
    from bigem import CategoricalHMM

    X = np.tile(np.arange(4), 10)[:, None]
    X[5, 0] = 2**24 + 1  # float32 would read 2**24
    with pytest.raises(ParameterError, match=r"^n_features=33554432 symbols: with dtype='float32' the symbols above "
                                             r"2\*\*24 = 16,777,216 are not exact .*pass dtype='float64'"):
        CategoricalHMM(2, n_features=2**25).fit(X)


def test_a_symbol_count_beyond_memory_is_refused_before_allocating():
    from bigem import CategoricalHMM

    with pytest.raises(ParameterError, match=r"^1,000,000,000,000 symbols for 2 states would need 64 TB of memory"):
        CategoricalHMM(2, n_features=10**12, dtype="float64").fit(np.tile(np.arange(4), 10)[:, None])


def test_file_columns_that_name_the_model_s_features_in_another_order_are_refused(tmp_path):
    """columns= are read as the fitted features by position: the fitted names in another
    order would swap the features without a word, so they are refused; other names map
    by position (a file whose columns are named otherwise)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal((0, 5), 0.5, (200, 2)), rng.normal((5, 0), 0.5, (200, 2))])
    pd.DataFrame(X, columns=["a", "b"]).to_csv(tmp_path / "ab.csv", index=False)
    pd.DataFrame(X, columns=["c", "d"]).to_csv(tmp_path / "cd.csv", index=False)
    gm = GaussianMixture(2, random_state=0).fit(tmp_path / "ab.csv")
    with pytest.raises(DataError, match=r"columns \['b', 'a'\] name the model's features at other positions"):
        gm.predict(tmp_path / "ab.csv", columns=["b", "a"])
    expected = gm.predict(pd.DataFrame(X, columns=["a", "b"]))
    np.testing.assert_array_equal(gm.predict(tmp_path / "cd.csv", columns=["c", "d"]), expected)
    np.testing.assert_array_equal(gm.predict(tmp_path / "ab.csv", columns=["a", "b"]), expected)
