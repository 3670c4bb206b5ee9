"""Streaming files to a GPU: pinned buffers and copies overlapped on a stream of their own
give the very statistics of the plain path, with no host synchronisation per chunk.
Skipped where no GPU is present."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from bigem._core.errors import DataError
from bigem._core.protocols import Task
from bigem.engines import LocalEngine, local
from bigem.models.gaussian import gaussian_mixture
from bigem.sources import open_source
from bigem.sources.buffers import BufferPool

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = torch.device("cuda")
K, D = 3, 4


def _files(tmp_path, n: int = 6000) -> dict[str, str]:
    rng = np.random.default_rng(0)
    X = rng.normal(0, 3, (n, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    pq.write_table(pa.table({f"f{j}": X[:, j] for j in range(D)}), tmp_path / "x.parquet", row_group_size=1000)
    return {"npy": str(tmp_path / "x.npy"), "parquet": str(tmp_path / "x.parquet")}


def _e_step():
    model = gaussian_mixture(K, "full", 1e-6, torch.float32)
    rng = np.random.default_rng(1)
    params = model.make_params(torch.full((K,), 1 / K, dtype=torch.float64),
                               torch.from_numpy(rng.normal(0, 3, (K, D))),
                               torch.eye(D, dtype=torch.float64).expand(K, D, D))
    return Task(model, "e_step", (params.to(CUDA),))


def _open(path: str, chunk_size: int):
    return open_source(path, dtype=torch.float32, device=CUDA, memory_budget=1 << 30, chunk_size=chunk_size)


def _pool(source) -> BufferPool:
    while not hasattr(source, "_buffers"):
        source = source.inner
    return source._buffers


def _plain(monkeypatch) -> None:
    """bigem's path before pinned streaming: pageable buffers, copies on the E-step's stream."""
    monkeypatch.setattr(BufferPool, "for_device", classmethod(lambda cls, keep, device: cls(keep)))
    monkeypatch.setattr(local, "_cuda_device", lambda source: None)


def _assert_identical(a, b, name: str = "stats") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a.cpu(), b.cpu()), name
    elif hasattr(a, "__dataclass_fields__"):
        for field in a.__dataclass_fields__:
            _assert_identical(getattr(a, field), getattr(b, field), f"{name}.{field}")
    else:
        assert a == b, name


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_pinned_overlapped_streaming_gives_the_plain_paths_statistics_bit_for_bit(kind, tmp_path, monkeypatch):
    path = _files(tmp_path)[kind]
    task = _e_step()
    source = _open(path, 700)
    assert _pool(source).pinned
    first = next(iter(source.chunks()))
    assert first.x.is_cuda
    fast = [LocalEngine().reduce(task, source) for _ in range(2)]  # the checking pass, then a plain one
    with monkeypatch.context() as m:
        _plain(m)
        plain_source = _open(path, 700)
        assert not _pool(plain_source).pinned
        plain = LocalEngine(prefetch=False).reduce(task, plain_source)
    for stats in fast:
        _assert_identical(stats, plain)


def _syncs(fn) -> int:
    """Host synchronisations ``fn()`` caused, counted by torch's sync debug mode."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_no_host_synchronisation_per_chunk(kind, tmp_path):
    """A pass of 60 chunks synchronises no more often than a pass of 6: the copies wait
    on events, and the finiteness checks are read back once a pass."""
    path = _files(tmp_path)[kind]
    counts = []
    for rows in (1000, 100):
        task, source = _e_step(), _open(path, rows)
        counts.append(_syncs(lambda: [LocalEngine().reduce(task, source) for _ in range(2)]))
    assert counts[1] == counts[0]


def test_a_nan_streamed_to_the_gpu_is_found_at_the_end_of_the_pass_with_its_row(tmp_path):
    X = np.random.default_rng(2).normal(size=(5000, D)).astype(np.float32)
    X[3333, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    source = _open(str(tmp_path / "nan.npy"), 400)
    with pytest.raises(DataError, match=r"contains NaN\. \(1 NaN; first at row 3333, column 1\)"):
        LocalEngine().reduce(_e_step(), source)


# ---------------------------------------------------------------- measured chunks, inference

def test_auto_chunks_are_measured_and_keep_the_e_steps_peak_within_the_budget():
    """memory_budget='auto' on the GPU: the chunk rows come from the E-step's measured
    peak; a chunk of those rows peaks within the budget, and the statistics agree with
    fixed chunks to rounding."""
    from bigem.engines import sizing

    rng = np.random.default_rng(4)
    X = torch.from_numpy(rng.normal(0, 3, (2_000_000, D)).astype(np.float32)).to(CUDA)
    source = open_source(X, dtype=torch.float32, device=CUDA, memory_budget="auto")
    plan = source.measure_chunks
    plan.fraction = (64 << 20) / sizing.available_bytes(CUDA)  # a 64 MB budget: several chunks
    budget = plan.fraction * sizing.available_bytes(CUDA)
    task = _e_step()
    stats = LocalEngine().reduce(task, source)
    rows = source.chunk_rows
    assert sizing.MIN_ROWS <= rows < X.shape[0] and len(plan.rows) == 1
    chunk = next(iter(source.chunks()))
    assert chunk.n_rows == rows
    before = torch.cuda.memory_allocated(CUDA)
    torch.cuda.reset_peak_memory_stats(CUDA)
    task(chunk)
    assert torch.cuda.max_memory_allocated(CUDA) - before <= budget
    fixed = LocalEngine().reduce(task, open_source(X, dtype=torch.float32, device=CUDA, memory_budget="256MB"))
    assert float(stats.loglik) == pytest.approx(float(fixed.loglik), rel=1e-6)


def test_auto_fit_equals_a_fit_with_fixed_chunks_to_rounding():
    from bigem import GaussianMixture

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0, 1, (300_000, D)), rng.normal(5, 1, (300_000, D))])
    kw = dict(max_iter=20, random_state=0, dtype="float64", device="cuda")
    auto = GaussianMixture(2, **kw).fit(X)
    fixed = GaussianMixture(2, chunk_size=70_000, **kw).fit(X)
    np.testing.assert_allclose(auto.means_, fixed.means_, rtol=1e-9, atol=1e-9)
    assert auto.lower_bound_ == pytest.approx(fixed.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("method", ["score", "predict", "predict_proba", "score_samples"])
def test_inference_synchronises_no_more_for_60_chunks_than_for_6(method):
    """Scores stay on the device until the pass ends; per-row outputs come back in groups
    (engines.readback), not once a chunk."""
    from bigem import GaussianMixture

    rng = np.random.default_rng(6)
    X = torch.from_numpy(rng.normal(0, 3, (6000, D)).astype(np.float32)).to(CUDA)
    gm = GaussianMixture(K, max_iter=5, tol=0, random_state=0, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    counts, answers = [], []
    for rows in (1000, 100):
        gm.set_params(chunk_size=rows)
        getattr(gm, method)(X)
        counts.append(_syncs(lambda: answers.append(getattr(gm, method)(X))))
    assert counts[1] == counts[0]
    np.testing.assert_allclose(answers[0], answers[1], rtol=1e-5)
