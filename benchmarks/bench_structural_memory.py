"""Peak memory of a structural model on a Parquet folder: streamed (Y named as columns
of the files) beside the same fit with the table loaded into memory first, at several
sizes, in one run.

Data: ``--rows`` answers to 10 binary items from 3 latent classes, a Gaussian distal
outcome and a covariate, written as a folder of Parquet files. The measurement model is
fitted once on the first 200,000 rows (in memory) and given fitted to every run, so the
runs measure the structural steps: the two-step outcome model and the three-step ML
covariate model. Each run is a fresh process; its peak resident memory (VmHWM: its own,
not the parent's that ru_maxrss would count) is printed with the time of the structural
fit, and the ratio streamed / loaded. "streamed" runs with the measurement model's
``cache_budget=0`` (every pass decodes the files: memory bounded by a chunk);
"cached" with a 1 GB budget (the decoded chunks kept after the first pass while they
fit, as a fit keeps them). Linux only (/proc).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_structural_memory.py
    python benchmarks/bench_structural_memory.py --quick    # small sizes: proves the script works
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ITEMS = np.array([[.8] * 5 + [.2] * 5, [.2] * 3 + [.8] * 4 + [.2] * 3, [.2] * 5 + [.8] * 5])
CASES = [("income", "gaussian", dict(n_steps=2), "outcome, two steps"),
         ("age", "covariate", dict(n_steps=3, correction="ML"), "covariate, three steps ML")]

RUN = r"""
import json, sys, time
import numpy as np, pandas as pd, pyarrow.dataset as ds
import bigem
folder, model_path, column, family, kw, mode = sys.argv[1:7]
measurement = bigem.load(model_path)
measurement.set_params(memory_budget="256MB", cache_budget="1GB" if mode == "cached" else 0)
start = time.perf_counter()
if mode in ("streamed", "cached"):
    m = bigem.StructuralModel(measurement, family, **json.loads(kw)).fit(folder, column)
else:
    table = ds.dataset(folder).to_table().to_pandas()
    items = table[[f"q{j}" for j in range(10)]]
    m = bigem.StructuralModel(measurement, family, **json.loads(kw)).fit(items, table[column].to_numpy())
seconds = time.perf_counter() - start
value = float(np.ravel(m.means_ if family != "covariate" else m.coef_ - m.coef_[0])[1])
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "estimate": value}))
"""


def write(folder: str, rows: int, seed: int = 0, per_file: int = 500_000) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    for i, first in enumerate(range(0, rows, per_file)):
        n = min(per_file, rows - first)
        z = rng.integers(0, 3, n)
        frame = pd.DataFrame((rng.random((n, 10)) < ITEMS[z]).astype(np.float64),
                             columns=[f"q{j}" for j in range(10)])
        frame["income"] = rng.normal(np.array([0.0, 1.0, 2.0])[z], 1.0)
        frame["age"] = rng.normal(0.5 * z, 1.0)
        frame.to_parquet(os.path.join(folder, f"part{i:03d}.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows = [20_000, 40_000]
    import pandas as pd

    import bigem

    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'rows':>10} {'model':<28} {'loaded':>18} {'streamed':>18} {'memory ratio':>13} {'cached':>18}")
        for rows in args.rows:
            folder = os.path.join(tmp, f"survey{rows}")
            os.makedirs(folder)
            write(folder, rows)
            sample = pd.read_parquet(os.path.join(folder, "part000.parquet")).iloc[:200_000]
            measurement = bigem.BernoulliMixture(3, n_init=2, random_state=0, dtype="float64").fit(
                sample[[f"q{j}" for j in range(10)]])
            model_path = os.path.join(tmp, f"measurement{rows}.bigem")
            measurement.save(model_path)
            for column, family, kw, label in CASES:
                got = {}
                for mode in ("loaded", "streamed", "cached"):
                    out = subprocess.run([sys.executable, "-c", RUN, folder, model_path, column, family,
                                          json.dumps(kw), mode], capture_output=True, text=True)
                    if out.returncode:
                        sys.exit(f"the {mode} run failed:\n{out.stderr}")
                    got[mode] = json.loads(out.stdout.strip().splitlines()[-1])
                assert all(abs(got["loaded"]["estimate"] - got[m]["estimate"]) < 1e-6 for m in got), got
                cells = [f"{got[m]['peak_mb']:7.0f} MB {got[m]['seconds']:6.1f} s" for m in ("loaded", "streamed",
                                                                                              "cached")]
                ratio = got["streamed"]["peak_mb"] / got["loaded"]["peak_mb"]
                print(f"{rows:>10,} {label:<28} {cells[0]:>18} {cells[1]:>18} {ratio:>12.2f}x {cells[2]:>18}",
                      flush=True)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
