"""Streamed chunks reuse their arrays only once nothing views them, and stay bounded."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from bigem.sources import open_source
from bigem.sources.buffers import BufferPool


def test_an_array_returns_to_the_pool_only_when_its_last_view_is_freed():
    pool = BufferPool(keep=2)
    buf = pool.array((3, 5), np.float32)
    t = pool.lend(buf, buf[:, :4]).t()
    part = t[1:3]  # a later view of the lent tensor
    del t
    gc.collect()
    assert pool.array((3, 5), np.float32) is not buf  # `part` still views it
    del part
    assert pool.array((3, 5), np.float32) is buf
    assert pool.array((3, 5), np.float64) is not buf  # by dtype and shape


def test_a_view_lent_from_torch_memory_shares_torch_storage_and_stays_out_of_the_pool():
    """Pinned arrays are torch's (its host allocator knows which copies read them): a lent
    view must be a view of torch's own storage, with the view's offset and strides."""
    pool = BufferPool(keep=2)
    owner = torch.arange(15, dtype=torch.float32).reshape(3, 5)
    buf = owner.numpy()  # what a pinned pool hands out: memory torch owns
    lent = pool.lend(buf, buf[1:, 1:4]).t()
    assert torch.equal(lent, owner[1:, 1:4].t())
    assert lent.untyped_storage().data_ptr() == owner.untyped_storage().data_ptr()
    assert lent.stride() == (1, 5) and lent.storage_offset() == 6
    pool.give_back(buf)
    assert pool.array((3, 5), np.float32) is not buf  # torch's allocator takes it back, not the pool


def test_a_pool_for_a_cuda_device_is_pinned():
    assert BufferPool.for_device(2, torch.device("cuda")).pinned
    assert not BufferPool.for_device(2, torch.device("cpu")).pinned


def test_the_pool_keeps_at_most_keep_free_arrays_and_refuses_to_lend_the_array_itself():
    pool = BufferPool(keep=1)
    a, b = np.empty(4), np.empty(4)
    pool.give_back(a)
    pool.give_back(b)
    assert pool.array((4,), np.float64) is a
    assert pool.array((4,), np.float64) is not b
    with pytest.raises(ValueError, match="view of the pooled array"):
        pool.lend(a, a)


def _parquet(tmp_path, n=2000, d=3, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, d))
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(X, columns=list("abc")[:d])), path, row_group_size=300)
    return X, path


def _open(path, chunk_rows=256, dtype=torch.float64):
    return open_source(str(path), dtype=dtype, device=torch.device("cpu"), memory_budget=1 << 20, chunk_size=chunk_rows)


def test_a_pass_that_drops_its_chunks_reuses_arrays_and_yields_the_right_rows(tmp_path):
    X, path = _parquet(tmp_path)
    source = _open(path)
    seen = [chunk.x.clone() for chunk in source.chunks()]  # each chunk dropped once copied
    assert len(seen) == 8 and np.array_equal(torch.cat(seen).numpy(), X)
    assert source.inner._buffers.allocated <= 2  # two in turn (the loop holds one while the next is read)


def test_chunks_held_by_the_consumer_are_never_overwritten(tmp_path):
    X, path = _parquet(tmp_path)
    source = _open(path)
    held = list(source.chunks())  # as a cache holds them
    again = list(source.chunks())  # a second pass must take new arrays
    assert np.array_equal(torch.cat([c.x for c in held]).numpy(), X)
    assert np.array_equal(torch.cat([c.x for c in again]).numpy(), X)
    assert not {c.x.data_ptr() for c in held} & {c.x.data_ptr() for c in again}


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<i4", ">f4"])
def test_npy_chunks_reuse_arrays_and_keep_every_dtype_and_byte_order(tmp_path, dtype):
    X = np.random.default_rng(1).normal(size=(1000, 4)) * 100
    X = X.astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, X)
    source = _open(path, chunk_rows=128, dtype=torch.float32)
    seen = [chunk.x.clone() for chunk in source.chunks()]
    assert np.array_equal(torch.cat(seen).numpy(), X.astype(np.float32))
    # in turn two raw arrays (the loop holds one chunk while the next is read), and two
    # converted ones when the file's dtype is not float32; then the shorter last chunk's
    converted = 0 if X.dtype == np.float32 else 1
    assert source.inner._buffers.allocated <= 3 + 2 * converted


_PEAK_SCRIPT = """
import json, sys
import pyarrow as pa, torch
from bigem.sources import open_source
source = open_source(sys.argv[1], dtype=torch.float64, device=torch.device("cpu"), memory_budget=1 << 20,
                     chunk_size=100_000)
rows = sum(chunk.n_rows for chunk in source.chunks())
print(json.dumps(dict(rows=rows, peak=pa.default_memory_pool().max_memory())))
"""


def test_reading_a_parquet_file_holds_a_row_group_not_the_file(tmp_path):
    """pyarrow's default pre-buffering would hold every row group of the file at once."""
    path = tmp_path / "big.parquet"
    columns = {f"f{j}": np.random.default_rng(j).normal(size=800_000) for j in range(8)}
    pq.write_table(pa.table(columns), path, row_group_size=50_000, compression="none")  # 64 MB, 16 groups
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == 800_000
    # measured: 15 MB of pyarrow's memory pool at its peak; 75 MB when pre-buffering the file
    assert result["peak"] < 0.75 * path.stat().st_size, result
