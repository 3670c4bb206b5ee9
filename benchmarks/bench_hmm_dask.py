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

The cases of one long sequence (b-diag: 1e6 steps, c-diag: 4e6) are read in PARTITIONS
equal row ranges; bigem cuts the sequence into pieces of a batch (the default 128MB
``memory_budget``), which spread over the workers and are linked exactly.
``dask-whole`` is the same fit with a budget that holds the sequence whole, as the Dask
engine did before: its rows move into one partition on one worker. "worker MB" is the
largest peak resident memory of a worker process (the local engine's: its process's).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm_dask.py [--quick] [--cases a-diag,a-full]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm_dask.py \
        --cases b-diag,c-diag --whole

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


def _peak_mb() -> float:
    """This process's peak resident memory (runs on a worker too)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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

    budget = {"memory_budget": 1 << 40} if spec["engine"] == "dask-whole" else {}

    def model(**kw):
        m = GaussianHMM(K, covariance_type=spec["cov"], init_params="", params="stmc", n_iter=1 + ITERS,
                        tol=-np.inf, **budget, **kw)
        m.startprob_, m.transmat_, m.means_ = init["startprob"], init["transmat"], init["means"]
        m.covars_ = init["covars"]
        return m

    if spec["engine"] == "local":
        torch.set_num_threads(os.cpu_count() or 1)
        est = model().fit(np.load(data), lengths)
        peak = _peak_mb()
    else:
        import dask.array as da
        from dask import delayed
        from distributed import Client, LocalCluster

        ends = np.cumsum(lengths)
        if len(lengths) == 1:  # one long sequence: equal row ranges (the engine moves the cuts to piece starts)
            cuts = [round(i * int(ends[-1]) / PARTITIONS) for i in range(PARTITIONS + 1)]
        else:  # partitions of whole sequences (the engine would move a straddling one; here none does)
            cuts = [0] + [int(ends[min(len(ends) - 1, round(i * len(ends) / PARTITIONS) - 1)])
                          for i in range(1, PARTITIONS)]
            cuts = sorted(set(cuts + [int(ends[-1])]))
        x = da.concatenate([da.from_delayed(delayed(_rows)(data, a, b), shape=(b - a, D), dtype=np.float64)
                            for a, b in zip(cuts[:-1], cuts[1:])])
        with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster) as client:
            est = model(engine="dask", client=client).fit(x, lengths)
            peak = max(client.run(_peak_mb).values())
    times = est.monitor_.seconds[1:]  # the first iteration also warms the workspaces
    return dict(per_iter=min(times), median_iter=statistics.median(times), loglik=float(est.monitor_.history[-1]),
                peak=peak)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default="a-diag,a-full")
    ap.add_argument("--whole", action="store_true", help="also run dask-whole (a budget that holds a sequence whole)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    print(f"machine: {os.cpu_count()} cores; local engine: 1 process, {os.cpu_count()} threads; Dask: LocalCluster "
          f"of {WORKERS} worker processes x 1 thread, {PARTITIONS} partitions; K={K}, D={D}; iterations timed: "
          f"{ITERS} (best; median in brackets)")
    header = (f"{'case':<8} {'engine':<11} {'sequences x steps':>18} {'s/iter':>16} {'/local':>7} {'worker MB':>9} "
              f"{'rel. diff':>9}")
    print(header)
    print("-" * len(header))
    engines = ("local", "dask", "dask-whole") if args.whole else ("local", "dask")
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
            runs = {engine: _common.run_worker(__file__, dict(spec, engine=engine)) for engine in engines}
        local = runs["local"]
        for engine, got in runs.items():
            rel = abs(local["loglik"] - got["loglik"]) / abs(local["loglik"])
            print(f"{name:<8} {engine:<11} {case['n_seq']:>8} x {case['length']:<7} {got['per_iter']:>7.3f} "
                  f"({got['median_iter']:.3f}) {got['per_iter'] / local['per_iter']:>6.2f}x {got['peak']:>9.0f} "
                  f"{rel:>9.1e}")
    print("target: dask/local <= 1.3x per iteration; the log-likelihoods agree to rounding (float32 arithmetic)")


if __name__ == "__main__":
    main()
