"""Random numbers fixed per row: the same rows draw the same numbers however they are
split into chunks, files or partitions (as ``em.init``'s sampling keys do)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

TILE = 4096  # rows per independently seeded tile


def _tiled(seed: int, start: int, n: int, draw: Callable[[torch.Generator], Tensor]) -> list[Tensor]:
    """``draw(generator)`` for each tile of :data:`TILE` rows that rows start..start+n-1
    touch, in order, the generator seeded by (seed, tile) (row ``start`` is at
    ``start % TILE`` in the first)."""
    first, last = start // TILE, (start + n - 1) // TILE
    out = []
    for t in range(first, last + 1):
        g = torch.Generator().manual_seed((seed * 1_000_003 + t) % (2**63 - 1))
        out.append(draw(g))
    return out


def row_draws(seed: int, start: int, n: int, width: int) -> tuple[Tensor, Tensor]:
    """For rows start..start+n-1: one uniform in [0, 1) each (n,) and ``width`` standard
    normals each (n, width), float64 on the CPU. Each tile of :data:`TILE` rows draws from
    a generator seeded by (seed, tile)."""
    if n == 0:
        return torch.empty(0, dtype=torch.float64), torch.empty(0, width, dtype=torch.float64)

    def draw(g):
        return torch.rand(TILE, dtype=torch.float64, generator=g), torch.randn(TILE, width, dtype=torch.float64, generator=g)

    tiles = _tiled(seed, start, n, draw)
    lo = start % TILE
    return torch.cat([u for u, _ in tiles])[lo : lo + n], torch.cat([z for _, z in tiles])[lo : lo + n]


def row_uniforms(seed: int, start: int, n: int, width: int) -> Tensor:
    """``width`` uniforms in [0, 1) for each of rows start..start+n-1, (n, width) float64
    on the CPU, tiled and seeded as :func:`row_draws` (another stream of numbers)."""
    if n == 0:
        return torch.empty(0, width, dtype=torch.float64)
    tiles = _tiled(seed, start, n, lambda g: torch.rand(TILE, width, dtype=torch.float64, generator=g))
    lo = start % TILE
    return torch.cat(tiles)[lo : lo + n]
