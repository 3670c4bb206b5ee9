"""engine='torch' on CPUs: two gloo processes against the local engine and against Dask's
LocalCluster(2), on the same Parquet folder, in one run.

Each fit runs in processes of its own: the local engine on every core of one process;
torchrun --nproc_per_node=2 with engine='torch' (each rank on half the cores, reading
its own row groups); a Dask LocalCluster of 2 single-process workers with half the cores
each. All stream the file (cache off) through the same K=8 diag model from the same
initial parameters for a fixed number of iterations; the figure is the best iteration's
seconds (the first also checks the rows). Target: torch <= 1.2x local.

With ``--family multinomial``: MultinomialMixture (K=20, float32) streamed from the
documents of ``bench_multinomial.py`` (made once under bench_data/: Zipfian words from
topics), as an uncompressed ``.npz`` (each rank reads its row range) and as Parquet
token lists (each rank its row groups), local against two gloo ranks, from the same
start (no Dask: its workers read count columns, not these files).

    python benchmarks/bench_torch_engine.py [--rows 4e6]
    python benchmarks/bench_torch_engine.py --family multinomial [--docs 2e5 --vocab 2e4]
    python benchmarks/bench_torch_engine.py --quick          # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

import _common

D, K, ITERS = 16, 8, 4
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")


def generate(rows: int) -> str:
    """A folder of 4 Parquet files of ``rows`` rows in all, 4 row groups each (the torch
    ranks split it between row groups; Dask reads a partition per file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = os.path.join(DATA, f"torch-engine-{rows}")
    if not os.path.isdir(folder):
        tmp = folder + ".tmp"
        os.makedirs(tmp, exist_ok=True)
        rng = np.random.default_rng(0)
        means = rng.normal(0, 4, (K, D))
        per_file = -(-rows // 4)
        for i, start in enumerate(range(0, rows, per_file)):
            n = min(per_file, rows - start)
            x = (means[rng.integers(K, size=n)] + rng.standard_normal((n, D))).astype(np.float32)
            pq.write_table(pa.table({f"f{j}": x[:, j] for j in range(D)}), os.path.join(tmp, f"part-{i}.parquet"),
                           row_group_size=-(-n // 4))
        os.replace(tmp, folder)
    return folder


def fit(path: str, engine: str, threads: int, client=None) -> float:
    """The best iteration's seconds of a fixed-length fit on ``engine``."""
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(threads)
    from bigem import GaussianMixture

    import pyarrow.parquet as pq

    first = sorted(os.listdir(path))[0]
    x = pq.read_table(os.path.join(path, first)).to_pandas().to_numpy()[:20_000]
    rng = np.random.default_rng(5)
    gm = GaussianMixture(K, covariance_type="diag", cache_budget=0, tol=0.0, max_iter=ITERS, engine=engine,
                         client=client, weights_init=np.full(K, 1.0 / K),
                         means_init=np.asarray(x[rng.choice(len(x), K, replace=False)], np.float64),
                         precisions_init=np.tile(1.0 / x.var(0), (K, 1)))
    gm.fit(path)
    return min(gm.history_[0]["seconds"][1:])


def fit_documents(spec: dict, engine: str, threads: int) -> float:
    """The best iteration's seconds of a fixed-length MultinomialMixture fit streamed from
    ``spec``'s file (cache off), from bench_multinomial's common start."""
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(threads)
    from bench_multinomial import start

    from bigem import MultinomialMixture, Tokens

    w0, p0 = start(spec["vocab"], spec["k"])
    X = spec["path"] if spec["path"].endswith(".npz") else Tokens(spec["path"], "tokens", "counts",
                                                                    vocabulary_size=spec["vocab"])
    est = MultinomialMixture(spec["k"], tol=0.0, max_iter=ITERS, weights_init=w0, probabilities_init=p0,
                             cache_budget=0, engine=engine).fit(X)
    return min(est.history_[0]["seconds"][1:])


def worker(spec: dict) -> dict | None:
    cores = os.cpu_count() or 2
    if spec.get("family") == "multinomial":
        if spec["engine"] == "local":
            return dict(seconds=fit_documents(spec, "local", cores))
        seconds = fit_documents(spec, "torch", max(1, cores // 2))
        return dict(seconds=seconds) if int(os.environ.get("RANK", 0)) == 0 else None
    if spec["engine"] == "local":
        return dict(seconds=fit(spec["path"], "local", cores))
    if spec["engine"] == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=max(1, cores // 2), processes=True) as cluster, \
                Client(cluster) as client:
            return dict(seconds=fit(spec["path"], "dask", cores, client))
    seconds = fit(spec["path"], "torch", max(1, cores // 2))  # one rank of a torchrun group
    return dict(seconds=seconds) if int(os.environ.get("RANK", 0)) == 0 else None  # rank 0 reports


def torchrun(path: str, **more) -> float:
    spec = json.dumps(dict(engine="torch", path=path, **more))
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          __file__, "--worker", spec], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"torchrun failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    found = re.findall(r'\{"seconds": [^}]*\}', out.stdout)
    if not found:
        raise RuntimeError(f"torchrun printed no result:\n{out.stdout[-3000:]}")
    return json.loads(found[-1])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=4e6)
    ap.add_argument("--quick", action="store_true", help="2e5 rows: a smoke run")
    ap.add_argument("--family", choices=("gaussian", "multinomial"), default="gaussian")
    ap.add_argument("--docs", type=float, default=2e5)
    ap.add_argument("--vocab", type=float, default=2e4)
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        result = worker(json.loads(args.worker))
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    if args.family == "multinomial":
        documents(int(args.docs / 20 if args.quick else args.docs), int(args.vocab / 5 if args.quick else args.vocab))
        return
    rows = int(2e5 if args.quick else args.rows)
    path = generate(rows)
    print(f"{rows:.3g} rows x {D} float32 Parquet, K={K} diag, {os.cpu_count()} cores, best of iterations 2-{ITERS}")
    local = _common.run_worker(__file__, dict(engine="local", path=path))["seconds"]
    torch_s = torchrun(path)
    dask = _common.run_worker(__file__, dict(engine="dask", path=path))["seconds"]
    print(f"{'engine':<28} {'seconds':>8} {'x local':>8}")
    for name, seconds in (("local (1 process)", local), ("torch (2 gloo ranks)", torch_s),
                          ("dask (LocalCluster(2))", dask)):
        print(f"{name:<28} {seconds:>8.3f} {seconds / local:>8.2f}")


def documents(docs: int, vocab: int, k: int = 20) -> None:
    """The multinomial's table: local against two gloo ranks, .npz and Parquet token lists."""
    from bench_multinomial import make_data

    npz, parquet = make_data(docs, vocab, 100, k)
    print(f"{docs:.3g} documents x {vocab:.3g} words, ~100 tokens each, K={k} float32, streamed (cache off), "
          f"{os.cpu_count()} cores, best of iterations 2-{ITERS}")
    print(f"{'file':<24} {'local s':>8} {'torch s':>8} {'x local':>8}")
    for name, path in ((".npz (row ranges)", npz), ("Parquet token lists", parquet)):
        spec = dict(family="multinomial", path=path, vocab=vocab, k=k)
        local = _common.run_worker(__file__, dict(engine="local", **spec))["seconds"]
        ranks = torchrun(**spec)
        print(f"{name:<24} {local:>8.3f} {ranks:>8.3f} {ranks / local:>8.2f}")


if __name__ == "__main__":
    main()
