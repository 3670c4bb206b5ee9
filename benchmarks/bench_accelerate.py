"""Plain EM against SQUAREM, and the gain stopping rule against Aitken's, in one run.

Every fit starts from the same parameters and runs in float64 (a relative gap of 1e-8
is below float32's rounding of a mean log-likelihood). For each case:

1. the optimum L*: the best log-likelihood any run below reaches (SQUAREM run to a
   gain of 1e-13 per row first);
2. passes over the data, and wall seconds, until a pass evaluates parameters whose
   log-likelihood is within 1e-8 relative of L*, for plain EM and for SQUAREM (plain EM
   capped at --cap passes: "> cap" then, and the ratio is a lower bound);
3. the stopping rules at the estimator's default tol (1e-3 per row for the mixture,
   1e-2 in total for the HMM): passes until each rule stops, and how far below L* the
   fit stopped (per row), for plain EM with either rule and SQUAREM with the gain rule
   (Aitken's rule assumes plain EM's linear convergence: SQUAREM refuses it).

Cases:
  a  3 heavily overlapping full-covariance Gaussians, 1e6 x 8
  b  Old Faithful (bigem.datasets), tied covariance, K=3
  c  GaussianHMM, 8 states with overlapping diagonal emissions, 1000 sequences x 1000 steps, D=4
  d  3 well-separated full-covariance Gaussians, 2e5 x 4

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_accelerate.py [--quick] [--cases a,b]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from bigem import GaussianHMM, GaussianMixture
from bigem._core.errors import ConvergenceWarning
from bigem.datasets import load_faithful

TARGET = 1e-8


class Reached(Exception):
    """Raised by a callback to end a fit once its target is reached."""


def mixture_case(name: str, quick: bool):
    rng = np.random.default_rng(0)
    if name == "a":
        n, d = (100_000 if quick else 1_000_000), 8
        means = np.stack([np.zeros(d), np.full(d, 0.3), np.r_[np.full(d // 2, -0.25), np.full(d // 2, 0.25)]])
        covs = [np.eye(d), 0.6 * np.eye(d) + 0.4, np.diag(np.linspace(0.5, 1.5, d))]
        parts = [rng.multivariate_normal(m, c, n // 3 + (i < n % 3)) for i, (m, c) in enumerate(zip(means, covs))]
        X, ct = np.concatenate(parts), "full"
    elif name == "b":
        X, ct = load_faithful(), "tied"
    else:
        n, d = (20_000 if quick else 200_000), 4
        means = rng.normal(0, 3, (3, d))
        X, ct = np.concatenate([rng.normal(m, 1.0, (n // 3, d)) for m in means]), "full"
    X = X[rng.permutation(len(X))]
    start = GaussianMixture(3, covariance_type=ct, max_iter=1, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)

    def fit(accelerate, stopping, tol, max_passes, callback):
        gm = GaussianMixture(3, covariance_type=ct, tol=tol, max_iter=max_passes, dtype="float64",
                             accelerate=accelerate, stopping=stopping, **init)
        gm.fit(X, callback=callback)
        return gm.lower_bound_

    return X.shape, fit, 1e-3


def hmm_case(quick: bool):
    K, D = 8, 4
    n_seq, length = (100, 1000) if quick else (1000, 1000)
    rng = np.random.default_rng(1)
    trans = np.full((K, K), 0.1 / (K - 1))
    np.fill_diagonal(trans, 0.9)
    means = rng.normal(0, 1.2, (K, D))
    cdf = np.cumsum(trans, 1)
    states = np.empty(n_seq * length, dtype=np.int64)
    u = rng.random(len(states))
    s = 0
    for t in range(len(states)):
        s = int(rng.integers(K)) if t % length == 0 else min(int(np.searchsorted(cdf[s], u[t])), K - 1)
        states[t] = s
    X = means[states] + rng.normal(0, 1.0, (len(states), D))
    lengths = np.full(n_seq, length)
    init_means = means + np.random.default_rng(2).normal(0, 0.5, (K, D))  # near the truth, not at it

    def fit(accelerate, stopping, tol, max_passes, callback):
        hmm = GaussianHMM(K, covariance_type="diag", n_iter=max_passes, tol=tol * len(X), init_params="",
                          dtype="float64", accelerate=accelerate, stopping=stopping)
        hmm.startprob_ = np.full(K, 1.0 / K)
        hmm.transmat_ = np.full((K, K), 0.5 / K) + 0.5 * np.eye(K)
        hmm.means_ = init_means
        hmm.covars_ = np.ones((K, D))
        hmm.fit(X, lengths, callback=callback)
        return hmm.monitor_.history[-1] / len(X)

    return X.shape, fit, 1e-2 / len(X)


class Trace:
    """What a fit's callback saw: per pass, the objective, acceptance and the time."""

    def __init__(self, stop_at: float | None = None) -> None:
        self.values: list[float] = []
        self.accepted: list[bool] = []
        self.elapsed: list[float] = []
        self.stop_at = stop_at
        self.started = time.perf_counter()

    def __call__(self, info) -> None:
        self.values.append(info.log_likelihood)
        self.accepted.append(info.accepted)
        self.elapsed.append(time.perf_counter() - self.started)
        if self.stop_at is not None and info.accepted and info.log_likelihood >= self.stop_at:
            raise Reached

    def run(self, fit, *args) -> Trace:
        self.started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit(*args, self)
        except Reached:
            pass
        return self

    @property
    def best(self) -> float:
        return max((v for v, ok in zip(self.values, self.accepted) if ok), default=-math.inf)

    def reached(self, target: float) -> tuple[int, float] | None:
        for i, (v, ok) in enumerate(zip(self.values, self.accepted)):
            if ok and v >= target:
                return i + 1, self.elapsed[i]
        return None


def passes(hit, cap: int) -> str:
    return f"> {cap}" if hit is None else str(hit[0])


def bench(name: str, shape, fit, default_tol: float, cap: int) -> None:
    print(f"\ncase {name}: {shape[0]:,} x {shape[1]}")
    reference = Trace().run(fit, "squarem", "gain", 1e-13, 5000)
    optimum = reference.best
    target = optimum - TARGET * abs(optimum)
    plain = Trace(target).run(fit, None, "gain", 0.0, cap)
    fast = Trace(target).run(fit, "squarem", "gain", 0.0, cap)
    optimum = max(optimum, plain.best, fast.best)
    target = optimum - TARGET * abs(optimum)
    p, f = plain.reached(target), fast.reached(target)
    rejected = fast.accepted[: f[0] if f else len(fast.accepted)].count(False)
    print(f"  optimum L* = {optimum:.12f} (mean log-likelihood per row)")
    print(f"  to within {TARGET:g} of L*: plain EM {passes(p, cap)} passes"
          f"{'' if p is None else f' {p[1]:.2f}s'}, SQUAREM {passes(f, cap)} passes"
          f"{'' if f is None else f' {f[1]:.2f}s'} ({rejected} rejected extrapolations)")
    if f is not None:
        bound = ">= " if p is None else ""
        ratio = (cap if p is None else p[0]) / f[0]
        print(f"  passes ratio plain/SQUAREM {bound}{ratio:.2f}x", end="")
        if p is not None:
            print(f", wall-time ratio {p[1] / f[1]:.2f}x")
        else:
            print()
    print(f"  stopping at tol={default_tol:g} per row: passes to stop, gap below L* per row")
    for accelerate, stopping in ((None, "gain"), (None, "aitken"), ("squarem", "gain")):
        t = Trace().run(fit, accelerate, stopping, default_tol, cap)
        print(f"    {'SQUAREM' if accelerate else 'plain EM':<8} {stopping:<6} {len(t.values):>5} passes, "
              f"gap {optimum - t.best:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--cases", default="a,b,c,d")
    parser.add_argument("--cap", type=int, default=2000, help="plain EM's most passes per fit (default 2000)")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64")
    for name in args.cases.split(","):
        if name == "c":
            shape, fit, tol = hmm_case(args.quick)
            bench(name, shape, fit, tol, min(args.cap, 600))
        else:
            shape, fit, tol = mixture_case(name, args.quick)
            bench(name, shape, fit, tol, args.cap)


if __name__ == "__main__":
    main()
