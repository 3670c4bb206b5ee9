"""The k-means start ('kmeans', every Gaussian family's default) beside scikit-learn's
and hmmlearn's, in one run: do the fits agree, and what does the start cost?

1. Agreement, small data (300 rows, 3 clusters in 2-D, 60 random states): how many of
   bigem's GaussianMixture fits end with scikit-learn's lower bound (to 1e-9) and its
   number of iterations; how far GaussianHMM's initial means are from hmmlearn's
   (its KMeans(n_init=10)).
2. Cost, large data (N rows, D features, K full components, float32 in memory, three
   random states): the whole fit's time, bigem's passes over the data (k-means ones and
   the others: the hard assignment, EM's), its EM iterations and final lower bound,
   against scikit-learn's fit. Which local optimum a start finds is chance (k-means++
   seeds), on both sides.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kmeans_start.py
    python benchmarks/bench_kmeans_start.py --quick    # small sizes: proves the script works

Each time is the best of ``--repeat`` runs (3 by default): this machine has slow phases.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


class Passes:
    """Counts the passes bigem makes over the data (each a reduction of the local
    engine), by kind of task: a figure that does not move with the machine's load."""

    def __init__(self) -> None:
        from bigem.engines.local import LocalEngine

        self.kmeans = self.other = 0
        reduce = LocalEngine.reduce

        def counted(engine, task, source):
            if type(task.model).__name__ == "KMeansModel":
                self.kmeans += 1
            else:
                self.other += 1
            return reduce(engine, task, source)

        LocalEngine.reduce = counted

    def take(self) -> tuple[int, int]:
        out = (self.kmeans, self.other)
        self.kmeans = self.other = 0
        return out


def clusters(n: int, d: int, k: int, spread: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (k, d))
    return (centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


def agreement(seeds: int) -> None:
    from hmmlearn.hmm import GaussianHMM as HmmlearnHMM
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    import bigem

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(3.0 * i, 1.0, size=(100, 2)) for i in range(3)])
    same = iters = 0
    for rs in range(seeds):
        ref = SkGaussianMixture(3, random_state=rs).fit(X)
        ours = bigem.GaussianMixture(3, random_state=rs, dtype="float64").fit(X)
        same += abs(ref.lower_bound_ - ours.lower_bound_) < 1e-9
        iters += ref.n_iter_ == ours.n_iter_
    print(f"GaussianMixture, 300 rows, {seeds} random states: lower bound equal to scikit-learn's (1e-9) in "
          f"{same}, same iterations in {iters}")
    Y = np.concatenate([rng.normal(2.0 * i, 1.0, size=(200, 2)) for i in range(4)])

    def inertia(centres):
        return float(((Y[:, None, :] - centres[None]) ** 2).sum(-1).min(1).sum())

    equal, lower, higher = 0, 0, 0
    for rs in range(max(1, seeds // 6)):
        ref = HmmlearnHMM(4, n_iter=1, params="", random_state=rs).fit(Y)
        ours = bigem.GaussianHMM(4, n_iter=1, params="", random_state=rs, dtype="float64").fit(Y)
        a, b = (m[np.lexsort(m.T[::-1])] for m in (ref.means_, ours.means_))
        if np.abs(a - b).max() < 1e-6:
            equal += 1
        else:  # another local optimum of k-means: which is lower?
            lower += inertia(ours.means_) < inertia(ref.means_)
            higher += inertia(ours.means_) > inertia(ref.means_)
    print(f"GaussianHMM, 800 rows, {max(1, seeds // 6)} random states: initial means equal to hmmlearn's (1e-6) in {equal}; "
          f"elsewhere k-means of lower inertia than hmmlearn's in {lower}, higher in {higher}")


def cost(n: int, d: int, k: int, repeat: int, sklearn: bool, states: int) -> None:
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    import bigem

    X = clusters(n, d, k, spread=1.5)
    passes = Passes()
    for rs in range(states):
        best, fitted = float("inf"), None
        passes.take()
        for _ in range(repeat):
            started = time.perf_counter()
            fitted = bigem.GaussianMixture(k, covariance_type="full", random_state=rs, max_iter=300).fit(X)
            best = min(best, time.perf_counter() - started)
        km, em = passes.take()
        print(f"random_state={rs} bigem   N={n:.0e} D={d} K={k} full: {best:.2f} s, {fitted.n_iter_} EM iterations, "
              f"lower bound {fitted.lower_bound_:.6f}; passes: {km // repeat} k-means, {em // repeat} others")
        if sklearn:
            started = time.perf_counter()
            ref = SkGaussianMixture(k, covariance_type="full", random_state=rs, max_iter=300).fit(X)
            took = time.perf_counter() - started
            print(f"random_state={rs} sklearn N={n:.0e} D={d} K={k} full: {took:.2f} s, {ref.n_iter_} EM iterations, "
                  f"lower bound {ref.lower_bound_:.6f} (time ratio bigem/sklearn {best / took:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is printed")
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn's large fit")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    agreement(5 if args.quick else 60)
    n, d, k = (20_000, 4, 3) if args.quick else (1_000_000, 16, 8)
    cost(n, d, k, 1 if args.quick else args.repeat, not args.no_sklearn, 1 if args.quick else 3)


if __name__ == "__main__":
    main()
