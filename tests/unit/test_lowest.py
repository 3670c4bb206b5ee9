"""The re-seeding candidates (``Lowest``): the rows kept, and their order, depend on
the data alone, not on how they are cut into chunks, partitions or ranks, nor on the
order in which the parts merge. Discrete data tie often."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem._core.stats import Lowest, lowest_first


def _tied(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.integers(0, 4, n).astype(np.float64))  # four values: ties everywhere
    rows = torch.arange(n, dtype=torch.float64)[:, None].expand(n, 2).clone()  # a row is its own place
    return scores, rows


@pytest.mark.parametrize("n", [50, 5000, 40_000])  # a sort, two top-m, and the grouped search of long chunks
def test_a_tie_at_the_cut_goes_to_the_first_places(n):
    scores, _ = _tied(n, 0)
    for m in (1, 3, 8):
        got = set(lowest_first(scores, m).tolist())
        want = set(np.lexsort((np.arange(n), scores.numpy()))[:m].tolist())
        assert got == want


@pytest.mark.parametrize("cuts", [[600], [97] * 6 + [18], [1, 299, 300], [250, 0, 350]])
def test_any_cut_merged_in_any_order_keeps_the_rows_of_the_whole(cuts):
    scores, rows = _tied(600, 1)
    whole = Lowest.of(scores, rows, 5)
    starts = np.concatenate([[0], np.cumsum(cuts)[:-1]])
    parts = [Lowest.of(scores[s:s + c], rows[s:s + c], 5, int(s)) for s, c in zip(starts, cuts)]
    for order in (parts, parts[::-1], parts[1:] + parts[:1]):
        merged = order[0]
        for part in order[1:]:
            merged = merged + part
        assert torch.equal(merged.ordered(), whole.ordered())
    assert whole.ordered()[:, 0].tolist() == sorted(whole.places.tolist())  # the lowest value: the first places
