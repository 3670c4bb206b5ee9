"""The common orientation of EVE and VVE: the M-step minimises, over rotations D, the
profile sum_k n_k log det B_k + tr(W_k D B_k^-1 D^T) at the best B_k for D, by Newton
steps. Checked against the majorisation-minimisation of Browne and McNicholas (2014),
written here and run to convergence (the fixed point both must reach), against
autograd's derivatives of the profile written here, and for a profile that never
increases round by round."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from bigem.models import eigen
from bigem.models.covariance import structure


def statistics(seed: int, K: int, D: int, spread: float = 2.0):
    """Counts and scatter matrices n_k (A_k A_k^T + 0.2 I) of differently shaped clouds."""
    rng = np.random.default_rng(seed)
    n_k = rng.uniform(20, 80, K)
    w = []
    for k in range(K):
        a = rng.normal(size=(D, D)) * rng.uniform(0.3, spread, D)
        w.append(n_k[k] * (a @ a.T + 0.2 * np.eye(D)))
    return torch.as_tensor(n_k), torch.as_tensor(np.array(w))


def best_b(proj: torch.Tensor, n_k: torch.Tensor, equal_volume: bool) -> torch.Tensor:
    """B_k given D from the projections p_kj = (D^T W_k D)_jj: VVE p_k / n_k; EVE
    lambda p_k / gm(p_k) with lambda = sum_k gm(p_k) / n."""
    if not equal_volume:
        return proj / n_k[:, None]
    gm = torch.exp(torch.log(proj).mean(1))
    return (gm.sum() / n_k.sum()) * proj / gm[:, None]


def objective(n_k, w, orient, equal_volume) -> float:
    """sum_k n_k log det B_k + tr(W_k D B_k^-1 D^T) at the best B_k, written out."""
    proj = torch.diagonal(orient.T @ w @ orient, dim1=-2, dim2=-1)
    b = best_b(proj, n_k, equal_volume)
    sigma_inv = (orient / b[:, None, :]) @ orient.T
    trace = torch.einsum("kij,kji->k", w, sigma_inv)
    return float((n_k * torch.log(b).sum(1)).sum() + trace.sum())


def polar(f: torch.Tensor) -> torch.Tensor:
    p, _, rt = torch.linalg.svd(f)
    return p @ rt


def mm(n_k, w, orient, equal_volume, rounds: int, move: float = 0.0):
    """Browne and McNicholas (2014): B_k for D, then D by their two majorisations in turn
    (w_k the largest eigenvalue of W_k, m_k the largest 1 / b_kj):
      D = polar(sum_k (w_k I - W_k) D B_k^-1),  D = polar(sum_k W_k D (m_k I - B_k^-1)),
    until a round moves no entry of D by more than ``move`` (the objective's change
    drops below its rounding well before the MM reaches its fixed point)."""
    top = torch.linalg.eigvalsh(w)[:, -1]
    eye = torch.eye(w.shape[-1], dtype=w.dtype)
    for _ in range(rounds):
        start = orient
        inv = 1.0 / best_b(torch.diagonal(orient.T @ w @ orient, dim1=-2, dim2=-1), n_k, equal_volume)
        orient = polar(((top[:, None, None] * eye - w) @ orient * inv[:, None, :]).sum(0))
        m = inv.max(1).values
        orient = polar((w @ orient * (m[:, None] - inv)[:, None, :]).sum(0))
        if float((orient - start).abs().max()) <= move:
            break
    return orient


def newton(n_k, w, orient, equal_volume, max_iter=1000):
    return eigen._orientation_newton(n_k, w, orient, equal_volume, eigen.INNER_TOL, max_iter)


def same_axes(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far apart two orientations are as sets of axes: the largest entry of b - a's
    columns in b's order and signs (about the largest angle between matched axes)."""
    overlap = a.T @ b
    match = overlap.abs().argmax(0)
    sign = torch.sign(overlap[match, torch.arange(b.shape[1])])
    return float((a[:, match] * sign - b).abs().max())


@pytest.mark.parametrize("equal_volume", [True, False], ids=["EVE", "VVE"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_reaches_the_fixed_point_of_the_majorisation(equal_volume, seed):
    """From the same start, the Newton loop and the MM run to convergence (until a round
    moves D by < 1e-14) end at the same orientation and objective."""
    n_k, w = statistics(seed, K=3, D=3)
    start = eigen._common_orientation(w / n_k[:, None, None])
    reference = mm(n_k, w, start, equal_volume, rounds=200_000, move=1e-14)
    ours = newton(n_k, w, start, equal_volume)
    assert same_axes(ours, reference) < 1e-9
    value, ref = objective(n_k, w, ours, equal_volume), objective(n_k, w, reference, equal_volume)
    assert value == pytest.approx(ref, rel=1e-11)
    assert value <= ref + 1e-13 * abs(ref)  # the MM's own stop leaves it a hair short


@pytest.mark.parametrize("equal_volume", [True, False], ids=["EVE", "VVE"])
def test_profile_never_increases_round_by_round(equal_volume):
    """Stopping after 0, 1, 2, ... rounds: the objective never goes up (to rounding)."""
    n_k, w = statistics(5, K=4, D=5)
    start = eigen._common_orientation(w / n_k[:, None, None])
    values = [objective(n_k, w, newton(n_k, w, start, equal_volume, max_iter=r), equal_volume)
              for r in range(0, 14)]
    steps = np.diff(values)
    assert (steps <= 1e-12 * np.abs(values[1:])).all(), steps
    assert values[-1] < values[0] - 1.0  # it went somewhere


@pytest.mark.parametrize("equal_volume", [True, False], ids=["EVE", "VVE"])
def test_newton_system_is_the_profiles_derivatives(equal_volume):
    """Value, gradient and Hessian in x (D exp(X), X skew with upper triangle x) against
    autograd through the matrix exponential and the objective written above."""
    n_k, w = statistics(7, K=3, D=4)
    D = w.shape[-1]
    orient = torch.linalg.qr(torch.as_tensor(np.random.default_rng(8).normal(size=(D, D))))[0]
    rows, cols = torch.triu_indices(D, D, 1)

    def f(x):
        gen = torch.zeros(D, D, dtype=x.dtype).index_put((rows, cols), x)
        rot = orient @ torch.linalg.matrix_exp(gen - gen.T)
        proj = torch.diagonal(rot.T @ w @ rot, dim1=-2, dim2=-1)
        b = best_b(proj, n_k, equal_volume)
        return (n_k * torch.log(b).sum(1)).sum() + (proj / b).sum()

    x0 = torch.zeros(rows.numel(), dtype=torch.float64)
    value, grad, hess = eigen._orientation_system(orient.T @ w @ orient, n_k, equal_volume)
    assert float(value) == pytest.approx(float(f(x0)), rel=1e-13)
    torch.testing.assert_close(grad, torch.func.grad(f)(x0), rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(hess, torch.autograd.functional.hessian(f, x0), rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_m_step_reaches_the_minimum_where_the_majorisation_crawls(name):
    """Clouds like the benchmark's (D = 10, K = 4 here), where the MM crawls: one M-step
    from a cold start ends where the MM stands still (its round moves the axes by < 1e-10
    and lowers the objective by < 1e-12 relative). The MM loop this replaced, capped at
    1000 rounds, ended 6e-7 (EVE) and 6e-8 (VVE) relative above there, its axes still
    moving 1e-8 and 5e-10 a round."""
    rng = np.random.default_rng(0)
    K, D = 4, 10
    scales = rng.uniform(0.5, 1.5, (K, D, D)) / np.sqrt(D)
    n_k = torch.as_tensor(rng.uniform(2000, 4000, K))
    w = torch.as_tensor(np.einsum("kji,kjl->kil", scales, scales)) * n_k[:, None, None]
    st = structure(name)
    cov = st.maximise(n_k, w, 0.0)
    orient = eigen._common_orientation(cov)
    equal_volume = name == "EVE"
    after = mm(n_k, w, orient, equal_volume, rounds=1)
    before_value, after_value = objective(n_k, w, orient, equal_volume), objective(n_k, w, after, equal_volume)
    assert same_axes(after, orient) < 1e-10
    assert after_value >= before_value - 1e-12 * abs(before_value)
    # and the M-step's covariances are the structure's at that orientation
    proj = torch.diagonal(orient.T @ w @ orient, dim1=-2, dim2=-1)
    expected = (orient * best_b(proj, n_k, equal_volume)[:, None, :]) @ orient.T
    torch.testing.assert_close(cov, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_mclusts_loop_where_it_stops_and_beyond_newtons_features(name, monkeypatch):
    """Where mclust's loop (the MM stopped by mclust's rule) stops within
    ORIENTATION_MM_ROUNDS, the M-step is its answer: near Newton's minimum (within 1e-3
    here: its rule on the objective's change stops it short where it crawls) and no
    better. Above ORIENTATION_NEWTON_MAX_FEATURES (lowered here to 2, for D = 3) the MM
    runs alone to ``max_iter``: to a tight tolerance it gives Newton's covariances to
    1e-6 (where its rule on the objective's change stops it: a round's gain drops below
    rounding while D is still ~1e-7 off)."""
    n_k, w = statistics(0, K=3, D=3)
    equal_volume = name == "EVE"
    start = eigen._common_orientation(w / n_k[:, None, None])
    best = newton(n_k, w, start, equal_volume)
    best_cov = (best * best_b(torch.diagonal(best.T @ w @ best, dim1=-2, dim2=-1), n_k, equal_volume)[:, None, :]) @ best.T

    def q(c):
        return -0.5 * float((n_k * torch.logdet(c)).sum() + torch.einsum("kij,kji->", w, torch.linalg.inv(c)))

    mclust_loop = structure(name).maximise(n_k, w, 0.0)
    torch.testing.assert_close(mclust_loop, best_cov, rtol=1e-3, atol=0.0)
    assert q(mclust_loop) <= q(best_cov) + 1e-12 * abs(q(best_cov))
    monkeypatch.setattr(eigen, "ORIENTATION_NEWTON_MAX_FEATURES", 2)
    st = copy.copy(structure(name))
    st.tol, st.max_iter = 1e-15, 200_000
    torch.testing.assert_close(st.maximise(n_k, w, 0.0), best_cov, rtol=1e-6, atol=0.0)


@pytest.mark.skipif(not __import__("bigem._core.jit", fromlist=["available"]).available(), reason="needs numba")
@pytest.mark.parametrize("equal_volume", [True, False])
@pytest.mark.parametrize("K,D,start", [(3, 4, False), (3, 4, True), (5, 2, True), (4, 7, False)])
def test_the_compiled_loop_is_the_tensor_loop(equal_volume, K, D, start):
    """mclust's loop compiled (numba, the CPU's path) takes the tensor loop's rounds: the
    same orientation to rounding and the same verdict, from a previous M-step's
    diagonals or from none, where it stops by itself and where it runs out of rounds."""
    from bigem._core import jit

    n_k, w = statistics(D + K, K, D)
    orient = torch.linalg.eigh(w.sum(0))[1]
    b = torch.diagonal(orient.T @ w @ orient, dim1=-2, dim2=-1) / n_k[:, None] * 1.3 if start else None
    for rounds in (3, 200):
        compiled, stopped = eigen._orientation_mm(n_k, w, orient.clone(), equal_volume, eigen.INNER_TOL, rounds, b)
        with jit.off():
            tensor, tensor_stopped = eigen._orientation_mm(n_k, w, orient.clone(), equal_volume, eigen.INNER_TOL,
                                                           rounds, b)
        assert stopped == tensor_stopped
        assert compiled.dtype == torch.float64
        torch.testing.assert_close(compiled, tensor, rtol=0, atol=1e-12)
        assert abs(objective(n_k, w, compiled, equal_volume) - objective(n_k, w, tensor, equal_volume)) < 1e-9


def test_newton_stops_where_a_component_collapses_onto_a_subspace(monkeypatch):
    """An M-step of MclustDA on iris (VVE, K = 4 on one class, data/iris_vve_collapsing.npz):
    a component of 2 rows whose values share a feature has a scatter of rank 1 plus the
    rounding of its sums (eigenvalues 1e-15 of its largest). Its projection on one axis
    of the start is already at that rounding: the profile keeps falling as the axis turns
    further into the null space, and Newton followed it for all its 1000 rounds (a
    second, a fifth of that MclustDA fit). It now stops there, with the collapse in the
    covariance it gives (which the mixture reports)."""
    saved = np.load(Path(__file__).parent / "data" / "iris_vve_collapsing.npz")
    n_k, w, orient = (torch.as_tensor(saved[name]) for name in ("n_k", "w", "orient"))
    rounds = []
    system = eigen._orientation_system
    monkeypatch.setattr(eigen, "_orientation_system", lambda *a: rounds.append(1) or system(*a))
    found = eigen._orientation_newton(n_k, w, orient, bool(saved["ev"]), eigen.INNER_TOL, 1000)
    assert len(rounds) < 20
    proj = torch.diagonal(found.T @ w @ found, dim1=-2, dim2=-1)
    assert float(proj[3].min()) <= eigen._NULL_SHARE * float(torch.diagonal(w[3]).sum())
    assert objective(n_k, w, found, False) <= objective(n_k, w, orient, False)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_a_feature_1e8_times_larger_is_no_collapse(name):
    """Newton's stop at a collapsing component judges a projection against the rounding
    of the scatter's entries it sums, not against the scatter's trace: against the trace,
    a feature 1e8 times smaller than another read as collapsed at every round, and EVE and
    VVE fits of such data ran to max_iter without converging (they converged in 19 and
    37 iterations before that stop)."""
    rng = np.random.default_rng(1)
    z = rng.integers(0, 3, 400)
    a = rng.normal(size=(3, 4, 4))
    X = np.einsum("nij,nj->ni", a[z], rng.normal(size=(400, 4))) + z[:, None] * 3.0
    X[:, -1] *= 1e8
    from bigem import GaussianMixture

    fits = []
    for compiled in (True, False):
        with (contextlib.nullcontext() if compiled else __import__("bigem._core.jit", fromlist=["off"]).off()):
            fits.append(GaussianMixture(3, covariance_type=name, dtype="float64", reg_covar=0.0, random_state=0,
                                        max_iter=300, tol=1e-10).fit(X))
    for fit in fits:
        assert fit.converged_ and fit.n_iter_ < 150
    assert fits[0].lower_bound_ == pytest.approx(fits[1].lower_bound_, rel=1e-10)


def test_a_scatter_that_overflowed_takes_the_tensor_loop():
    """The compiled loop's LAPACK refuses infinite entries; the tensor loop's answer
    (whatever the mixture then makes of the overflow) is given instead of numpy's error."""
    n_k, w = statistics(5, 3, 4)
    w[1, 0, 0] = float("inf")
    orient = torch.linalg.eigh(w[[0, 2]].sum(0))[1]
    found, _ = eigen._orientation_mm(n_k, w, orient.clone(), False, eigen.INNER_TOL, 20)
    with __import__("bigem._core.jit", fromlist=["off"]).off():
        tensor, _ = eigen._orientation_mm(n_k, w, orient.clone(), False, eigen.INNER_TOL, 20)
    torch.testing.assert_close(found, tensor, equal_nan=True)


def test_vve_leaves_a_singular_scatter_out_and_returns_it_singular():
    """A VVE component whose scatter has fewer rows than features has no maximiser (an
    axis of D on its null space sends the likelihood to +inf): the step returns it NaN,
    which the mixture finds singular (not zero, which reg_covar turned into a valid spike),
    and the others' covariances are the VVE step of the others alone. Before, the MM
    turned D onto that null space."""
    n_k, w = statistics(3, 3, 4)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(3, 4))  # 3 rows in 4 features: rank 2 about their mean
    centred = rows - rows.mean(0)
    flat = torch.as_tensor(centred.T @ centred)[None]
    st = structure("VVE")
    both = st.maximise(torch.cat([n_k, torch.tensor([3.0], dtype=n_k.dtype)]), torch.cat([w, flat]), 0.0)
    assert bool(torch.isnan(both[-1]).all())
    torch.testing.assert_close(both[:-1], st.maximise(n_k, w, 0.0), rtol=1e-10, atol=0.0)
    assert not bool(st.positive_definite(both, 4)[-1])
    assert not bool(st.positive_definite(st.repair(both, 1e-6), 4)[-1])  # nothing to repair, whatever reg


def test_vve_singular_scatter_is_judged_on_correlations():
    """Scale alone is no singularity: a feature 1e8 times larger, or a tight component,
    keeps its VVE step; a constant feature within a component is singular."""
    n_k, w = statistics(4, 2, 3)
    scale = torch.tensor([1.0, 1.0, 1e8], dtype=w.dtype)
    assert not bool(eigen._singular_scatter(w * scale[:, None] * scale[None, :]).any())
    assert not bool(eigen._singular_scatter(w * 1e-20).any())
    flat = w.clone()
    flat[1, 2, :] = 0.0
    flat[1, :, 2] = 0.0
    assert eigen._singular_scatter(flat).tolist() == [False, True]


def test_vve_with_a_class_of_fewer_rows_than_features_fails_as_mclust_fails():
    """mclust's meVVE finds a start's class of 4 rows in 5 features singular at its first
    M-step (NA in mclustBIC); so does bigem under mclust's stopping rule. Under the others
    the component is re-seeded and EM never falls (before, the orientation step chased
    the class's null space and the likelihood fell by up to 1.6 nats a row, which bigem
    reported as a bug of its own)."""
    import warnings

    import bigem
    from bigem.errors import ComponentLostError, ComponentReseededWarning

    rng = np.random.default_rng(5)
    D = 5
    centres = np.array([np.zeros(D), np.full(D, 6.0), np.r_[np.full(3, -6.0), 0, 0]])
    X = np.vstack([rng.normal(size=(40, D)) + centres[0], rng.normal(size=(40, D)) + centres[1],
                   0.3 * rng.normal(size=(4, D)) + centres[2]])
    start = bigem.hc(X)  # its cut at 3 is the three clouds
    with pytest.raises(ComponentLostError, match="first M-step"):
        bigem.GaussianMixture(3, covariance_type="VVE", reg_covar=0.0, dtype="float64", stopping="mclust",
                              init_params=start).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComponentReseededWarning)  # LikelihoodDecreaseWarning stays an error
        fit = bigem.GaussianMixture(3, covariance_type="VVE", reg_covar=0.0, dtype="float64", max_iter=30,
                                    init_params=start).fit(X)
    assert fit.converged_ and np.all(np.isfinite(fit.covariances_))
