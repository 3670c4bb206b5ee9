"""bigem's local engine vs its Dask engine, side by side: same data, initial parameters, iterations.

The local engine runs in one process on every core (torch's thread pool). The Dask
engine runs on a LocalCluster of one single-threaded worker process per core; the
workers read their partitions of a ``.npy`` file themselves (nothing passes through
the client), persist them, and each iteration the client broadcasts the parameters,
the workers compute their partitions' statistics and Dask tree-reduces them.
Time per iteration is bigem's own per-iteration clock (E-step, reduction, M-step),
best of ITERS after the first (median printed too). Each engine runs in its own
subprocess, so neither inherits the other's memory or threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_dask.py [--rows 2e7] [--partitions 16]

Prints one table; BENCHMARKS.md records the figures with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402
from bench_gmm import init_kwargs, make_data  # noqa: E402

ITERS = 5
D, K, COV = 16, 8, "full"


def _rows(path: str, start: int, stop: int) -> np.ndarray:
    """Runs on a Dask worker: rows [start, stop) of a .npy file, read from the worker's own disk."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    from bigem import GaussianMixture

    init = np.load(spec["init"])
    kw = init_kwargs(init, COV)
    started = time.perf_counter()
    if spec["engine"] == "local":
        x = np.load(spec["data"])
        est = GaussianMixture(**kw, max_iter=1 + ITERS).fit(x)
    else:
        import dask.array as da
        from dask import delayed
        from distributed import Client, LocalCluster

        n = spec["rows"]
        bounds = np.linspace(0, n, spec["partitions"] + 1).astype(int)
        x = da.concatenate(
            [
                da.from_delayed(delayed(_rows)(spec["data"], a, b), shape=(b - a, D), dtype=np.float32)
                for a, b in zip(bounds[:-1], bounds[1:])
            ]
        )
        import dask

        workers = os.cpu_count() or 1
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which turns off glibc's
        # adaptive mmap threshold: every large temporary is then a fresh mmap, page-faulted again
        # on each use (docs/architecture.md, Speed). "untrimmed" removes the setting, as bigem's own
        # embedded LocalCluster does.
        trim = {} if spec["trim"] else {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        with dask.config.set(trim), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as cluster, Client(cluster) as client:
            est = GaussianMixture(**kw, max_iter=1 + ITERS, client=client).fit(x)
    total = time.perf_counter() - started
    times = est.history_[0]["seconds"][1:]  # the first iteration also warms the workspaces
    return dict(
        per_iter=min(times), median_iter=statistics.median(times), lower_bound=float(est.lower_bound_), total=total
    )


def run_worker(spec: dict) -> dict:
    return _common.run_worker(__file__, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--rows", type=float, default=2e7)
    ap.add_argument("--partitions", type=int, default=16)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    n = int(args.rows)
    print(f"machine: {os.cpu_count()} cores; data {n:.0e} x {D} float32 ({n * D * 4 / 1e9:.2f} GB), K={K} {COV}; "
          f"{args.partitions} partitions; iterations timed: {ITERS} (best; median in brackets)")
    with tempfile.TemporaryDirectory(prefix="bigem-bench-dask-") as tmp:
        x, init = make_data(n, D, K)
        data, init_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "init.npy")
        np.save(data, x)
        np.save(init_path, init)
        del x
        common = dict(data=data, init=init_path, rows=n, partitions=args.partitions)
        local = run_worker(dict(common, engine="local"))
        dask = run_worker(dict(common, engine="dask", trim=True))
        untrimmed = run_worker(dict(common, engine="dask", trim=False))
    header = f"{'engine':<34} {'s/iter (median)':>16} {'whole fit s':>11} {'mean loglik':>14}"
    print(header)
    print("-" * len(header))
    for label, r in ((f"local (1 process, {os.cpu_count()} threads)", local),
                     (f"dask (LocalCluster {os.cpu_count()}x1 thread)", dask),
                     ("dask, MALLOC_TRIM_THRESHOLD_ unset", untrimmed)):
        print(f"{label:<34} {r['per_iter']:>8.3f} ({r['median_iter']:.3f}) {r['total']:>11.1f} {r['lower_bound']:>14.6f}")
    rel = abs(local["lower_bound"] - dask["lower_bound"]) / abs(local["lower_bound"])
    print(f"dask/local time per iteration: {dask['per_iter'] / local['per_iter']:.2f}x with Dask's default worker "
          f"environment, {untrimmed['per_iter'] / local['per_iter']:.2f}x with MALLOC_TRIM_THRESHOLD_ unset "
          f"(target <= 1.3x); log-likelihood relative difference {rel:.1e}")


if __name__ == "__main__":
    main()
