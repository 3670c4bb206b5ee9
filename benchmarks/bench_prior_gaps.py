"""mclust's prior with missing values: what the prior's data moments cost before the fit.

With ``missing_values="fiml"`` the prior's centre and scale are the mean and covariance
of one Gaussian fitted to the observed values by EM (``estimators.priors.data_moments``),
extrapolated by SQUAREM. One run, the same data for every row of the table (N rows of
three correlated features, a share of the entries missing completely at random, K=2,
float32 fits as by default):

- the fit without a prior, and with ``prior="default"``: seconds, and the passes the
  moments took before the fit;
- the moments by plain EM (SQUAREM off, as the first version ran them), to the same
  tolerance: passes and seconds.

Each time is the best of ``--repeats`` runs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_prior_gaps.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--missing", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import bigem
    from bigem.em import driver

    rng = np.random.default_rng(0)
    C = np.array([[1, 0.95, 0.9], [0.95, 1, 0.95], [0.9, 0.95, 1]])
    X = rng.multivariate_normal([0, 0, 0], C, args.rows)
    X[rng.random(X.shape) < args.missing] = np.nan
    X[np.isnan(X).all(1), 0] = 0.0

    # the moments' EM imports driver.fit_em when it runs (the fit's own EM holds its import):
    # patched, it counts their passes and takes the acceleration asked for
    passes = {"n": 0}
    original = driver.fit_em

    def counted(*a, **kw):
        best, runs = original(*a, **kw)
        passes["n"] += best.n_iter
        return best, runs

    def run(prior, accelerate):
        def patched(*a, **kw):
            return counted(*a, **{**kw, "accelerate": accelerate})

        driver.fit_em = patched
        try:
            best, n = float("inf"), 0
            for _ in range(args.repeats):
                passes["n"] = 0
                started = time.perf_counter()
                bigem.GaussianMixture(2, prior=prior, missing_values="fiml", random_state=0).fit(X)
                best = min(best, time.perf_counter() - started)
                n = passes["n"]
            return best, n
        finally:
            driver.fit_em = original

    plain_fit, _ = run(None, None)
    squarem, squarem_passes = run("default", "squarem")
    em, em_passes = run("default", None)
    print(f"{args.rows} rows x 3, {args.missing:.0%} missing, K=2, best of {args.repeats}")
    print("| fit | seconds | the moments' passes |")
    print("|---|---|---|")
    print(f"| no prior | {plain_fit:.2f} | - |")
    print(f"| prior='default', moments by SQUAREM | {squarem:.2f} | {squarem_passes} |")
    print(f"| prior='default', moments by plain EM | {em:.2f} | {em_passes} |")
    print(f"prior / no prior: {squarem / plain_fit:.2f}x; plain EM's moments / SQUAREM's: {em / squarem:.2f}x")


if __name__ == "__main__":
    main()
