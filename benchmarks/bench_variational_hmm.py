"""bigem vs hmmlearn variational HMMs, side by side, same data, same initial posteriors.

The cases of bench_hmm.py (K=8 states; (a) 1,000 sequences x 1,000 steps, (b) one
sequence of 1e6 steps), for VariationalGaussianHMM with D=4 features, covariance 'diag'
and 'full', and for VariationalCategoricalHMM with 16 symbols ('cat'). hmmlearn runs
both its implementations, "log" (its default) and "scaling"; the ratio printed is
against the faster of the two. Each (library, case) runs in its own subprocess, so its
peak RSS (VmHWM) is its own. Time per iteration is the best of ITERS timed iterations
after a warm-up (median printed too):

- hmmlearn: its fit loop's body (``_do_estep``, ``_compute_lower_bound``, ``_do_mstep``)
  run by hand;
- bigem: its driver's per-iteration clock (``monitor_.seconds``: E-step, bound, M-step).

The last bound of both must agree (same start, same iterations): it is printed.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_variational_hmm.py [--quick] [--cases a-diag,...] [--dtype float32]
    python benchmarks/bench_variational_hmm.py --device cuda   # bigem on a GPU; hmmlearn on that machine's CPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ITERS = 4
K, D, M = 8, 4, 16
CASES = {
    "a-diag": dict(n_seq=1000, length=1000, cov="diag"),
    "a-full": dict(n_seq=1000, length=1000, cov="full"),
    "a-cat": dict(n_seq=1000, length=1000, cov="cat"),
    "b-diag": dict(n_seq=1, length=1_000_000, cov="diag"),
    "b-full": dict(n_seq=1, length=1_000_000, cov="full"),
    "b-cat": dict(n_seq=1, length=1_000_000, cov="cat"),
}
LIBS = ("bigem", "hmmlearn-log", "hmmlearn-scaling")


def make_data(n_seq: int, length: int, cov: str, seed: int = 0):
    """Data sampled from a sticky 8-state HMM, and shared initial posteriors (not the truth)."""
    rng = np.random.default_rng(seed)
    trans = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(trans, 0.95)
    n = n_seq * length
    states = np.empty(n, dtype=np.int64)
    u = rng.random(n)
    cdf = np.cumsum(trans, 1)
    s = 0
    for t in range(n):  # a few seconds at 1e6, done once per worker alike
        if t % length == 0:
            s = int(rng.integers(K))
        else:
            s = int(np.searchsorted(cdf[s], u[t]))
        states[t] = min(s, K - 1)
    per_state = n / K
    start = dict(
        startprob_prior_=np.full(K, 1.0 / K),
        startprob_posterior_=np.full(K, 1.0 / K) + n_seq / K,
        transmat_prior_=np.full((K, K), 1.0 / K),
        transmat_posterior_=(np.full((K, K), 0.5 / K) + np.eye(K) * 0.5) * per_state,
    )
    if cov == "cat":
        probs = rng.dirichlet(np.full(M, 0.5), K)
        x = (probs[states].cumsum(1) > rng.random(n)[:, None]).argmax(1)[:, None]
        start.update(emissionprob_prior_=np.full((K, M), 1.0 / M),
                     emissionprob_posterior_=rng.dirichlet(np.ones(M), K) * per_state)
        return x, np.full(n_seq, length), start
    means = rng.normal(0, 3, (K, D))
    x = means[states] + rng.normal(0, 1, (n, D))
    unit = np.ones((K, D)) if cov == "diag" else np.tile(np.eye(D), (K, 1, 1))
    start.update(
        means_prior_=np.tile(x.mean(0), (K, 1)), beta_prior_=np.ones(K),
        means_posterior_=means + rng.normal(0, 0.5, (K, D)), beta_posterior_=np.full(K, per_state),
        dof_prior_=np.full(K, float(D)), dof_posterior_=np.full(K, per_state),
        scale_prior_=1e-3 * unit, scale_posterior_=unit * per_state,
    )
    return x, np.full(n_seq, length), start


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x, lengths, start = make_data(spec["n_seq"], spec["length"], spec["cov"])
    cat = spec["cov"] == "cat"
    kw = {} if cat else dict(covariance_type=spec["cov"])
    if spec["lib"].startswith("hmmlearn"):
        from hmmlearn import vhmm

        cls = vhmm.VariationalCategoricalHMM if cat else vhmm.VariationalGaussianHMM
        m = cls(K, init_params="", implementation=spec["lib"].split("-")[1], **kw)
        for name, value in start.items():
            setattr(m, name, value.copy())
        m.n_features = M if cat else D
        m._check()
        times, bounds = [], []
        for _ in range(ITERS + 1):
            started = time.perf_counter()
            stats, logprob = m._do_estep(x, lengths)
            bound = m._compute_lower_bound(logprob)
            m._do_mstep(stats)
            times.append(time.perf_counter() - started)
            bounds.append(float(bound))
        times = times[1:]
    else:
        from bigem import VariationalCategoricalHMM, VariationalGaussianHMM

        cls = VariationalCategoricalHMM if cat else VariationalGaussianHMM
        m = cls(K, init_params="", n_iter=ITERS + 1, tol=-np.inf, dtype=spec["dtype"], device=spec.get("device", "cpu"),
                **kw)
        for name, value in start.items():
            setattr(m, name, value.copy())
        if cat:
            m.n_features = M
        m.fit(x, lengths)
        times, bounds = m.monitor_.seconds[1:], m.monitor_.history
    return dict(per_iter=min(times), median_iter=statistics.median(times), bound=bounds[-1], peak_rss_mb=peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), not inherited across fork+exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--dtype", default="float64", help="bigem's dtype (its default for the variational HMMs: float64)")
    ap.add_argument("--device", default="cpu", help="bigem's device (hmmlearn always runs on the CPU)")
    ap.add_argument("--quick", action="store_true", help="100x fewer steps, to prove the script runs")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    import torch

    print(f"torch {torch.__version__}, threads {os.cpu_count()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    print(f"K={K}, D={D}, M={M}, best (median) seconds per iteration over {ITERS} after a warm-up; bigem dtype "
          f"{args.dtype} on {args.device}")
    print("| case | library | s / iter, best (median) | peak RSS MB | lower bound | bigem speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.cases.split(","):
        case = dict(CASES[name])
        if args.quick:
            case["length"] //= 100 if case["n_seq"] == 1 else 10
            case["n_seq"] = max(1, case["n_seq"] // 10)
        results = {}
        for lib in args.libs.split(","):
            results[lib] = run_worker(dict(case, lib=lib, dtype=args.dtype, device=args.device))
        ours = results.get("bigem")
        for lib, r in results.items():
            ratio = "" if ours is None or lib == "bigem" else f"{r['per_iter'] / ours['per_iter']:.2f}x"
            print(f"| {name} | {lib} | {r['per_iter']:.4f} ({r['median_iter']:.4f}) | {r['peak_rss_mb']:.0f} | "
                  f"{r['bound']:.6f} | {ratio} |", flush=True)
        theirs = [r["per_iter"] for lib, r in results.items() if lib != "bigem"]
        if ours is not None and theirs:
            print(f"| {name} | bigem vs hmmlearn's fastest mode | | | | {min(theirs) / ours['per_iter']:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
