"""Restarts in lockstep vs one after another, on data streamed from a Parquet file.

With n_init restarts, ``fit_em`` advances all runs together, so every EM iteration reads
the file once instead of n_init times. Both sides here use the same model, source,
initial parameters and number of iterations (tol=0, so every run does ITERS
iterations); only the order of work differs, and the results are checked equal.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_restarts.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import torch

ITERS = 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--n-init", type=int, default=4)
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from bigem._core.errors import ConvergenceWarning
    from bigem.em.driver import fit_em, run_em
    from bigem.em.init import initial_params
    from bigem.engines import LocalEngine
    from bigem.models.gmm import GaussianMixtureModel
    from bigem.sources import open_source

    rng = np.random.default_rng(0)
    n, d, k = args.rows, args.features, args.k
    x = (rng.normal(0, 3, (k, d))[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.parquet")
        pq.write_table(pa.table({f"f{j}": x[:, j] for j in range(d)}), path, row_group_size=65_536)
        size = os.path.getsize(path)
        del x
        source = open_source(path, dtype=torch.float32, device=torch.device("cpu"), memory_budget=64 << 20,
                             cache_bytes=0)  # no cache: every pass reads the file
        model = GaussianMixtureModel(k, "diag", 1e-6, torch.float32)
        engine = LocalEngine()
        generator = torch.Generator().manual_seed(0)
        inits = [initial_params(model, engine, source, "random_from_data", generator) for _ in range(args.n_init)]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            alone = [run_em(model, engine, source, p, max_iter=ITERS, tol=0.0, restart=r) for r, p in enumerate(inits)]
            t_alone = time.perf_counter() - started
            started = time.perf_counter()
            _, together = fit_em(model, engine, source, lambda r: inits[r], n_init=args.n_init, max_iter=ITERS, tol=0.0)
            t_together = time.perf_counter() - started
        same = all(a.history == b.history for a, b in zip(alone, together))
        print(f"{n:,} rows x {d} float32 columns, Parquet {size / 1e6:.0f} MB, K={k} diag, "
              f"n_init={args.n_init}, {ITERS} iterations each, no cache")
        print(f"  one after another: {t_alone:7.2f} s  ({args.n_init * ITERS} passes over the file)")
        print(f"  in lockstep:       {t_together:7.2f} s  ({ITERS} passes over the file)")
        print(f"  ratio {t_alone / t_together:.2f}x; identical log-likelihood histories: {same}")


if __name__ == "__main__":
    main()
