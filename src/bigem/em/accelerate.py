"""Fewer passes over the data: SQUAREM extrapolation of the EM map, and Aitken's stopping rule.

SQUAREM (Varadhan and Roland, 2008; the R package SQUAREM's SqS3 scheme). From a point
theta0 the EM map F gives theta1 = F(theta0) and theta2 = F(theta1); with r = theta1 -
theta0 and v = theta2 - theta1 - r, the "squared" step

    theta' = theta0 + 2 alpha r + alpha^2 v,    alpha = |r| / |v| within [1, step_max],

extrapolates along the path EM is taking (alpha = 1 gives theta2 itself). The points
are the model's unconstrained vectors (``Model.flatten``: logits, means, log-diagonal
Cholesky factors), so every extrapolated vector is valid parameters. The next E-step
evaluates theta' and, if its objective has not fallen below theta1's, its M-step gives
the next cycle's theta1 (theta' is the next theta0): a cycle costs two passes, the
objective of theta' riding on the E-step the next cycle needs anyway. If it has fallen,
theta' is rejected (that pass is spent) and the cycle starts again from theta2, a
plain EM point. So the objectives of the accepted points never fall, as EM's do.
``step_max`` grows fourfold while steps reach it and shrinks back on a rejection, as in
the R package.

Aitken's rule (McNicholas et al., 2010): from three successive objectives, the
rate a = (l2 - l1) / (l1 - l0) and the limit l_inf = l1 + (l2 - l1) / (1 - a) that a
linearly converging sequence approaches; stop when |l_inf - l2| < tol. Where the
sequence is not converging linearly (a outside (0, 1)), the gain rule decides.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._core.errors import NumericalError

STEP_MAX0 = 1.0  # the R package's step.max0
MSTEP = 4.0  # its mstep: the factor step_max grows and shrinks by


class Squarem:
    """One run's extrapolation state: where the cycle stands between passes."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.step_max = STEP_MAX0
        self.phase = 0  # 0: the next point starts a cycle; 1: it is theta1; 2: an extrapolation
        self.theta0: torch.Tensor | None = None
        self.theta1: torch.Tensor | None = None
        self.fallback: Any = None  # theta2, taken if the extrapolation is rejected
        self.alpha = 1.0

    @property
    def pending(self) -> bool:
        """Whether the point being evaluated is an extrapolation still to be judged."""
        return self.phase == 2

    def advance(self, evaluated: Any, new: Any, exact: bool) -> Any:
        """The next point to evaluate, after the M-step took ``evaluated`` to ``new``
        (``exact``: a plain EM step; a re-seed is a jump that starts a cycle afresh)."""
        if not exact:
            self.phase = 0
            return new
        if self.phase == 2:  # theta' accepted: it is this cycle's theta0, new is its theta1
            if self.alpha >= self.step_max:
                self.step_max *= MSTEP
            self.phase = 0
        if self.phase == 0:
            self.theta0, self.theta1 = self.model.flatten(evaluated), self.model.flatten(new)
            self.phase = 1
            return new
        return self._extrapolate(new)

    def _extrapolate(self, theta2: Any) -> Any:
        flat2 = self.model.flatten(theta2)
        theta0, theta1 = self.theta0.to(flat2), self.theta1.to(flat2)  # a resumed cycle's are on the CPU
        r = theta1 - theta0
        v = flat2 - theta1 - r
        self.phase = 0
        rr, vv = float(r @ r), float(v @ v)
        if not (math.isfinite(rr) and math.isfinite(vv)) or vv == 0.0:
            return theta2
        self.alpha = min(self.step_max, max(1.0, math.sqrt(rr / vv)))
        if self.alpha == 1.0:  # the extrapolation is theta2 itself: a plain EM point, accepted
            if self.alpha >= self.step_max:
                self.step_max *= MSTEP
            return theta2
        point = theta0 + 2 * self.alpha * r + self.alpha**2 * v
        try:
            if not bool(torch.isfinite(point).all()):
                return theta2
            extrapolated = self.model.unflatten(point, theta2)
        except (NumericalError, RuntimeError, ValueError):  # overflowed past valid parameters
            return theta2
        self.fallback, self.phase = theta2, 2
        return extrapolated

    def reject(self) -> Any:
        """The extrapolation lowered the objective: evaluate theta2 next, and step less far."""
        if self.alpha >= self.step_max:
            self.step_max = max(STEP_MAX0, self.step_max / MSTEP)
        self.phase = 0
        return self.fallback


    # ------------------------------------------------------------ checkpoints
    def state(self, model: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON scalars that :meth:`restore` continues the cycle from, so a
        resumed fit takes the same steps as an uninterrupted one."""
        tensors: dict[str, torch.Tensor] = {}
        if self.phase >= 1:
            tensors.update(theta0=self.theta0, theta1=self.theta1)
        if self.phase == 2:
            tensors.update({f"fallback.{k}": v for k, v in model.to_tensors(self.fallback).items()})
        return tensors, {"phase": self.phase, "step_max": self.step_max, "alpha": self.alpha}

    def restore(self, model: Any, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.phase, self.step_max, self.alpha = int(meta["phase"]), float(meta["step_max"]), float(meta["alpha"])
        if self.phase >= 1:
            self.theta0, self.theta1 = tensors["theta0"].double(), tensors["theta1"].double()
        if self.phase == 2:
            self.fallback = model.from_tensors({k[len("fallback."):]: v for k, v in tensors.items()
                                                if k.startswith("fallback.")})


def aitken_converged(values: list[float], tol: float) -> bool:
    """Whether the Aitken-extrapolated limit of the last three objectives is within ``tol``
    of the last, and the last change is below ``tol`` too (the gain rule where the
    sequence is not converging linearly). The rule is never looser than the gain rule:
    right after a large jump the rate estimated from three values can be near 0 (0.019
    measured), which put the limit beside the last value and ended a fit 31 nats short
    with a cluster still split in two."""
    if len(values) < 3:
        return False
    l0, l1, l2 = values[-3:]
    if l1 == l0:
        return abs(l2 - l1) < tol
    a = (l2 - l1) / (l1 - l0)
    if not 0.0 < a < 1.0:
        return abs(l2 - l1) < tol
    limit = l1 + (l2 - l1) / (1.0 - a)
    return max(abs(limit - l2), abs(l2 - l1)) < tol
