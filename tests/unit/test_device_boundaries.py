"""What only a GPU would show, checked on the CPU: where a computation crosses between
the host and the device, and what the engine's copy stream must know about a chunk.

No GPU runs these. :class:`OnDevice` stands for a CUDA tensor: converting it to numpy,
or combining it with a host tensor of more than zero dimensions, raises as CUDA does,
and ``.cpu()``/``.to("cpu")`` bring it back to the host.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bigem
from bigem._core.sparse import SparseRows
from bigem._core.types import Chunk
from bigem.engines.local import _tensors


class OnDevice(torch.Tensor):
    """A tensor that behaves as if it lived on a GPU, where the host cannot read it."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        to_host = func is torch.Tensor.cpu or (func is torch.Tensor.to and any(
            isinstance(a, (str, torch.device)) and torch.device(a).type == "cpu"
            for a in [*args[1:], *kwargs.values()]))
        if to_host:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(torch.Tensor)
        if func in (torch.Tensor.numpy, torch.Tensor.__array__):
            raise TypeError("can't convert cuda:0 device type tensor to numpy (OnDevice)")
        flat = [*args, *kwargs.values()]
        flat += [b for a in flat if isinstance(a, (list, tuple)) for b in a]
        mixed = any(type(a) is OnDevice for a in flat) and any(
            type(a) is torch.Tensor and a.dim() > 0 for a in flat)
        if mixed and func not in (torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.to):
            raise RuntimeError("Expected all tensors to be on the same device (OnDevice)")
        return super().__torch_function__(func, types, args, kwargs)


def test_the_stand_in_fails_as_a_gpu_tensor_does():
    t = torch.ones(3).as_subclass(OnDevice)
    with pytest.raises(TypeError):
        t.numpy()
    with pytest.raises(RuntimeError):
        t + torch.ones(3)
    assert type(t.cpu().numpy()) is np.ndarray


@pytest.fixture
def summaries_on_the_device(monkeypatch):
    """The rows' summary (an engine's reduce over chunks on the compute device) comes
    back marked as device tensors."""
    from bigem.models import summary

    original = summary.Summariser.summarise

    def summarise(self, chunk):
        r = original(self, chunk)
        return summary.RowSummary(*(v.as_subclass(OnDevice) for v in (r.sum_x, r.scatter, r.seen, r.top, r.totals)),
                                  r.rows, r.probe)

    monkeypatch.setattr(summary.Summariser, "summarise", summarise)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("family", ["gaussian", "gmm", "poisson"])
def test_hmm_starts_read_the_rows_summary_on_the_host(summaries_on_the_device, family):
    # GaussianHMM's and GMMHMM's "c" start called .numpy() on the summary's covariance, and
    # PoissonHMM's "l" start added a device vector to the host probe: both raise on a GPU
    rng = np.random.default_rng(3)
    if family == "poisson":
        model, X = bigem.PoissonHMM(3, n_iter=2, random_state=0), rng.poisson(4, (600, 2))
    elif family == "gmm":
        model, X = bigem.GMMHMM(3, n_mix=2, n_iter=2, random_state=0), rng.normal(size=(600, 2))
    else:
        model, X = bigem.GaussianHMM(3, n_iter=2, random_state=0), rng.normal(size=(600, 2))
    model.fit(X, [300, 300])
    assert np.isfinite(model.score(X, [300, 300]))


def test_every_tensor_of_a_sparse_chunk_is_marked_for_the_compute_stream():
    # the copy stream allocates a sparse chunk's three arrays too: unmarked, the allocator
    # could hand their memory to the next chunk's copy while the E-step still reads them
    rows = SparseRows(torch.tensor([0, 1, 2]), torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), 2)
    weight = torch.ones(2)
    chunk = Chunk(rows, weight, 0, label=torch.zeros(2, dtype=torch.int64))
    found = {id(t) for t in _tensors(chunk)}
    assert {id(rows.indptr), id(rows.indices), id(rows.values), id(weight), id(chunk.label)} <= found


def test_a_group_the_caller_started_still_puts_each_process_on_its_own_gpu(monkeypatch):
    # torch's object collectives (the error relay, opaque statistics) use the current CUDA
    # device: without set_device every rank would use cuda:0
    import torch.distributed as dist

    from bigem.engines import distributed

    chosen = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(distributed, "_group_timeout", lambda wire: 60.0)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    with distributed.session(torch.device("cuda:1")) as engine:
        assert engine.device == torch.device("cuda:1")
    assert chosen == [torch.device("cuda:1")]
