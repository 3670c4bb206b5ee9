"""Statistics on the wire of the torch.distributed engine (``engines.wire``): the sum of
the processes' vectors decodes to the sum of their statistics, for every statistics kind.

The all-reduce is simulated here: summed vectors added in process order, every
process's gathered vector in its slot (what the engine's one all-reduce produces).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem._core.stats import Together, tree_sum
from bigem._core.types import Chunk
from bigem.em.init import SampleKeys
from bigem.engines.wire import Opaque, encode
from bigem.models.gaussian import gaussian_mixture

from .test_seams import _cases, _close

CPU = torch.device("cpu")
SPARSE = {"mixture-multinomial"}  # statistics holding SparseRows


def _over_the_wire(parts: list) -> object:
    encoded = [encode(p, CPU) for p in parts]
    assert len({e.signature for e in encoded}) == 1  # the slots line up
    assert len({e.shared for e in encoded}) == 1  # gathered under the same parameters
    summed = torch.stack([e.summed for e in encoded]).sum(0)
    return encoded[1].decode(summed, [e.gathered for e in encoded])


@pytest.mark.parametrize("name, make", _cases(), ids=[c[0] for c in _cases()])
@pytest.mark.cpu_strategy  # a GPU's counts are device tensors, its sparse candidates dense (tested below)
def test_the_wire_sum_is_the_sum_of_the_statistics(name, make):
    e_step = make(np.random.default_rng(0))
    bounds = getattr(e_step, "bounds", [0, 2, 50, 90])  # a part of 2 rows holds fewer than K candidates
    parts = [e_step(a, b) for a, b in zip(bounds, bounds[1:])]
    if name in SPARSE:  # sparse re-seeding rows do not flatten: the engine gathers the objects instead
        with pytest.raises(Opaque):
            encode(parts[0], CPU)
        return
    got = _over_the_wire(parts)
    want = tree_sum(parts)
    assert type(got) is type(want)
    _close(got, want)
    for field in ("rows", "sequences", "impossible", "first_impossible"):
        if hasattr(want, field):
            assert getattr(got, field) == getattr(want, field)
            assert type(getattr(got, field)) is int
    if hasattr(want, "worst"):  # the re-seeding candidates: the K worst rows of all
        torch.testing.assert_close(got.worst.ordered(), want.worst.ordered())
    if hasattr(want, "top"):
        torch.testing.assert_close(got.top, want.top)


def test_the_multinomials_dense_candidates_go_on_the_wire_where_reads_are_deferred(monkeypatch):
    """On a GPU (forced here) the multinomial keeps its re-seeding candidates as dense rows
    (a sparse gather would read a size back): they flatten, so its statistics take the
    all-reduce like every other kind, and decode to the sum of the parts."""
    from bigem._core import numerics
    from bigem._core.sparse import SparseRows

    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    name, make = next(c for c in _cases() if c[0] == "mixture-multinomial")
    e_step = make(np.random.default_rng(0))
    bounds = getattr(e_step, "bounds", [0, 2, 50, 90])
    parts = [e_step(a, b) for a, b in zip(bounds, bounds[1:])]
    assert not isinstance(parts[0].worst.rows, SparseRows)
    got, want = _over_the_wire(parts), tree_sum(parts)
    _close(got, want)
    torch.testing.assert_close(got.worst.ordered(), want.worst.ordered())
    monkeypatch.setattr(numerics, "defers_reads", lambda device: False)
    sparse = tree_sum([e_step(a, b) for a, b in zip(bounds, bounds[1:])])
    torch.testing.assert_close(got.worst.ordered(), sparse.worst.ordered().to_dense())


def _mixture_parts(shift: float = 0.0):
    rng = np.random.default_rng(3)
    model = gaussian_mixture(3, "full", 1e-6, torch.float64)
    x = torch.from_numpy(rng.normal(0, 3, (60, 2)))
    p = model.make_params(torch.full((3,), 1 / 3, dtype=torch.float64), x[:3] + shift,
                          torch.eye(2, dtype=torch.float64).expand(3, 2, 2))
    return [model.e_step(p, Chunk(x[a:b], None, a)) for a, b in ((0, 25), (25, 60))]


def test_runs_in_lockstep_travel_together():
    a, b = _mixture_parts(), _mixture_parts(1.0)
    parts = [Together([a[i], b[i]], [0.5, 0.25]) for i in range(2)]
    got = _over_the_wire(parts)
    assert got.seconds == [1.0, 0.5]
    for run in range(2):
        _close(got.parts[run], tree_sum([p.parts[run] for p in parts]))


def test_layouts_and_parameters_are_told_apart():
    same, other = _mixture_parts(), _mixture_parts(1.0)
    assert encode(same[0], CPU).signature == encode(other[0], CPU).signature
    assert encode(same[0], CPU).shared == encode(same[1], CPU).shared
    assert encode(same[0], CPU).shared != encode(other[0], CPU).shared  # another E-step's shift
    one, two = Together([same[0]], [0.0]), Together([same[0], other[0]], [0.0, 0.0])
    assert encode(one, CPU).signature != encode(two, CPU).signature


def test_statistics_without_tags_are_opaque():
    keys = SampleKeys.of(torch.ones(10, dtype=torch.float64), 0, 1, 3)
    with pytest.raises(Opaque):
        encode(keys, CPU)
