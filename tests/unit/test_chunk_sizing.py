"""Chunk sizes measured on a GPU (memory_budget='auto'): the chunk rows follow the
peak a task really allocates per row and the device's free memory. The CUDA memory
queries are replaced here by a model of an allocator, so these run on the CPU; the real
measurement is tested in test_cuda_streaming.py (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from bigem._core.chunking import MeasuredChunks
from bigem._core.errors import ParameterError
from bigem._core.protocols import Task
from bigem.engines import LocalEngine
from bigem.engines.sizing import MIN_ROWS, rounded
from bigem.sources import TensorSource

CUDA = torch.device("cuda")
D = 4
MB = 1 << 20


class FakeDevice:
    """torch.cuda's memory queries, answered from what the tasks say they allocate."""

    def __init__(self, free: int, reserved: int = 0, allocated: int = 0) -> None:
        self.free, self.reserved, self.allocated = free, reserved, allocated
        self.peak = allocated

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (self.free, 1 << 40))
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: self.reserved)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: self.peak)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: setattr(self, "peak", self.allocated))

    def allocate(self, nbytes: float) -> None:
        self.peak = max(self.peak, self.allocated + int(nbytes))


class Kernel:
    """A model whose E-step allocates ``fixed + per_row * n + blocked * min(n, block)``
    bytes on a chunk of n rows (its kernels' scratch stops growing at ``block`` rows),
    and returns the chunk's row count (a sum over the pass)."""

    def __init__(self, device: FakeDevice, per_row: float, fixed: float = 0, blocked: float = 0,
                 block: int = 1 << 30) -> None:
        self.device, self.per_row, self.fixed, self.blocked, self.block = device, per_row, fixed, blocked, block
        self.seen: list[int] = []

    def peak(self, n: int) -> float:
        return self.fixed + self.per_row * n + self.blocked * min(n, self.block)

    def e_step(self, chunk) -> int:
        self.device.allocate(self.peak(chunk.n_rows))
        self.seen.append(chunk.n_rows)
        return chunk.n_rows


def _source(n_rows: int, copies: int = 0, host_rows: int | None = None, weighted: bool = False) -> TensorSource:
    x = torch.ones(1, D).expand(n_rows, D)  # the fake kernel reads no value: a view of one row
    w = torch.ones(1, dtype=torch.float64).expand(n_rows) if weighted else None
    source = TensorSource(x, w, 4096)
    source.measure_chunks = MeasuredChunks(CUDA, host_rows, copies)
    return source


def _run(kernel: Kernel, source) -> int:
    """One pass; returns the chunk rows it ran with, after checking that it covered every row."""
    kernel.seen.clear()
    assert LocalEngine(prefetch=False).reduce(Task(kernel, "e_step"), source) == source.n_rows  # probes add nothing
    passed = kernel.seen[len(kernel.seen) - len(range(0, source.n_rows, source.chunk_rows)):]
    assert sum(passed) == source.n_rows and max(passed) == source.chunk_rows
    return source.chunk_rows


def test_chunk_rows_follow_the_measured_peak_per_row(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    rows = _run(Kernel(device, per_row=200), _source(10_000_000))
    budget = 0.5 * 1000 * MB
    assert rows == rounded(budget / 200)
    assert budget / 200 * 7 / 8 <= rows <= budget / 200  # three significant bits: at most 1/8 lost
    # twice the bytes per row: half the rows
    rows = _run(Kernel(device, per_row=400), _source(10_000_000))
    assert rows == rounded(budget / 400)


def test_chunk_rows_follow_the_free_memory(monkeypatch):
    found = []
    for free in (400 * MB, 1600 * MB):
        device = FakeDevice(free=free)
        device.install(monkeypatch)
        found.append(_run(Kernel(device, per_row=100, fixed=8 * MB), _source(50_000_000)))
    assert found[0] == rounded((0.5 * 400 * MB - 8 * MB) / 100)
    assert found[1] == rounded((0.5 * 1600 * MB - 8 * MB) / 100)
    # memory torch's allocator holds unused counts as free; memory in use does not
    device = FakeDevice(free=200 * MB, reserved=300 * MB, allocated=100 * MB)
    device.install(monkeypatch)
    assert _run(Kernel(device, per_row=100, fixed=8 * MB), _source(50_000_000)) == found[0]


def test_the_peak_of_a_real_chunk_stays_within_the_budget_when_the_kernels_block(monkeypatch):
    """The scratch of blocked kernels stops growing: the line through two probes bounds
    the peak from above, and the probes grow until they are close to the chunk."""
    device = FakeDevice(free=2000 * MB)
    device.install(monkeypatch)
    kernel = Kernel(device, per_row=24, fixed=2 * MB, blocked=1024, block=1 << 16)
    rows = _run(kernel, _source(40_000_000))
    budget = 0.5 * 2000 * MB
    assert kernel.peak(rows) <= budget
    best = (budget - kernel.fixed - kernel.blocked * kernel.block) / kernel.per_row  # the most rows that fit
    assert rows >= best / 4  # and not far below it (a probe at one block's rows alone would give ~1/40)
    assert max(kernel.seen[:-1]) <= rows  # no probe larger than the chunk chosen


def test_chunks_copied_ahead_count_with_their_rows(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    source = _source(10_000_000, copies=6, weighted=True)
    rows = _run(Kernel(device, per_row=100), source)
    row_bytes = D * 4 + 8  # float32 values and a float64 weight
    assert rows == rounded(0.5 * 1000 * MB / (100 + 6 * row_bytes))


def test_the_host_budget_and_the_data_bound_the_chunk(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    assert _run(Kernel(device, per_row=100), _source(10_000_000, host_rows=300_000)) == 300_000
    assert _run(Kernel(device, per_row=100), _source(50_000)) == 50_000  # one chunk: all the rows
    device.free = 1 * MB  # less than any chunk needs: the smallest chunk, never zero rows
    assert _run(Kernel(device, per_row=1000, fixed=4 * MB), _source(1_000_000)) == MIN_ROWS


def test_a_kind_of_task_is_measured_once_and_the_hungriest_kind_sets_the_chunk(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    source = _source(10_000_000)
    light, heavy = Kernel(device, per_row=50), Kernel(device, per_row=500)
    first = _run(light, source)
    _run(light, source)
    assert len(light.seen) == len(range(0, source.n_rows, first))  # no probe the second time
    second = _run(heavy, source)
    assert second == rounded(0.5 * 1000 * MB / 500) < first
    assert _run(light, source) == second  # the chunks stay within the hungriest task's peak


def test_the_probe_runs_the_task_itself_not_its_wrappers(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    kernel = Kernel(device, per_row=100)
    counted = []

    class Counted:  # a progress bar's counter (estimators._progress)
        def __init__(self, task):
            self.__wrapped__ = task

        def __call__(self, chunk):
            counted.append(chunk.n_rows)
            return self.__wrapped__(chunk)

    source = _source(10_000_000)
    LocalEngine(prefetch=False).reduce(Counted(Task(kernel, "e_step")), source)
    assert sum(counted) == source.n_rows  # the probes moved no bar


def test_small_changes_of_free_memory_give_the_same_chunks(monkeypatch):
    found = set()
    for free in (1100 * MB, 1120 * MB, 1090 * MB):  # within one rounding step
        device = FakeDevice(free=free)
        device.install(monkeypatch)
        found.add(_run(Kernel(device, per_row=100), _source(10_000_000)))
    assert len(found) == 1


def test_a_source_that_does_not_ask_is_not_measured(monkeypatch):
    device = FakeDevice(free=1000 * MB)
    device.install(monkeypatch)
    source = _source(100_000)
    del source.measure_chunks
    kernel = Kernel(device, per_row=100)
    LocalEngine(prefetch=False).reduce(Task(kernel, "e_step"), source)
    assert kernel.seen == [4096] * 24 + [100_000 - 24 * 4096]


def test_auto_is_the_default_and_on_the_cpu_it_is_256mb():
    X = np.random.default_rng(0).normal(size=(3000, 3))
    auto = GaussianMixture(2, random_state=0).fit(X)
    fixed = GaussianMixture(2, random_state=0, memory_budget="256MB").fit(X)
    assert GaussianMixture().get_params()["memory_budget"] == "auto"
    from bigem.sources import open_source

    opened = [open_source(np.zeros((10, D)), dtype=torch.float32, device=torch.device("cpu"), memory_budget=budget)
              for budget in ("auto", 256 * 10**6)]
    assert opened[0].chunk_rows == opened[1].chunk_rows and not hasattr(opened[0], "measure_chunks")
    np.testing.assert_array_equal(auto.means_, fixed.means_)
    assert auto.lower_bound_ == fixed.lower_bound_


def test_a_bad_memory_budget_names_auto():
    with pytest.raises(ParameterError, match=r"a string like '256MB' or '2GiB', or 'auto'\. Got 'automatic' instead"):
        GaussianMixture(memory_budget="automatic").fit(np.zeros((10, 2)))
