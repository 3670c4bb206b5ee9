"""CPU time of one FIML E-step (full covariance, 10% MCAR) against the same rows complete,
in one process: the part of ``bench_missing.py``'s part 1 that a shared machine can time.

On the data of ``bench_missing.py``'s part 1 (N rows, D=16, K=8, float32), one thread
(``torch.set_num_threads(1)``: CPU time, not the overlap of threads), the two E-steps
timed by CPU time (``time.process_time``) in interleaved rounds (so a slow phase of a
shared machine hits both alike); best and median over ``--rounds``. Each E-step has its
own parameters' pattern factors to make, as in a fit (a fresh copy of the parameters per
round), so the time includes factoring every missing pattern once, as an iteration's does.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/profile_missing.py [--n 1e6] [--rounds 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

import bench_missing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=float, default=1e6)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="N=1e5, 3 rounds")
    args = ap.parse_args()
    n, rounds = (100_000, 3) if args.quick else (int(args.n), args.rounds)

    import torch

    from bigem._core.types import Chunk
    from bigem.models.gaussian import gaussian_mixture

    torch.set_num_threads(1)
    d, k = 16, 8
    rng = np.random.default_rng(1)
    w, m, c = bench_missing.mixture(rng, k, d, "full")
    X = bench_missing.draw(rng, n, w, m, c).astype(np.float32)
    gappy = bench_missing.mcar(rng, X, 0.10)
    model = gaussian_mixture(k, "full", 1e-6, torch.float32, gaps=True)
    params = model.make_params(torch.from_numpy(w), torch.from_numpy(m + rng.normal(0, 0.3, m.shape)),
                               torch.from_numpy(c) + 0.1 * torch.eye(d, dtype=torch.float64))
    complete, gaps = Chunk(torch.from_numpy(X), None, 0), Chunk(torch.from_numpy(gappy), None, 0)
    fresh = lambda: dataclasses.replace(params, weights=params.weights.clone())  # noqa: E731 - new factors, as a new iteration's
    sides = {"complete data": lambda: model.e_step(fresh(), complete),
             "10% missing, fiml": lambda: model.e_step(fresh(), gaps)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds + 1):  # the first round warms up (buffers map)
        for name, step in sides.items():
            started = time.process_time()
            step()
            if r:
                times[name].append(time.process_time() - started)
    print(f"one E-step, N={n:,} D={d} K={k} full float32, {np.isnan(gappy).mean():.1%} MCAR, 1 thread, CPU seconds")
    base = min(times["complete data"])
    for name, t in times.items():
        print(f"  {name:20s} best {min(t):.4f}  median {statistics.median(t):.4f}  ({min(t) / base:.2f}x complete)")


if __name__ == "__main__":
    main()
