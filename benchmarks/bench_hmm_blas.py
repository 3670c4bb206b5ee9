"""bigem's HMM E-step with numpy's BLAS held to one thread (the default when threadpoolctl
is installed) against free BLAS threads, interleaved in one process so the machine's
drift hits both alike. Prints median and best seconds per iteration of each.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm_blas.py a-diag b-diag a-full
"""

from __future__ import annotations

import os
import statistics
import sys

import torch
from threadpoolctl import ThreadpoolController

sys.path.insert(0, os.path.dirname(__file__))
from bench_hmm import CASES, K, make_data  # noqa: E402

import bigem.models.hmm as hmm_module  # noqa: E402
from bigem import GaussianHMM  # noqa: E402

REPEATS, ITERS = 4, 3  # per mode: REPEATS fits of ITERS timed iterations, after a warm-up each


def main(cases: list[str]) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    blas = ThreadpoolController().select(user_api="blas")
    for name in cases:
        case = CASES[name]
        x, lengths, init = make_data(case["n_seq"], case["length"], case["cov"])
        times: dict[str, list[float]] = {"free": [], "one thread": []}
        for _ in range(REPEATS):
            for mode in times:
                hmm_module._blas_one_thread._controller[:] = [blas if mode == "one thread" else None]
                m = GaussianHMM(K, covariance_type=case["cov"], init_params="", params="stmc", n_iter=ITERS + 1, tol=0.0)
                m.startprob_, m.transmat_, m.means_, m.covars_ = (
                    init[k] for k in ("startprob", "transmat", "means", "covars")
                )
                m.fit(x, lengths)
                times[mode] += m.monitor_.seconds[1:]
        free, one = (statistics.median(times[k]) for k in ("free", "one thread"))
        print(
            f"{name}: s/iter median (best) free BLAS threads {free:.3f} ({min(times['free']):.3f}), "
            f"one BLAS thread {one:.3f} ({min(times['one thread']):.3f}); speed-up {free / one:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["a-diag", "a-full", "b-diag"])
