"""bigem vs scikit-learn, side by side, same data, same initial parameters, same iterations.

Each (library, case) runs in its own subprocess so its peak RSS is its own. Time per
iteration is the best of ITERS timed iterations after a warm-up (the median is printed
too), so initialisation and input validation are excluded for both libraries alike.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_gmm.py [--quick] [--cases a,b]
    python benchmarks/bench_gmm.py --device cuda --no-sklearn   # on a GPU machine

With ``--device cuda`` bigem computes on the GPU (the in-memory data is copied there once
by ``fit``); "peak MB" is then the GPU's peak allocated memory, and the GEMM rate is the
GPU's float32 rate.

Prints one table; BENCHMARKS.md records the figures with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

import _common
from _common import best_seconds, peak_rss_mb

ITERS = 5
CASES = {
    "full-1e6x32-k16": dict(n=1_000_000, d=32, k=16, cov="full"),
    "diag-1e6x32-k16": dict(n=1_000_000, d=32, k=16, cov="diag"),
    "full-4e6x16-k8": dict(n=4_000_000, d=16, k=8, cov="full"),
}
STREAM = dict(n=20_000_000, d=16, k=8, cov="diag")


def make_data(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows from k Gaussians with random full covariances, and k initial means."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d)).astype(np.float32)
    mix = rng.normal(0, 0.3, (k, d, d)).astype(np.float32) + np.eye(d, dtype=np.float32)
    x = np.empty((n, d), dtype=np.float32)
    step = 1 << 20
    for s in range(0, n, step):
        m = min(step, n - s)
        lab = rng.integers(0, k, m)
        z = rng.standard_normal((m, d), dtype=np.float32)
        x[s : s + m] = centres[lab] + np.einsum("nij,nj->ni", mix[lab], z)
    init_means = x[rng.choice(n, k, replace=False)].astype(np.float64)
    return x, init_means


def init_kwargs(init_means: np.ndarray, cov: str) -> dict:
    k, d = init_means.shape
    prec = {"full": np.stack([np.eye(d)] * k), "diag": np.ones((k, d)), "tied": np.eye(d), "spherical": np.ones(k)}[cov]
    return dict(
        n_components=k,
        covariance_type=cov,
        weights_init=np.full(k, 1.0 / k),
        means_init=init_means,
        precisions_init=prec,
        tol=0.0,
    )


def worker(spec: dict) -> dict:
    """Runs in a subprocess: load data, warm up, then ITERS timed EM iterations.

    Time per iteration is the best of the timed iterations: on this noisy VM other
    tenants only ever add time, so the minimum is the most repeatable figure (for
    both libraries alike).
    bigem: its own per-iteration clock (history_). scikit-learn: its fit loop's body
    (_e_step + _m_step) run by hand from the same initial parameters.
    """
    import statistics
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x = np.load(spec["data"]) if spec["lib"] != "bigem-stream" else spec["data"]
    init = np.load(spec["init"])
    kw = init_kwargs(init, spec["cov"])
    base_rss = peak_rss_mb()
    if spec["lib"] == "sklearn":
        from sklearn.mixture import GaussianMixture
        from sklearn.utils import check_random_state

        x = np.asarray(x, dtype=np.float64)
        est = GaussianMixture(**kw, max_iter=1, init_params="random_from_data").fit(x)  # warm-up
        est._initialize_parameters(x, check_random_state(0))  # back to the given initial parameters
        times = []
        for _ in range(ITERS):
            started = time.perf_counter()
            log_prob_norm, log_resp = est._e_step(x)
            est._m_step(x, log_resp)
            times.append(time.perf_counter() - started)
        lower_bound = float(log_prob_norm)
    else:
        from bigem import GaussianMixture

        dtype = spec.get("dtype", "float32")
        if spec["lib"] == "bigem" and dtype == "float64":
            x = np.asarray(x, dtype=np.float64)
        device = spec.get("device", "cpu")
        GaussianMixture(**kw, max_iter=1, dtype=dtype, device=device).fit(x)  # warm-up
        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
        est = GaussianMixture(**kw, max_iter=ITERS, dtype=dtype, device=device).fit(x)
        times = est.history_[0]["seconds"]
        lower_bound = float(est.lower_bound_)
    gpu = spec.get("device", "cpu") != "cpu" and spec["lib"] != "sklearn"
    return dict(
        per_iter=min(times),
        median_iter=statistics.median(times),
        lower_bound=lower_bound,
        peak_rss_mb=torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb(),
        data_rss_mb=base_rss,
    )


def run_worker(spec: dict) -> dict:
    return _common.run_worker(__file__, spec)


def gemm_rate(n: int, d: int, k: int, device: str = "cpu") -> float:
    """torch float32 GFLOP/s: the better of the E-step's (n x d) @ (d x k*d) product and a
    4096^2 square product, each into a reused buffer."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    on = dict(device=device)
    x, w, out = torch.randn(n, d, **on), torch.randn(d, k * d, **on), torch.empty(n, k * d, **on)
    sq, res = torch.randn(4096, 4096, **on), torch.empty(4096, 4096, **on)
    skinny = 2 * n * d * k * d / best_seconds(lambda: (torch.mm(x, w, out=out), sync()))
    square = 2 * 4096**3 / best_seconds(lambda: (torch.mm(sq, sq, out=res), sync()))
    return max(skinny, square) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--quick", action="store_true", help="1/10 of every size (smoke test)")
    ap.add_argument("--cases", default="all", help="comma list of: " + ",".join([*CASES, "stream"]))
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--device", default="cpu", help="bigem's device (scikit-learn always runs on the CPU)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    scale = 10 if args.quick else 1
    chosen = [*CASES, "stream"] if args.cases == "all" else args.cases.split(",")
    print(f"machine: {os.cpu_count()} cores; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; "
          f"iterations timed: {ITERS} (best; median in brackets)")
    rate = gemm_rate(1_000_000 // scale, 32, 16, args.device)
    print(f"float32 GEMM rate (torch on {args.device}, best of E-step shape and 4096^2): {rate:.0f} GFLOP/s\n")
    mem_label = "GPU MB" if args.device != "cpu" else "RSS MB"
    header = f"{'case':<18} {'library':<15} {'s/iter (median)':>16} {mem_label:>6} {'mean loglik':>14} {'speed-up':>9} {'ll rel diff':>11}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bigem-bench-") as tmp:
        for name in chosen:
            if name == "stream":
                continue
            c = CASES[name]
            n = c["n"] // scale
            x, init = make_data(n, c["d"], c["k"])
            data, init_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "init.npy")
            np.save(data, x)
            np.save(init_path, init)
            del x
            libs = ["bigem"] + ([] if args.no_sklearn else ["sklearn"])
            res = {lib: run_worker(dict(lib=lib, data=data, init=init_path, cov=c["cov"], device=args.device)) for lib in libs}
            for lib in libs:
                r = res[lib]
                ratio = res["sklearn"]["per_iter"] / r["per_iter"] if "sklearn" in res else float("nan")
                rel = abs(r["lower_bound"] - res[libs[-1]]["lower_bound"]) / abs(res[libs[-1]]["lower_bound"])
                print(f"{name:<18} {lib:<15} {r['per_iter']:>8.3f} ({r['median_iter']:.3f}) {r['peak_rss_mb']:>6.0f} "
                      f"{r['lower_bound']:>14.6f} {ratio:>8.2f}x {rel:>11.2e}")
            if c["cov"] == "full":
                flops = 4 * n * c["k"] * c["d"] ** 2
                got = flops / res["bigem"]["per_iter"] / 1e9
                print(f"{'':<18} bigem arithmetic rate {got:.0f} GFLOP/s = {got / rate:.0%} of the GEMM rate")
        if "stream" in chosen:
            c = STREAM
            n = c["n"] // scale
            x, init = make_data(n, c["d"], c["k"])
            data, init_path = os.path.join(tmp, "x.npy"), os.path.join(tmp, "init.npy")
            np.save(data, x)
            np.save(init_path, init)
            size_gb = x.nbytes / 1e9
            del x
            mem = run_worker(dict(lib="bigem", data=data, init=init_path, cov=c["cov"], device=args.device))
            stream = run_worker(dict(lib="bigem-stream", data=data, init=init_path, cov=c["cov"], device=args.device))
            label = f"stream-{n:.0e}x{c['d']}"
            for lib, r in (("bigem in-memory", mem), ("bigem .npy", stream)):
                print(f"{label:<18} {lib:<15} {r['per_iter']:>8.3f} ({r['median_iter']:.3f}) {r['peak_rss_mb']:>6.0f} {r['lower_bound']:>14.6f}")
            print(f"{'':<18} file {size_gb:.2f} GB; streamed/in-memory time per iteration: "
                  f"{stream['per_iter'] / mem['per_iter']:.2f}x; streamed peak {mem_label} {stream['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()
