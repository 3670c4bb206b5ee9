"""The EM driver: convergence, warnings, history, restarts, callbacks, the monotonicity check."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from bigem._core.errors import ConvergenceWarning, LikelihoodDecreaseWarning
from bigem._core.protocols import Objective, Report, Step
from bigem.em.driver import fit_em, run_em
from bigem.em.init import from_random_responsibilities
from bigem.engines import LocalEngine
from bigem.sources import TensorSource
from tests.conftest import make_blobs


@dataclass(frozen=True)
class _Stats:
    loglik: float
    rows: int

    def __add__(self, other):
        return _Stats(self.loglik + other.loglik, self.rows + other.rows)


class _ScriptedModel:
    """A fake model whose log-likelihood follows a script: tests the driver alone."""

    def __init__(self, script):
        self.script = list(script)

    def e_step(self, params, chunk):
        return _Stats(self.script[params] * chunk.n_rows, chunk.n_rows)

    def m_step(self, stats, params):
        self._last += 1
        return Step(self._last)

    def objective(self, stats):
        return Objective(stats.loglik, stats.rows)

    def decrease_tolerance(self, params, ll):
        return 1e-9

    advice = "check the script"
    _last = 0


def _source():
    return TensorSource(torch.zeros(10, 1), None, chunk_rows=4)


def test_driver_warns_when_likelihood_falls():
    model = _ScriptedModel([-3.0, -2.0, -2.5, -2.4, -2.4])
    with pytest.warns(LikelihoodDecreaseWarning, match="decreased from -2 to -2.5 at iteration 3"):
        run_em(model, LocalEngine(), _source(), 0, max_iter=5, tol=1e-3)


class _ScriptedPriorModel(_ScriptedModel):
    """A scripted model under a prior: each M-step reports the prior's log-density change
    (per unit of weight) from the script of gains."""

    def __init__(self, script, gains):
        super().__init__(script)
        self.gains = list(gains)

    def m_step(self, stats, params):
        self._last += 1
        return Step(self._last, Report(exact=True, prior_gain=self.gains[self._last]))

    def prior_gain(self, new, old):
        return sum(self.gains[old + 1 : new + 1]) * 10  # per row: the driver divides by the weight (10 rows)


def test_driver_names_the_objective_that_fell_under_a_prior():
    # the log-likelihood rises (-2 to -1.9) while the prior's log-density falls by 0.5: the
    # objective EM raises fell by 0.4, which the message must say (it said "decreased" of a rise)
    model = _ScriptedPriorModel([-3.0, -2.0, -1.9, -1.9, -1.9], [0.0, 0.0, -0.5, 0.0, 0.0])
    expected = (r"objective .* decreased by 0.4: the log-likelihood rose from -2 to -1.9 and the prior's "
                r"log-density changed by -0.5 at iteration 3")
    with pytest.warns(LikelihoodDecreaseWarning, match=expected):
        run_em(model, LocalEngine(), _source(), 0, max_iter=4, tol=1e-3)


def test_driver_stops_on_tol_with_sklearn_semantics():
    model = _ScriptedModel([-3.0, -2.0, -1.9, -1.8999, -1.8])
    result = run_em(model, LocalEngine(), _source(), 0, max_iter=10, tol=1e-3)
    assert result.converged and result.n_iter == 4
    assert result.lower_bound == pytest.approx(-1.8999)  # likelihood of the params entering the last step
    assert result.params == 4  # parameters after the last M-step
    assert result.history == pytest.approx([-3.0, -2.0, -1.9, -1.8999])


@dataclass(frozen=True)
class _RunStats(_Stats):
    restart: int = 0
    step: int = 0

    def __add__(self, other):
        return _RunStats(self.loglik + other.loglik, self.rows + other.rows, self.restart, self.step)


class _TwoScripts:
    """Parameters are (restart, step): each restart follows its own log-likelihood script."""

    def __init__(self, scripts):
        self.scripts = scripts

    def e_step(self, params, chunk):
        restart, step = params
        return _RunStats(self.scripts[restart][step] * chunk.n_rows, chunk.n_rows, restart, step)

    def m_step(self, stats, params):
        return Step((stats.restart, stats.step + 1))

    def objective(self, stats):
        return Objective(stats.loglik, stats.rows)

    def decrease_tolerance(self, params, ll):
        return 1e-9

    advice = "check the script"


def test_fit_em_keeps_best_restart_and_warns_if_it_did_not_converge():
    model = _TwoScripts({0: [-5.0, -4.0, -3.0], 1: [-2.0, -1.0, -0.5]})
    calls = []

    def init(restart):
        calls.append(restart)
        return (restart, 0)

    with pytest.warns(ConvergenceWarning, match="did not converge"):
        best, runs = fit_em(model, LocalEngine(), _source(), init, n_init=2, max_iter=3, tol=1e-6)
    assert calls == [0, 1] and best.restart == 1 and best.lower_bound == -0.5
    assert [r.lower_bound for r in runs] == [-3.0, -0.5]


def test_restarts_share_each_pass_and_stop_on_their_own():
    """Restart 0 converges at iteration 3, restart 1 runs on: passes = the longest run."""
    model = _TwoScripts({0: [-5.0, -4.0, -4.0, -9.0, -9.0], 1: [-3.0, -2.0, -1.5, -1.2, -1.1]})
    passes, seen = [], []

    class CountingSource:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def chunks(self):
            passes.append(1)
            return self.inner.chunks()

    with pytest.warns(ConvergenceWarning):
        best, runs = fit_em(model, LocalEngine(), CountingSource(_source()), lambda r: (r, 0), n_init=2, max_iter=5,
                            tol=1e-6, callback=seen.append)
    assert len(passes) == 5  # not 3 + 5: the two runs read each pass together
    assert [r.n_iter for r in runs] == [3, 5] and runs[0].converged and not runs[1].converged
    assert [(i.iteration, i.restart) for i in seen] == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1), (4, 1), (5, 1)]
    assert best.restart == 1 and best.lower_bound == -1.1


def test_estimator_records_history_and_calls_back():
    X, _, _ = make_blobs(0, n_per=100, d=2)
    seen = []
    gm = GaussianMixture(3, n_init=2, random_state=0, dtype="float64").fit(X, callback=seen.append)
    assert len(gm.history_) == 2 and all(h["converged"] for h in gm.history_)
    assert len(seen) == sum(h["n_iter"] for h in gm.history_)
    assert [(i.iteration, i.restart) for i in seen] == sorted((i.iteration, i.restart) for i in seen)  # lockstep
    for r, h in enumerate(gm.history_):
        assert [i.log_likelihood for i in seen if i.restart == r] == h["log_likelihood"]
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


def test_random_start_is_the_same_whatever_the_chunk_size():
    """'random' draws each row's responsibilities from (seed, row): chunks of 37 rows, of
    4096 and one chunk give the same start, so the same fit (to summation order)."""
    X, _, _ = make_blobs(5, n_per=3000, d=3)
    fits = [GaussianMixture(3, init_params="random", random_state=7, max_iter=0, dtype="float64", chunk_size=c).fit(X)
            for c in (37, 4096, len(X))]
    for other in fits[1:]:
        np.testing.assert_allclose(other.means_, fits[0].means_, rtol=1e-12)
        np.testing.assert_allclose(other.covariances_, fits[0].covariances_, rtol=1e-12)
    another = GaussianMixture(3, init_params="random", random_state=8, max_iter=0, dtype="float64").fit(X)
    assert not np.allclose(another.means_, fits[0].means_)


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


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_lockstep_restarts_equal_restarts_run_one_after_another(covariance_type):
    from bigem.models.gaussian import gaussian_mixture as GaussianMixtureModel

    X, _, _ = make_blobs(3, n_per=150, d=3)
    source = TensorSource(torch.as_tensor(X), None, chunk_rows=160)  # several chunks per pass
    model = GaussianMixtureModel(4, covariance_type, 1e-6, torch.float64)

    def initialiser():
        generator = torch.Generator().manual_seed(11)
        def init(restart):
            return from_random_responsibilities(model, LocalEngine(), source, generator)

        return init

    init = initialiser()
    alone = [run_em(model, LocalEngine(), source, init(r), max_iter=40, tol=1e-4, restart=r) for r in range(3)]
    best, together = fit_em(model, LocalEngine(), source, initialiser(), n_init=3, max_iter=40, tol=1e-4)
    assert len({r.n_iter for r in alone}) > 1  # the runs stop at different iterations
    for a, b in zip(alone, together):
        assert a.history == b.history and a.n_iter == b.n_iter and a.converged == b.converged
        torch.testing.assert_close(a.params.means, b.params.means, rtol=0, atol=0)
        torch.testing.assert_close(a.params.covariances, b.params.covariances, rtol=0, atol=0)
    assert best is max(together, key=lambda r: r.lower_bound)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_restarts_that_reach_one_optimum_keep_the_first_whatever_the_chunk_size():
    # three restarts end at one optimum, labelled differently, their bounds 1e-15 apart in
    # an order the chunking decides: a strict comparison kept a different restart per
    # chunk size (means 3.4 apart, a third of the labels agreeing), on one process or two
    rng = np.random.default_rng(9)
    centres = rng.normal(0, 4.0, (3, 3))
    X = np.concatenate([rng.normal(centres[i], rng.uniform(0.5, 1.5, 3), (201, 3)) for i in range(3)])
    X = X[rng.permutation(len(X))]
    kw = dict(n_components=3, n_init=3, max_iter=10, tol=0.0, random_state=0, dtype="float64")
    fits = [GaussianMixture(chunk_size=rows, **kw).fit(X) for rows in (None, 100, 37)]
    ends = [[h["log_likelihood"][-1] for h in fit.history_] for fit in fits]
    assert max(max(e) - min(e) for e in ends) < 1e-13  # one optimum, reached three times
    for fit in fits[1:]:
        np.testing.assert_allclose(fit.means_, fits[0].means_, rtol=0, atol=1e-12)
