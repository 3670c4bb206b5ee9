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
