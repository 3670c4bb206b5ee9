"""The workspace's memo of derived values (a pass's prepared parameters).

Each source (by identity) is prepared once while it is in use, one run's parameters or
several runs' in lockstep (asked in turn, chunk after chunk, then by each run's M-step);
the memo never holds more than three sources a run, so a long fit does not pile up a prepared
copy of every pass's parameters: neither where a pass reads many chunks nor where it reads
one (small data), whose sources are each asked once.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

from bigem import GaussianHMM, GaussianMixture, MultinomialMixture, PoissonMixture
from bigem.errors import ConvergenceWarning

from bigem._core.workspace import Workspace, in_turn

CPU = torch.device("cpu")


class Source:
    """A stand-in for immutable parameters: compared by identity."""


def _asking(ws: Workspace, made: list):
    def ask(source, device=CPU):
        return ws.derived("prepared", source, device, lambda: made.append(source) or ("prepared", source))
    return ask


def _held(ws: Workspace) -> int:
    return len(ws._local.memo["prepared"]["entries"])


def test_one_source_is_made_once_and_a_new_one_replaces_it_within_a_pass():
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    first, second, third = Source(), Source(), Source()
    for source in (first, second, third):
        for _ in range(50):  # 50 chunks of a pass
            assert ask(source) == ("prepared", source)
    assert made == [first, second, third]
    assert _held(ws) <= 3  # the one in use and the last passes' ones


@pytest.mark.parametrize("runs", [1, 3, 12])
def test_restarts_in_lockstep_are_each_made_once_a_pass(runs):
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    for _ in range(4):  # passes
        params = [Source() for _ in range(runs)]
        for _ in range(30):  # chunks, each read by every run in turn (as the driver's Lockstep asks)
            with in_turn(runs):
                for p in params:
                    assert ask(p)[1] is p
        assert made[-runs:] == params
        assert _held(ws) <= 3 * runs
    assert len(made) == 4 * runs


@pytest.mark.parametrize("runs", [1, 3])
def test_passes_of_one_chunk_keep_no_more_than_the_last_ones(runs):
    """Where a pass reads one chunk, each source is asked once and then never again: the
    memo keeps the last pass's, not all of them (it held every pass's, 1001 after 1000)."""
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    for _ in range(1000):
        with in_turn(runs):
            for p in [Source() for _ in range(runs)]:
                assert ask(p)[1] is p
    assert len(made) == 1000 * runs
    assert _held(ws) <= 3 * runs


def test_in_turn_is_restored_after_it_and_on_error():
    ws, made = Workspace(), []
    ask = _asking(ws, made)
    with pytest.raises(KeyError), in_turn(5):
        raise KeyError
    for _ in range(10):
        ask(Source())
    assert _held(ws) <= 3


def test_a_source_is_made_again_for_another_device_and_names_do_not_share():
    ws, made = Workspace(), []
    source = Source()
    ws.derived("a", source, CPU, lambda: made.append("a") or 1)
    ws.derived("b", source, CPU, lambda: made.append("b") or 2)
    assert ws.derived("a", source, CPU, lambda: 3) == 1
    assert ws.derived("a", source, torch.device("meta"), lambda: made.append("meta") or 4) == 4
    assert made == ["a", "b", "meta"]


def test_each_thread_has_its_own_memo():
    ws, made = Workspace(), []
    source = Source()
    ws.derived("a", source, CPU, lambda: made.append("main") or 1)
    thread = threading.Thread(target=lambda: ws.derived("a", source, CPU, lambda: made.append("other") or 2))
    thread.start()
    thread.join()
    assert made == ["main", "other"]



@pytest.mark.parametrize("make", [
    lambda: GaussianMixture(3, covariance_type="full", max_iter=200, tol=0, random_state=0),
    lambda: GaussianMixture(3, covariance_type="diag", n_init=3, max_iter=200, tol=0, random_state=0),
    lambda: PoissonMixture(3, max_iter=200, tol=0, random_state=0),
    lambda: GaussianHMM(3, n_iter=200, tol=-1e300, random_state=0),
], ids=["gmm", "gmm-lockstep", "poisson", "hmm"])
def test_a_long_fit_of_small_data_holds_the_last_passes_parameters_only(monkeypatch, make):
    """A fit whose passes read one chunk: each memo holds at most three entries a run (it
    held one a pass, 201 after 200 iterations, and its scan grew each iteration's time)."""
    held: dict[str, int] = {}
    derived = Workspace.derived

    def counting(self, name, source, device, fn):
        value = derived(self, name, source, device, fn)
        held[name] = max(held.get(name, 0), len(self._local.memo[name]["entries"]))
        return value

    monkeypatch.setattr(Workspace, "derived", counting)
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(150, 3)) + rng.integers(0, 3, 150)[:, None] * 4).round()
    estimator = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x)
    assert held and max(held.values()) <= 3 * getattr(estimator, "n_init", 1), held


def test_restarts_in_lockstep_take_each_runs_logarithms_once_an_iteration(monkeypatch):
    """The multinomial's log-probabilities serve a pass's E-step and its M-step's prior
    gain (old and new parameters, each run in turn): once a run an iteration, with two
    runs as with one (a memo that kept one run's sources took them twice as often)."""
    made: dict[str, int] = {}
    derived = Workspace.derived

    def counting(self, name, source, device, fn):
        return derived(self, name, source, device, lambda: made.__setitem__(name, made.get(name, 0) + 1) or fn())

    monkeypatch.setattr(Workspace, "derived", counting)
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, size=(3000, 6)) * (1 + rng.integers(0, 3, 3000)[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MultinomialMixture(3, n_init=2, max_iter=20, tol=0, chunk_size=500, random_state=0).fit(x)
    assert made["log_probabilities"] <= 2 * (20 + 3), made
