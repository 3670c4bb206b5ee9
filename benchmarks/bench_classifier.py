"""MixtureClassifier beside scikit-learn's discriminant analysis, in one run.

EDDA with VVV is quadratic discriminant analysis and EDDA with EEE linear: the same
posteriors as scikit-learn's QuadraticDiscriminantAnalysis and LinearDiscriminantAnalysis
(solver='lsqr'). This times fit and predict_proba of each pair on the same data
(N rows, D features, C classes, float64, in memory) and prints the ratios, then times
the full EDDA choice over mclust's 14 models and MclustDA with K = 1..3 per class
(no scikit-learn equivalent; R's mclust is not installed here).

    python benchmarks/bench_classifier.py            # N=1e6, D=16, C=4
    python benchmarks/bench_classifier.py --quick    # small sizes: proves the script works

Each time is the best of ``--repeat`` runs (3 by default): this machine has slow phases.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def data(n: int, d: int, c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(c, size=n)
    X = np.empty((n, d))
    for k in range(c):
        rows = y == k
        scale = 0.5 * rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)  # well conditioned: QDA checks the rank
        X[rows] = rng.normal(size=(int(rows.sum()), d)) @ scale + rng.normal(0, 1.5, d)
    return X, y


def timed(fn, repeat: int = 1):
    """(the best of ``repeat`` wall times, the last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


class Passes:
    """Counts the passes bigem's fits make over the data (each a reduction of the local
    engine): a figure that, unlike the times, does not move with the machine's load."""

    def __init__(self) -> None:
        from bigem.engines.local import LocalEngine

        self.n, reduce = 0, LocalEngine.reduce

        def counted(engine, task, source):
            self.n += 1
            return reduce(engine, task, source)

        LocalEngine.reduce = counted

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is printed")
    args = parser.parse_args()
    r = 1 if args.quick else args.repeat
    n, d, c = (20_000, 4, 3) if args.quick else (1_000_000, 16, 4)
    X, y = data(n, d, c)

    import bigem
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis

    passes = Passes()
    print(f"N={n:,} D={d} C={c}, float64, in memory; seconds (fit, predict_proba)")
    print(f"{'model':<28} {'bigem':>9} {'sklearn':>9} {'ratio':>7}   max |proba difference|")
    for name, ours, theirs in (
        ("EDDA VVV vs QDA", bigem.MixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0, dtype="float64"),
         QuadraticDiscriminantAnalysis()),
        ("EDDA EEE vs LDA (lsqr)", bigem.MixtureClassifier("EDDA", covariance_types="EEE", reg_covar=0,
                                                           dtype="float64"),
         LinearDiscriminantAnalysis(solver="lsqr")),
    ):
        fit_ours, _ = timed(lambda: ours.fit(X, y), r)
        fit_passes = passes.take() // r
        fit_theirs, _ = timed(lambda: theirs.fit(X, y), r)
        pred_ours, p_ours = timed(lambda: ours.predict_proba(X), r)
        pred_theirs, p_theirs = timed(lambda: theirs.predict_proba(X), r)
        total_ours, total_theirs = fit_ours + pred_ours, fit_theirs + pred_theirs
        print(f"{name:<28} {total_ours:>9.2f} {total_theirs:>9.2f} {total_theirs / total_ours:>6.1f}x   "
              f"{np.abs(p_ours - p_theirs).max():.2e}   (fit {fit_ours:.2f} vs {fit_theirs:.2f}, "
              f"predict {pred_ours:.2f} vs {pred_theirs:.2f}; bigem's fit: {fit_passes} passes over the data)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        passes.take()
        seconds, edda = timed(lambda: bigem.MixtureClassifier("EDDA", dtype="float64").fit(X, y), r)
        print(f"{'EDDA over the 14 models':<28} {seconds:>9.2f} {'-':>9} {'':>7}   chose {edda.covariance_types_[0]}, "
              f"{passes.take() // r} passes over the data")
        sub = slice(0, 3_000 if args.quick else 100_000)
        seconds, da = timed(lambda: bigem.MixtureClassifier(n_components=range(1, 4), dtype="float64",
                                                            random_state=0).fit(X[sub], y[sub]))
        print(f"{'MclustDA K=1..3, 14 models':<28} {seconds:>9.2f} {'-':>9} {'':>7}   on {X[sub].shape[0]:,} rows: "
              f"{list(zip(da.covariance_types_, da.n_components_))}")


if __name__ == "__main__":
    main()
