"""Small data, where fixed costs per operation decide: bigem beside the libraries users
come from, on the data they try first (iris, 150 x 4).

- GaussianMixture(3), each covariance type, 200 iterations at tol=0: scikit-learn's.
- BayesianGaussianMixture(5), full and diag, 100 iterations at tol=0: scikit-learn's.
- ``select(covariance_types="mclust")``, K = 1..9: mclust's ``mclustBIC`` in R.
- ``MixtureClassifier()`` (MclustDA, float64): mclust's ``MclustDA`` in R.
- GaussianHMM(3, diag), 600 x 3, 50 iterations: hmmlearn's.

Each time is the best of ``--repeats`` runs after a warm-up (numba's kernels compiled
and cached). R runs where ``Rscript`` and mclust are installed (its own best of the
same number of runs, timed inside R); otherwise its column is empty.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_small_data.py [--only Bayesian]

``--only TEXT`` runs the cases whose label holds TEXT (R runs only for its cases).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_seconds  # noqa: E402

R_SCRIPT = """
suppressMessages(library(mclust))
X <- as.matrix(iris[, 1:4]); y <- iris$Species
best <- function(f, n) { f(); min(sapply(seq_len(n), function(i) system.time(f())[["elapsed"]])) }
n <- {repeats}
cat(sprintf("mclustBIC %.4f\\n", best(function() mclustBIC(X, G = 1:9, verbose = FALSE), n)))
cat(sprintf("MclustDA %.4f\\n", best(function() MclustDA(X, y, verbose = FALSE), n)))
"""


def r_times(repeats: int) -> dict[str, float]:
    """mclust's times in R, or {} where R or mclust is missing."""
    if shutil.which("Rscript") is None:
        return {}
    out = subprocess.run(["Rscript", "-e", R_SCRIPT.replace("{repeats}", str(repeats))], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        return {}
    return {line.split()[0]: float(line.split()[1]) for line in out.stdout.splitlines() if len(line.split()) == 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run only the cases whose label holds this text")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in ("hmmlearn", "bigem"):  # the monitors' lines at tol=-1e300
        logging.getLogger(name).setLevel(logging.ERROR)
    from hmmlearn.hmm import GaussianHMM as HmmlearnHMM
    from sklearn.datasets import load_iris
    from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    import bigem

    iris = load_iris()
    X, y = iris.data, iris.target
    rng = np.random.default_rng(0)
    sequence = (rng.normal(size=(4000, 4)) + rng.integers(0, 3, 4000)[:, None] * 3)[:600, :3]
    r = r_times(args.repeats) if not args.only or args.only in "select MixtureClassifier" else {}
    rows = []
    for ct in ("full", "tied", "diag", "spherical"):
        rows.append((f"GaussianMixture(3, {ct!r}), 200 iterations",
                     lambda ct=ct: bigem.GaussianMixture(3, covariance_type=ct, max_iter=200, tol=0,
                                                         random_state=0).fit(X),
                     lambda ct=ct: SkGaussianMixture(3, covariance_type=ct, max_iter=200, tol=0,
                                                     random_state=0).fit(X), "scikit-learn"))
    for ct in ("full", "diag"):
        rows.append((f"BayesianGaussianMixture(5, {ct!r}), 100 iterations",
                     lambda ct=ct: bigem.BayesianGaussianMixture(n_components=5, covariance_type=ct, max_iter=100,
                                                                 tol=0, random_state=0).fit(X),
                     lambda ct=ct: SkBayesianGaussianMixture(n_components=5, covariance_type=ct, max_iter=100,
                                                             tol=0, random_state=0).fit(X), "scikit-learn"))
    rows.append(("select(mclust's 14 models, K=1..9)",
                 lambda: bigem.select(X, n_components=list(range(1, 10)), covariance_types="mclust", random_state=0),
                 r.get("mclustBIC"), "mclustBIC (R)"))
    rows.append(("MixtureClassifier() (MclustDA)", lambda: bigem.MixtureClassifier(dtype="float64").fit(X, y),
                 r.get("MclustDA"), "MclustDA (R)"))
    rows.append(("GaussianHMM(3, diag), 600 x 3, 50 iterations",
                 lambda: bigem.GaussianHMM(3, n_iter=50, tol=-1e300, random_state=0).fit(sequence),
                 lambda: HmmlearnHMM(3, n_iter=50, tol=-1e300, random_state=0).fit(sequence), "hmmlearn"))
    print(f"{'case':48s} {'bigem s':>9s} {'reference s':>12s} {'ratio':>7s}  reference")
    for label, ours, reference, name in [row for row in rows if args.only in row[0]]:
        mine = best_seconds(ours, args.repeats)
        theirs = reference if reference is None or isinstance(reference, float) else best_seconds(reference,
                                                                                                  args.repeats)
        ratio = "" if theirs is None else f"{mine / theirs:6.1f}x"
        print(f"{label:48s} {mine:9.3f} {'' if theirs is None else f'{theirs:.3f}':>12s} {ratio:>7s}  {name}",
              flush=True)


if __name__ == "__main__":
    main()
