"""The structural part of a latent class model, estimated after its measurement part.
Math only.

A latent class model has a measurement part, p(x | c) and the class weights, and a
structural part: a distal outcome p(y | c), or class probabilities that depend on
covariates, p(c | z). Fitting both at once (one step) lets the outcome move the
classes; the stepwise estimators fix the classes from x first (Vermunt 2010; Bakk,
Tekle & Vermunt 2013; StepMix's ``n_steps`` and ``correction``). Each one here is a
mixture over the structural columns whose log-joint gains a fixed term per row and
class, so the EM driver, its engines and its checks run it unchanged:

- two steps: the fixed term is the measurement model's log w_c + log p(x | c), and
  only the structural parameters move;
- three steps, ML correction: the fixed term is log P(assigned class | c), from the
  classification-error matrix D of the measurement model's assignments;
- three steps, naive or BCH: no EM at all; the structural M-step reads the rows with
  the assignments (times D^-1 for BCH) as given responsibilities.

:class:`OffsetComponent` is that fixed term, read from the row's columns (one per
class). :class:`CovariateComponent` is a multinomial logit of the class on covariates,
p(c | z) = softmax(B z)_c, taking one Newton-Raphson step per EM iteration (StepMix's
default), from statistics that stay additive: the gradient and Hessian of
sum_n sum_c r_nc log p(c | z_n) at the E-step's coefficients. The mixture's own weights
are then fixed at one, so that a row's class probabilities are the covariates' alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.errors import ParameterError
from .._core.stats import additive

_BLOCK_BYTES = 4 << 20
# the ML correction's log D is taken of D clipped into [_CLIP, 1 - _CLIP] (StepMix's clip):
# a class never assigned to another has log 0 there, not minus infinity
_CLIP = 1e-15
# eigenvalues of the covariate Hessian below this fraction of its largest are its null
# direction (a common shift of the classes' coefficients), not curvature
_RTOL = 1e-10


# ---------------------------------------------------------------------- the classification error
def assignments(resp: Tensor, assignment: str) -> Tensor:
    """The rows' class assignments from their posteriors ``resp`` (n, K): one-hot at the
    most likely class ('modal'), or the posteriors themselves ('soft')."""
    if assignment == "soft":
        return resp
    return torch.nn.functional.one_hot(resp.argmax(1), resp.shape[1]).to(resp.dtype)


def error_sums(resp: Tensor, assigned: Tensor, w: Tensor | None) -> Tensor:
    """The additive sums behind D: sum_n w_n r_nc a_ns, (K, K) float64 (a chunk's share)."""
    r = resp.double() if w is None else resp.double() * w.double()[:, None]
    return r.T @ assigned.double()


def classification_error(sums: Tensor) -> Tensor:
    """D[c, s] = P(assigned s | class c), from :func:`error_sums` over every row: each row
    of the sums over its total (Vermunt 2010, eq. 6; StepMix's ``compute_bch_matrix``)."""
    totals = sums.sum(1, keepdim=True)
    return sums / torch.where(totals > 0, totals, torch.ones_like(totals))


def ml_offsets(assigned: Tensor, error: Tensor) -> Tensor:
    """The ML correction's fixed term per row and class, (n, K): sum_s a_ns log D[c, s]
    (log P(assigned class | c) for a modal assignment)."""
    log_d = torch.log(error.clamp(_CLIP, 1.0 - _CLIP)).to(assigned)
    return assigned @ log_d.T


def bch_weights(assigned: Tensor, error: Tensor) -> Tensor:
    """The BCH correction's responsibilities, (n, K): the assignments times D^-1 (a
    pseudo-inverse, as D may be singular). They sum to 1 per row and may be negative."""
    return assigned @ torch.linalg.pinv(error.double()).to(assigned)


@dataclass(frozen=True)
class FixedTerms:
    """Each row's K fixed terms, from its measurement log-joint log w_c + log p(x | c)
    (n, K), for the stepwise estimator ``kind``: 'joint' (two steps: the log-joint
    itself, less log w_c when ``conditional``, the covariates then giving the class
    probabilities), 'ml' (three steps, ML: sum_s a_ns log D[c, s], plus log w_c unless
    ``conditional``), 'naive' (the assignments, as responsibilities) or 'bch' (the
    assignments times D^-1). ``error`` is D; ``assignment`` 'modal' or 'soft'."""

    kind: str
    log_w: Tensor
    conditional: bool = False
    assignment: str = "modal"
    error: Tensor | None = None

    def __call__(self, log_joint: Tensor) -> Tensor:
        if self.kind == "joint":
            return log_joint - self.log_w if self.conditional else log_joint
        assigned = assignments(torch.softmax(log_joint, 1), self.assignment)
        if self.kind == "ml":
            return ml_offsets(assigned, self.error) + (0.0 if self.conditional else self.log_w)
        return assigned if self.kind == "naive" else bch_weights(assigned, self.error)


# ---------------------------------------------------------------------- a fixed term per class
@dataclass(frozen=True, slots=True)
class OffsetParams:
    """No parameters: only the number of classes."""

    k: int

    @property
    def n_components(self) -> int:
        return self.k

    def to(self, device: torch.device | str) -> OffsetParams:
        return self


@additive
@dataclass(frozen=True, slots=True)
class OffsetStats:
    """n_k (K,): the responsibility mass (the product's count)."""

    n_k: Tensor

    def rebase(self, like: OffsetStats) -> OffsetStats:
        return self


@dataclass(frozen=True, slots=True)
class _OffsetPrepared:
    k: int
    dtype: torch.dtype

    @property
    def n_components(self) -> int:
        return self.k


class _Count:
    def __init__(self, k: int, device: torch.device) -> None:
        self.n_k = torch.zeros(k, dtype=torch.float64, device=device)

    def add(self, block: Tensor, rw: Tensor, w: Tensor | None) -> None:
        self.n_k += rw.sum(1, dtype=torch.float64)

    def result(self) -> OffsetStats:
        return OffsetStats(self.n_k)


class _Fixed:
    """What the two parameter-free or M-step-only parts share: no position, no gaps, no
    prior, no sampling, no k-means embedding (their starts are given, not searched for)."""

    translatable = False
    regularised = False
    gaps = False

    def translate(self, p, offset: Tensor):
        return p

    def location(self, p) -> None:
        return None

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        itemsize = torch.finfo(self.dtype).bits // 8
        return max(1024, _BLOCK_BYTES // ((D + 2 * K) * itemsize))

    def embed(self, x: Tensor) -> Tensor:
        return x[:, :0]

    def centres_of(self, p) -> Tensor:
        return torch.zeros(p.n_components, 0, dtype=torch.float64)

    def nearest(self, p, block):
        raise ParameterError(f"{self.name} starts from given parameters, never from k-means centres")

    def prior_gain(self, new, old) -> float:
        return 0.0

    def reseed(self, p, dead: list[int], rows: Tensor, weights: Tensor):
        return p

    def decrease_tolerance(self, p, weights: Tensor, value: float) -> float:
        return 100 * torch.finfo(self.dtype).eps * (1.0 + abs(value))

    def sample(self, p, labels: Tensor, generator: torch.Generator) -> Tensor:
        raise ParameterError(f"{self.name} is given with the rows, not modelled: it cannot be sampled")


class OffsetComponent(_Fixed):
    """K fixed log-densities read from the row itself: column c of the block is class c's
    term (the measurement model's log-joint, or the ML correction's log D). Nothing to
    estimate: its M-step keeps it."""

    letters = ""
    advice = "check the measurement model"
    failure = "Fitting the structural model failed: every class lost its support"
    name = "the measurement term"

    def __init__(self, n_classes: int, dtype: torch.dtype = torch.float64) -> None:
        self.k = int(n_classes)
        self.dtype = self.row_dtype = dtype

    def make_params(self) -> OffsetParams:
        return OffsetParams(self.k)

    def at(self, centres: Tensor) -> OffsetParams:
        return OffsetParams(self.k)

    def prepare(self, p: OffsetParams, device: torch.device) -> _OffsetPrepared:
        return _OffsetPrepared(self.k, self.dtype)

    def block(self, p: _OffsetPrepared, x: Tensor) -> Tensor:
        return x.to(p.dtype)

    def log_joint(self, p: _OffsetPrepared, block: Tensor, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        joint = block + log_w.to(block)[None, :]
        return joint.T if into is None else into.copy_(joint)

    def accumulator(self, p: _OffsetPrepared) -> _Count:
        return _Count(self.k, torch.device("cpu"))

    def m_step(self, s: OffsetStats, old: OffsetParams | None, update: str = "") -> tuple[OffsetParams, Tensor]:
        return OffsetParams(self.k), torch.ones(self.k, dtype=torch.bool)

    def n_free_parameters(self, K: int, D: int) -> int:
        return 0

    def to_tensors(self, p: OffsetParams) -> dict[str, Tensor]:
        return {}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> OffsetParams:
        return OffsetParams(self.k)

    def flatten(self, p: OffsetParams) -> Tensor:
        return torch.zeros(0, dtype=torch.float64)

    def unflatten(self, vector: Tensor, like: OffsetParams) -> OffsetParams:
        return like


# ---------------------------------------------------------------------- covariates
@dataclass(frozen=True, slots=True)
class CovariateParams:
    """coef (K, D1) float64: class c's logit is coef[c] . [1, z] (the intercept first, when
    there is one). Softmax leaves a common shift of every class's row free; the fit keeps
    the rows summing to what they started from (0 from the default start)."""

    coef: Tensor

    @property
    def n_components(self) -> int:
        return int(self.coef.shape[0])

    def to(self, device: torch.device | str) -> CovariateParams:
        return CovariateParams(self.coef.to(device))


@additive
@dataclass(frozen=True, slots=True)
class CovariateStats:
    """At the E-step's coefficients: n_k (K,) the responsibility mass; gradient (D1, K)
    = sum_n z_n (s_n p_n - r_n), minus the gradient of sum_n sum_c r_nc log p(c | z_n),
    where s_n = sum_c r_nc (the row's weight); hessian (D1 K, D1 K) = sum_n s_n
    (z_n z_n') x (diag p_n - p_n p_n'), minus its Hessian, indexed a K + c."""

    n_k: Tensor
    gradient: Tensor
    hessian: Tensor

    def rebase(self, like: CovariateStats) -> CovariateStats:
        return self


@dataclass(frozen=True, slots=True)
class _CovariatePrepared:
    coef: Tensor  # (K, D1) kernel dtype

    @property
    def dtype(self) -> torch.dtype:
        return self.coef.dtype

    @property
    def n_components(self) -> int:
        return int(self.coef.shape[0])


class _Newton:
    def __init__(self, p: _CovariatePrepared) -> None:
        K, D1 = p.coef.shape
        self.p = p
        f64 = dict(dtype=torch.float64, device=p.coef.device)
        self.n_k = torch.zeros(K, **f64)
        self.gradient = torch.zeros(D1, K, **f64)
        self.hessian = torch.zeros(D1 * K, D1 * K, **f64)

    def add(self, z: Tensor, rw: Tensor, w: Tensor | None) -> None:
        n, D1 = z.shape
        K = self.p.n_components
        prob = torch.softmax(z @ self.p.coef.T, 1).double()  # (n, K)
        r = rw.T.double()  # (n, K): responsibility times the row's weight
        s = r.sum(1)  # (n,) the row's weight (its responsibilities sum to 1)
        zd = z.double()
        self.n_k += r.sum(0)
        self.gradient += zd.T @ (prob * s[:, None] - r)
        sp = prob * s[:, None]
        left = (zd[:, :, None] * sp[:, None, :]).reshape(n, D1 * K)  # s p_c z_a at a K + c
        outer = left.T @ (zd[:, :, None] * prob[:, None, :]).reshape(n, D1 * K)  # s z z' p_c p_d
        diagonal = (left.T @ zd).reshape(D1, K, D1)  # s z_a z_b p_c
        eye = torch.eye(K, dtype=torch.float64, device=zd.device)
        self.hessian += (diagonal[:, :, :, None] * eye[None, :, None, :]).reshape(D1 * K, D1 * K) - outer

    def result(self) -> CovariateStats:
        return CovariateStats(self.n_k, self.gradient, self.hessian)


class CovariateComponent(_Fixed):
    """p(c | z) = softmax(coef [1, z])_c over the block's covariate columns: a multinomial
    logit of the class (Bakk & Kuha 2018's conditional model; StepMix's 'covariate').
    The M-step is one Newton-Raphson step with the Hessian's pseudo-inverse (StepMix's
    ``method='newton-raphson'``, ``max_iter=1``): a generalised EM step that is not
    guaranteed to raise the likelihood, so it reports itself as no plain ascent
    (``ascent = False``) and the driver does not check its monotonicity."""

    letters = "b"
    ascent = False
    advice = "standardise the covariates, or use fewer of them"
    failure = "Fitting the covariate model failed: every class lost its support"
    name = "a covariate"

    def __init__(self, n_covariates: int, intercept: bool = True, dtype: torch.dtype = torch.float64) -> None:
        self.n_covariates = int(n_covariates)
        self.intercept = bool(intercept)
        self.dtype = self.row_dtype = dtype

    @property
    def width(self) -> int:
        """D1: the covariates, and the intercept's column of ones."""
        return self.n_covariates + self.intercept

    def make_params(self, coef: Tensor) -> CovariateParams:
        return CovariateParams(coef.to(torch.float64))

    def at(self, centres: Tensor) -> CovariateParams:
        """Every class equally likely whatever the covariates: coefficients 0."""
        return CovariateParams(torch.zeros(centres.shape[0], self.width, dtype=torch.float64))

    def prepare(self, p: CovariateParams, device: torch.device) -> _CovariatePrepared:
        return _CovariatePrepared(p.coef.to(device, self.dtype))

    def block(self, p: _CovariatePrepared, x: Tensor) -> Tensor:
        """The covariates with a leading column of ones (when there is an intercept)."""
        z = x.to(p.dtype)
        if not self.intercept:
            return z
        return torch.cat([torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device), z], 1)

    def log_joint(self, p: _CovariatePrepared, block: Tensor, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        joint = torch.log_softmax(block @ p.coef.T, 1).add_(log_w.to(block)[None, :])
        return joint.T if into is None else into.copy_(joint)

    def accumulator(self, p: _CovariatePrepared) -> _Newton:
        return _Newton(p)

    def m_step(self, s: CovariateStats, old: CovariateParams | None, update: str = "b") -> tuple[CovariateParams, Tensor]:
        """coef - H^+ g, in StepMix's layout (coefficient a of class c at a K + c)."""
        if old is None:
            raise ParameterError("the covariate model's Newton step needs the coefficients it starts from")
        valid = torch.ones(old.n_components, dtype=torch.bool)
        if "b" not in update:
            return old, valid
        K, D1 = old.coef.shape
        step = (torch.linalg.pinv(s.hessian, hermitian=True, rtol=_RTOL) @ s.gradient.reshape(-1)).reshape(D1, K)
        # the Hessian is singular along a common shift of every class's coefficients, which
        # changes no probability; rounding there (BCH's rows sum to 1 only to 1e-16) would
        # move the coefficients along it forever, so the step is kept off it
        step = step - step.mean(1, keepdim=True)
        return CovariateParams((old.coef.T.to(step) - step).T.contiguous().cpu()), valid

    def n_free_parameters(self, K: int, D: int) -> int:
        """(K - 1) D1: softmax leaves one class's coefficients free."""
        return (K - 1) * self.width

    def to_tensors(self, p: CovariateParams) -> dict[str, Tensor]:
        return {"coef": p.coef}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> CovariateParams:
        return CovariateParams(tensors["coef"].to(torch.float64))

    def flatten(self, p: CovariateParams) -> Tensor:
        return p.coef.reshape(-1)

    def unflatten(self, vector: Tensor, like: CovariateParams) -> CovariateParams:
        return CovariateParams(vector.reshape(like.coef.shape))
