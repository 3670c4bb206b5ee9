"""Measured chunk sizes on a GPU (memory_budget='auto') against the old fixed 256MB,
and inference that reads back once a pass.

N rows x 16 float32 columns already on the device, a mixture of K components (full
covariances): for each budget, the chunk rows the fit ran with, the seconds of one
exact EM iteration (best of 3, after a warm-up), the seconds the measurement took
(the probes, once per kind of task), and predict_proba's and score's seconds. The
answers of the two budgets must agree to rounding (printed: the largest relative
difference of the means).

    python3 benchmarks/bench_gpu_chunks.py                       # 2e7 rows, K=16, cuda (gpu_check.sh)
    python3 benchmarks/bench_gpu_chunks.py --quick --device cpu  # a smoke run anywhere
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import _common

D = 16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=2e7)
    ap.add_argument("--components", type=int, default=16)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="2e5 rows, K=4")
    a = ap.parse_args()
    if a.quick:
        a.rows, a.components = 2e5, 4
    from bigem import GaussianMixture
    from bigem.engines import sizing

    n, K, device = int(a.rows), a.components, torch.device(a.device)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (K, D))
    X = torch.from_numpy((centres[rng.integers(0, K, n)] + rng.standard_normal((n, D))).astype(np.float32)).to(device)
    print(f"{n:.3g} rows x {D} float32 on {device}, K={K} full; bigem {__import__('bigem').__version__}")
    probes = {"s": 0.0}
    measured = sizing.chunk_rows

    def timed(task, source, plan):  # the time the measurement takes
        started = time.perf_counter()
        try:
            return measured(task, source, plan)
        finally:
            probes["s"] += time.perf_counter() - started

    sizing.chunk_rows = timed
    fits = {}
    print(f"{'budget':>8} {'chunk rows':>11} {'iteration s':>12} {'probes s':>9} {'proba s':>8} {'score s':>8}")
    for budget in ("256MB", "auto"):
        probes["s"] = 0.0
        gm = GaussianMixture(K, covariance_type="full", max_iter=5, tol=0, random_state=0, device=a.device,
                             memory_budget=budget)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X)
        seconds = gm.history_[0]["seconds"]
        iteration = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
        rows = _chunk_rows(gm, X)
        proba = _common.best_seconds(lambda: gm.predict_proba(X))
        score = _common.best_seconds(lambda: gm.score(X))
        fits[budget] = gm
        print(f"{budget:>8} {rows:>11,} {iteration:>12.4f} {probes['s']:>9.3f} {proba:>8.3f} {score:>8.3f}")
    a_, b_ = fits["256MB"].means_, fits["auto"].means_
    print(f"means: largest relative difference {np.max(np.abs(a_ - b_) / np.maximum(np.abs(a_), 1e-12)):.2e}")


def _chunk_rows(gm, X) -> int:
    """The chunk rows a pass over X runs with under gm's settings (measured for the E-step)."""
    from bigem._core.protocols import Task
    from bigem.engines import LocalEngine

    s = gm._inference_settings()
    source, _ = gm._inference_source(X)
    model = gm._model(s)
    LocalEngine().size_chunks(Task(model, "e_step", (gm._in_source_coordinates(model, source, s),)), source)
    return int(source.chunk_rows)


if __name__ == "__main__":
    main()
