"""GPU streaming: how fast rows from host memory reach the GPU's E-step, for a `.npy`
file and a Parquet folder.

Generates (once, with a seed) N rows x 16 float32 columns as one `.npy` file and as
Parquet files under bench_data/, reads each once unmeasured (so the page cache holds
them where RAM allows: the host-memory case), then measures, each in its own process:

- decode:   a plain pass of bigem's source over the file on the CPU (read, decode and
            convert every chunk, read ahead; no copy, no E-step): the floor;
- pinned:   one exact EM iteration (K=8, diag) streamed to the GPU as bigem does it:
            pinned buffers, copies on a stream of their own overlapped with the E-step,
            finiteness checked on the device;
- pageable: the same iteration through pageable buffers with the copies on the E-step's
            stream (bigem before pinned streaming), for the speed-up;
- memory:   the same iteration with the rows already on the GPU (the compute alone).

GB/s is the float32 rows' bytes over the iteration's seconds. Targets: pinned `.npy`
>= 15 GB/s on an H200; Parquet pinned <= 1.2x its decode pass.

    python3 benchmarks/bench_stream.py                      # 2e7 rows on cuda (gpu_check.sh)
    python3 benchmarks/bench_stream.py --quick --device cpu # a smoke run anywhere
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import _common

D, K = 16, 8
ROWS_PER_FILE = 5_000_000
ROW_GROUP = 1_000_000
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")


def draw(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    means, stds, weights = rng.normal(0, 4, (K, D)), rng.uniform(0.5, 2.0, (K, D)), rng.dirichlet(np.full(K, 5.0))
    rng = np.random.default_rng(seed)
    lab = rng.choice(K, n, p=weights)
    return (means[lab] + stds[lab] * rng.standard_normal((n, D))).astype(np.float32)


def generate(rows: int) -> tuple[str, str]:
    """The .npy file and the Parquet folder of ``rows`` rows (written once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    npy, folder = os.path.join(DATA, f"stream-{rows}.npy"), os.path.join(DATA, f"stream-{rows}")
    if not os.path.exists(npy) or not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
        out = np.lib.format.open_memmap(npy + ".tmp.npy", mode="w+", dtype=np.float32, shape=(rows, D))
        for i, start in enumerate(range(0, rows, ROWS_PER_FILE)):
            x = draw(min(ROWS_PER_FILE, rows - start), seed=i)
            out[start : start + len(x)] = x
            table = pa.table({f"f{j}": x[:, j] for j in range(D)})
            pq.write_table(table, os.path.join(folder, f"part-{i:03d}.parquet"), row_group_size=ROW_GROUP)
        out.flush()
        del out
        os.replace(npy + ".tmp.npy", npy)
    return npy, folder


def warm(path: str) -> None:
    """Read every byte once (unmeasured): the files then sit in the page cache."""
    names = [path] if os.path.isfile(path) else [os.path.join(path, n) for n in sorted(os.listdir(path))]
    for name in names:
        with open(name, "rb") as f:
            while f.read(1 << 26):
                pass


def worker(spec: dict) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from bigem import GaussianMixture
    from bigem.engines import LocalEngine

    task, device = spec["task"], spec["device"]
    if task == "decode":
        from bigem.sources import open_source

        source = open_source(spec["path"], dtype=torch.float32, device=torch.device("cpu"), memory_budget=256 << 20)
        engine = LocalEngine()

        def one_pass():
            for _ in engine.stream(source):
                pass

        return dict(seconds=_common.best_seconds(one_pass, repeats=2))
    if task == "pageable":  # bigem before pinned streaming: pageable buffers, copies on the E-step's stream
        from bigem.engines import local
        from bigem.sources.buffers import BufferPool

        BufferPool.for_device = classmethod(lambda cls, keep, device: cls(keep))
        local._cuda_device = lambda source: None
    x = draw(200_000, 99)
    rng = np.random.default_rng(5)
    kw = dict(n_components=K, covariance_type="diag", cache_budget=0, tol=0.0, device=device,
              weights_init=np.full(K, 1.0 / K), means_init=x[rng.choice(len(x), K, replace=False)].astype(np.float64),
              precisions_init=np.tile(1.0 / x.var(0), (K, 1)))
    data = spec["path"]
    if task == "memory":
        data = torch.from_numpy(np.load(data, mmap_mode="r")[:]).to(device)
    # iteration 1 also checks the rows; iterations 2 and 3 only read and compute: the best of them
    gm = GaussianMixture(max_iter=3, **kw).fit(data)
    return dict(seconds=min(gm.history_[0]["seconds"][1:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=2e7)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="2e5 rows: a smoke run")
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        import json

        print(json.dumps(worker(json.loads(args.worker))))
        return
    rows = int(2e5 if args.quick else args.rows)
    npy, folder = generate(rows)
    gb = rows * D * 4 / 1e9
    print(f"{rows:.3g} rows x {D} float32 ({gb:.2f} GB), K={K} diag, device={args.device}")
    print(f"{'input':<8} {'mode':<9} {'seconds':>8} {'GB/s':>7} {'x decode':>9}")
    for name, path in (("npy", npy), ("parquet", folder)):
        warm(path)
        decode = None
        for task in ("decode", "pinned", "pageable", "memory"):
            if task == "memory" and name != "npy":
                continue
            seconds = _common.run_worker(__file__, dict(task=task, path=path, device=args.device))["seconds"]
            decode = seconds if task == "decode" else decode
            print(f"{name:<8} {task:<9} {seconds:>8.3f} {gb / seconds:>7.2f} {seconds / decode:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
