"""Restarts in lockstep vs one after another, on data streamed from a file (CSV by default).

With n_init restarts, ``fit_em`` advances all runs together, so every EM iteration reads
the file once instead of n_init times. Both sides here use the same model, source,
initial parameters and number of iterations (tol=0, so every run does ITERS
iterations); only the order of work differs, and the results are checked equal.
The two orders alternate REPEATS times after a warm-up; the best time of each is
printed (this VM's other tenants only ever add time).

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

ITERS = 3
REPEATS = 3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--n-init", type=int, default=4)
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from bigem._core.errors import ConvergenceWarning
    from bigem.em.driver import fit_em, run_em
    from bigem.em.init import from_centres, seed_sample, seeds
    from bigem.engines import LocalEngine
    from bigem.models.gaussian import gaussian_mixture
    from bigem.sources import open_source

    rng = np.random.default_rng(0)
    n, d, k = args.rows, args.features, args.k
    x = (rng.normal(0, 3, (k, d))[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"x.{args.format}")
        table = pa.table({f"f{j}": x[:, j] for j in range(d)})
        if args.format == "csv":
            pcsv.write_csv(table, path)
        else:
            pq.write_table(table, path, row_group_size=65_536)
        size = os.path.getsize(path)
        del x
        source = open_source(path, dtype=torch.float32, device=torch.device("cpu"), memory_budget=64 << 20,
                             cache_bytes=0)  # no cache: every pass reads the file
        model = gaussian_mixture(k, "diag", 1e-6, torch.float32)
        engine = LocalEngine()
        generator = torch.Generator().manual_seed(0)
        inits = [from_centres(model, engine, source,
                              seeds("random_from_data", seed_sample(source, k, generator, engine), k, generator))
                 for _ in range(args.n_init)]

        def one_after_another():
            return [run_em(model, engine, source, p, max_iter=ITERS, tol=0.0, restart=r) for r, p in enumerate(inits)]

        def lockstep():
            return fit_em(model, engine, source, lambda r: inits[r], n_init=args.n_init, max_iter=ITERS, tol=0.0)[1]

        t_alone, t_together = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            one_after_another()  # warm-up: workspaces, page cache
            for _ in range(REPEATS):
                for f, times in ((one_after_another, t_alone), (lockstep, t_together)):
                    started = time.perf_counter()
                    runs = f()
                    times.append(time.perf_counter() - started)
                    histories = [r.history for r in runs]
                    if f is one_after_another:
                        reference = histories
                    elif histories != reference:
                        raise AssertionError("lockstep restarts differ from restarts run one after another")
        started = time.perf_counter()
        for _ in source.chunks():
            pass
        read = time.perf_counter() - started
        print(f"{n:,} rows x {d} float32 columns, {args.format} {size / 1e6:.0f} MB (one read: {read:.2f} s), "
              f"K={k} diag, n_init={args.n_init}, {ITERS} iterations each, no cache; best of {REPEATS}")
        print(f"  one after another: {min(t_alone):7.2f} s  ({args.n_init * ITERS} passes over the file)")
        print(f"  in lockstep:       {min(t_together):7.2f} s  ({ITERS} passes over the file)")
        print(f"  ratio {min(t_alone) / min(t_together):.2f}x; identical log-likelihood histories: yes")


if __name__ == "__main__":
    main()
