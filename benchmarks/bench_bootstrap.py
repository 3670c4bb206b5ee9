"""Bootstrap standard errors of a latent class model: bigem's ``bootstrap`` beside
StepMix's ``bootstrap``, on the same fitted model, in one run.

Data: ``--rows`` answers to ``--items`` binary items from 3 latent classes. Both sides
fit the model (StepMix's default start, the same random_state, so the same fit), then
draw ``--reps`` nonparametric replicates: StepMix refits each resampled copy of the
rows from a new random start and aligns its classes by their posteriors; bigem
reweights the same rows and warm-starts each refit from the fit. The script prints each
side's time, the ratio, and how far the two sets of standard errors are apart (the
median and the largest ratio over the class probabilities; both are Monte Carlo
estimates, so they differ by about 1/sqrt(2 reps) even when both are right).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_bootstrap.py
    python benchmarks/bench_bootstrap.py --quick    # small sizes: proves the script works
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.reps = 500, 5
    warnings.simplefilter("ignore")
    import stepmix

    import bigem

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.1, 0.9, (3, args.items))
    z = rng.choice(3, args.rows, p=[0.5, 0.3, 0.2])
    X = (rng.random((args.rows, args.items)) < truth[z]).astype(float)

    ref = stepmix.StepMix(n_components=3, measurement="binary", random_state=0, verbose=0, progress_bar=0).fit(X)
    ours = bigem.BernoulliMixture(3, init_params="random", random_state=0, alpha=0.0, tol=1e-10, max_iter=1000,
                                  dtype="float64").fit(X)
    print(f"{args.rows} rows x {args.items} binary items, 3 classes, {args.reps} nonparametric replicates")
    print(f"the two fits: largest difference of a class probability "
          f"{np.abs(ours.probabilities_ - ref.get_parameters()['measurement']['pis']).max():.1e}")

    began = time.perf_counter()
    samples, _ = stepmix.bootstrap.bootstrap(ref, X, n_repetitions=args.reps, progress_bar=False, random_state=1)
    theirs_s = time.perf_counter() - began
    began = time.perf_counter()
    result = ours.bootstrap(X, n_boot=args.reps, random_state=1)
    ours_s = time.perf_counter() - began

    # StepMix's rows: (model, model_name, param, class_no, variable) -> value, one per replicate
    pis = samples.xs("measurement", level="model").xs("pis", level="param")["value"]
    spread = pis.groupby(level=["class_no", "variable"]).std().unstack()
    theirs_se = spread[[f"feature_{j}" for j in range(args.items)]].to_numpy()
    ratio = result.se()["probabilities_"] / theirs_se
    print(f"{'':<10} {'seconds':>9} {'per replicate':>14}")
    print(f"{'StepMix':<10} {theirs_s:>9.2f} {theirs_s / args.reps:>14.4f}")
    print(f"{'bigem':<10} {ours_s:>9.2f} {ours_s / args.reps:>14.4f}")
    print(f"bigem / StepMix time: {ours_s / theirs_s:.3f}x")
    print(f"standard errors, bigem / StepMix: median {np.median(ratio):.3f}, range {ratio.min():.3f} to {ratio.max():.3f}")


if __name__ == "__main__":
    main()
