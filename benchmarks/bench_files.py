"""Big data in: a Parquet data set streamed by exact and online EM, against a plain read.

Generates (once, with a seed) N rows x 16 float32 columns from an 8-component mixture as
Parquet files under bench_data/, then measures in one run, each in its own process (so
each peak RSS is its own):

- read:   a plain pass over the files with pyarrow (decode every column to numpy): the
          floor any reader pays;
- exact:  one exact EM iteration, K=8 diag, through bigem's file source (cache off, so
          every iteration re-reads the files); the same without the read-ahead thread;
          and an iteration from the in-memory cache (the compute alone);
- online: one online EM pass over the same files (initialised from a row sample);
- score:  gm.score() of a fitted model over the files (streamed totals: its peak RSS is
          a chunk's, not the 8 bytes a row that a per-row array would take);
- the log-likelihood reached: online after one pass (k-means initialisation on a row
  sample) vs exact EM run to convergence from the generating parameters (on a 2e6-row
  sample of the same distribution; at that size its fixed point sits within sampling
  noise of the full data's), both scored on the same held-out rows;
- CSV: rows per second read (pyarrow) and fitted (one exact iteration) for a CSV export.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_files.py [--rows 1e8]
    python3 benchmarks/bench_files.py --rows 2e7 --device cuda   # on a GPU machine (gpu_check.sh)

A first, unmeasured read pass puts the files in the page cache where RAM allows, so
"read" measures decoding rather than the disk (the harder case for overlap: decoding
and the E-step then compete for the same cores); the exact iteration's ratio to it is
what shows overlap. The read and the exact iteration are measured a second time with
the files evicted from the page cache first (posix_fadvise DONTNEED, where the OS
honours it): the case of data larger than memory, read from the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import _common
from _common import peak_rss_mb

D, K = 16, 8
ROWS_PER_FILE = 5_000_000
ROW_GROUP = 1_000_000
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")


def mixture(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 4, (K, D)), rng.uniform(0.5, 2.0, (K, D)), rng.dirichlet(np.full(K, 5.0))


def draw(n: int, seed: int) -> np.ndarray:
    means, stds, weights = mixture()
    rng = np.random.default_rng(seed)
    lab = rng.choice(K, n, p=weights)
    return (means[lab] + stds[lab] * rng.standard_normal((n, D))).astype(np.float32)


def generate(rows: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = os.path.join(DATA, f"parquet-{rows}x{D}")
    if os.path.exists(os.path.join(folder, "_DONE")):
        return folder
    os.makedirs(folder, exist_ok=True)
    names = [f"x{j}" for j in range(D)]
    for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        x = draw(min(ROWS_PER_FILE, rows - start), seed=1000 + i)
        table = pa.table({n: x[:, j] for j, n in enumerate(names)})
        pq.write_table(table, os.path.join(folder, f"part-{i:05d}.parquet"), row_group_size=ROW_GROUP, compression="none")
    open(os.path.join(folder, "_DONE"), "w").close()
    return folder


def generate_csv(rows: int) -> str:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = os.path.join(DATA, f"data-{rows}x{D}.csv")
    if not os.path.exists(path):
        x = draw(rows, seed=7)
        pcsv.write_csv(pa.table({f"x{j}": x[:, j] for j in range(D)}), path + ".tmp")
        os.replace(path + ".tmp", path)
    return path


def init_params() -> dict:
    """Start every fit from the same rough parameters (a sample's moments), so no fit
    spends passes on initialisation and all compare alike."""
    x = draw(20_000, seed=99)
    rng = np.random.default_rng(5)
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=x[rng.choice(len(x), K, replace=False)].astype(np.float64),
        precisions_init=np.tile(1.0 / x.var(0), (K, 1)),
    )


# ------------------------------------------------------------------------ workers
def evict(folder: str) -> None:
    """Drop the files' pages from the page cache, so the next read comes from the disk."""
    for name in os.listdir(folder):
        fd = os.open(os.path.join(folder, name), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    task = spec["task"]
    if spec.get("evict"):
        evict(spec["path"])
    if task == "read":  # before importing torch, whose import alone adds ~300 MB of RSS
        return read_pass(spec["path"])
    if task == "csv-read":
        return csv_read(spec["path"])
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from bigem import GaussianMixture

    kw = dict(n_components=K, covariance_type="diag", cache_budget=0, random_state=0, tol=0.0, device=spec["device"],
              **init_params())
    started = time.perf_counter()
    if task in ("exact", "csv-exact", "exact-serial"):
        if task == "exact-serial":  # the same iteration without the read-ahead thread
            from bigem.engines import local

            local.LocalEngine.__init__.__defaults__ = (False, local.READ_AHEAD)
        gm = GaussianMixture(max_iter=1, **kw).fit(spec["path"])
        seconds = gm.history_[0]["seconds"][0]
        return dict(seconds=seconds, peak_rss_mb=peak_rss_mb())
    if task == "score":  # a model fitted on a sample, then scored over every file
        gm = GaussianMixture(max_iter=20, **{**kw, "tol": 1e-3}).fit(draw(200_000, 11))
        base = peak_rss_mb()
        started = time.perf_counter()
        score = gm.score(spec["path"])
        return dict(seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb(), before_mb=base, score=score)
    if task == "compute":  # iteration 2 reads the decoded rows from the cache: compute only
        gm = GaussianMixture(max_iter=2, **{**kw, "cache_budget": "64GB"}).fit(spec["path"])
        return dict(seconds=gm.history_[0]["seconds"][1], peak_rss_mb=peak_rss_mb())
    if task == "online":
        kw.pop("weights_init"), kw.pop("means_init"), kw.pop("precisions_init")
        gm = GaussianMixture(algorithm="online", batch_size=spec["batch"], max_iter=1, init_params="kmeans", **kw)
        gm.fit(spec["path"])
        total = time.perf_counter() - started
        rss = peak_rss_mb()
        return dict(seconds=gm.history_[0]["seconds"][0], total=total, peak_rss_mb=rss, score=gm.score(draw(1_000_000, 4242)))
    if task == "reference":  # started at the generating parameters: the best fixed point EM reaches
        means, stds, weights = mixture()
        kw.update(weights_init=weights, means_init=means, precisions_init=1.0 / stds**2, tol=1e-7, device="cpu")
        gm = GaussianMixture(max_iter=1000, **kw).fit(draw(2_000_000, 31337))
        return dict(score=gm.score(draw(1_000_000, 4242)), n_iter=gm.n_iter_)
    raise ValueError(task)


def read_pass(folder: str) -> dict:
    import pyarrow.parquet as pq

    started = time.perf_counter()
    rows = 0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".parquet"):
            continue
        # as bigem reads: one row group at a time, pre-buffered (bounded, and faster than
        # pyarrow's default of pre-buffering the whole file; bench_parquet_reads.py)
        with pq.ParquetFile(os.path.join(folder, name)) as f:
            for group in range(f.metadata.num_row_groups):
                for batch in f.iter_batches(batch_size=ROW_GROUP, row_groups=[group]):
                    cols = [c.to_numpy(zero_copy_only=False) for c in batch.columns]
                    rows += len(cols[0])
    return dict(seconds=time.perf_counter() - started, rows=rows, peak_rss_mb=peak_rss_mb())


def csv_read(path: str) -> dict:
    import pyarrow.csv as pcsv

    started = time.perf_counter()
    rows = sum(b.num_rows for b in pcsv.open_csv(path))
    return dict(seconds=time.perf_counter() - started, rows=rows, peak_rss_mb=peak_rss_mb())


def run(spec: dict) -> dict:
    return _common.run_worker(__file__, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=1e8)
    ap.add_argument("--csv-rows", type=float, default=2e6)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--device", default="cpu", help="bigem's device for the fits (the reads stay on the CPU)")
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    rows, csv_rows = int(args.rows), int(args.csv_rows)
    t = time.perf_counter()
    folder = generate(rows)
    csv = generate_csv(csv_rows)
    print(f"data: {rows:.3g} rows x {D} float32 Parquet in {folder} ({time.perf_counter() - t:.0f}s to ensure); "
          f"CSV {csv_rows:.3g} rows")
    run(dict(task="read", path=folder))  # warm-up: every measure then finds the files page-cached where RAM allows
    dev = dict(device=args.device)
    read = run(dict(task="read", path=folder))
    exact = run(dict(task="exact", path=folder, **dev))
    cold_read = run(dict(task="read", path=folder, evict=True))
    cold_exact = run(dict(task="exact", path=folder, evict=True, **dev))
    run(dict(task="read", path=folder))  # back in the page cache for the rest
    serial = run(dict(task="exact-serial", path=folder, **dev))
    compute = run(dict(task="compute", path=folder, **dev))
    online = run(dict(task="online", path=folder, batch=args.batch, **dev))
    score = run(dict(task="score", path=folder, **dev))
    ref = run(dict(task="reference", device="cpu"))
    cread = run(dict(task="csv-read", path=csv))
    cexact = run(dict(task="csv-exact", path=csv, **dev))
    print(f"bigem on {args.device}; {os.cpu_count()} CPU cores")
    gap = (ref["score"] - online["score"]) / abs(ref["score"])
    print(f"{'measure':<34}{'seconds':>9}{'Mrows/s':>9}{'peak RSS MB':>13}")
    for name, r, n in (("plain read pass (pyarrow)", read, rows), ("exact EM iteration, K=8 diag", exact, rows),
                       ("plain read pass, evicted files", cold_read, rows), ("exact EM iteration, evicted files", cold_exact, rows),
                       ("  same, no read-ahead thread", serial, rows), ("  same, rows cached (compute only)", compute, rows),
                       ("online EM pass", online, rows), ("score() over the files", score, rows),
                       ("CSV read pass (pyarrow)", cread, csv_rows),
                       ("CSV exact EM iteration", cexact, csv_rows)):
        print(f"{name:<34}{r['seconds']:>9.2f}{n / r['seconds'] / 1e6:>9.2f}{r['peak_rss_mb']:>13.0f}")
    print(f"exact iteration / read pass: {exact['seconds'] / read['seconds']:.2f}x (target <= 1.3x); "
          f"/ max(read, compute): {exact['seconds'] / max(read['seconds'], compute['seconds']):.2f}x; "
          f"/ (read + compute): {exact['seconds'] / (read['seconds'] + compute['seconds']):.2f}x")
    print(f"evicted files: exact iteration / read pass: {cold_exact['seconds'] / cold_read['seconds']:.2f}x (target <= 1.3x)")
    print(f"exact EM peak RSS: {exact['peak_rss_mb']:.0f} MB (target < 1536 MB); score(): {score['peak_rss_mb']:.0f} MB "
          f"({score['before_mb']:.0f} MB before it; a per-row float64 array alone would be {rows * 8 / 2**20:.0f} MB)")
    print(f"online: {online['total']:.1f}s in all (init from a row sample + one pass)")
    print(f"held-out mean log-likelihood: online one pass {online['score']:.6f}, exact EM converged "
          f"{ref['score']:.6f} ({ref['n_iter']} iterations on 2e6 rows): gap {100 * gap:.3f}% (target < 1%)")


if __name__ == "__main__":
    main()
