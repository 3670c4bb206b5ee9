"""bigem vs hmmlearn GMMHMM, side by side: the same data, the same start, the same fit.

Now that GMMHMM's M-step is hmmlearn's to the digit, the two fits can be compared at
equal answers: for each covariance type, both run ``--iters`` iterations from the same
given parameters (``init_params=""``, ``tol=-inf``), and the script prints the time of
the whole fit (best of ``--repeat``), the ratio, and how far the final log-likelihoods
and means are apart (bigem in float64, and in float32, its default).

Data: ``--sequences`` sequences of ``--steps`` steps, D=4 features, sampled from a
4-state HMM whose states emit 3-Gaussian mixtures.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gmmhmm.py
    python benchmarks/bench_gmmhmm.py --quick    # small sizes: proves the script works
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

K, M, D = 4, 3, 4


def make_case(n_seq: int, steps: int, covariance_type: str, seed: int = 0):
    from hmmlearn import hmm

    rng = np.random.default_rng(seed)
    true = hmm.GMMHMM(K, n_mix=M, covariance_type="diag", init_params="")
    true.startprob_ = np.full(K, 1.0 / K)
    true.transmat_ = np.full((K, K), 0.1 / (K - 1)) + np.eye(K) * (0.9 - 0.1 / (K - 1))
    true.weights_ = rng.dirichlet(np.full(M, 5.0), K)
    true.means_ = rng.normal(0, 3, (K, M, D))
    true.covars_ = rng.uniform(0.5, 1.5, (K, M, D))
    X, _ = true.sample(n_seq * steps, random_state=seed)
    start = dict(startprob_=np.full(K, 1.0 / K), transmat_=np.full((K, K), 0.5 / K) + np.eye(K) * 0.5,
                 weights_=np.full((K, M), 1.0 / M), means_=true.means_ + rng.normal(0, 0.7, (K, M, D)))
    covars = {"full": np.tile(np.eye(D), (K, M, 1, 1)), "tied": np.tile(np.eye(D), (K, 1, 1)),
              "diag": np.ones((K, M, D)), "spherical": np.ones((K, M))}[covariance_type]
    return X, np.full(n_seq, steps), dict(start, covars_=covars)


def fit(cls, X, lengths, start, covariance_type, iters, **kw):
    model = cls(K, n_mix=M, covariance_type=covariance_type, init_params="", n_iter=iters, tol=-np.inf, **kw)
    for name, value in start.items():
        setattr(model, name, value.copy())
    began = time.perf_counter()
    model.fit(X, lengths)
    return model, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=500)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--types", default="diag,full,tied,spherical")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sequences, args.steps, args.iters, args.repeat = 20, 50, 3, 1
    logging.disable(logging.WARNING)
    from hmmlearn import hmm

    import bigem

    print(f"{args.sequences} sequences x {args.steps} steps, D={D}, K={K} states x {M} Gaussians, "
          f"{args.iters} iterations, best of {args.repeat}")
    print(f"{'covariance':<10} {'hmmlearn s':>10} {'bigem f64 s':>11} {'bigem f32 s':>11} {'f64 ratio':>9} "
          f"{'f32 ratio':>9} {'|dLL| f64':>10} {'|dLL| f32':>10} {'|dmeans| f64':>12}")
    for ct in args.types.split(","):
        X, lengths, start = make_case(args.sequences, args.steps, ct)
        runs = {"ref": [], "f64": [], "f32": []}
        for _ in range(args.repeat):
            runs["ref"].append(fit(hmm.GMMHMM, X, lengths, start, ct, args.iters))
            runs["f64"].append(fit(bigem.GMMHMM, X, lengths, start, ct, args.iters, dtype="float64"))
            runs["f32"].append(fit(bigem.GMMHMM, X, lengths, start, ct, args.iters, dtype="float32"))
        best = {k: min(t for _, t in v) for k, v in runs.items()}
        ref, f64, f32 = (runs[k][0][0] for k in ("ref", "f64", "f32"))
        dll = lambda m: abs(m.monitor_.history[-1] - ref.monitor_.history[-1]) / abs(ref.monitor_.history[-1])  # noqa: E731
        print(f"{ct:<10} {best['ref']:>10.3f} {best['f64']:>11.3f} {best['f32']:>11.3f} "
              f"{best['f64'] / best['ref']:>8.3f}x {best['f32'] / best['ref']:>8.3f}x {dll(f64):>10.1e} "
              f"{dll(f32):>10.1e} {np.abs(f64.means_ - ref.means_).max():>12.1e}")
    print("ratio: bigem's time over hmmlearn's (below 1: bigem is faster); |dLL|: relative difference of the "
          "final log-likelihood")


if __name__ == "__main__":
    main()
