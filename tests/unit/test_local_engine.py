"""The local engine: read-ahead in order and bounded, early stops, errors, and the core it
leaves a decoding source."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from bigem._core.errors import DataError
from bigem._core.types import Chunk
from bigem.engines import LocalEngine


class Counting:
    """A source of ``n`` one-row chunks that counts what it has produced; ``fail_at``
    raises at that chunk, as a corrupt file would."""

    n_features, feature_names, weight = 1, None, None

    def __init__(self, n: int, decodes: bool = True, fail_at: int | None = None) -> None:
        self.n_rows, self.decodes, self.fail_at = n, decodes, fail_at
        self.produced = 0
        self.changed = threading.Condition()

    def chunks(self):
        for i in range(self.n_rows):
            if i == self.fail_at:
                raise DataError(f"chunk {i} is corrupt")
            with self.changed:
                self.produced += 1
                self.changed.notify_all()
            yield Chunk(torch.full((1, 1), float(i)), None, i)

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
    assert engine.reduce(observe, Counting(3, decodes=True)).item() == 3 * (threads - 1)
    assert engine.reduce(observe, Counting(3, decodes=False)).item() == 3 * threads
    assert torch.get_num_threads() == threads


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
