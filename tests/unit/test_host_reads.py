"""The fit's E-step reads nothing back to the host once a chunk.

On a GPU every read-back (``bool(t)``, ``float(t)``, ``t.item()``, ...) waits for the
device to finish, so a per-chunk read stalls the overlapped copies. The property does
not depend on the device: counted here on CPU by wrapping Tensor's read-back methods,
a pass over 60 chunks reads back exactly as often as a pass over 6 (none), and what
the pass found (a row no component explains) is still raised, once, with its row.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from bigem._core.errors import NumericalError
from bigem._core.stats import tree_sum
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture

K, D, N = 3, 4, 6000
READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu")


@contextlib.contextmanager
def counting_reads():
    """Count calls of Tensor's read-back methods inside the block."""
    counts = {"n": 0}
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(original):
        def counted(self, *args, **kwargs):
            counts["n"] += 1
            return original(self, *args, **kwargs)
        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _model_and_params(covariance_type: str):
    rng = np.random.default_rng(1)
    model = gaussian_mixture(K, covariance_type, 1e-6, torch.float32)
    means = torch.from_numpy(rng.normal(0, 3, (K, D)))
    cov = {"full": torch.eye(D, dtype=torch.float64).expand(K, D, D),
           "tied": torch.eye(D, dtype=torch.float64),
           "diag": torch.ones(K, D, dtype=torch.float64),
           "spherical": torch.ones(K, dtype=torch.float64)}[covariance_type]
    return model, model.make_params(torch.full((K,), 1 / K, dtype=torch.float64), means, cov)


def _chunks(x: torch.Tensor, rows: int, weights: torch.Tensor | None) -> list[Chunk]:
    return [Chunk(x[s : s + rows], None if weights is None else weights[s : s + rows], s)
            for s in range(0, N, rows)]


def _data(weighted: bool):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0, 3, (N, D)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(0.5, 2.0, N)) if weighted else None
    return x, w


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_a_pass_reads_back_nothing_per_chunk(covariance_type, weighted):
    model, params = _model_and_params(covariance_type)
    x, w = _data(weighted)
    reads, totals = [], []
    for rows in (1000, 100):
        chunks = _chunks(x, rows, w)
        model.e_step(params, chunks[0])  # buffers and the prepared parameters exist before counting
        with counting_reads() as counts:
            stats = tree_sum(model.e_step(params, chunk) for chunk in chunks)
        reads.append(counts["n"])
        totals.append(model.objective(stats).total)
    assert reads == [0, 0]
    assert totals[0] == pytest.approx(totals[1], rel=1e-6)  # the same pass, whatever the chunking


def test_a_row_no_component_explains_is_raised_once_a_pass_with_its_row():
    model, params = _model_and_params("full")
    x, _ = _data(False)
    x[4321] = 1e30  # float32 log-densities of every component underflow to -inf
    stats = tree_sum(model.e_step(params, chunk) for chunk in _chunks(x, 1000, None))
    assert int(stats.unexplained) == 4321
    with pytest.raises(NumericalError, match=r"row 4321 of X has zero density under every component"):
        model.objective(stats)
    with pytest.raises(NumericalError, match=r"row 4321 of X"):
        model.m_step(stats, params)
