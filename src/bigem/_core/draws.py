"""Random numbers fixed per row: the same rows draw the same numbers however they are
split into chunks, files or partitions (as ``em.init``'s sampling keys do)."""

from __future__ import annotations

import torch
from torch import Tensor

TILE = 4096  # rows per independently seeded tile


def row_draws(seed: int, start: int, n: int, width: int) -> tuple[Tensor, Tensor]:
    """For rows start..start+n-1: one uniform in [0, 1) each (n,) and ``width`` standard
    normals each (n, width), float64 on the CPU. Each tile of :data:`TILE` rows draws from
    a generator seeded by (seed, tile)."""
    if n == 0:
        return torch.empty(0, dtype=torch.float64), torch.empty(0, width, dtype=torch.float64)
    first, last = start // TILE, (start + n - 1) // TILE
    uniforms, normals = [], []
    for t in range(first, last + 1):
        g = torch.Generator().manual_seed((seed * 1_000_003 + t) % (2**63 - 1))
        uniforms.append(torch.rand(TILE, dtype=torch.float64, generator=g))
        normals.append(torch.randn(TILE, width, dtype=torch.float64, generator=g))
    lo = start - first * TILE
    return torch.cat(uniforms)[lo : lo + n], torch.cat(normals)[lo : lo + n]
