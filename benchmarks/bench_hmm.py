"""bigem vs hmmlearn GaussianHMM, side by side, same data, same initial parameters.

Cases (K=8 states, D=4 features): (a) 1,000 sequences x 1,000 steps, (b) one sequence
of 1e6 steps; covariance 'diag' and 'full'; (c) one sequence of 4e6 steps, 'diag' (run
when asked: ``--cases b-diag,c-diag`` shows how memory grows with a sequence's length). hmmlearn runs both its implementations,
"log" (its default) and "scaling". Each (library, case) runs in its own subprocess,
so its peak RSS (VmHWM) is its own. Time per iteration is the best of ITERS timed
iterations after a warm-up (median printed too):

- hmmlearn: its fit loop's body (``_do_estep`` + ``_do_mstep``) run by hand;
- bigem: its driver's per-iteration clock (``monitor_.seconds``: E-step, M-step, engine).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm.py [--quick] [--cases a-diag,...]
    python benchmarks/bench_hmm.py --device cuda   # bigem on a GPU; hmmlearn on that machine's CPU

``--decode`` times Viterbi instead (``decode`` on the initial parameters, best of 2,
and the peak RSS): bigem decodes a sequence longer than a batch in pieces. Case
``d-lr`` is a left-right chain, whose pieces bigem cannot take from their ends; the
library ``bigem-whole`` is bigem with a budget that holds every sequence whole (its
"speed-up" column is its time over bigem's: below 1, the pieces cost time).
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
K, D = 8, 4
CASES = {
    "a-diag": dict(n_seq=1000, length=1000, cov="diag"),
    "a-full": dict(n_seq=1000, length=1000, cov="full"),
    "b-diag": dict(n_seq=1, length=1_000_000, cov="diag"),
    "b-full": dict(n_seq=1, length=1_000_000, cov="full"),
    # one sequence 4x longer: memory grows with a sequence's length, in both libraries
    "c-diag": dict(n_seq=1, length=4_000_000, cov="diag"),
    # a left-right chain (zero transitions back): it never forgets its start, so bigem
    # multiplies out the transfer of every piece of a cut sequence
    "d-lr": dict(n_seq=1, length=1_000_000, cov="diag", left_right=True),
}
# "bigem-whole": bigem with a batch budget that holds any of these sequences whole
LIBS = ("bigem", "hmmlearn-log", "hmmlearn-scaling")


def make_data(n_seq: int, length: int, cov: str, seed: int = 0, left_right: bool = False):
    """Data sampled from a sticky 8-state HMM, and shared initial parameters (not the truth);
    ``left_right``: states in order, each for an equal block of steps, and a start that
    moves only forward."""
    if left_right:
        return _left_right_data(length, seed)
    rng = np.random.default_rng(seed)
    trans = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(trans, 0.95)
    means = rng.normal(0, 3, (K, D))
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
    x = means[states] + rng.normal(0, 1, (n, D))
    init = dict(
        startprob=np.full(K, 1.0 / K),
        transmat=np.full((K, K), 1.0 / K) * 0.5 + np.eye(K) * 0.5,
        means=means + rng.normal(0, 0.5, (K, D)),
        covars=np.ones((K, D)) if cov == "diag" else np.tile(np.eye(D), (K, 1, 1)),
    )
    return x, np.full(n_seq, length), init


def _left_right_data(length: int, seed: int):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (K, D))
    states = np.arange(length) * K // length
    x = means[states] + rng.normal(0, 1, (length, D))
    trans = np.eye(K) * (1 - 1e-5) + np.eye(K, k=1) * 1e-5
    trans[-1, -1] = 1.0
    init = dict(startprob=np.eye(K)[0], transmat=trans, means=means + rng.normal(0, 0.5, (K, D)),
                covars=np.ones((K, D)))
    return x, np.full(1, length), init


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    x, lengths, init = make_data(spec["n_seq"], spec["length"], spec["cov"], left_right=spec.get("left_right", False))
    budget = "64GB" if spec["lib"] == "bigem-whole" else None
    if spec.get("decode"):
        return decode_worker(dict(spec, budget=budget), x, lengths, init)
    if spec["lib"].startswith("hmmlearn"):
        from hmmlearn.hmm import GaussianHMM

        impl = spec["lib"].split("-")[1]
        m = GaussianHMM(K, covariance_type=spec["cov"], init_params="", params="stmc", implementation=impl)
        m.startprob_, m.transmat_, m.means_, m.covars_ = (init[k] for k in ("startprob", "transmat", "means", "covars"))
        m.n_features = D
        times, lls = [], []
        for _ in range(ITERS + 1):
            started = time.perf_counter()
            stats, ll = m._do_estep(x, lengths)
            m._do_mstep(stats)
            times.append(time.perf_counter() - started)
            lls.append(float(ll))
        times = times[1:]
    else:
        from bigem import GaussianHMM

        m = GaussianHMM(
            K, covariance_type=spec["cov"], init_params="", params="stmc", n_iter=ITERS + 1, tol=0.0, dtype=spec["dtype"],
            device=spec.get("device", "cpu"), memory_budget=budget,
        )
        m.startprob_, m.transmat_, m.means_, m.covars_ = (init[k] for k in ("startprob", "transmat", "means", "covars"))
        m.fit(x, lengths)
        times, lls = m.monitor_.seconds[1:], m.monitor_.history
    return dict(per_iter=min(times), median_iter=statistics.median(times), loglik=lls[-1], peak_rss_mb=peak_rss_mb())


def decode_worker(spec: dict, x, lengths, init) -> dict:
    """Viterbi on the initial parameters: seconds of one ``predict`` (best of 2), the
    path's log-probability and the peak RSS."""
    if spec["lib"].startswith("hmmlearn"):
        from hmmlearn.hmm import GaussianHMM

        m = GaussianHMM(K, covariance_type=spec["cov"], init_params="")
        m.n_features = D
        decode = lambda: m.decode(x, lengths)  # noqa: E731
    else:
        from bigem import GaussianHMM

        m = GaussianHMM(K, covariance_type=spec["cov"], init_params="", dtype=spec["dtype"],
                        device=spec.get("device", "cpu"), memory_budget=spec.get("budget"))
        decode = lambda: m.decode(x, lengths)  # noqa: E731
    m.startprob_, m.transmat_, m.means_, m.covars_ = (init[k] for k in ("startprob", "transmat", "means", "covars"))
    times = []
    for _ in range(2):
        started = time.perf_counter()
        logprob, _ = decode()
        times.append(time.perf_counter() - started)
    return dict(per_iter=min(times), median_iter=max(times), loglik=float(logprob), peak_rss_mb=peak_rss_mb())


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
    ap.add_argument("--cases", default="a-diag,a-full,b-diag,b-full")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu", help="bigem's device (hmmlearn always runs on the CPU)")
    ap.add_argument("--quick", action="store_true", help="10x fewer steps, for iterating on the code")
    ap.add_argument("--decode", action="store_true", help="time Viterbi (predict) instead of fit iterations")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    import torch

    print(f"torch {torch.__version__}, threads {os.cpu_count()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    if args.decode:
        print(f"K={K}, D={D}, Viterbi decode on the initial parameters, best (worst) of 2; bigem dtype {args.dtype} "
              f"on {args.device}")
        print("| case | library | s / decode, best (worst) | peak RSS MB | path log-probability | bigem speed-up |")
    else:
        print(f"K={K}, D={D}, best (median) seconds per iteration over {ITERS} after a warm-up; bigem dtype "
              f"{args.dtype} on {args.device}")
        print("| case | library | s / iter, best (median) | peak RSS MB | loglik | bigem speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.cases.split(","):
        case = dict(CASES[name])
        if args.quick:
            case["length"] //= 10 if case["n_seq"] == 1 else 1
            case["n_seq"] = max(1, case["n_seq"] // 10)
        results = {}
        for lib in args.libs.split(","):
            results[lib] = run_worker(dict(case, lib=lib, dtype=args.dtype, device=args.device, decode=args.decode))
        ours = results.get("bigem")
        for lib, r in results.items():
            ratio = "" if ours is None or lib == "bigem" else f"{r['per_iter'] / ours['per_iter']:.2f}x"
            print(
                f"| {name} | {lib} | {r['per_iter']:.3f} ({r['median_iter']:.3f}) | {r['peak_rss_mb']:.0f} | "
                f"{r['loglik']:.6f} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
