"""SQUAREM and Aitken's stopping rule (em/accelerate.py): the same optimum as plain EM
in fewer passes, accepted log-likelihoods that never fall, valid extrapolated
parameters, and the same answer streamed, on Dask, in memory and resumed."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import bigem
from bigem import GaussianHMM, GaussianMixture, load
from bigem._core.errors import ConvergenceWarning, ParameterError
from bigem.datasets import load_faithful
from bigem.em import accelerate
from bigem.em.accelerate import aitken_converged
from bigem.estimators.gmm_hmm import GMMHMM
from bigem.estimators.hmm import CategoricalHMM, PoissonHMM

from ..conftest import COV_TYPES, Interrupted, interrupt_at, make_blobs


@pytest.fixture(scope="module")
def overlapping():
    """Three components too close for EM to separate quickly: slow, linear convergence."""
    X, _, _ = make_blobs(1, n_per=300, k=3, d=3, sep=1.5)
    return X


def _fit(X, covariance_type="full", **kw):
    kw = dict(n_components=3, covariance_type=covariance_type, tol=1e-12, max_iter=4000, random_state=0,
              dtype="float64") | kw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(**kw).fit(X)


def _ordered(gm):
    order = np.lexsort(gm.means_.T[::-1])
    cov = gm.covariances_ if gm.covariance_type == "tied" else gm.covariances_[order]
    return gm.weights_[order], gm.means_[order], cov


# ---------------------------------------------------------------------- the same optimum
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_squarem_reaches_plain_em_optimum_in_fewer_passes(overlapping, covariance_type):
    plain = _fit(overlapping, covariance_type)
    fast = _fit(overlapping, covariance_type, accelerate="squarem")
    assert plain.converged_ and fast.converged_
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-8)
    # plain EM stops on a slow plateau a little short: agreement to what that leaves
    for ours, theirs in zip(_ordered(fast), _ordered(plain)):
        np.testing.assert_allclose(ours, theirs, atol=2e-4)
    assert fast.n_passes_ == fast.n_iter_ == len(fast.history_[0]["log_likelihood"])
    assert fast.n_iter_ * 2 < plain.n_iter_  # measured: 3-8x fewer (BENCHMARKS.md)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_accepted_log_likelihoods_never_fall_and_rejections_are_recorded(overlapping, covariance_type):
    fast = _fit(overlapping, covariance_type, accelerate="squarem")
    accepted = np.array(fast.lower_bounds_)
    assert np.all(np.diff(accepted) >= -1e-12 * np.abs(accepted[1:]))
    run = fast.history_[0]
    assert len(run["accepted"]) == len(run["log_likelihood"]) == len(run["seconds"]) == fast.n_iter_
    kept = [v for v, ok in zip(run["log_likelihood"], run["accepted"]) if ok]
    assert kept == fast.lower_bounds_
    # every rejected pass evaluated a point worse than the last accepted one
    best = -math.inf
    for v, ok in zip(run["log_likelihood"], run["accepted"]):
        if ok:
            best = v
        else:
            assert v < best


def test_an_overshooting_extrapolation_is_rejected_and_em_goes_on(overlapping, monkeypatch):
    """Force every extrapolation 30x too far: each is refused in favour of the plain EM
    point, and the fit still reaches the optimum with a non-decreasing accepted path."""
    original = accelerate.Squarem._extrapolate

    def overshoot(self, theta2):
        self.step_max = max(self.step_max, 1e6)
        point = original(self, theta2)
        if self.phase == 2:
            flat = self.model.flatten(point)
            point = self.model.unflatten(self.theta0 + 30 * (flat - self.theta0), theta2)
        return point

    monkeypatch.setattr(accelerate.Squarem, "_extrapolate", overshoot)
    fast = _fit(overlapping, "diag", accelerate="squarem", max_iter=3000)
    monkeypatch.undo()
    plain = _fit(overlapping, "diag")
    assert not all(fast.history_[0]["accepted"])
    assert np.all(np.diff(fast.lower_bounds_) >= -1e-12)
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-8)


# ---------------------------------------------------------------------- validity
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_any_unconstrained_vector_maps_to_valid_parameters(overlapping, covariance_type):
    """What SQUAREM extrapolates is a free vector: every vector, however far, is weights on
    the simplex and positive-definite covariances."""
    gm = _fit(overlapping, covariance_type, max_iter=3)
    model = gm._model(gm._settings())
    params = gm._params_
    centre = model.flatten(params)
    generator = torch.Generator().manual_seed(0)
    for scale in (0.1, 1.0, 5.0):
        vector = centre + scale * torch.randn(centre.shape, generator=generator, dtype=torch.float64)
        p = model.unflatten(vector, params)
        assert float(p.weights.sum()) == pytest.approx(1.0, abs=1e-12) and bool((p.weights > 0).all())
        cov = p.component.covariances
        dense = torch.diag_embed(cov) if covariance_type == "diag" else cov
        if covariance_type == "spherical":
            assert bool((cov > 0).all())
        else:
            assert bool((torch.linalg.eigvalsh(dense.reshape(-1, 3, 3)) > 0).all())
    np.testing.assert_allclose(model.flatten(model.unflatten(centre, params)).numpy(), centre.numpy(), atol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_every_extrapolated_point_of_a_fit_is_valid(overlapping, covariance_type, monkeypatch):
    seen = []
    original = accelerate.Squarem._extrapolate

    def spy(self, theta2):
        point = original(self, theta2)
        seen.append(point)
        return point

    monkeypatch.setattr(accelerate.Squarem, "_extrapolate", spy)
    _fit(overlapping, covariance_type, accelerate="squarem", max_iter=200)
    assert len(seen) > 10
    for p in seen:
        assert float(p.weights.sum()) == pytest.approx(1.0, abs=1e-12) and bool((p.weights > 0).all())
        assert bool(torch.isfinite(p.component.prec_chol).all())


# ---------------------------------------------------------------------- wherever the data is
def test_streamed_and_in_memory_accelerated_fits_agree(overlapping, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "x.parquet"
    pd.DataFrame(overlapping, columns=["a", "b", "c"]).to_parquet(path, row_group_size=97)
    memory = _fit(overlapping, accelerate="squarem", chunk_size=128)
    streamed = _fit(str(path), accelerate="squarem", chunk_size=128, cache_budget=0)
    assert streamed.n_iter_ == memory.n_iter_
    assert streamed.history_[0]["accepted"] == memory.history_[0]["accepted"]
    np.testing.assert_allclose(streamed.means_, memory.means_, rtol=1e-9, atol=1e-9)
    assert streamed.lower_bound_ == pytest.approx(memory.lower_bound_, rel=1e-12)


def test_dask_and_local_accelerated_fits_agree(overlapping):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        dist = _fit(da.from_array(overlapping, chunks=(250, 3)), accelerate="squarem", client=client, max_iter=300)
    local = _fit(overlapping, accelerate="squarem", max_iter=300)
    assert dist.n_iter_ == local.n_iter_
    np.testing.assert_allclose(dist.means_, local.means_, rtol=1e-8, atol=1e-8)
    assert dist.lower_bound_ == pytest.approx(local.lower_bound_, rel=1e-10)


def test_a_resumed_accelerated_fit_takes_the_same_steps(overlapping, tmp_path):
    """The checkpoint carries the extrapolation cycle: interrupted mid-fit and resumed,
    the fit ends exactly where an uninterrupted one does."""
    whole = _fit(overlapping, accelerate="squarem", max_iter=300)
    path = tmp_path / "fit.ckpt"

    for every in (3, 4):  # saved on an extrapolation's pass, and on a plain one
        gm = GaussianMixture(3, tol=1e-12, max_iter=300, random_state=0, dtype="float64", accelerate="squarem")
        with pytest.raises(Interrupted):
            gm.fit(overlapping, callback=interrupt_at(23), checkpoint=path, checkpoint_every=every)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(overlapping, checkpoint=path, checkpoint_every=every)
        assert gm.n_iter_ == whole.n_iter_
        assert gm.history_[0]["accepted"] == whole.history_[0]["accepted"]
        assert gm.lower_bound_ == whole.lower_bound_
        np.testing.assert_array_equal(gm.means_, whole.means_)


# ---------------------------------------------------------------------- HMMs
def _chain(rng, A, n):
    """n states of the Markov chain of transition matrix A, from state 0."""
    states = [0]
    for _ in range(n - 1):
        states.append(rng.choice(len(A), p=A[states[-1]]))
    return np.array(states)


def _hmm_data(seed=0, n=1500):
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    states = _chain(rng, A, n)
    means = np.array([[0.0, 0.0], [1.0, 0.5], [0.3, 1.2]])
    return means[states] + rng.normal(0, 0.8, (n, 2)), np.array([n // 3, n // 3, n - 2 * (n // 3)])


def test_gaussian_hmm_squarem_reaches_baum_welch_optimum():
    X, lengths = _hmm_data()
    # a start from which both reach the best optimum: this data has others (-3871.3 and -3871.0,
    # against -3851.2), and from random_state 0 and 1 plain EM and SQUAREM end in different ones
    kw = dict(n_components=3, covariance_type="full", n_iter=3000, tol=1e-9, random_state=2, dtype="float64")
    plain = GaussianHMM(**kw).fit(X, lengths)
    fast = GaussianHMM(**kw, accelerate="squarem").fit(X, lengths)
    assert fast.monitor_.converged and plain.monitor_.converged
    assert fast.score(X, lengths) == pytest.approx(plain.score(X, lengths), rel=1e-8)
    order_p, order_f = np.lexsort(plain.means_.T[::-1]), np.lexsort(fast.means_.T[::-1])
    np.testing.assert_allclose(fast.means_[order_f], plain.means_[order_p], atol=2e-3)
    np.testing.assert_allclose(fast.transmat_[np.ix_(order_f, order_f)], plain.transmat_[np.ix_(order_p, order_p)],
                               atol=2e-3)
    history = np.array(fast.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))
    assert fast.n_passes_ == fast.monitor_.iter < plain.monitor_.iter
    np.testing.assert_allclose(fast.transmat_.sum(1), 1.0, atol=1e-12)


def test_structural_zeros_of_a_transition_matrix_survive_extrapolation():
    """A left-right HMM's zero transitions are not parameters: SQUAREM keeps them zero."""
    X, lengths = _hmm_data(2)
    hmm = GaussianHMM(3, n_iter=200, tol=1e-9, init_params="mc", params="stmc", random_state=0,
                      dtype="float64", accelerate="squarem")
    hmm.startprob_ = np.array([1.0, 0.0, 0.0])
    hmm.transmat_ = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    hmm.fit(X, lengths)
    assert hmm.startprob_[1] == hmm.startprob_[2] == 0.0
    assert hmm.transmat_[1, 0] == hmm.transmat_[2, 0] == hmm.transmat_[2, 1] == hmm.transmat_[0, 2] == 0.0
    history = np.array(hmm.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


@pytest.mark.parametrize("kind", ["GMMHMM", "PoissonHMM", "CategoricalHMM"])
def test_every_hmm_family_accelerates_to_its_optimum(kind):
    rng = np.random.default_rng(3)
    if kind == "GMMHMM":
        X, lengths = _hmm_data(3, 600)
        make = lambda **kw: GMMHMM(2, n_mix=2, covariance_type="diag", **kw)  # noqa: E731
    elif kind == "PoissonHMM":
        X, lengths = rng.poisson(rng.choice([2.0, 3.0, 5.0], (900, 1)) * np.ones((1, 2))), None
        make = lambda **kw: PoissonHMM(3, **kw)  # noqa: E731
    else:
        X, lengths = rng.choice(4, (900, 1), p=[0.4, 0.3, 0.2, 0.1]), None
        make = lambda **kw: CategoricalHMM(3, **kw)  # noqa: E731
    kw = dict(n_iter=1000, tol=1e-6, random_state=0, dtype="float64")
    plain, fast = make(**kw).fit(X, lengths), make(**kw, accelerate="squarem").fit(X, lengths)
    assert fast.monitor_.converged and fast.monitor_.iter <= plain.monitor_.iter
    if plain.monitor_.converged:
        assert fast.score(X, lengths) == pytest.approx(plain.score(X, lengths), rel=1e-5)
    else:  # GMMHMM: plain Baum-Welch still crawls after 1000 passes, below where SQUAREM stopped
        assert fast.score(X, lengths) > plain.score(X, lengths)
    if kind != "GMMHMM":  # GMMHMM's min_covar is added after the ML step: its likelihood may dip
        history = np.array(fast.monitor_.history)
        assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


def test_an_hmm_under_a_prior_accelerates_to_the_map():
    """SQUAREM judged an HMM's extrapolations, and stopped, on the likelihood alone: under
    Dirichlet priors it stopped 'converged' some 20 nats below the MAP (the likelihood
    falls near it). It now accepts on the penalised objective and stops when the
    likelihood settles, at a maximum of the penalised objective; plain EM keeps
    hmmlearn's monitor."""
    rng = np.random.default_rng(1)
    A = np.array([[.8, .15, .05], [.1, .8, .1], [.05, .15, .8]])
    states = _chain(rng, A, 1200)
    emit = np.array([[.4, .3, .2, .1], [.25, .25, .25, .25], [.1, .2, .3, .4]])
    X, lengths = np.array([rng.choice(4, p=emit[s]) for s in states])[:, None], [600, 600]
    kw = dict(transmat_prior=20.0, startprob_prior=5.0, n_iter=20000, tol=1e-8, random_state=0, dtype="float64")

    def objective(m):  # the log-likelihood plus the Dirichlet priors' log-densities, up to a constant
        return m.score(X, lengths) + 19 * np.log(m.transmat_).sum() + 4 * np.log(m.startprob_).sum()

    fast = CategoricalHMM(3, accelerate="squarem", **kw).fit(X, lengths)
    assert fast.monitor_.converged
    # a maximum of the penalised objective: plain EM from there, by Aitken's rule, stays
    # (these data have two, 0.019 apart; plain EM from the random start finds the other)
    on = CategoricalHMM(3, stopping="aitken", init_params="", **kw)
    on.startprob_, on.transmat_, on.emissionprob_ = fast.startprob_, fast.transmat_, fast.emissionprob_
    on.fit(X, lengths)
    assert objective(on) == pytest.approx(objective(fast), abs=1e-4)
    np.testing.assert_allclose(on.transmat_, fast.transmat_, atol=1e-4)
    hmmlearns = CategoricalHMM(3, **kw).fit(X, lengths)  # stops at the likelihood's first fall
    assert objective(hmmlearns) < objective(fast) - 0.1


# ---------------------------------------------------------------------- Aitken's rule
def test_aitken_limit_of_a_geometric_sequence_is_exact():
    """l_n = L - c r^n: the rule's limit is L itself, so it stops once L - l_n < tol,
    where the gain rule stops once c r^n (1 - r) < tol, i.e. 1 / (1 - r) times further off."""
    L, c, r, tol = -3.0, 2.0, 0.95, 1e-6
    seq = [L - c * r**n for n in range(2000)]
    aitken = next(n for n in range(3, 2000) if aitken_converged(seq[: n + 1], tol))
    gain = next(n for n in range(1, 2000) if abs(seq[n] - seq[n - 1]) < tol)
    assert L - seq[aitken] < tol <= L - seq[aitken - 1]
    assert L - seq[gain] > 10 * tol  # the gain rule stopped 20x the tolerance short
    assert aitken > gain


def test_aitken_needs_three_values_and_falls_back_to_the_gain_off_linear():
    assert not aitken_converged([1.0, 2.0], 10.0)
    assert aitken_converged([1.0, 1.0, 1.0], 1e-9)  # flat: no rate, the gain decides
    assert not aitken_converged([1.0, 2.0, 4.0], 1.0)  # accelerating (a > 1): gain 2 >= tol
    assert aitken_converged([1.0, 2.0, 2.5], 1.0)  # linear, a = 0.5: limit 3.0, within 1 of 2.5


def test_aitken_is_never_looser_than_the_gain_rule():
    """Right after a jump the rate from three values is near 0, and the limit lies beside
    the last value: a change of 1.0 ended the run at tol=0.1 (a BayesianGaussianMixture
    stopped 31 nats short, a cluster split in two, converged and silent)."""
    jump = [-1200.0, -1150.0, -1149.02]  # a = 0.0196: |limit - last| = 0.0196 < 0.1, the change 0.98 is not
    assert not aitken_converged(jump, 0.1)
    assert aitken_converged(jump[:2] + [-1149.95], 0.1)  # the change below tol too
    rs = np.random.RandomState(0)
    X = np.vstack([rs.randn(200, 3), rs.randn(200, 3) * 0.5 + [4, 4, 0], rs.randn(200, 3) * [1, 2, 0.3] + [-3, 5, 2]])
    kw = dict(n_components=5, random_state=0)
    gain = bigem.BayesianGaussianMixture(**kw).fit(X)
    aitken = bigem.BayesianGaussianMixture(**kw, stopping="aitken").fit(X)
    assert aitken.n_iter_ >= gain.n_iter_ and aitken.lower_bound_ >= gain.lower_bound_ - 1e-6
    assert (aitken.weights_ > 0.05).sum() == 3


def test_aitken_stopping_lands_within_tol_of_the_optimum(overlapping):
    optimum = _fit(overlapping, "diag", accelerate="squarem", tol=1e-13).lower_bound_
    tol = 1e-6
    aitken = _fit(overlapping, "diag", tol=tol, stopping="aitken")
    gain = _fit(overlapping, "diag", tol=tol)
    assert aitken.converged_
    # the rule stops once its extrapolated limit is within tol of the last value, and here
    # that limit is all but exact: it lands about tol short (0.98 to 1.02 tol over five
    # starts), where the gain rule stops 8 to 23 tol short
    assert optimum - aitken.lower_bound_ < 1.1 * tol
    assert optimum - gain.lower_bound_ > optimum - aitken.lower_bound_


# ---------------------------------------------------------------------- the surface
def test_bad_settings_are_refused_with_the_choices():
    X = make_blobs(0)[0]
    with pytest.raises(ParameterError, match=r"accelerate.*'squarem'"):
        GaussianMixture(2, accelerate="fast").fit(X)
    with pytest.raises(ParameterError, match=r"stopping.*'gain', 'aitken'"):
        GaussianMixture(2, stopping="never").fit(X)
    with pytest.raises(ParameterError, match=r"accelerate='squarem' applies to algorithm='em' only"):
        GaussianMixture(2, accelerate="squarem", algorithm="online").fit(X)
    for rule in ("aitken", "mclust"):  # online EM's loop has the gain rule alone: these were ignored (audit AU)
        with pytest.raises(ParameterError, match=rf"stopping='{rule}' applies to algorithm='em' only: online EM "):
            GaussianMixture(2, stopping=rule, algorithm="online").fit(X)
        with pytest.raises(ParameterError, match=rf"stopping='{rule}' applies to algorithm='em' only"):
            GaussianMixture(2, stopping=rule).fit(X, algorithm="online")
    with pytest.raises(ParameterError, match=r"accelerate"):
        GaussianHMM(2, accelerate=True).fit(X)
    for est in (GaussianMixture(2), GaussianHMM(2)):
        with pytest.raises(ParameterError, match=r"stopping='aitken' assumes plain EM's linear convergence"):
            est.set_params(accelerate="squarem", stopping="aitken").fit(X)


def test_a_model_file_keeps_the_passes_and_which_were_accepted(overlapping, tmp_path):
    fast = _fit(overlapping, accelerate="squarem", max_iter=300)
    fast.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert back.n_passes_ == fast.n_passes_ and back.accelerate == "squarem"
    assert back.history_[0]["accepted"] == fast.history_[0]["accepted"]
    assert back.lower_bounds_ == fast.lower_bounds_
    hmm = GaussianHMM(2, n_iter=50, accelerate="squarem", random_state=0).fit(_hmm_data()[0])
    hmm.save(tmp_path / "h.bigem")
    assert load(tmp_path / "h.bigem").n_passes_ == hmm.n_passes_


def test_old_faithful_ships_with_the_package():
    X = load_faithful()
    assert X.shape == (272, 2)
    assert X[0].tolist() == [3.6, 79.0] and X.dtype == np.float64  # R's datasets::faithful, first row
    assert list(load_faithful(as_frame=True).columns) == ["eruptions", "waiting"]


def test_cli_fit_and_select_take_accelerate(tmp_path, overlapping):
    import json

    data = tmp_path / "x.npy"
    np.save(data, overlapping)
    out = subprocess.run([sys.executable, "-m", "bigem", "fit", str(data), "-k", "3", "--accelerate", "--tol", "1e-9",
                          "--max-iter", "2000", "-o", str(tmp_path / "m.bigem"), "--json"],
                         capture_output=True, text=True, check=True)
    fitted = json.loads(out.stdout)
    assert fitted["converged"] and fitted["n_passes"] == fitted["n_iter"]
    m = load(tmp_path / "m.bigem")
    assert m.accelerate == "squarem" and m.stopping == "gain"
    info = subprocess.run([sys.executable, "-m", "bigem", "info", str(tmp_path / "m.bigem")],
                          capture_output=True, text=True, check=True).stdout
    assert "accelerate=squarem" in info
    refused = subprocess.run([sys.executable, "-m", "bigem", "fit", str(data), "-k", "3", "--accelerate", "--stopping",
                              "aitken", "-o", str(tmp_path / "n.bigem")], capture_output=True, text=True)
    assert refused.returncode == 2 and "--stopping aitken assumes" in refused.stderr
    assert "--stopping gain with it, or drop --accelerate" in refused.stderr
    assert not (tmp_path / "n.bigem").exists()
    subprocess.run([sys.executable, "-m", "bigem", "fit", str(data), "-k", "3", "--stopping", "aitken", "-o",
                    str(tmp_path / "a.bigem")], capture_output=True, text=True, check=True)
    assert load(tmp_path / "a.bigem").stopping == "aitken"
    subprocess.run([sys.executable, "-m", "bigem", "select", str(data), "-k", "2..3", "--covariance", "diag",
                    "--accelerate", "-o", str(tmp_path / "s.bigem")], capture_output=True, text=True, check=True)
    assert load(tmp_path / "s.bigem").accelerate == "squarem"


def test_an_hmm_fit_reports_every_pass_to_a_callback():
    X, lengths = _hmm_data()
    seen = []
    hmm = GaussianHMM(3, n_iter=60, tol=1e-9, random_state=1, accelerate="squarem")
    hmm.fit(X + 1e4, lengths, callback=seen.append)  # far from the origin: float32 fits a shifted copy
    assert [i.iteration for i in seen] == list(range(1, hmm.n_passes_ + 1))
    rows = sum(lengths)  # the monitor holds the mean times the rows (as a resumed fit rebuilds it)
    assert [i.log_likelihood * rows for i in seen if i.accepted] == list(hmm.monitor_.history)
    np.testing.assert_allclose([i.report.total for i in seen if i.accepted], hmm.monitor_.history, rtol=1e-13)
    assert not all(i.accepted for i in seen)
    assert np.abs(seen[-1].params.emission.means.numpy() - 1e4).max() < 10  # the data's coordinates
    with pytest.raises(ParameterError, match="callback must be a function"):
        GaussianHMM(2).fit(X, callback=5)


def test_a_float32_hmm_accelerated_stops_at_its_first_rounding_fall():
    """In float32 the likelihood of plain EM points falls by rounding near the optimum:
    hmmlearn's monitor stops plain EM at the first fall, and SQUAREM (stopping on the
    change either way) went on to n_iter, 'Model is not converging' at ~870 passes of
    2000. It now stops at the first fall of a plain step within float32's rounding, in
    fewer passes than plain EM, no lower."""
    rng = np.random.default_rng(0)
    A = np.array([[.9, .05, .05], [.1, .8, .1], [.05, .15, .8]])
    states = _chain(rng, A, 1600)
    X = np.array([[0, 0], [1, 1], [2, 0]])[states] + rng.normal(size=(1600, 2))
    kw = dict(covariance_type="diag", random_state=1, tol=1e-8, n_iter=2000)
    plain = GaussianHMM(3, **kw).fit(X, [400] * 4)
    fast = GaussianHMM(3, accelerate="squarem", **kw).fit(X, [400] * 4)
    assert fast.monitor_.converged and fast.n_passes_ < plain.n_passes_ < 2000
    assert int((np.diff(np.array(fast.monitor_.history)) < 0).sum()) <= 1
    assert fast.score(X, [400] * 4) > plain.score(X, [400] * 4) - 1e-3


@pytest.mark.cpu_strategy  # a GPU's order of sums: 1.3e-2 from the MAP, plain EM 7.9e-3 (float32 cannot tell)
def test_a_float32_hmm_under_a_prior_accelerated_goes_on_past_the_priors_trades():
    """Under Dirichlet priors the likelihood falls for the prior's sake: the rounding
    floor judges the penalised objective, so a fall of the likelihood alone does not
    stop the run (it stopped at 65 passes, 1.4e-2 from the MAP, farther than plain EM)."""
    from bigem import CategoricalHMM

    rng = np.random.default_rng(0)
    A = np.array([[.9, .05, .05], [.1, .8, .1], [.05, .15, .8]])
    states = _chain(rng, A, 2000)
    P = np.array([[.7, .1, .1, .1], [.1, .6, .2, .1], [.25, .25, .25, .25]])
    X, lengths = np.array([rng.choice(4, p=P[k]) for k in states])[:, None], [500] * 4
    kw = dict(emissionprob_prior=2.0, transmat_prior=2.0, random_state=1, n_iter=5000)
    the_map = CategoricalHMM(3, dtype="float64", accelerate="squarem", tol=1e-9, **kw).fit(X, lengths)

    def distance(m):
        return max(np.abs(m.transmat_ - the_map.transmat_).max(), np.abs(m.emissionprob_ - the_map.emissionprob_).max())

    plain = CategoricalHMM(3, tol=1e-8, **kw).fit(X, lengths)
    fast = CategoricalHMM(3, accelerate="squarem", tol=1e-8, **kw).fit(X, lengths)
    assert fast.monitor_.converged and fast.n_passes_ < plain.n_passes_
    assert distance(fast) < distance(plain)
