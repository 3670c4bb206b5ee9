"""Passes to converge with gaps: diagonal and spherical Gaussians (missing_values="fiml")
by the step over observed values (each feature's mean and variance from the rows that
observed it) against the step that completes the gaps by the old mean and variance (the
previous M-step, run here by turning the first off), and StepMix's gaussian_diag_nan.

The same data (N rows of D=6 features from K=4 components, entries missing completely at
random at each rate) and start for both bigem steps, float64, tol=1e-8; StepMix from its
own start with abs_tol=1e-8 (its iteration count, where installed). Counts, not times:
each iteration costs the same either way.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_missing_steps.py
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rates", default="0.1,0.3,0.5")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import bigem
    from bigem.models.gaussian import GaussianComponent

    try:
        from stepmix.stepmix import StepMix
    except ImportError:
        StepMix = None
    observed_step = GaussianComponent._observed_m_step
    print(f"{'rate':>5} {'type':>10} {'observed':>9} {'completed':>10} {'ratio':>6} {'StepMix':>8}  lower bounds")
    for rate in (float(r) for r in args.rates.split(",")):
        rng = np.random.default_rng(0)
        z = rng.integers(0, 4, args.rows)
        X = rng.normal(rng.normal(0, 2.5, (4, 6))[z], 1.0)
        X[rng.random(X.shape) < rate] = np.nan
        X = X[~np.isnan(X).all(1)]
        for ct in ("diag", "spherical"):
            fits = []
            for step in (observed_step, lambda self, s, old, update: None):
                GaussianComponent._observed_m_step = step
                try:
                    fits.append(bigem.GaussianMixture(4, covariance_type=ct, missing_values="fiml", dtype="float64",
                                                      tol=1e-8, max_iter=5000, random_state=0).fit(X))
                finally:
                    GaussianComponent._observed_m_step = observed_step
            theirs = ""
            if StepMix is not None and ct == "diag":
                theirs = StepMix(4, measurement="gaussian_diag_nan", abs_tol=1e-8, max_iter=5000, random_state=0,
                                 verbose=0, progress_bar=0).fit(X).n_iter_
            a, b = fits
            print(f"{rate:5.1f} {ct:>10} {a.n_iter_:9d} {b.n_iter_:10d} {b.n_iter_ / a.n_iter_:5.2f}x {theirs!s:>8}  "
                  f"{a.lower_bound_:.8f} {b.lower_bound_:.8f}")


if __name__ == "__main__":
    main()
