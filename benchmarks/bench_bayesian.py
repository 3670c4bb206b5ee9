"""BayesianGaussianMixture: bigem vs scikit-learn, side by side, same data, same start.

Both start from the same responsibilities (every row assigned to its nearest of K rows
drawn from the data), then run the same variational iterations. Time per iteration is
the best of ITERS timed iterations after a warm-up (the median in brackets): for
scikit-learn its fit loop's body (``_e_step``, ``_m_step``, ``_compute_lower_bound``)
run by hand; for bigem its own per-iteration clock (``history_``). Each (library, case)
runs in its own subprocess, so its peak RSS is its own. The lower bounds after ITERS
iterations from the same start agree to float32 rounding (bigem's default dtype).

    python benchmarks/bench_bayesian.py [--quick] [--cases full-1e6x32-k16,diag-1e6x32-k16]
    python benchmarks/bench_bayesian.py --device cuda --no-sklearn   # on a GPU machine

The issue's target: >= 5x scikit-learn per iteration at N=1e6, D=32, K=16, full and diag.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

import _common
from _common import peak_rss_mb
from bench_gmm import make_data

ITERS = 5
CASES = {
    "full-1e6x32-k16": dict(n=1_000_000, d=32, k=16, cov="full"),
    "diag-1e6x32-k16": dict(n=1_000_000, d=32, k=16, cov="diag"),
}


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """One-hot responsibilities (n, K) of every row's nearest centre, in blocks."""
    resp = np.zeros((len(x), len(centres)))
    c2 = (centres**2).sum(1)
    for s in range(0, len(x), 1 << 16):
        block = x[s : s + (1 << 16)].astype(np.float64)
        resp[np.arange(s, s + len(block)), np.argmin(c2 - 2 * block @ centres.T, axis=1)] = 1.0
    return resp


def worker(spec: dict) -> dict:
    """Runs in a subprocess: load data, warm up, then ITERS timed iterations."""
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x = np.load(spec["data"])
    centres = np.load(spec["init"])
    kw = dict(n_components=len(centres), covariance_type=spec["cov"], tol=0.0)
    base_rss = peak_rss_mb()
    if spec["lib"] == "sklearn":
        from sklearn.mixture import BayesianGaussianMixture

        x = np.asarray(x, dtype=np.float64)
        resp = nearest(x, centres)
        est = BayesianGaussianMixture(**kw, max_iter=1, init_params="random_from_data").fit(x)  # warm-up
        est._initialize(x, resp)  # the shared start
        times = []
        for _ in range(ITERS):
            started = time.perf_counter()
            _, log_resp = est._e_step(x)
            est._m_step(x, log_resp)
            lower_bound = est._compute_lower_bound(log_resp, None)
            times.append(time.perf_counter() - started)
    else:
        from bigem import BayesianGaussianMixture
        from bigem.em.init import from_centres

        def shared_start(self, model, engine, source, s, generator, offset):
            start = torch.as_tensor(centres) - (0.0 if offset is None else offset.to(torch.float64).cpu())
            return from_centres(model, engine, source, start)

        BayesianGaussianMixture._initialise = shared_start
        device = spec.get("device", "cpu")
        BayesianGaussianMixture(**kw, max_iter=1, device=device).fit(x)  # warm-up
        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
        est = BayesianGaussianMixture(**kw, max_iter=ITERS, device=device).fit(x)
        times = est.history_[0]["seconds"]
        lower_bound = est.lower_bound_
    gpu = spec.get("device", "cpu") != "cpu" and spec["lib"] != "sklearn"
    return dict(
        per_iter=min(times),
        median_iter=statistics.median(times),
        lower_bound=float(lower_bound),
        peak_rss_mb=torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb(),
        data_rss_mb=base_rss,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true", help="1/100 of every size (smoke test)")
    ap.add_argument("--cases", default="all", help="comma list of: " + ",".join(CASES))
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--device", default="cpu", help="bigem's device (scikit-learn always runs on the CPU)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    scale = 100 if args.quick else 1
    chosen = list(CASES) if args.cases == "all" else args.cases.split(",")
    print(f"machine: {os.cpu_count()} cores; iterations timed: {ITERS} (best; median in brackets)")
    mem_label = "GPU MB" if args.device != "cpu" else "RSS MB"
    header = (f"{'case':<18} {'library':<8} {'s/iter (median)':>16} {mem_label:>7} {'lower bound':>16} "
              f"{'speed-up':>9} {'bound rel diff':>14}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bigem-bench-") as tmp:
        for name in chosen:
            c = CASES[name]
            x, init = make_data(c["n"] // scale, c["d"], c["k"])
            data, init_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "init.npy")
            np.save(data, x)
            np.save(init_path, init)
            del x
            libs = ["bigem"] + ([] if args.no_sklearn else ["sklearn"])
            res = {lib: _common.run_worker(__file__, dict(lib=lib, data=data, init=init_path, cov=c["cov"],
                                                          device=args.device)) for lib in libs}
            ref = res[libs[-1]]
            for lib in libs:
                r = res[lib]
                ratio = res["sklearn"]["per_iter"] / r["per_iter"] if "sklearn" in res else float("nan")
                rel = abs(r["lower_bound"] - ref["lower_bound"]) / abs(ref["lower_bound"])
                print(f"{name:<18} {lib:<8} {r['per_iter']:>8.3f} ({r['median_iter']:.3f}) {r['peak_rss_mb']:>7.0f} "
                      f"{r['lower_bound']:>16.8g} {ratio:>8.2f}x {rel:>14.2e}")


if __name__ == "__main__":
    main()
