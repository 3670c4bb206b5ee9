"""mclust's 14 covariance models (and E, V): each M-step maximises the expected
complete-data log-likelihood over its structure, checked by perturbing its answer in
every direction the structure allows (a parametrisation written here, independent of
bigem's), by a numerical optimiser started elsewhere, and by the free-parameter counts
of mclust's ``nVarParams`` written out by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from scipy.optimize import minimize

import bigem
from bigem.models.covariance import structure
from bigem.models.eigen import MODELS, MULTIVARIATE

K, D = 3, 3


def statistics(seed: int, d: int = D):
    """Counts and scatter matrices W_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T of random,
    differently shaped and oriented clouds."""
    rng = np.random.default_rng(seed)
    n_k = rng.uniform(20, 80, K)
    w = []
    for k in range(K):
        a = rng.normal(size=(d, d)) * rng.uniform(0.3, 2.0, d)
        w.append(n_k[k] * (a @ a.T + 0.2 * np.eye(d)))
    return n_k, np.array(w)


def q_value(n_k, w, cov) -> float:
    """The covariance part of the expected complete-data log-likelihood (means at their
    M-step values): -1/2 sum_k n_k log|Sigma_k| + tr(W_k Sigma_k^-1)."""
    total = 0.0
    for k in range(len(n_k)):
        sign, logdet = np.linalg.slogdet(cov[k])
        assert sign > 0
        total += n_k[k] * logdet + np.trace(np.linalg.solve(cov[k], w[k]))
    return -0.5 * total


def m_step(name, n_k, w):
    """bigem's M-step for model ``name``, given the statistics in its layout, as dense
    (K, D, D) covariances (float64, reg_covar 0). The iterative ones stop at mclust's
    relative tolerance sqrt(eps) on their objective; a copy with a tight one shows where
    their iterations lead, polished by warm-started repeats as EM's iterations do."""
    st = copy.copy(structure(name))
    st.tol, st.max_iter = 1e-15, 20_000
    n = torch.as_tensor(n_k)
    wt = torch.as_tensor(w)
    d = w.shape[-1]
    scatter = {"full": wt, "tied": wt.sum(0), "diag": torch.diagonal(wt, dim1=-2, dim2=-1).contiguous()}[st.kernel]
    cov = st.maximise(n, scatter, 0.0)
    for _ in range(5):
        cov = st.maximise(n, scatter, 0.0, cov)
    return st.dense(cov, len(n_k), d).expand(len(n_k), d, d).numpy().copy()


# ------------------------------------------------------------- an independent parametrisation
class Chart:
    """Sigma_k = exp(v_k) R_k D_k diag(b_k exp(s_k)) D_k^T R_k^T around a base point of the
    model (volume v, shape s with sum 0, rotation R = expm(skew)), each letter's
    parameters shared (E), per component (V) or absent (I)."""

    def __init__(self, name: str, base: np.ndarray):
        self.model = MODELS[name]
        self.k, self.d = base.shape[0], base.shape[-1]
        val, vec = np.linalg.eigh(base)
        if self.model.orientation in ("I",) or self.d == 1:
            vec = np.broadcast_to(np.eye(self.d), base.shape).copy()
            val = np.diagonal(base, axis1=1, axis2=2).copy()
        elif self.model.orientation == "E":
            vec = np.broadcast_to(vec[0], base.shape).copy()  # a common orientation: Sigma_1's axes
            val = np.einsum("ji,kjl,li->ki", vec[0], base, vec[0])
        self.vec, self.val = vec, val
        count = {"E": 1, "V": self.k, "I": 0}
        m = self.model
        self.n_vol = count[m.volume]
        self.n_shape = 0 if self.d == 1 else count[m.shape] * (self.d - 1)
        self.n_rot = 0 if self.d == 1 else count[m.orientation] * self.d * (self.d - 1) // 2
        self.size = self.n_vol + self.n_shape + self.n_rot

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        k, d = self.k, self.d
        vol = np.broadcast_to(theta[: self.n_vol], (k,)) if self.n_vol else np.zeros(k)
        shapes = np.zeros((k, d))
        if self.n_shape:
            free = theta[self.n_vol : self.n_vol + self.n_shape].reshape(-1, d - 1)
            s = np.concatenate([free, -free.sum(1, keepdims=True)], 1)  # sum zero: volume kept
            shapes = np.broadcast_to(s, (k, d))
        rots = np.broadcast_to(np.eye(d), (k, d, d))
        if self.n_rot:
            free = theta[self.n_vol + self.n_shape :].reshape(-1, d * (d - 1) // 2)
            rows, cols = np.triu_indices(d, 1)
            mats = []
            for f in free:
                g = np.zeros((d, d))
                g[rows, cols] = f
                mats.append(expm(g - g.T))
            rots = np.broadcast_to(np.array(mats), (k, d, d))
        out = np.empty((k, d, d))
        for j in range(k):
            axes = rots[j] @ self.vec[j]
            out[j] = math.exp(vol[j]) * (axes * (self.val[j] * np.exp(shapes[j]))) @ axes.T
        return out


def in_structure(name: str, cov: np.ndarray) -> None:
    """Brute-force checks that the covariances have the model's structure."""
    m = MODELS[name]
    k, d = cov.shape[0], cov.shape[-1]
    det = np.linalg.det(cov) ** (1.0 / d)
    if m.volume == "E":
        np.testing.assert_allclose(det, det[0], rtol=1e-9)
    if d == 1:
        return
    if m.orientation == "I":
        off = cov - np.array([np.diag(np.diag(c)) for c in cov])
        assert np.abs(off).max() <= 1e-12 * np.abs(cov).max()
        shapes = np.diagonal(cov, axis1=1, axis2=2) / det[:, None]
        if m.shape == "I":
            np.testing.assert_allclose(shapes, 1.0, rtol=1e-9)
    else:
        vals, vecs = np.linalg.eigh(cov)
        shapes = vals / det[:, None]
        if m.orientation == "E":  # one orientation diagonalises every component
            for c in cov:
                r = vecs[0].T @ c @ vecs[0]
                assert np.abs(r - np.diag(np.diag(r))).max() <= 1e-8 * np.abs(c).max()
    if m.shape == "E":
        np.testing.assert_allclose(np.sort(shapes, 1), np.sort(shapes[:1], 1).repeat(k, 0), rtol=1e-7)


CASES = [(name, i % 2) for i, name in enumerate(MULTIVARIATE)]


@pytest.mark.parametrize("name", ["VEI", "VEE", "VEV", "EVE", "VVE"])
def test_iterative_m_steps_stop_near_the_maximum_at_mclusts_tolerance(name):
    n_k, w = statistics(1)
    st = structure(name)
    n, wt = torch.as_tensor(n_k), torch.as_tensor(w)
    scatter = torch.diagonal(wt, dim1=-2, dim2=-1).contiguous() if st.kernel == "diag" else wt
    once = st.dense(st.maximise(n, scatter, 0.0), K, D).expand(K, D, D).numpy()
    in_structure(name, once)
    best = q_value(n_k, w, m_step(name, n_k, w))
    assert best - 1e-7 * abs(best) <= q_value(n_k, w, once) <= best + 1e-12 * abs(best)


@pytest.mark.parametrize("name, seed", CASES)
def test_m_step_is_the_maximum_over_its_structure(name, seed):
    n_k, w = statistics(seed)
    cov = m_step(name, n_k, w)
    in_structure(name, cov)
    best = q_value(n_k, w, cov)
    chart = Chart(name, cov)
    np.testing.assert_allclose(chart(np.zeros(chart.size)), cov, rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(100 + seed)
    # every allowed direction: each coordinate, and random combinations, both signs
    directions = list(np.eye(chart.size)) + list(rng.normal(size=(20, chart.size)))
    for direction in directions:
        for step in (1e-3, -1e-3, 0.05, -0.05):
            moved = chart(step * direction / np.linalg.norm(direction))
            assert q_value(n_k, w, moved) <= best + 1e-10 * abs(best), (name, direction, step)
    # a numerical maximisation started well away finds nothing higher (to its tolerance)
    start = rng.normal(scale=0.3, size=chart.size)
    found = minimize(lambda t: -q_value(n_k, w, chart(t)), start, method="BFGS", options={"gtol": 1e-9})
    assert -found.fun <= best + 1e-10 * abs(best)
    assert -found.fun >= best - 1e-4 * abs(best)  # and it gets there: the answer is the optimum it finds


@pytest.mark.parametrize("name", ["E", "V"])
def test_univariate_m_steps(name):
    n_k, w = statistics(3, d=1)
    cov = m_step(name, n_k, w)
    var = w[:, 0, 0] / n_k
    expected = np.full(K, w[:, 0, 0].sum() / n_k.sum()) if name == "E" else var
    np.testing.assert_allclose(cov[:, 0, 0], expected, rtol=1e-12)


def test_m_step_fails_without_the_fix_for_a_wrong_answer():
    """The check has teeth: VVV's answer is not the maximum over EEE's structure's
    neighbours of a different point, e.g. the pooled covariance scaled by 1.1."""
    n_k, w = statistics(0)
    cov = m_step("EEE", n_k, w) * 1.1
    chart = Chart("EEE", cov)
    best = q_value(n_k, w, cov)
    assert any(q_value(n_k, w, chart(s * e)) > best for e in np.eye(chart.size) for s in (1e-3, -1e-3))


# mclust's nVarParams for d = 3 features and G = 4 components, from its formulas
# (volumes + shapes (d - 1 each) + orientations (d(d - 1)/2 each)), written out
N_VAR_PARAMS = {"EII": 1, "VII": 4, "EEI": 3, "VEI": 6, "EVI": 9, "VVI": 12, "EEE": 6, "VEE": 9, "EVE": 12,
                "VVE": 15, "EEV": 15, "VEV": 18, "EVV": 21, "VVV": 24}


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
@pytest.mark.parametrize("name", MULTIVARIATE)
def test_free_parameters_are_mclusts(name):
    X = np.random.default_rng(0).normal(size=(60, 3))
    est = bigem.GaussianMixture(4, covariance_type=name, max_iter=2, random_state=0).fit(X)
    assert est._n_parameters() == 3 + 4 * 3 + N_VAR_PARAMS[name]
    # BIC = -2 log L + p log n, with mclust's p (bigem's sign: lower is better)
    p = 3 + 4 * 3 + N_VAR_PARAMS[name]
    assert est.bic(X) == pytest.approx(-2 * est.score(X) * 60 + p * math.log(60), rel=1e-12)


@pytest.mark.parametrize("name", ["EEV", "VEV"])
def test_a_null_scatter_space_gets_a_fixed_basis(name):
    """A hard start's cluster with fewer rows than features has a scatter whose null space
    eigh fills with a basis rounding picks; EEV and VEV pair the smallest shape values
    with it. A single row (a scatter of rounding) gets the axes in order, as mclust's
    M-step gives it (diagonal, the largest shape value first); a cluster of 2 rows in 4
    features gets the same covariance when its rows move by 1e-12."""
    rng = np.random.default_rng(0)
    family = structure(name)
    big = [rng.normal(size=(20, 4)) @ np.diag([3.0, 1.0, 0.5, 0.2]) for _ in range(2)]

    def scatter(rows):
        c = rows - rows.mean(0)
        return c.T @ c

    noise = rng.normal(size=4) * 1e-8  # a single row's scatter, as sums about a shift leave it
    two = rng.normal(size=(2, 4))

    def fit(two):
        w = torch.tensor(np.stack([scatter(b) for b in big] + [scatter(two), np.outer(noise, noise)]))
        n_k = torch.tensor([20.0, 20.0, 2.0, 1.0], dtype=torch.float64)
        return family.maximise(n_k, w, 0.0).numpy()

    cov = fit(two)
    single = cov[3]
    assert np.abs(single - np.diag(np.diag(single))).max() <= 1e-12 * np.abs(single).max()  # the axes themselves
    assert np.all(np.diff(np.diag(single)) < 0)  # the largest shape value on the first feature
    moved = fit(two * (1 + 1e-12))
    np.testing.assert_allclose(moved[2], cov[2], rtol=0, atol=1e-8 * np.abs(cov[2]).max())


@pytest.mark.parametrize("name", ["EEV", "VEV"])
def test_a_tight_cluster_keeps_its_orientation(name):
    """A cluster 1e-8 times another's spread, of many rows: its scatter is full rank, only
    small, and is judged against its own scale (against the largest of all, its whole
    eigenbasis was taken for rounding and replaced by the axes; found by an audit)."""
    rng = np.random.default_rng(0)
    turn = np.array([[np.cos(0.6), -np.sin(0.6)], [np.sin(0.6), np.cos(0.6)]])

    def scatter(sd):
        z = rng.normal(size=(200, 2)) * [3.0, 1.0] * sd @ turn.T
        z -= z.mean(0)
        return z.T @ z

    w = torch.tensor(np.stack([scatter(1.0), scatter(1e-8)]))
    cov = structure(name).maximise(torch.tensor([200.0, 200.0], dtype=torch.float64), w, 0.0).numpy()
    major = np.linalg.eigh(cov[1])[1][:, -1]
    assert abs(major @ turn[:, 0]) > 0.99
