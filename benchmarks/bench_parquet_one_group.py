"""Peak memory of a fit over a Parquet file of one row group (Spark's, DuckDB's and
pandas' writers often make one per file) against the same rows in many groups.

Each fit runs in its own process (its peak RSS is its own): GaussianMixture(3), one EM
iteration after the k-means start, ``cache_budget=0`` (every pass reads the file) and
the ``memory_budget`` given. The file: 8e6 x 8 float32 rows (261 MB on disk), written
once to a temporary folder.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_parquet_one_group.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROWS, COLUMNS = 8_000_000, 8

WORKER = """
import json, resource, sys, warnings
import bigem
warnings.simplefilter("ignore")
path, budget = sys.argv[1], sys.argv[2]
gm = bigem.GaussianMixture(3, max_iter=1, tol=0, random_state=0, cache_budget=0, memory_budget=budget).fit(path)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bound": gm.lower_bound_}))
"""


WRITER = f"""
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
X = np.random.default_rng(0).normal(size=({ROWS}, {COLUMNS})).astype(np.float32)
table = pa.table({{f"c{{i}}": X[:, i] for i in range({COLUMNS})}})
pq.write_table(table, sys.argv[1], row_group_size={ROWS})
pq.write_table(table, sys.argv[2], row_group_size=1_000_000)
"""


def write(folder: str) -> dict[str, str]:
    """The two files, written by another process: a worker forked from a process that
    held the rows would inherit its peak RSS (Linux keeps ru_maxrss across exec)."""
    paths = {"one group": os.path.join(folder, "one.parquet"), "groups of 1e6 rows": os.path.join(folder, "many.parquet")}
    subprocess.run([sys.executable, "-c", WRITER, *paths.values()], check=True)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="256MB,32MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write(folder)
        print(f"{'file':20s} {'memory_budget':>13s} {'peak RSS MB':>12s}  lower bound")
        for name, path in paths.items():
            for budget in args.budgets.split(","):
                out = subprocess.run([sys.executable, "-c", WORKER, path, budget], capture_output=True, text=True,
                                     check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{name:20s} {budget:>13s} {row['peak_mb']:12.0f}  {row['bound']:.12f}", flush=True)


if __name__ == "__main__":
    main()
