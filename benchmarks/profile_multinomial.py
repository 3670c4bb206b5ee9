"""Where a multinomial EM iteration's CPU time goes, step by step, in units of the floor.

On the data set of ``bench_multinomial.py`` (made there when missing), one thread
(``torch.set_num_threads(1)``: CPU time, not the overlap of threads), each step timed
alone by CPU time (``time.process_time``), best of ``--repeats``, divided by the floor
(one ``X @ W``, scipy, float32, K columns):

- decode:       one pass over the streamed ``.npz`` (``bigem.sources.counts``), nothing else;
- product:      X @ log(theta)^T (the E-step's first product);
- coefficients: each row's log multinomial coefficient (derived on the first pass, then
                kept: with the chunks in memory, by the rows' memos when streamed, within
                a sixteenth of memory_budget): compiled and numpy;
- per-row:      coefficients kept, then log weights, log-sum-exp, responsibilities and
                masses: the compiled pass, and the tensor steps (log_joint's additions and
                normalise_log);
- transposed:   X^T @ R into the float64 word counts (the second product);
- e-step:       the whole E-step of the matrix as one chunk, compiled and tensor path,
                coefficients kept (later passes) or derived (a first pass);
- m-step:       the M-step from the statistics;
- fit:          a whole EM iteration of ``MultinomialMixture.fit`` in memory and streamed
                from the ``.npz`` (cache_budget=0), on ``--fit-threads`` threads: the CPU
                time of all its threads (a fit of 9 iterations less one of 3, over 6), so
                that what threads cost beside the work (an idle thread spinning, hand-overs)
                shows, which the one-thread steps above cannot.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/profile_multinomial.py
        [--docs 2e5] [--vocab 2e4] [--length 100] [--k 20] [--repeats 5] [--fit-threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common
import bench_multinomial


def cpu_seconds(fn, repeats: int) -> float:
    """Best CPU time of ``fn()`` (this process, all its threads) after a warm-up call."""
    return _common.best_seconds(fn, repeats, clock=time.process_time)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=float, default=2e5)
    ap.add_argument("--vocab", type=float, default=2e4)
    ap.add_argument("--length", type=float, default=100)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fit-threads", type=int, default=2, help="torch threads of the whole-fit rows")
    ap.add_argument("--quick", action="store_true", help="1/20 of the documents, 1/5 of the vocabulary")
    args = ap.parse_args()
    docs, V, K = int(args.docs), int(args.vocab), args.k
    if args.quick:
        docs, V = docs // 20, V // 5
    npz, _ = bench_multinomial.make_data(docs, V, args.length, K)

    import scipy.sparse as sp
    import torch

    from bigem._core import jit
    from bigem._core.sparse import SparseRows
    from bigem._core.types import Chunk
    from bigem.models import multinomial as kernels
    from bigem.models.mixture import _EXP_FLOOR, normalise_log
    from bigem.models.multinomial import multinomial_mixture
    from bigem.sources.counts import open_counts

    torch.set_num_threads(1)
    X = sp.load_npz(npz)
    X.data = X.data.astype(np.float32)
    W = np.random.default_rng(0).random((V, K), dtype=np.float32)
    floor = cpu_seconds(lambda: X @ W, args.repeats)

    def rows() -> SparseRows:  # fresh rows: nothing kept from an earlier pass
        return SparseRows(torch.from_numpy(X.indptr.astype(np.int64)), torch.from_numpy(X.indices),
                          torch.from_numpy(X.data), V)

    weights, probs = bench_multinomial.start(V, K)
    model = multinomial_mixture(K, 1.0, torch.float32)
    params = model.make_params(torch.from_numpy(weights), torch.from_numpy(probs))
    comp = model.component
    prep = comp.prepare(params.component, torch.device("cpu"))
    log_w = params.log_weights.float()
    kept = rows()
    n = X.shape[0]
    joint = torch.empty(n, K)
    log_norm = torch.empty(n)
    coef = kernels.log_coefficients(kept)
    kept.memo["log_coefficients"] = coef
    kernels.product(kept, prep.log_probs_t, joint)
    source = open_counts(npz, dtype=torch.float32, device=torch.device("cpu"), memory_budget=1 << 28)

    def decode():
        for _ in source.chunks():
            pass

    def tensor_rows():
        lj = joint.clone()
        lj += coef.float()[:, None]
        lj += log_w
        normalise_log(lj.T, log_norm)

    def compiled_rows():
        acc = comp.accumulator(prep)
        lj = joint.clone()
        from bigem.models import multinomial_fused as fused
        acc.n_k += fused.normalise(kept, lj, log_w, coef.numpy(), True, kernels._log_factorials(kept.device), None,
                                   None, _EXP_FLOOR[torch.float32], log_norm)

    resp = torch.softmax(joint, 1).contiguous()
    stats = model.e_step(params, Chunk(kept, None, 0))

    def coefficients_numpy():
        with jit.off():
            kernels.log_coefficients(rows())

    def e_step(memo: bool, off: bool):
        def go():
            chunk = Chunk(kept if memo else rows(), None, 0)
            if off:
                with jit.off():
                    model.e_step(params, chunk)
            else:
                model.e_step(params, chunk)
        return go

    steps = {
        "decode (.npz pass)": decode,
        "product": lambda: kernels.product(kept, prep.log_probs_t, joint),
        "coefficients, compiled": lambda: kernels.log_coefficients(rows()),
        "coefficients, numpy": coefficients_numpy,
        "per-row, compiled": compiled_rows,
        "per-row, tensor steps": tensor_rows,
        "transposed": lambda: kernels.transposed_product(kept, resp, torch.zeros(V, K, dtype=torch.float64)),
        "e-step kept, compiled": e_step(True, False),
        "e-step kept, tensor": e_step(True, True),
        "e-step derived, compiled": e_step(False, False),
        "e-step derived, tensor": e_step(False, True),
        "m-step": lambda: model.m_step(stats, params),
    }
    print(f"{n} documents, vocabulary {V}, {X.nnz} entries, K={K}; one thread, CPU time; "
          f"floor {floor * 1e3:.1f} ms; compiled kernels {'on' if jit.available() else 'off (numba absent)'}")
    for name, fn in steps.items():
        if not jit.available() and "compiled" in name:
            continue
        print(f"  {name:26s} {cpu_seconds(fn, args.repeats) / floor:6.2f} floors")

    import warnings

    from bigem import MultinomialMixture

    warnings.simplefilter("ignore")  # tol=0: every fit stops at max_iter, unconverged
    torch.set_num_threads(args.fit_threads)
    w0, p0 = bench_multinomial.start(V, K)
    in_memory = sp.load_npz(npz)
    for name, data, cache in (("fit iteration, in memory", in_memory, "64GB"), ("fit iteration, .npz", npz, "0")):
        def fit(iterations: int, data=data, cache=cache):
            return lambda: MultinomialMixture(K, tol=0.0, max_iter=iterations, weights_init=w0, probabilities_init=p0,
                                              cache_budget=cache).fit(data)
        fit(3)()  # compiled kernels and the page cache warm
        per_iteration = min(_cpu(fit(9)) - _cpu(fit(3)) for _ in range(max(1, args.repeats // 2))) / 6
        print(f"  {name:26s} {per_iteration / floor:6.2f} floors (CPU of {args.fit_threads} threads)")


def _cpu(fn) -> float:
    began = time.process_time()
    fn()
    return time.process_time() - began


if __name__ == "__main__":
    main()
