"""mclust's covariance family: Sigma_k = lambda_k D_k A_k D_k^T (Celeux and Govaert, 1995).

Volume lambda (a scalar), shape A (diagonal, det A = 1) and orientation D (orthogonal)
are each Equal across components (E), Variable (V), or the identity (I). Fourteen
multivariate models (EII ... VVV) and two univariate ones (E, V) come from the letters;
one table below says what each is and how many free parameters it has (mclust's
``nVarParams``), so BIC and ICL agree with mclust's.

Every model shares the statistics the Gaussian E-step already folds (a count, a sum
and a scatter matrix per component), so each is a covariance :class:`Structure` that
reuses a layout of ``covariance`` (spherical (K,), diagonal (K, D), ellipsoidal
(K, D, D)) and brings its own M-step:

* closed forms where they exist (EII, VII, EEI, EVI, VVI, EEE, EEV, EVV, VVV, E, V);
* coordinate ascent (Celeux and Govaert, 1995) for VEI, VEE and VEV, and for the
  common orientation of EVE and VVE the majorisation-minimisation of Browne and
  McNicholas (2014), mclust's loop, for up to ``ORIENTATION_MM_ROUNDS`` rounds, then,
  where it has not stopped (it contracts at rates near 1 and can take thousands),
  safeguarded Newton steps on the rotations to its fixed point; each warm-started
  from the previous iteration's parameters (so every step raises the expected
  complete log-likelihood: a generalised EM step) and stopped when the relative
  change of its objective falls below ``tol`` (mclust's sqrt(machine epsilon); Newton
  one round later, at the minimum to rounding), for VEI and VEV as mclust stops them,
  when no volume or shape moves by more than ``tol`` relative, or after ``max_iter``
  rounds.

VVE's M-step is exact where mclust's is not: mclust's Fortran (mevve) updates the common
orientation by minimising sum_k tr(W_k D A_k^-1 D^T), the shapes A_k without the volumes
lambda_k, from D = I and A = 1, so its step does not maximise the expected complete
log-likelihood; ours minimises sum_k tr(W_k D (lambda_k A_k)^-1 D^T). On Old Faithful
our VVE fits end higher in log-likelihood than mclust's (1.9 higher at K = 3).

Under mclust's conjugate prior each model's MAP M-step is mclust's own (``_MCLUST_PRIOR``
below, read from mclust's Fortran ``me*p`` routines, which ``me()`` and ``mclustBIC``
run): where mclust departs from the textbook conjugate MAP (EII, EEI, VEI, EVI, EEV,
VEV), bigem follows it, since a drop-in must give mclust's answers; the departures are
modes of priors other than the conjugate one (EII: no scale; VEV: no degrees of
freedom; VEI, EVI, EEV: the scale on each component, the degrees of freedom once),
except EEI's, whose means stay the plain ones while its variance takes the mean's prior.

scikit-learn's four names are the same objects as their mclust equivalents
('spherical' is VII, 'diag' VVI, 'tied' EEE, 'full' VVV), so the two spellings give
identical results bit for bit.

``reg_covar`` enters as n_k * reg_covar added to every variance of each component's
scatter before the M-step: for scikit-learn's four that is exactly "reg_covar added to
the diagonal of every covariance", and for every structure it keeps the regularised
covariance inside the structure (adding reg I after a VEV step would not be VEV).

The unconstrained parametrisations (``flatten`` / ``unflatten``, for SQUAREM) map
any vector to a covariance of the structure: log volumes; log shapes centred to sum
zero; orientations as any square matrix, orthonormalised by QR; Cholesky factors
with a log diagonal normalised to determinant one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core import jit
from .._core.errors import ParameterError
from .covariance import Diag, Full, MclustPrior, MclustTerms, Spherical, Structure, Tied

# mclust's emControl: tol[2] = sqrt(.Machine$double.eps) for the M-step's own loops
INNER_TOL = math.sqrt(torch.finfo(torch.float64).eps)
INNER_MAX_ITER = 1000


@dataclass(frozen=True)
class Model:
    """One row of the table: the name, its letters and mclust's description."""

    name: str
    volume: str  # 'E' or 'V'
    shape: str  # 'E', 'V' or 'I'
    orientation: str  # 'E', 'V' or 'I'
    description: str

    @property
    def univariate(self) -> bool:
        return len(self.name) == 1

    def n_parameters(self, K: int, D: int) -> int:
        """mclust's nVarParams: volumes, shapes (D - 1 each) and orientations (D(D-1)/2 each)."""
        if self.univariate:
            return 1 if self.volume == "E" else K
        count = {"E": 1, "V": K}
        total = count[self.volume]
        if self.shape != "I":
            total += count[self.shape] * (D - 1)
        if self.orientation != "I":
            total += count[self.orientation] * D * (D - 1) // 2
        return total


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("E", "E", "I", "I", "univariate, equal variance"),
    Model("V", "V", "I", "I", "univariate, unequal variance"),
    Model("EII", "E", "I", "I", "spherical, equal volume"),
    Model("VII", "V", "I", "I", "spherical, varying volume"),
    Model("EEI", "E", "E", "I", "diagonal, equal volume and shape"),
    Model("VEI", "V", "E", "I", "diagonal, varying volume, equal shape"),
    Model("EVI", "E", "V", "I", "diagonal, equal volume, varying shape"),
    Model("VVI", "V", "V", "I", "diagonal, varying volume and shape"),
    Model("EEE", "E", "E", "E", "ellipsoidal, equal volume, shape and orientation"),
    Model("VEE", "V", "E", "E", "ellipsoidal, equal shape and orientation"),
    Model("EVE", "E", "V", "E", "ellipsoidal, equal volume and orientation"),
    Model("VVE", "V", "V", "E", "ellipsoidal, equal orientation"),
    Model("EEV", "E", "E", "V", "ellipsoidal, equal volume and shape"),
    Model("VEV", "V", "E", "V", "ellipsoidal, equal shape"),
    Model("EVV", "E", "V", "V", "ellipsoidal, equal volume"),
    Model("VVV", "V", "V", "V", "ellipsoidal, varying volume, shape and orientation"),
)}
MULTIVARIATE = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
UNIVARIATE = ("E", "V")
# mclust fits these only without a prior (mclustBIC drops them when one is given)
NO_PRIOR = ("EVE", "VEE", "VVE", "EVV")
# scikit-learn's names for the four models both packages have
SKLEARN_EQUIVALENT = {"spherical": "VII", "diag": "VVI", "tied": "EEE", "full": "VVV"}


# mclust's MAP M-step with its conjugate prior, model by model, as its Fortran (me*p in
# mclust.f, the routines behind me() and mclustBIC) computes it where that departs from
# the conjugate MAP of Fraley and Raftery (2007) (``Structure.mclust_terms``, which VII,
# VVI, VVV and EEE follow). (K, D, dof, m) -> MclustTerms; m = 1 when shrinkage > 0.
# The extra count is in units of n_k of the model's own M-step: VEI's volume and EII's
# variance divide by D n_k + extra D, EEI's, EVI's and EEV's by n + K extra.
#   EII  sigma^2 = (sum_k W_k + kappa-terms) / (n D + K D + dof + 2): no scale at all.
#   EEI  the plain means; the scale and dof once: (scale + sum_k W_k + ...) / (n + dof + 1 + m).
#   VEI  the scale on each component, its volume's count D n_k + dof + 2 + m.
#   EVI  the scale on each component, the common volume's count n + dof + 1 + m.
#   EEV  the scale on each component, the common volume's count n + dof + D + 1 + m.
#   VEV  the scale on each component and no count at all: D n_k.
#   E    (scale + sum_k W_k + ...) / (n + K + dof + 2), V  / (n_k + dof + 3), whatever kappa.
# At K = 1 mclust fits its one-component models, which follow the conjugate MAP.
_MCLUST_PRIOR = {
    "EII": lambda K, D, nu, m: MclustTerms(1.0 + (nu + 2) / (K * D), "none", True),
    "EEI": lambda K, D, nu, m: MclustTerms((nu + 1 + m) / K, "once", False),
    "VEI": lambda K, D, nu, m: MclustTerms((nu + 2 + m) / D, "each", True),
    "EVI": lambda K, D, nu, m: MclustTerms((nu + 1 + m) / K, "each", True),
    "EEV": lambda K, D, nu, m: MclustTerms((nu + D + 1 + m) / K, "each", True),
    "VEV": lambda K, D, nu, m: MclustTerms(0.0, "each", True),
    "E": lambda K, D, nu, m: MclustTerms(1.0 + (nu + 2) / K, "once", True),
    "V": lambda K, D, nu, m: MclustTerms(1.0 + nu + 2, "each", True),
}


# ---------------------------------------------------------------------- helpers
def _log_geomean(x: Tensor, dim: int = -1) -> Tensor:
    return torch.log(x).mean(dim)


def _degenerate(t: Tensor) -> bool:
    """Whether a volume or shape went to 0 (a component collapsed onto a subspace: with
    ``reg_covar=0`` its variance is 0) or stopped being finite: the iterative M-steps
    stop there, and the covariance they return is invalid for that component, which the
    mixture re-seeds or reports as degenerate, as it does for the closed-form models."""
    return not bool((torch.isfinite(t) & (t > 0)).all())


def _settled(new: tuple[Tensor, ...], old: tuple[Tensor, ...], tol: float) -> bool:
    """mclust's inner rule on parameters: every |new - old| / (1 + |new|) <= tol."""
    return all(bool(((a - b).abs() <= tol * (1.0 + a.abs())).all()) for a, b in zip(new, old))


def _converged(new: float, old: float, tol: float) -> bool:
    """mclust's relative change |new - old| / (1 + |new|) <= tol."""
    return abs(new - old) <= tol * (1.0 + abs(new))


def _eigh_descending(mat: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (.., D) largest first and their eigenvectors as columns."""
    val, vec = torch.linalg.eigh(0.5 * (mat + mat.transpose(-1, -2)))
    return val.flip(-1), vec.flip(-1)


# An eigenvalue at most this fraction of its scatter's largest is rounding, numerically 0
# (a scatter's sums carry a few eps of their scale): its eigenvectors span a null space
# that any basis diagonalises (see _fixed_null_basis).
_NULL_SHARE = 64 * float(torch.finfo(torch.float64).eps)


def _singular_scatter(w: Tensor) -> Tensor:
    """(K,) whether each scatter (K, D, D) is singular to precision: a constant feature, or
    its correlations' smallest eigenvalue within rounding (1e3 D eps) of 0. Judged on the
    correlations, so that a feature 1e8 times larger than another is no singularity."""
    spread = torch.diagonal(w, dim1=-2, dim2=-1).clamp(min=0).sqrt()  # (K, D)
    flat = (spread == 0).any(-1)
    scale = torch.where(spread == 0, torch.ones_like(spread), spread)
    corr = w / (scale[:, :, None] * scale[:, None, :])
    least = torch.linalg.eigvalsh(torch.nan_to_num(corr))[:, 0]
    return flat | (least <= 1e3 * w.shape[-1] * torch.finfo(w.dtype).eps) | ~torch.isfinite(w).all(-1).all(-1)


def _fixed_null_basis(val: Tensor, vec: Tensor, n_k: Tensor) -> Tensor:
    """``vec`` (K, D, D; columns by descending ``val``) with each matrix's numerically null
    eigenspace, where it has 2 or more dimensions, given a fixed basis: the coordinate
    axes e_1, e_2, ... projected onto it, orthonormalised in order. A scatter of a
    cluster with fewer rows than features (a hard start's) has such a space, and eigh
    returns whatever basis rounding gives; EEV and VEV pair the smallest shape values
    with these vectors, so the first M-step, and the local maximum EM reaches from it,
    hung on 1e-12 changes of the data. mclust's own choice for a single row is the
    identity, which this is; with 2..D-1 rows mclust's comes from its rounding too, and
    no fixed rule reproduces it. A single row's scatter (n_k of 1 or less) is all
    rounding, judged against the largest of every component's; any other scatter is
    judged against its own, so a tight cluster keeps its orientation however small."""
    own = val <= _NULL_SHARE * val.abs().amax(-1, keepdim=True)
    lone = (n_k.to(val) < 1.5)[:, None] & (val <= _NULL_SHARE * val.abs().amax())
    null = own | lone
    dims = null.sum(-1)
    if not bool((dims >= 2).any()):
        return vec
    vec = vec.clone()
    D = vec.shape[-1]
    eye = torch.eye(D, dtype=vec.dtype, device=vec.device)
    for k in torch.nonzero(dims >= 2).reshape(-1).tolist():
        m = int(dims[k])
        basis = vec[k][:, D - m:]  # the null columns come last (descending order)
        axes = basis @ (basis.T @ eye)  # each axis projected onto the null space
        found: list[Tensor] = []
        for j in range(D):
            v = axes[:, j]
            for u in found:
                v = v - (u @ v) * u
            norm = torch.linalg.vector_norm(v)
            if float(norm) > 1e-6:
                found.append(v / norm)
            if len(found) == m:
                break
        vec[k][:, D - m:] = torch.stack(found, 1)
    return vec


def _signed(vec: Tensor) -> Tensor:
    """Eigenvector columns with their largest-magnitude entry positive (a fixed sign, so
    the orientation of nearby covariances is nearby)."""
    idx = vec.abs().argmax(-2, keepdim=True)
    sign = torch.sign(torch.gather(vec, -2, idx))
    return vec * torch.where(sign == 0, torch.ones_like(sign), sign)


def _orthonormal(mat: Tensor) -> Tensor:
    """Q of mat = QR with R's diagonal positive: any invertible square matrix to an
    orthogonal one, smoothly (the orientation's unconstrained map)."""
    q, r = torch.linalg.qr(mat)
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    return q * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(-2)


def _common_orientation(cov: Tensor) -> Tensor:
    """The orientation D that diagonalises every (K, D, D) covariance of a common-orientation
    structure: the eigenvectors of a weighted sum with distinct generic weights (equal
    eigenvalues of the sum would need an exact coincidence), largest first."""
    K = cov.shape[0]
    weights = 1.0 + torch.arange(K, dtype=cov.dtype, device=cov.device) / (K + math.pi)
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1, keepdim=True).unsqueeze(-1)
    _, vec = _eigh_descending((weights[:, None, None] * cov / scale).sum(0))
    return _signed(vec)


def _rotate(orient: Tensor, diag: Tensor) -> Tensor:
    """D diag(a) D^T for (.., D, D) orientations and (.., D) diagonals."""
    return (orient * diag.unsqueeze(-2)) @ orient.transpose(-1, -2)


def _chol_unit(vector: Tensor, D: int) -> Tensor:
    """A determinant-one SPD matrix from D(D+1)/2 free values (strict lower part, then the
    log diagonal, which is centred so it sums to zero)."""
    lower = torch.zeros(*vector.shape[:-1], D, D, dtype=vector.dtype, device=vector.device)
    rows, cols = torch.tril_indices(D, D, -1, device=vector.device)
    lower[..., rows, cols] = vector[..., D:]
    logd = vector[..., :D]
    lower.diagonal(dim1=-2, dim2=-1).copy_(torch.exp(logd - logd.mean(-1, keepdim=True)))
    return lower @ lower.transpose(-1, -2)


def _chol_unit_flat(mat: Tensor) -> Tensor:
    """Inverse of :func:`_chol_unit` for determinant-one matrices (.., D, D)."""
    D = mat.shape[-1]
    chol = torch.linalg.cholesky(mat)
    rows, cols = torch.tril_indices(D, D, -1, device=mat.device)
    return torch.cat([torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)), chol[..., rows, cols]], -1)


# ---------------------------------------------------------------------- the common orientation
# The largest step of one Newton round on the rotations (the norm of its skew-symmetric
# generator's upper triangle; about its angle in radians): far from the minimum the
# steps stay short, so the loop ends at the minimum of the basin it starts in, as the
# majorisation-minimisation does, not at another one a long step would reach.
ORIENTATION_STEP = 0.2
# Armijo's sufficient decrease, the most halvings of a step before the loop stops, and
# the profile's rounding error in units of its estimate (see ``_orientation_newton``)
_ARMIJO, _HALVINGS, _ROUNDING = 1e-4, 40, 100.0
# Newton's Hessian has (D(D-1)/2)^2 entries and its factorisation costs their 3/2 power:
# up to 32 features (496 pairs) a round costs less than the E-step's pass over big data;
# beyond, the majorisation-minimisation's rounds (K D^3 each) find the orientation
ORIENTATION_NEWTON_MAX_FEATURES = 32
# mclust's own loop runs first, for at most this many rounds: where it meets mclust's rule
# (small problems, mclust's documented examples) the answer is mclust's to its printed
# digits; where it has not (it crawls: thousands of rounds), Newton takes over
ORIENTATION_MM_ROUNDS = 200


def _profile_value(proj: Tensor, n_k: Tensor, equal_volume: bool) -> Tensor:
    """The profile's value (``_orientation_profile``) alone."""
    n, D = n_k.sum(), proj.shape[-1]
    if equal_volume:
        return n * D * torch.log(torch.exp(_log_geomean(proj)).sum() / n) + n * D
    return (n_k[:, None] * torch.log(proj / n_k[:, None])).sum() + n * D


def _orientation_profile(proj: Tensor, n_k: Tensor, equal_volume: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The EVE / VVE M-step's objective sum_k n_k log det B_k + tr(W_k D B_k^-1 D^T) at
    the best B_k for D, as a function of p_kj = (D^T W_k D)_jj (K, D): its value, its
    gradient (K, D) and its Hessian (K D, K D) in p.
      VVE  b_kj = p_kj / n_k:                       sum_k n_k sum_j log(p_kj / n_k) + n D
      EVE  b_kj = lambda p_kj / g_k, g_k = (prod_j p_kj)^(1/D), lambda = sum_k g_k / n:
                                                    n D log(sum_k g_k / n) + n D"""
    K, D = proj.shape
    n = n_k.sum()
    inv = 1.0 / proj
    value = _profile_value(proj, n_k, equal_volume)
    if not equal_volume:
        grad = n_k[:, None] * inv
        return value, grad, torch.diag((-grad * inv).reshape(-1))
    gm = torch.exp(_log_geomean(proj))
    total = gm.sum()
    u = gm[:, None] * inv  # d g_k / d p_kj = u_kj / D
    grad = (n / total) * u
    hess = torch.zeros(K, D, K, D, dtype=proj.dtype, device=proj.device)
    ks = torch.arange(K, device=proj.device)
    hess[ks, :, ks, :] = (n / total) * (u[:, :, None] * inv[:, None, :] / D - torch.diag_embed(u * inv))
    hess = hess.reshape(K * D, K * D) - (n / (D * total * total)) * torch.outer(u.reshape(-1), u.reshape(-1))
    return value, grad, hess


def _orientation_system(s: Tensor, n_k: Tensor, equal_volume: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The profile's value, gradient (P,) and Hessian (P, P) at D, in the rotations D exp(X)
    with X skew-symmetric and x = its upper triangle (P = D(D-1)/2 pairs a < b), from
    S_k = D^T W_k D (K, D, D). diag(exp(-X) S exp(X)) = diag(S) + 2 diag(S X)
    + diag(S X^2 - X S X) + O(X^3): the linear part moves p_ka by -2 S_k,ab x_ab and p_kb
    by +2 S_k,ab x_ab (J below), the quadratic part adds sum_k tr(C_k S_k X^2) -
    tr(C_k X S_k X) with C_k = diag(the gradient in p_k), whose Hessian is written out
    for the basis X = e_a e_b^T - e_b e_a^T."""
    K, D, _ = s.shape
    a, b = torch.triu_indices(D, D, 1, device=s.device)
    pairs = torch.arange(a.numel(), device=s.device)
    value, c, hess_p = _orientation_profile(torch.diagonal(s, dim1=-2, dim2=-1), n_k, equal_volume)
    jac = torch.zeros(K, D, a.numel(), dtype=s.dtype, device=s.device)
    jac[:, a, pairs] = -2.0 * s[:, a, b]
    jac[:, b, pairs] = 2.0 * s[:, a, b]
    jac = jac.reshape(K * D, -1)
    grad = jac.T @ c.reshape(-1)
    # rows are the pair p = (a, b), columns the pair q = (c, d) (here A, B and C, E)
    A, B, C, E = a[:, None], b[:, None], a[None, :], b[None, :]

    def eq(i: Tensor, j: Tensor) -> Tensor:
        return (i == j).to(s.dtype)

    m = (c[:, :, None] * s).sum(0)
    sym = m + m.T  # tr(M E_p E_q) + tr(M E_q E_p), M = sum_k C_k S_k
    square = eq(B, C) * sym[A, E] - eq(B, E) * sym[A, C] - eq(A, C) * sym[B, E] + eq(A, E) * sym[B, C]
    u = torch.einsum("ki,kjl->ijl", c, s)  # u[i, j, l] = sum_k c_ki S_k,jl: sum_k tr(C_k E_p S_k E_q)
    sandwich = eq(A, E) * u[A, B, C] - eq(A, C) * u[A, B, E] - eq(B, E) * u[B, A, C] + eq(B, C) * u[B, A, E]
    hess = jac.T @ hess_p @ jac + square - sandwich - sandwich.T
    return value, grad, hess


def _orientation_newton(n_k: Tensor, w: Tensor, orient: Tensor, equal_volume: bool, tol: float,
                        max_iter: int) -> Tensor:
    """The orientation minimising the profile (``_orientation_profile``) near ``orient``.
    Each round takes the Newton step (Cholesky's where the Hessian is positive definite,
    else with its eigenvalues made positive: a descent direction even where the profile
    is not convex), at most ``ORIENTATION_STEP`` long, halved until it lowers the profile
    by Armijo's rule (to the value's rounding error): the profile never increases, a
    generalised EM step at worst. It stops one round after the profile's relative change
    is first at most ``tol`` (mclust's rule for its own loop): Newton's convergence is
    quadratic, so that round takes the orientation from about sqrt(tol) off to rounding
    error, and the answer no longer depends on the round where the rule fired (a
    streamed fit sums W_k in another order); or when no step lowers it (at the minimum
    to rounding), when a projection reaches 0 or the Hessian cannot be factored (a
    collapsing component, reported by the mixture), or after ``max_iter`` rounds."""
    D = w.shape[-1]
    if D < 2:
        return orient
    a, b = torch.triu_indices(D, D, 1, device=w.device)
    s = orient.T @ w @ orient
    if _degenerate(torch.diagonal(s, dim1=-2, dim2=-1)):
        return orient
    value, grad, hess = _orientation_system(s, n_k, equal_volume)
    value = float(value)
    # the rounding error of the profile's value: each p_kj carries about eps tr(W_k), which
    # moves the value by its gradient times that. Steps whose gain is below it are taken
    # on the gradient's word (Newton's last steps), else the loop would stop about
    # sqrt(eps) from the minimum, where the value cannot tell them apart
    slopes = _orientation_profile(torch.diagonal(s, dim1=-2, dim2=-1), n_k, equal_volume)[1]  # (K, D)
    trace = torch.diagonal(w, dim1=-2, dim2=-1).sum(-1)
    noise = _ROUNDING * torch.finfo(w.dtype).eps * (
        float((slopes.abs() * trace[:, None]).sum()) + abs(value) + float(n_k.sum()) * D)
    # a projection down to the rounding of the scatter's entries it sums is a component
    # collapsing onto a subspace (fewer rows than features): the profile has no minimum
    # there, it falls towards -inf as an axis turns into the scatter's null space, and
    # the loop would follow it for all its rounds (1000 on a 2-row class of iris, a
    # second an M-step). d^T W d rounds to about eps (sum_i |d_i| sqrt(W_ii))^2: judged
    # against that, not against the trace, a feature 1e8 times smaller than another keeps
    # its projection (against the trace it read as collapsed, and fits stopped converging)
    spread = torch.diagonal(w, dim1=-2, dim2=-1).clamp(min=0).sqrt()  # (K, D)
    settled = False
    for _ in range(max_iter):
        if not bool(torch.isfinite(hess).all()):  # a component collapsing onto a subspace
            return orient
        chol, info = torch.linalg.cholesky_ex(hess)
        if int(info) == 0:  # convex here (always near the minimum): the plain Newton step
            step = -torch.cholesky_solve(grad[:, None], chol)[:, 0]
        else:
            try:
                val, vec = torch.linalg.eigh(hess)
            except torch.linalg.LinAlgError:  # too ill-conditioned to go on: a collapsing component
                return orient
            val = val.abs().clamp(min=1e-12 * float(val.abs().max()))
            step = -(vec @ ((vec.T @ grad) / val))
        length = float(step.norm())
        if length > ORIENTATION_STEP:
            step = step * (ORIENTATION_STEP / length)
        slope = float(grad @ step)
        t = 1.0
        for _ in range(_HALVINGS):
            gen = torch.zeros(D, D, dtype=w.dtype, device=w.device)
            gen[a, b] = t * step
            cand = orient @ torch.linalg.matrix_exp(gen - gen.T)
            proj = (cand * (w @ cand)).sum(-2)
            if _degenerate(proj) or bool((proj <= _NULL_SHARE * (spread @ cand.abs()).square()).any()):
                return cand
            new_value = float(_profile_value(proj, n_k, equal_volume))
            if new_value <= value + _ARMIJO * t * slope + noise:
                break
            t *= 0.5
        else:
            return orient
        previous, orient, value = value, cand, new_value
        if settled:
            break
        settled = _converged(value, previous, tol)
        _, grad, hess = _orientation_system(orient.T @ w @ orient, n_k, equal_volume)
    return orient


def _orientation_mm(n_k: Tensor, w: Tensor, orient: Tensor, equal_volume: bool, tol: float, max_iter: int,
                    b: Tensor | None = None) -> tuple[Tensor, bool]:
    """mclust's loop for the orientation: the majorisation-minimisation of Browne and
    McNicholas (2014). With B_k the best for D, w_k the largest eigenvalue of W_k and
    m_k = max(1 / b_k), the two majorisations
      F = sum_k (w_k I - W_k) D B_k^-1   and   F = sum_k W_k D (m_k I - B_k^-1)
    in turn, each followed by D = P R^T from F = P S R^T (the orthogonal maximiser of
    tr(F^T D)), starting from the diagonals ``b`` (K, D) where given (the previous
    M-step's), else from the best for ``orient``. Every round lowers the profile.
    Returns the orientation and whether the loop stopped by itself: when the profile's
    relative change is at most ``tol`` (mclust's rule) or at a collapsed component, not
    after ``max_iter`` rounds.

    On the CPU with numba the loop runs compiled (``_orientation_mm_kernel``, the same
    arithmetic): its rounds are a few products of D x D matrices, which torch's fixed
    cost per operation made most of an mclust fit of small data (iris: 4 of MclustDA's
    17.5 s). Its SVDs are another LAPACK's than torch's, so the two agree to rounding,
    which decides only where the answer is not unique or not resolved: a scatter of
    fewer rows than features (several orientations equally good) or features 1e8 apart
    in scale (rounding of the large ones moves the small ones' axes); a fit then takes
    another, equally good path."""
    if jit.runs_on(w.device) and w.dtype == orient.dtype == torch.float64 and bool(torch.isfinite(w).all()):
        given = b is not None
        out = np.array(orient.detach().cpu().numpy(), dtype=np.float64, order="C")
        stopped = _orientation_mm_kernel(
            n_k.detach().cpu().numpy(), np.ascontiguousarray(w.detach().cpu().numpy()), out, equal_volume,
            float(tol), int(max_iter), b.detach().cpu().numpy().copy() if given else np.ones(w.shape[:2]), given)
        return torch.from_numpy(out).to(orient), bool(stopped)
    omega = torch.linalg.eigvalsh(w)[:, -1]
    n = n_k.sum()
    previous = math.inf
    for _ in range(max_iter):
        if b is not None:
            if _degenerate(b):
                return orient, True
            inv = 1.0 / b
            # sum_k (w_k I - W_k) D B_k^-1 = D diag(sum_k w_k / b_k) - sum_k W_k D B_k^-1
            f = orient * (omega @ inv) - (w @ orient * inv[:, None, :]).sum(0)
            p, _, rt = torch.linalg.svd(f)
            orient = p @ rt
            m = inv.max(1).values
            f = (w @ orient * (m[:, None] - inv)[:, None, :]).sum(0)
            p, _, rt = torch.linalg.svd(f)
            orient = p @ rt
        proj = (orient * (w @ orient)).sum(-2)
        if equal_volume:
            gm = torch.exp(_log_geomean(proj))
            b = (gm.sum() / n) * proj / gm[:, None]
        else:
            b = proj / n_k[:, None]
        # the profile as mclust's loop sums it (its stopping round, to the last digit)
        value = float((n_k * torch.log(b).sum(1)).sum() + (proj / b).sum())
        if _converged(value, previous, tol):
            return orient, True
        previous = value
    return orient, False


@jit.kernel
def _orientation_mm_kernel(n_k, w, orient, equal_volume, tol, max_iter, b, given):  # pragma: no cover - compiled
    """``_orientation_mm``'s loop on float64 arrays: ``orient`` (D, D) is updated in
    place, ``b`` (K, D) holds the starting diagonals where ``given``. True where the
    loop stopped by itself (mclust's rule, or a collapsed component)."""
    K, D = w.shape[0], w.shape[1]
    omega = np.empty(K)
    for k in range(K):
        omega[k] = np.linalg.eigvalsh(w[k])[D - 1]
    n = n_k.sum()
    inv = np.empty((K, D))
    wo = np.empty((K, D, D))
    proj = np.empty((K, D))
    previous = np.inf
    for _ in range(max_iter):
        if given:
            for k in range(K):
                for j in range(D):
                    if not (np.isfinite(b[k, j]) and b[k, j] > 0):
                        return True
            inv[:, :] = 1.0 / b
            # sum_k (w_k I - W_k) D B_k^-1 = D diag(sum_k w_k / b_k) - sum_k W_k D B_k^-1
            f = orient * (omega @ inv)
            for k in range(K):
                f -= (w[k] @ orient) * inv[k]
            u, _, vt = np.linalg.svd(f)
            orient[:, :] = u @ vt
            f = np.zeros((D, D))
            for k in range(K):
                f += (w[k] @ orient) * (inv[k].max() - inv[k])
            u, _, vt = np.linalg.svd(f)
            orient[:, :] = u @ vt
        for k in range(K):
            wo[k] = w[k] @ orient
            for j in range(D):
                proj[k, j] = (orient[:, j] * wo[k, :, j]).sum()
        if equal_volume:
            gm = np.empty(K)
            for k in range(K):
                gm[k] = np.exp(np.log(proj[k]).mean())
            for k in range(K):
                b[k] = (gm.sum() / n) * proj[k] / gm[k]
        else:
            for k in range(K):
                b[k] = proj[k] / n_k[k]
        value = 0.0
        for k in range(K):
            value += n_k[k] * np.log(b[k]).sum()
        value += (proj / b).sum()
        if abs(value - previous) <= tol * (1.0 + abs(value)):
            return True
        previous = value
        given = True
    return False


# ---------------------------------------------------------------------- the structures
class _Family:
    """What the mclust structures share: their row of the table, the regularised scatter,
    the free-parameter count and the M-step's loop control. Mixed into a layout of
    ``covariance`` (spherical, diagonal or ellipsoidal)."""

    model: Model
    tol: float = INNER_TOL
    max_iter: int = INNER_MAX_ITER

    def n_parameters(self, K: int, D: int) -> int:
        return self.model.n_parameters(K, D)

    def maximise_observed(self, counts, scatter, reg):
        """None: a constrained model's M-step takes its gaps completed (see ``Structure``)."""
        return None

    def flat_size(self, K: int, D: int) -> int:
        return int(self.flatten_size(K, D))

    def from_precisions(self, precisions: Tensor, K: int, D: int) -> Tensor:
        """User-given precisions (the layout's checks), which must describe covariances of
        this model: returned as the model's M-step reproduces them (exactly in the model)."""
        cov = super().from_precisions(precisions, K, D)
        return self.within(cov, K, D, "precisions_init")

    def within(self, cov: Tensor, K: int, D: int, name: str) -> Tensor:
        """``cov`` if it belongs to the model (to 1e-6 relative), else ParameterError: the
        M-step on scatter = cov with unit counts returns cov itself exactly when it does."""
        ones = torch.ones(K, dtype=torch.float64, device=cov.device)
        scatter = cov[:, None].expand(K, D).contiguous() if cov.ndim == 1 else cov  # spherical: D equal variances
        back = self.maximise(ones, scatter, 0.0, cov)
        if not bool(torch.allclose(back, cov, rtol=1e-6, atol=0.0)):
            raise ParameterError(
                f"{name} does not describe covariances of model {self.name!r} ({self.model.description}): "
                f"give values with that structure, or use covariance_type='full' (VVV) for unconstrained ones"
            )
        return back

    def mclust_terms(self, K: int, D: int, prior: MclustPrior) -> MclustTerms:
        """mclust's MAP M-step for this model (the table ``_MCLUST_PRIOR`` above)."""
        rule = _MCLUST_PRIOR.get(self.name)
        if rule is None or K == 1:
            return super().mclust_terms(K, D, prior)
        return rule(K, D, float(prior.dof), 1.0 if float(prior.means_weight) > 0 else 0.0)

    def check_features(self, D: int) -> None:
        """ParameterError when the model does not exist for D features."""
        if self.model.univariate and D != 1:
            other = "EII" if self.model.volume == "E" else "VII"
            raise ParameterError(
                f"covariance_type={self.name!r} is mclust's univariate model ({self.model.description}) and needs one "
                f"feature, but X has {D}; use {other!r} (spherical) or another multivariate model for {D} features"
            )


class SphericalFamily(_Family, Spherical):
    """EII, E (equal variance) and V (the univariate VII): one variance per component."""

    def __init__(self, name: str) -> None:
        self.name, self.model = name, MODELS[name]
        self.shared = name in ("E", "EII", "EEI")  # one covariance for every component

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        trace = scatter.sum(1) + n_k * reg * scatter.shape[1]
        D = scatter.shape[1]
        if self.model.volume == "V":
            return trace / (n_k * D)
        return (trace.sum() / (n_k.sum() * D)).expand(n_k.shape[0]).clone()

    def flatten_size(self, K: int, D: int) -> int:
        return 1 if self.model.volume == "E" else K

    def flatten(self, cov: Tensor) -> Tensor:
        return torch.log(cov[:1] if self.model.volume == "E" else cov)

    def unflatten(self, vector: Tensor, K: int, D: int) -> Tensor:
        return torch.exp(vector).expand(K).clone() if self.model.volume == "E" else torch.exp(vector)

    def decompose(self, cov: Tensor, K: int, D: int) -> tuple[Tensor, Tensor, Tensor]:
        return _decompose_diagonal(self.dense(cov, K, D))


class DiagonalFamily(_Family, Diag):
    """EEI, VEI, EVI: a diagonal matrix per component, volume and shape constrained."""

    def __init__(self, name: str) -> None:
        self.name, self.model = name, MODELS[name]
        self.shared = name in ("E", "EII", "EEI")  # one covariance for every component

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        w = scatter + (n_k * reg)[:, None]
        K = w.shape[0]
        name = self.name
        if name == "EEI":
            return (w.sum(0) / n_k.sum()).expand(K, -1).clone()
        if name == "EVI":  # B_k = w_k / gm(w_k), lambda = sum_k gm(w_k) / n
            # a single row's scatter is rounding (see _fixed_null_basis): its shape is 0 / 0,
            # singular, as mclust's M-step finds it, not a ratio of rounding errors
            lone = (n_k.to(w) < 1.5)[:, None] & (w.abs() <= _NULL_SHARE * w.abs().amax())
            w = torch.where(lone, torch.zeros_like(w), w)
            gm = torch.exp(_log_geomean(w))
            return (gm.sum() / n_k.sum()) * w / gm[:, None]
        return self._vei(n_k, w, old)

    def _vei(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        """VEI by coordinate ascent: B = diag(sum_k W_k / lambda_k) normalised to det 1, then
        lambda_k = tr(W_k B^-1) / (D n_k), until no volume or shape moves by more than
        ``tol`` relative (mclust's rule)."""
        D = w.shape[1]
        lam = torch.exp(_log_geomean(old)) if old is not None else torch.ones_like(n_k)
        b = None
        for _ in range(self.max_iter):
            new_b = (w / lam[:, None]).sum(0)
            new_b = new_b / torch.exp(_log_geomean(new_b))
            new_lam = (w / new_b).sum(1) / (D * n_k)
            done = b is not None and _settled((new_lam, new_b), (lam, b), self.tol)
            lam, b = new_lam, new_b
            if done or _degenerate(lam) or _degenerate(b):
                break
        return lam[:, None] * b

    def flatten_size(self, K: int, D: int) -> int:
        return {"EEI": D, "VEI": K + D, "EVI": 1 + K * D}[self.name]

    def flatten(self, cov: Tensor) -> Tensor:
        logs = torch.log(cov)
        if self.name == "EEI":
            return logs[0]
        vol = logs.mean(1)
        if self.name == "VEI":
            return torch.cat([vol, logs[0] - vol[0]])
        return torch.cat([vol[:1], (logs - vol[:, None]).reshape(-1)])

    def unflatten(self, vector: Tensor, K: int, D: int) -> Tensor:
        if self.name == "EEI":
            return torch.exp(vector).expand(K, D).clone()
        if self.name == "VEI":
            shape = vector[K:]
            return torch.exp(vector[:K, None] + (shape - shape.mean())[None, :])
        shapes = vector[1:].reshape(K, D)
        return torch.exp(vector[0] + shapes - shapes.mean(1, keepdim=True))

    def decompose(self, cov: Tensor, K: int, D: int) -> tuple[Tensor, Tensor, Tensor]:
        return _decompose_diagonal(self.dense(cov, K, D))


class EllipsoidalFamily(_Family, Full):
    """VEE, EVE, VVE, EEV, VEV, EVV: a full matrix per component, constrained."""

    def __init__(self, name: str) -> None:
        self.name, self.model = name, MODELS[name]
        self.shared = name in ("E", "EII", "EEI")  # one covariance for every component

    # ------------------------------------------------------------------ M-step
    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        D = scatter.shape[-1]
        eye = torch.eye(D, dtype=scatter.dtype, device=scatter.device)
        w = 0.5 * (scatter + scatter.transpose(1, 2)) + (n_k * reg)[:, None, None] * eye
        cov = getattr(self, "_" + self.name.lower())(n_k, w, old)
        return 0.5 * (cov + cov.transpose(1, 2))

    def _evv(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        """C_k = W_k / |W_k|^(1/D), lambda = sum_k |W_k|^(1/D) / n (closed form)."""
        D = w.shape[-1]
        gm = torch.exp(torch.linalg.slogdet(w)[1] / D)
        return (gm.sum() / n_k.sum()) * w / gm[:, None, None]

    def _eev(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        """W_k = L_k Omega_k L_k^T: Sigma_k = L_k (sum_j Omega_j / n) L_k^T (closed form)."""
        omega, vec = _eigh_descending(w)
        vec = _fixed_null_basis(omega, vec, n_k)
        return _rotate(vec, (omega.sum(0) / n_k.sum()).expand_as(omega))

    def _vev(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        """Coordinate ascent: A = sum_k Omega_k / lambda_k normalised to det 1, then
        lambda_k = tr(Omega_k A^-1) / (D n_k), until no volume or shape moves by more than
        ``tol`` relative (mclust's rule)."""
        D = w.shape[-1]
        omega, vec = _eigh_descending(w)
        vec = _fixed_null_basis(omega, vec, n_k)
        lam = torch.exp(torch.linalg.slogdet(old)[1] / D) if old is not None else torch.ones_like(n_k)
        a = None
        for _ in range(self.max_iter):
            new_a = (omega / lam[:, None]).sum(0)
            new_a = new_a / torch.exp(_log_geomean(new_a))
            new_lam = (omega / new_a).sum(1) / (D * n_k)
            done = a is not None and _settled((new_lam, new_a), (lam, a), self.tol)
            lam, a = new_lam, new_a
            if done or _degenerate(lam) or _degenerate(a):
                break
        return _rotate(vec, lam[:, None] * a)

    def _vee(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        """Coordinate ascent: C = sum_k W_k / lambda_k normalised to det 1, then
        lambda_k = tr(W_k C^-1) / (D n_k)."""
        D = w.shape[-1]
        lam = torch.exp(torch.linalg.slogdet(old)[1] / D) if old is not None else torch.ones_like(n_k)
        previous = math.inf
        for _ in range(self.max_iter):
            c = (w / lam[:, None, None]).sum(0)
            c = c / torch.exp(torch.linalg.slogdet(c)[1] / D)
            chol, info = torch.linalg.cholesky_ex(0.5 * (c + c.T))
            if int(info) != 0:  # the pooled shape is singular: every component is
                break
            lam = torch.diagonal(torch.cholesky_solve(w, chol), dim1=-2, dim2=-1).sum(-1) / (D * n_k)
            if _degenerate(lam):
                break
            value = float((n_k * D * torch.log(lam)).sum() + (n_k * D).sum())
            if _converged(value, previous, self.tol):
                break
            previous = value
        return lam[:, None, None] * c

    def _eve(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        return self._common_orientation(n_k, w, old, equal_volume=True)

    def _vve(self, n_k: Tensor, w: Tensor, old: Tensor | None) -> Tensor:
        return self._common_orientation(n_k, w, old, equal_volume=False)

    def _common_orientation(self, n_k: Tensor, w: Tensor, old: Tensor | None, equal_volume: bool) -> Tensor:
        """EVE and VVE: Sigma_k = D B_k D^T with D common and B_k diagonal (EVE: B_k =
        lambda A_k, det A_k = 1; VVE: B_k free). Given D, the B_k are closed form, which
        leaves a function of D alone, the profile (``_orientation_profile``), minimised
        over rotations from the previous orientation. First by mclust's loop, the
        majorisation-minimisation of Browne and McNicholas (2014) stopped by mclust's
        rule (``_orientation_mm``), for at most ``ORIENTATION_MM_ROUNDS`` rounds: where it
        stops by itself the answer is mclust's. It contracts at rates near 1, though
        (0.999 a round at D = 16, K = 8: thousands of rounds to mclust's rule, the M-step
        costing as much as the E-step), and where it has not stopped, safeguarded Newton
        steps (``_orientation_newton``) take it to its fixed point in a few rounds. Above
        ``ORIENTATION_NEWTON_MAX_FEATURES`` features Newton's Hessian costs more than
        the MM's rounds, which run to ``max_iter``. mclust's VVE leaves lambda_k out of
        B_k in the orientation step (see the module docstring).

        A VVE component whose scatter is singular to precision (fewer rows than features
        among its weight, no ``reg_covar``) has no maximiser: turning D's axis onto the
        scatter's null space sends b_kj, and the likelihood, without bound. mclust finds
        it singular (mevve checks each scatter's smallest eigenvalue) and so does this
        step: such a component comes back NaN, no covariance, which the mixture re-seeds
        or, under mclust's stopping rule, ends the fit on, and the orientation is the
        others'. (Not zero: with ``reg_covar`` added a zero covariance was a valid spike
        at the component's mean, and a float32 pass whose scatter rounded indefinite
        dropped the likelihood by 0.6 a row through it.) Before, the MM ran D onto that
        null space and EM's likelihood moved by rounding, up and down. EVE's profile
        stays bounded there (one volume for all)."""
        if not equal_volume:
            singular = _singular_scatter(w)
            if bool(singular.any()):
                cov = torch.full_like(w, math.nan)
                keep = ~singular
                if bool(keep.any()):
                    cov[keep] = self._common_orientation(n_k[keep], w[keep], None if old is None else old[keep],
                                                         equal_volume)
                return cov
        b = None
        if old is not None:
            orient = _common_orientation(old)
            b = torch.diagonal(orient.T @ old @ orient, dim1=-2, dim2=-1)
        else:
            orient = _common_orientation(w / n_k[:, None, None])
        newton = w.shape[-1] <= ORIENTATION_NEWTON_MAX_FEATURES
        rounds = min(self.max_iter, ORIENTATION_MM_ROUNDS) if newton else self.max_iter
        orient, stopped = _orientation_mm(n_k, w, orient, equal_volume, self.tol, rounds, b)
        if newton and not stopped:
            orient = _orientation_newton(n_k, w, orient, equal_volume, self.tol, self.max_iter)
        proj = (orient * (w @ orient)).sum(-2)  # (K, D): diag(D^T W_k D)
        if equal_volume:
            gm = torch.exp(_log_geomean(proj))
            b = (gm.sum() / n_k.sum()) * proj / gm[:, None]
        else:
            b = proj / n_k[:, None]
        return _rotate(orient, b)

    # ------------------------------------------------------------------ parametrisation
    def flatten_size(self, K: int, D: int) -> int:
        chol, rot = D * (D + 1) // 2, D * D
        return {"VEE": K + chol, "EVV": 1 + K * chol, "EEV": D + K * rot, "VEV": K + D + K * rot,
                "EVE": 1 + K * D + rot, "VVE": K * D + rot}[self.name]

    def flatten(self, cov: Tensor) -> Tensor:
        K, D, _ = cov.shape
        logdet = torch.linalg.slogdet(cov)[1]
        vol = logdet / D
        name = self.name
        if name == "VEE":
            return torch.cat([vol, _chol_unit_flat(cov[0] / torch.exp(vol[0]))])
        if name == "EVV":
            return torch.cat([vol[:1], _chol_unit_flat(cov / torch.exp(vol)[:, None, None]).reshape(-1)])
        if name in ("EEV", "VEV"):
            val, vec = _eigh_descending(cov)
            vec = _signed(vec)
            head = torch.log(val[0]) if name == "EEV" else torch.cat([vol, torch.log(val[0]) - vol[0]])
            return torch.cat([head, vec.reshape(-1)])
        orient = _common_orientation(cov)
        logb = torch.log(torch.diagonal(orient.T @ cov @ orient, dim1=-2, dim2=-1))
        head = torch.cat([vol[:1], (logb - vol[:, None]).reshape(-1)]) if name == "EVE" else logb.reshape(-1)
        return torch.cat([head, orient.reshape(-1)])

    def unflatten(self, vector: Tensor, K: int, D: int) -> Tensor:
        name, chol, rot = self.name, D * (D + 1) // 2, D * D
        if name == "VEE":
            return torch.exp(vector[:K])[:, None, None] * _chol_unit(vector[K:], D)
        if name == "EVV":
            return torch.exp(vector[0]) * _chol_unit(vector[1:].reshape(K, chol), D)
        if name in ("EEV", "VEV"):
            head = D if name == "EEV" else K + D
            orient = _orthonormal(vector[head:].reshape(K, D, D))
            if name == "EEV":
                diag = torch.exp(vector[:D]).expand(K, D)
            else:
                shape = vector[K:K + D]
                diag = torch.exp(vector[:K, None] + (shape - shape.mean())[None, :])
            return _rotate(orient, diag)
        head = 1 + K * D if name == "EVE" else K * D
        orient = _orthonormal(vector[head:head + rot].reshape(D, D))
        if name == "EVE":
            shapes = vector[1:head].reshape(K, D)
            diag = torch.exp(vector[0] + shapes - shapes.mean(1, keepdim=True))
        else:
            diag = torch.exp(vector[:head].reshape(K, D))
        return _rotate(orient, diag)

    def decompose(self, cov: Tensor, K: int, D: int) -> tuple[Tensor, Tensor, Tensor]:
        if self.model.orientation == "E":
            orient = _common_orientation(cov)
            b = torch.diagonal(orient.T @ cov @ orient, dim1=-2, dim2=-1)
            vol = torch.exp(_log_geomean(b))
            return vol, b / vol[:, None], orient.expand(K, D, D).clone()
        return _decompose_ellipsoidal(cov)


def _decompose_diagonal(dense: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(volume (K,), shape (K, D), orientation (K, D, D)) of diagonal covariances: the
    shape in the features' order, the orientation the identity."""
    var = torch.diagonal(dense, dim1=-2, dim2=-1)
    vol = torch.exp(_log_geomean(var))
    K, D = var.shape
    eye = torch.eye(D, dtype=dense.dtype, device=dense.device).expand(K, D, D).clone()
    return vol, var / vol[:, None], eye


def _decompose_ellipsoidal(dense: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(volume, shape largest first, orientation: eigenvectors as columns) of full matrices."""
    val, vec = _eigh_descending(dense)
    vol = torch.exp(_log_geomean(val))
    return vol, val / vol[:, None], _signed(vec)


def decompose(st: Structure, cov: Tensor, K: int, D: int) -> tuple[Tensor, Tensor, Tensor]:
    """lambda_k, A_k, D_k of any structure's covariances (scikit-learn's four included):
    volume (K,) = det(Sigma_k)^(1/D), shape (K, D) with product 1, orientation (K, D, D)."""
    if hasattr(st, "decompose"):
        return st.decompose(cov, K, D)
    dense = st.dense(cov, K, D)
    if st.kernel == "diag":
        return _decompose_diagonal(dense)
    return _decompose_ellipsoidal(dense.expand(K, D, D))


def family() -> dict[str, Structure]:
    """Every mclust name's structure; scikit-learn's four are their own objects."""
    table: dict[str, Structure] = {}
    for name in ("E", "V", "EII"):
        table[name] = SphericalFamily(name)
    for name in ("EEI", "VEI", "EVI"):
        table[name] = DiagonalFamily(name)
    for name in ("VEE", "EVE", "VVE", "EEV", "VEV", "EVV"):
        table[name] = EllipsoidalFamily(name)
    return table


__all__ = ["MODELS", "MULTIVARIATE", "UNIVARIATE", "NO_PRIOR", "SKLEARN_EQUIVALENT", "decompose", "family",
           "SphericalFamily", "DiagonalFamily", "EllipsoidalFamily", "Spherical", "Diag", "Tied", "Full"]
