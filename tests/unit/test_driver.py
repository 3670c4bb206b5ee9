"""The EM driver: convergence, warnings, history, restarts, callbacks, the monotonicity check."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from bigem._core.errors import ConvergenceWarning, LikelihoodDecreaseWarning
from bigem.em.driver import fit_em, run_em
from bigem.engines import LocalEngine
from bigem.sources import TensorSource
from tests.conftest import make_blobs


@dataclass(frozen=True)
class _Stats:
    loglik: float
    rows: int

    def __add__(self, other):
        return _Stats(self.loglik + other.loglik, self.rows + other.rows)

    @property
    def mean_loglik(self):
        return self.loglik / self.rows


class _ScriptedModel:
    """A fake model whose log-likelihood follows a script: tests the driver alone."""

    def __init__(self, script):
        self.script = list(script)

    def e_step(self, params, chunk):
        return _Stats(self.script[params] * chunk.n_rows, chunk.n_rows)

    def m_step(self, stats):
        self._last += 1
        return self._last

    def decrease_tolerance(self, params, ll):
        return 1e-9

    _last = 0


def _source():
    return TensorSource(torch.zeros(10, 1), None, chunk_rows=4)


def test_driver_warns_when_likelihood_falls():
    model = _ScriptedModel([-3.0, -2.0, -2.5, -2.4, -2.4])
    with pytest.warns(LikelihoodDecreaseWarning, match="decreased from -2 to -2.5 at iteration 3"):
        run_em(model, LocalEngine(), _source(), 0, max_iter=5, tol=1e-3)


def test_driver_stops_on_tol_with_sklearn_semantics():
    model = _ScriptedModel([-3.0, -2.0, -1.9, -1.8999, -1.8])
    result = run_em(model, LocalEngine(), _source(), 0, max_iter=10, tol=1e-3)
    assert result.converged and result.n_iter == 4
    assert result.lower_bound == pytest.approx(-1.8999)  # likelihood of the params entering the last step
    assert result.params == 4  # parameters after the last M-step
    assert result.history == pytest.approx([-3.0, -2.0, -1.9, -1.8999])


def test_fit_em_keeps_best_restart_and_warns_if_it_did_not_converge():
    scripts = {0: [-5.0, -4.0, -3.0], 1: [-2.0, -1.0, -0.5]}

    models = {r: _ScriptedModel(s) for r, s in scripts.items()}
    calls = []

    class Dispatch:
        current = 0

        def e_step(self, params, chunk):
            return models[self.current].e_step(params, chunk)

        def m_step(self, stats):
            return models[self.current].m_step(stats)

        def decrease_tolerance(self, params, ll):
            return 1e-9

    dispatch = Dispatch()

    def init(restart):
        dispatch.current = restart
        calls.append(restart)
        return 0

    with pytest.warns(ConvergenceWarning, match="did not converge"):
        best, runs = fit_em(dispatch, LocalEngine(), _source(), init, n_init=2, max_iter=3, tol=1e-6)
    assert calls == [0, 1] and best.restart == 1 and best.lower_bound == -0.5
    assert [r.lower_bound for r in runs] == [-3.0, -0.5]


def test_estimator_records_history_and_calls_back():
    X, _, _ = make_blobs(0, n_per=100, d=2)
    seen = []
    gm = GaussianMixture(3, n_init=2, random_state=0, dtype="float64").fit(X, callback=seen.append)
    assert len(gm.history_) == 2 and all(h["converged"] for h in gm.history_)
    assert len(seen) == sum(h["n_iter"] for h in gm.history_)
    assert [i.restart for i in seen] == sorted(i.restart for i in seen)
    best = max(gm.history_, key=lambda h: h["log_likelihood"][-1])
    assert gm.lower_bound_ == best["log_likelihood"][-1] == gm.lower_bounds_[-1]
    assert all(np.diff(h["log_likelihood"]).min() > -1e-9 for h in gm.history_)


def test_max_iter_reached_warns_like_sklearn():
    X, _, _ = make_blobs(0, n_per=100, d=2)
    with pytest.warns(ConvergenceWarning, match="Best performing initialization did not converge"):
        gm = GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    assert not gm.converged_ and gm.n_iter_ == 1


def test_same_seed_same_result_bit_for_bit_and_seed_matters():
    X, _, _ = make_blobs(5, n_per=150, d=3)
    for method in ("kmeans", "k-means++", "random", "random_from_data"):
        a = GaussianMixture(3, init_params=method, random_state=7, max_iter=200).fit(X)
        b = GaussianMixture(3, init_params=method, random_state=7, max_iter=200).fit(X)
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)
        assert a.lower_bound_ == b.lower_bound_


def test_warm_start_continues_from_the_previous_solution():
    X, _, _ = make_blobs(6, n_per=150, d=2)
    gm = GaussianMixture(3, warm_start=True, max_iter=2, random_state=0, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        gm.fit(X)
    first = gm.lower_bound_
    gm.set_params(max_iter=100)
    gm.fit(X)
    assert gm.converged_ and gm.lower_bound_ >= first
    cold = GaussianMixture(3, max_iter=2, random_state=0, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        cold.fit(X)
    assert cold.lower_bound_ == pytest.approx(first)


def test_max_iter_zero_only_initialises():
    X, _, _ = make_blobs(6, n_per=50, d=2)
    gm = GaussianMixture(3, max_iter=0, random_state=0).fit(X)
    assert gm.n_iter_ == 0 and not gm.converged_ and gm.lower_bound_ == -math.inf
    assert np.isfinite(gm.means_).all()
