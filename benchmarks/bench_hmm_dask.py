"""GaussianHMM on bigem's Dask engine vs its local engine, side by side: same data, same
initial parameters, same iterations.

Cases are bench_hmm's (K=8 states, D=4 features, 1,000 sequences x 1,000 steps, 'diag'
and 'full'). The local engine runs in one process on every core (torch's thread pool);
the Dask engine on a LocalCluster of WORKERS single-threaded worker processes, which
read their partitions of a ``.npy`` file themselves (whole sequences each, nothing
passes through the client), persist them, and each iteration run forward-backward on
their sequences and tree-reduce the statistics. Time per iteration is bigem's own
clock (``monitor_.seconds``: E-step, reduction, M-step), best of ITERS after the first
(median printed too). Each engine runs in its own subprocess. Target: Dask within 1.3x
of local per iteration.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm_dask.py [--quick] [--cases a-diag,a-full]

``--quick``: 100 sequences x 200 steps, to prove the script runs (not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402
from bench_hmm import CASES, D, K, make_data  # noqa: E402

ITERS = 5
WORKERS = 2
PARTITIONS = 8


def _rows(path: str, start: int, stop: int) -> np.ndarray:
    """Runs on a Dask worker: rows [start, stop) of a .npy file, read from the worker's own disk."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import torch

    from bigem import GaussianHMM

    init = {k: np.load(os.path.join(spec["dir"], f"{k}.npy")) for k in ("startprob", "transmat", "means", "covars")}
    lengths = np.load(os.path.join(spec["dir"], "lengths.npy"))
    data = os.path.join(spec["dir"], "x.npy")

    def model(**kw):
        m = GaussianHMM(K, covariance_type=spec["cov"], init_params="", params="stmc", n_iter=1 + ITERS,
                        tol=-np.inf, **kw)
        m.startprob_, m.transmat_, m.means_ = init["startprob"], init["transmat"], init["means"]
        m.covars_ = init["covars"]
        return m

    if spec["engine"] == "local":
        torch.set_num_threads(os.cpu_count() or 1)
        est = model().fit(np.load(data), lengths)
    else:
        import dask.array as da
        from dask import delayed
        from distributed import Client, LocalCluster

        ends = np.cumsum(lengths)
        # partitions of whole sequences (the engine would move a straddling one; here none does)
        cuts = [0] + [int(ends[min(len(ends) - 1, round(i * len(ends) / PARTITIONS) - 1)]) for i in range(1, PARTITIONS)]
        cuts = sorted(set(cuts + [int(ends[-1])]))
        x = da.concatenate([da.from_delayed(delayed(_rows)(data, a, b), shape=(b - a, D), dtype=np.float64)
                            for a, b in zip(cuts[:-1], cuts[1:])])
        with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster) as client:
            est = model(engine="dask", client=client).fit(x, lengths)
    times = est.monitor_.seconds[1:]  # the first iteration also warms the workspaces
    return dict(per_iter=min(times), median_iter=statistics.median(times), loglik=float(est.monitor_.history[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default="a-diag,a-full")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    print(f"machine: {os.cpu_count()} cores; local engine: 1 process, {os.cpu_count()} threads; Dask: LocalCluster "
          f"of {WORKERS} worker processes x 1 thread, {PARTITIONS} partitions; K={K}, D={D}; iterations timed: "
          f"{ITERS} (best; median in brackets)")
    header = f"{'case':<8} {'sequences x steps':>18} {'local s/iter':>18} {'dask s/iter':>18} {'dask/local':>10} {'rel. diff':>9}"
    print(header)
    print("-" * len(header))
    for name in args.cases.split(","):
        case = dict(CASES[name])
        if args.quick:
            case.update(n_seq=100, length=200)
        x, lengths, init = make_data(case["n_seq"], case["length"], case["cov"])
        with tempfile.TemporaryDirectory(prefix="bigem-bench-hmm-dask-") as tmp:
            np.save(os.path.join(tmp, "x.npy"), x)
            np.save(os.path.join(tmp, "lengths.npy"), lengths)
            for k, v in init.items():
                np.save(os.path.join(tmp, f"{k}.npy"), v)
            spec = dict(dir=tmp, cov=case["cov"])
            local = _common.run_worker(__file__, dict(spec, engine="local"))
            dask = _common.run_worker(__file__, dict(spec, engine="dask"))
        rel = abs(local["loglik"] - dask["loglik"]) / abs(local["loglik"])
        ratio = dask["per_iter"] / local["per_iter"]
        print(f"{name:<8} {case['n_seq']:>8} x {case['length']:<7} {local['per_iter']:>9.3f} ({local['median_iter']:.3f}) "
              f"{dask['per_iter']:>9.3f} ({dask['median_iter']:.3f}) {ratio:>9.2f}x {rel:>9.1e}")
    print("target: dask/local <= 1.3x per iteration; the log-likelihoods agree to rounding (float32 arithmetic)")


if __name__ == "__main__":
    main()
