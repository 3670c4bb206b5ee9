"""Ways pyarrow can read Parquet: the time of a pass and the memory it holds.

Why bigem reads one pre-buffered row group at a time, with plain reads
(sources/tables.py). Each variant reads every column of the files, batch by batch, in
its own process:

- default:  ``pq.ParquetFile(path)``, which pre-buffers every row group of the file;
- group:    the same, iterating one row group at a time (bigem's reader): each
            group's reads coalesced, and only that group held;
- nopre:    ``pre_buffer=False``: no coalescing, many small reads;
- mmap:     ``memory_map=True`` (its pages count as the process's resident memory);
- pergroup: a memory map reopened for each row group (bounds what stays mapped).

Two data sets: the first 8 files of bench_files.py's 1e8-row set (4e7 rows, page
cached by a first read: the time of a pass), and one file of 2e7 rows with 1e6-row
groups, 1.46 GB (the memory held: a pre-buffered file is held whole).

    .venv/bin/python benchmarks/bench_parquet_reads.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import sys
import time

import _common
from _common import peak_rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")
VARIANTS = ("default", "group", "nopre", "mmap", "pergroup")


def single_file() -> str:
    """One 2e7-row file (the first four 5e6-row parts of the 1e8-row set, concatenated)."""
    import pyarrow.parquet as pq

    path = os.path.join(DATA, "single-20000000x16.parquet")
    if not os.path.exists(path):
        writer = None
        for part in sorted(glob.glob(os.path.join(DATA, "parquet-100000000x16", "*.parquet")))[:4]:
            table = pq.read_table(part)
            writer = writer or pq.ParquetWriter(path + ".tmp", table.schema, compression="none")
            writer.write_table(table, row_group_size=1_000_000)
        writer.close()
        os.replace(path + ".tmp", path)
    return path


def read(files: list[str], variant: str) -> dict:
    import pyarrow.parquet as pq

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for path in files:
        if variant == "group":
            with pq.ParquetFile(path) as f:
                for g in range(f.metadata.num_row_groups):
                    for batch in f.iter_batches(batch_size=1_000_000, row_groups=[g]):
                        [c.to_numpy() for c in batch.columns]
            continue
        if variant == "pergroup":
            for g in range(pq.ParquetFile(path).metadata.num_row_groups):
                with pq.ParquetFile(path, memory_map=True) as f:
                    for batch in f.iter_batches(batch_size=1_000_000, row_groups=[g]):
                        [c.to_numpy() for c in batch.columns]
            continue
        kw = {"default": {}, "nopre": {"pre_buffer": False}, "mmap": {"memory_map": True}}[variant]
        with pq.ParquetFile(path, **kw) as f:
            for batch in f.iter_batches(batch_size=1_000_000):
                [c.to_numpy() for c in batch.columns]
    after = resource.getrusage(resource.RUSAGE_SELF)
    return dict(seconds=time.perf_counter() - started, system=after.ru_stime - before.ru_stime, peak_rss_mb=peak_rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(read(spec["files"], spec["variant"])))
        return
    files = sorted(glob.glob(os.path.join(DATA, "parquet-100000000x16", "*.parquet")))[:8]
    if len(files) < 8:
        sys.exit("run benchmarks/bench_files.py --rows 1e8 first: it writes the files")
    big = single_file()
    _common.run_worker(__file__, dict(files=files + [big], variant="group"))  # into the page cache
    print("variant      4e7 rows: seconds (system s)          one 1.46 GB file: peak RSS MB")
    for variant in VARIANTS:
        runs = [_common.run_worker(__file__, dict(files=files, variant=variant)) for _ in range(args.repeats)]
        single = _common.run_worker(__file__, dict(files=[big], variant=variant))
        times = ", ".join(f"{r['seconds']:.2f} ({r['system']:.2f})" for r in runs)
        print(f"{variant:10s}   {times:40s}   {single['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()
