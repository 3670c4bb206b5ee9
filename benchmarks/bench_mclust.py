"""mclust's 14 covariance models: per-iteration time beside VVV, and the whole grid.

(a) Speed of each model: seconds per EM iteration of each of the 14 models at N=1e6,
    D=16, K=8 (float64, in memory), and the ratio to VVV. Target: each within 1.5x of
    VVV, so the M-step never dominates the E-step's pass.
(b) The whole grid: ``bigem.select(covariance_types="mclust")``, K = 1..9, with the
    hierarchical start on a 2,000-row sample, on 1e6 x 8 rows streamed from Parquet, in a
    fresh process: wall time and peak RSS (bounded by the chunk, not the file). Target:
    < 10 minutes on a 2-core machine.

    python benchmarks/bench_mclust.py            # the full runs
    python benchmarks/bench_mclust.py --quick    # small sizes: proves the script works

There is no R here, so no mclust column: mclust holds the data in memory and its
hierarchical step is quadratic in N; the grid's mclust equivalent is
``mclustBIC(X, initialization = list(subset = sample(n, 2000)))``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import peak_rss_mb, run_worker  # noqa: E402

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")


def data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    labels = rng.integers(k, size=n)
    scales = rng.uniform(0.5, 1.5, (k, d, d)) / np.sqrt(d)
    out = np.empty((n, d))
    for c in range(k):
        rows = labels == c
        out[rows] = rng.normal(size=(int(rows.sum()), d)) @ scales[c] + centres[c]
    return out


def per_iteration(n: int, d: int, k: int, iterations: int) -> dict:
    import bigem

    X = data(n, d, k)
    tree = bigem.hc(X, max_rows=2000, random_state=0)
    seconds = {}
    for name in MODELS:
        est = bigem.GaussianMixture(k, covariance_type=name, init_params=tree, tol=0.0, max_iter=iterations,
                                    dtype="float64")
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, callback=lambda info: times.append(info.seconds))
        seconds[name] = float(np.median(times[1:] if len(times) > 1 else times))
    return seconds


def grid_worker(spec: dict) -> dict:
    import bigem

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bigem.select(spec["path"], n_components=range(1, spec["k_max"] + 1), covariance_types="mclust",
                              random_state=0, chunk_size=spec["chunk"])
    return dict(seconds=time.perf_counter() - started, rss_mb=peak_rss_mb(), best=result.best_["covariance_type"],
                best_k=result.best_["n_components"], candidates=len(result.table))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, to prove the script runs")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(grid_worker(json.loads(args.worker))))
        return
    n, d, k, iters = (20_000, 4, 3, 4) if args.quick else (1_000_000, 16, 8, 6)
    seconds = per_iteration(n, d, k, iters)
    print(f"(a) seconds per EM iteration, N={n:,} D={d} K={k} float64 (ratio to VVV; target <= 1.5x)")
    for name in MODELS:
        print(f"    {name}  {seconds[name]:9.4f} s  {seconds[name] / seconds['VVV']:5.2f}x")

    import pandas as pd

    n_grid, d_grid, k_max, chunk = (5_000, 3, 2, 1_000) if args.quick else (1_000_000, 8, 9, 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "grid.parquet")
        pd.DataFrame(data(n_grid, d_grid, 4, seed=1), columns=[f"x{i}" for i in range(d_grid)]).to_parquet(path)
        out = run_worker(__file__, dict(path=path, k_max=k_max, chunk=chunk))
    print(f"(b) select(covariance_types='mclust'), K=1..{k_max}: {out['candidates']} candidates on {n_grid:,} x "
          f"{d_grid} streamed from Parquet in chunks of {chunk:,}, hc on a 2,000-row sample")
    print(f"    wall {out['seconds']:.1f} s (target < 600 s), peak RSS {out['rss_mb']:.0f} MB; "
          f"chose {out['best']},{out['best_k']}")


if __name__ == "__main__":
    main()
