"""``bigem.stepmix`` mirrors the stepmix package's modules: code that imports StepMix's
estimators, bootstrap functions and helpers from ``stepmix`` runs on bigem by changing
the package name, with StepMix's answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bigem

stepmix = pytest.importorskip("stepmix")


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(3)
    z = rng.integers(0, 3, 1200)
    profile = np.array([[.9, .9, .9, .1, .1, .1], [.1, .1, .9, .9, .9, .1], [.1, .1, .1, .1, .9, .9]])
    return (rng.random((1200, 6)) < profile[z]).astype(float), z


def test_the_modules_have_stepmixs_names():
    from bigem.stepmix import StepMix as top
    from bigem.stepmix.bootstrap import blrt, blrt_sweep, bootstrap  # noqa: F401
    from bigem.stepmix.stepmix import StepMix, StepMixClassifier
    from bigem.stepmix.utils import get_mixed_descriptor  # noqa: F401

    assert StepMix is top is bigem.StepMix and StepMixClassifier is bigem.StepMixClassifier
    import inspect

    import stepmix.bootstrap as theirs

    import bigem.stepmix.bootstrap as ours
    for name in ("bootstrap", "blrt", "blrt_sweep"):
        a, b = inspect.signature(getattr(theirs, name)), inspect.signature(getattr(ours, name))
        assert list(a.parameters) == list(b.parameters), name
        assert all(a.parameters[p].default == b.parameters[p].default for p in a.parameters), name


def test_get_mixed_descriptor_is_stepmixs():
    from stepmix.utils import get_mixed_descriptor as theirs

    from bigem.stepmix.utils import get_mixed_descriptor as ours

    df = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0], "c": [2.0, 0.0], "d": [1.5, 2.5]})
    kw = dict(continuous=["a", "d"], binary=["b"], categorical_nan=["c"])
    (frame_a, desc_a), (frame_b, desc_b) = theirs(df, **kw), ours(df, **kw)
    assert desc_a == desc_b and list(frame_a.columns) == list(frame_b.columns)


def test_blrt_rejects_too_few_classes_and_keeps_enough(items, capsys):
    """Three classes generate the items: 1 against 2 and 2 against 3 are rejected (p = 0
    of 10 draws), 3 against 4 is not (StepMix's own sweep of these data, at its default
    abs_tol, gives 0, 0 and 1.0; its 1 against 2 is checked here beside ours)."""
    from stepmix.bootstrap import blrt as theirs

    from bigem.stepmix.bootstrap import blrt, blrt_sweep

    X, _ = items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine = blrt_sweep(bigem.StepMix(1, random_state=0, n_init=2, abs_tol=1e-6), X, low=1, high=4, n_repetitions=10,
                          random_state=0)
    printed = capsys.readouterr().out
    for line in ("Testing 1 vs. 2 classes...", "Bootstrapping null model...", "Bootstrapping alternative model...",
                 "Bootstrapping estimator...", "BLRT Sweep Results"):
        assert line in printed, line  # StepMix's words
    assert list(mine.index) == ["1 vs. 2 classes", "2 vs. 3 classes", "3 vs. 4 classes"]
    assert mine["p"].iloc[0] == 0.0 and mine["p"].iloc[1] == 0.0 and mine["p"].iloc[2] > 0.5
    kw = dict(random_state=0, abs_tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = theirs(stepmix.StepMix(1, verbose=0, progress_bar=0, **kw), stepmix.StepMix(2, verbose=0,
                                                                                           progress_bar=0, **kw),
                     X, n_repetitions=5, random_state=0)
    assert blrt(bigem.StepMix(1, **kw), bigem.StepMix(2, **kw), X, n_repetitions=5, random_state=0) == ref == 0.0


def test_a_quiet_sweep_still_names_each_test_as_stepmixs_does(items, capsys):
    from bigem.stepmix.bootstrap import blrt_sweep

    X, _ = items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blrt_sweep(bigem.StepMix(1, random_state=0), X, low=1, high=2, n_repetitions=2, random_state=0, verbose=False)
    printed = capsys.readouterr().out
    assert "Testing 1 vs. 2 classes..." in printed and "BLRT Sweep Results" not in printed


def test_the_simulated_data_sets_are_stepmixs_designs():
    """Each function of bigem.stepmix.datasets returns what StepMix's returns (types,
    shapes, column names) and draws from its design: the class shares, item
    probabilities and outcome means are the generating ones within 4 standard errors."""
    import stepmix.datasets as theirs

    import bigem.stepmix.datasets as ours

    calls = {"data_bakk_response": (400, 0.8), "data_bakk_covariate": (400, 0.8), "data_bakk_complete": (400, 0.8),
             "data_bakk_complex": (400, 0.8), "data_generation_gaussian": (400, 0.8),
             "data_gaussian_binary": (400,), "data_gaussian_categorical": (400,), "data_gaussian_diag": (400, 0.8)}
    for name, args in calls.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, got = getattr(theirs, name)(*args, random_state=1), getattr(ours, name)(*args, random_state=1)
        for a, b in zip(ref, got, strict=True):
            assert type(a) is type(b) and np.shape(a) == np.shape(b), name
            if hasattr(a, "columns"):
                assert list(a.columns) == list(b.columns)
            else:
                assert np.asarray(a).dtype == np.asarray(b).dtype, name
    n = 20000
    X, Y, labels = ours.data_bakk_response(n, 0.8, random_state=0)
    assert np.abs(np.bincount(labels) / n - 1 / 3).max() < 4 * np.sqrt(2 / 9 / n)
    pis = ours.bakk_measurements(3, 6, 0.8).T
    for k in range(3):
        rows = labels == k
        assert np.abs(X[rows].mean(0) - pis[k]).max() < 4 * np.sqrt(0.16 / rows.sum())
        assert abs(Y[rows, 0].mean() - [-1, 1, 0][k]) < 4 / np.sqrt(rows.sum())
    X, Z, labels = ours.data_bakk_covariate(n, 0.8, random_state=0)
    logits = Z * np.array([0.0, -1.0, 1.0]) + np.array([0.0, 2.34459467, -3.65540533])
    expected = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).mean(0)
    assert np.abs(np.bincount(labels, minlength=3) / n - expected).max() < 4 * np.sqrt(0.25 / n)
    X, Y, labels = ours.data_gaussian_categorical(n, random_state=0)
    assert abs(np.mean(Y[labels == 0, 0] == 0) - 0.8) < 4 * np.sqrt(0.16 / (labels == 0).sum())
    np.testing.assert_allclose(np.cov(X[labels == 1].T), [[0.2104, 0.2904], [0.2904, 12.2392]], rtol=0.1)
    X, Y, _ = ours.data_gaussian_diag(2000, 0.8, random_state=0, nan_ratio=0.2)
    assert 0.17 < np.isnan(np.hstack((X, Y))).mean() < 0.23
