"""Small data on a quiet and on a busy machine: bigem as it runs (one torch thread for
work of at most ``SMALL_WORK`` elements) against bigem on torch's default thread count
throughout (``SMALL_WORK = 0``), with scikit-learn's GaussianMixture and hmmlearn's GaussianHMM as the references.

"Busy" is one other process spinning on a core at normal priority (as a notebook's
kernel, a build or a second job would): torch's OpenMP team then waits, at every
operation, for a thread the scheduler gave to that process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_busy_machine.py
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bigem import GaussianHMM, GaussianMixture, select
from bigem._core import parallel

warnings.simplefilter("ignore")
for name in ("hmmlearn", "bigem"):  # the monitors' "Model is not converging" lines at tol=-1e300
    logging.getLogger(name).setLevel(logging.ERROR)
IRIS = load_iris().data
RNG = np.random.default_rng(0)
ROWS = RNG.normal(size=(4000, 4)) + RNG.integers(0, 3, 4000)[:, None] * 3
SEQUENCE = ROWS[:600, :3]


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


CASES = {
    "select, mclust's 14 models x K=1..9, iris (150 x 4)": (
        lambda: select(IRIS, n_components=list(range(1, 10)), covariance_types="mclust", random_state=0), None, 2),
    "GaussianMixture(3, full), 4000 x 4, 100 iterations": (
        lambda: GaussianMixture(3, max_iter=100, tol=0, random_state=0).fit(ROWS),
        lambda: SkGaussianMixture(3, max_iter=100, tol=0, random_state=0).fit(ROWS), 3),
    "GaussianHMM(3, diag), 600 x 3, 50 iterations": (
        lambda: GaussianHMM(3, n_iter=50, tol=-1e300, random_state=0).fit(SEQUENCE),
        lambda: __import__("hmmlearn.hmm").hmm.GaussianHMM(3, n_iter=50, tol=-1e300, random_state=0).fit(SEQUENCE), 3),
}


def measure(label: str) -> None:
    default = parallel.SMALL_WORK
    for name, (ours, reference, repeats) in CASES.items():
        parallel.SMALL_WORK = default
        one = best(ours, repeats)
        parallel.SMALL_WORK = 0
        threads = best(ours, repeats)
        parallel.SMALL_WORK = default
        line = f"{label:6s} {name}: bigem {one:.2f} s, on torch's threads {threads:.2f} s ({threads / one:.1f}x)"
        if reference is not None:
            sk = best(reference, repeats)
            line += f", reference {sk:.2f} s (bigem/reference {one / sk:.2f})"
        print(line, flush=True)


if __name__ == "__main__":
    measure("quiet")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        measure("busy")
    finally:
        busy.kill()
