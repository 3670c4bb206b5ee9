"""Stepwise structural estimators: bigem's ``StructuralModel`` beside StepMix's
``StepMix(n_steps=..., correction=...)``, on the same data and the same measurement fit,
in one run.

Data: ``--rows`` answers to ``--items`` binary items from 3 latent classes, a Gaussian
distal outcome and two covariates that shift the classes' odds. Each estimator runs on
both sides from the same start (StepMix's default random start and the same
random_state, so the same measurement fit), with StepMix's abs_tol as bigem's tol;
StepMix's covariate model takes Newton steps to convergence in its M-step
(``structural_params={"max_iter": 100}``), as bigem's does. The script prints each
side's time (the measurement fit included, as StepMix always refits it), the ratio, and
the largest difference of a structural parameter (the means, or the log odds against
class 0).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_structural.py
    python benchmarks/bench_structural.py --quick    # small sizes: proves the script works
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

CASES = [("outcome", 1, None), ("outcome", 2, None), ("outcome", 3, None), ("outcome", 3, "BCH"),
         ("outcome", 3, "ML"), ("covariate", 1, None), ("covariate", 2, None), ("covariate", 3, "ML")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows = 2000
    warnings.simplefilter("ignore")
    import stepmix

    import bigem

    rng = np.random.default_rng(0)
    n, K = args.rows, 3
    Z = rng.normal(size=(n, 2))
    logits = np.c_[np.ones(n), Z] @ np.array([[0.0, 0.0, 0.0], [0.3, 0.8, -0.4], [-0.3, -0.8, 0.6]]).T
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    z = (rng.random(n)[:, None] > np.cumsum(prob, 1)).sum(1)
    truth = rng.uniform(0.15, 0.85, (K, args.items))
    X = (rng.random((n, args.items)) < truth[z]).astype(float)
    Y = rng.normal(np.array([0.0, 1.0, 2.0])[z], 1.0)[:, None]
    # first calls pay one-off costs (imports, kernel set-up) on both sides: not timed
    for steps in (1, 2, 3):
        stepmix.StepMix(n_components=K, measurement="binary", structural="gaussian_diag", n_steps=steps,
                        verbose=0, progress_bar=0).fit(X[:500], Y[:500])
        bigem.StructuralModel(bigem.BernoulliMixture(K, dtype="float64"), "gaussian", n_steps=steps).fit(X[:500],
                                                                                                        Y[:500])
    print(f"{n} rows x {args.items} binary items, 3 classes; tol {args.tol:g}")
    print(f"{'estimator':<22} {'StepMix s':>10} {'bigem s':>9} {'ratio':>7} {'max diff':>9}")
    for kind, steps, correction in CASES:
        data, structural = (Y, ("gaussian_diag", "gaussian")) if kind == "outcome" else (Z, ("covariate",) * 2)
        extra = {"structural_params": {"max_iter": 100, "tol": 1e-10}} if kind == "covariate" else {}
        began = time.perf_counter()
        ref = stepmix.StepMix(n_components=K, measurement="binary", structural=structural[0], n_steps=steps,
                              correction=correction, random_state=0, abs_tol=args.tol, max_iter=1000, verbose=0,
                              progress_bar=0, **extra).fit(X, data)
        theirs = time.perf_counter() - began
        began = time.perf_counter()
        measurement = bigem.BernoulliMixture(K, init_params="random", alpha=0.0, tol=args.tol, max_iter=1000,
                                             random_state=0, dtype="float64")
        m = bigem.StructuralModel(measurement, structural[1], n_steps=steps, correction=correction, tol=args.tol,
                                  max_iter=1000).fit(X, data)
        ours = time.perf_counter() - began
        got = ref.get_parameters()["structural"]
        pis = ref.get_parameters()["measurement"]["pis"]
        order = [int(np.argmin(np.abs(m.measurement_.probabilities_ - p).max(1))) for p in pis]  # ours for theirs
        if kind == "outcome":
            diff = np.abs(m.means_[order] - got["means"]).max()
        else:
            beta, mine = got["beta"], np.c_[m.intercept_, m.coef_][order]
            diff = np.abs((mine - mine[0]) - (beta - beta[0])).max()
        label = f"{kind} {steps}-step" + (f" {correction}" if correction else "")
        print(f"{label:<22} {theirs:>10.2f} {ours:>9.2f} {ours / theirs:>7.3f} {diff:>9.1e}")


if __name__ == "__main__":
    main()
