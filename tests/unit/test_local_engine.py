"""The local engine: read-ahead in order and bounded, early stops, errors, and the core it
leaves a decoding source."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from bigem._core import parallel
from bigem._core.errors import DataError
from bigem._core.types import Chunk
from bigem.engines import LocalEngine


class Counting:
    """A source of ``n`` one-row chunks of ``width`` values that counts what it has
    produced; ``fail_at`` raises at that chunk, as a corrupt file would."""

    feature_names, weight = None, None

    def __init__(self, n: int, decodes: bool = True, fail_at: int | None = None, width: int = 1) -> None:
        self.n_rows, self.decodes, self.fail_at, self.n_features = n, decodes, fail_at, width
        self.produced = 0
        self.changed = threading.Condition()

    def chunks(self):
        for i in range(self.n_rows):
            if i == self.fail_at:
                raise DataError(f"chunk {i} is corrupt")
            with self.changed:
                self.produced += 1
                self.changed.notify_all()
            yield Chunk(torch.full((1, self.n_features), float(i)), None, i)

    def wait_for(self, produced: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.produced >= produced, timeout=10)


@pytest.mark.parametrize("read_ahead", [1, 4])
def test_read_ahead_yields_every_chunk_in_order_and_stays_bounded(read_ahead):
    source = Counting(30)
    seen = []
    for i, chunk in enumerate(LocalEngine(read_ahead=read_ahead).stream(source)):
        seen.append(int(chunk.row_start))
        # the worker reads ahead while this chunk "computes", but never further than asked
        source.wait_for(min(30, i + 1 + read_ahead))
        time.sleep(0.002)
        assert source.produced <= i + 1 + read_ahead
    assert seen == list(range(30))


@pytest.mark.parametrize("decodes", [True, False])
def test_only_a_decoding_source_is_read_ahead_on_a_thread(decodes):
    """Rows in memory have nothing to read ahead: no thread is started for them."""
    threads = []
    source = Counting(5, decodes=decodes)
    for chunk in LocalEngine(read_ahead=4).stream(source):
        threads.append({t.name.split("_")[0] for t in threading.enumerate()})
        assert source.produced >= int(chunk.row_start) + 1
    reading = ["bigem-prefetch" in names for names in threads]
    assert reading == [decodes] * 5


def test_stopping_early_stops_the_reads():
    source = Counting(1000)
    stream = LocalEngine(read_ahead=4).stream(source)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()  # what a for loop's owner does when it stops (and CPython does on release)
    produced = source.produced
    time.sleep(0.05)
    assert produced == source.produced <= 3 + 4


def test_a_read_error_arrives_after_the_chunks_before_it():
    seen = []
    with pytest.raises(DataError, match="chunk 3 is corrupt"):
        for chunk in LocalEngine(read_ahead=4).stream(Counting(10, fail_at=3)):
            seen.append(int(chunk.row_start))
    assert seen == [0, 1, 2]


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs two intra-op threads to leave one to the decoder")
@pytest.mark.parametrize("prefetch", [True, False])
def test_reduce_computes_beside_a_decoding_source_on_one_thread_fewer(prefetch):
    threads = torch.get_num_threads()
    engine = LocalEngine(prefetch=prefetch)

    def observe(chunk):
        return torch.tensor([float(torch.get_num_threads())])

    # the same count with and without prefetch, so serial and overlapped runs compute alike
    big = parallel.SMALL_WORK + 1
    assert engine.reduce(observe, Counting(3, decodes=True, width=big)).item() == 3 * (threads - 1)
    assert engine.reduce(observe, Counting(3, decodes=False, width=big)).item() == 3 * threads
    # a small chunk (a few rows to predict) computes on one thread, whatever the source
    assert engine.reduce(observe, Counting(3, decodes=False)).item() == 3
    assert [int(t.item()) for t in engine.map(observe, Counting(2, decodes=False))] == [1, 1]
    assert engine.map(observe, Counting(1, decodes=False, width=big))[0].item() == threads
    assert torch.get_num_threads() == threads


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs two intra-op threads to give one up")
@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_a_fit_on_small_data_computes_on_one_thread_and_restores_the_count(monkeypatch):
    """The whole fit (starts, passes, M-steps, the callback) of rows x features up to
    SMALL_WORK runs on one torch thread; a larger one reads and computes its passes on
    every thread, and so does its callback, its M-steps (two components' parameters) on
    one; the count comes back after. A GaussianHMM's fit follows the same rule."""
    import numpy as np

    from bigem import GaussianHMM, GaussianMixture
    from bigem.models.mixture import MixtureModel

    threads = torch.get_num_threads()
    reading, stepping, calling = [], [], []
    stream, m_step = LocalEngine.stream, MixtureModel.m_step

    def counted(self, source):  # the engine's passes (opening X validates it before the fit)
        for chunk in stream(self, source):
            reading.append(torch.get_num_threads())
            yield chunk

    def step(self, *args, **kw):
        stepping.append(torch.get_num_threads())
        return m_step(self, *args, **kw)

    monkeypatch.setattr(LocalEngine, "stream", counted)
    monkeypatch.setattr(MixtureModel, "m_step", step)

    def fit(make, n):
        reading.clear(), stepping.clear(), calling.clear()
        X = np.random.default_rng(0).normal(size=(n, 2))
        make().fit(X, callback=lambda i: calling.append(torch.get_num_threads()))
        assert torch.get_num_threads() == threads
        return set(reading), set(stepping[-2:]), set(calling)  # the last two M-steps: the iterations' (not a start's)

    def mixture():
        return GaussianMixture(2, max_iter=2, random_state=0)

    assert fit(mixture, 200) == ({1}, {1}, {1})
    assert fit(mixture, parallel.SMALL_WORK // 2 + 1) == ({threads}, {1}, {threads})
    assert fit(lambda: GaussianHMM(2, n_iter=2, random_state=0), 200)[2] == {1}
    assert fit(lambda: GaussianHMM(2, n_iter=2, random_state=0), parallel.SMALL_WORK // 2 + 1)[2] == {threads}


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs two intra-op threads to leave one to the decoder")
def test_an_error_in_the_computation_restores_the_threads_and_stops_the_reads():
    threads = torch.get_num_threads()
    source = Counting(1000)

    def fail(chunk):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        LocalEngine().reduce(fail, source)
    assert torch.get_num_threads() == threads
    produced = source.produced
    time.sleep(0.05)
    assert produced == source.produced <= 1 + 4
