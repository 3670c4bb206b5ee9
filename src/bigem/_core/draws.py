"""A fit's random numbers (:class:`Draws`), and random numbers fixed per row: the same
rows draw the same numbers however they are split into chunks, files or partitions (as
``em.init``'s sampling keys do)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


class Draws(torch.Generator):
    """A fit's random numbers: a torch generator (bigem's own draws: row samples, per-row
    seeds), which also carries, as ``numpy``, a numpy ``RandomState`` when the estimator's
    ``random_state`` is an int below 2**32 (else None). The steps of a start that
    scikit-learn or hmmlearn take from ``check_random_state(random_state)`` (k-means++
    seeds, random responsibilities, Dirichlet transition rows, ...) draw from it instead,
    the same numbers in the same order: the same ``random_state`` then gives their start,
    where the data allow it (see each step). One generator object, so that every
    function that draws keeps its one argument."""

    numpy: np.random.RandomState | None
    seed_int: int | None  # the int random_state the RandomState was made from

    @classmethod
    def of(cls, seed: int, random_state: object = None) -> Draws:
        draws = cls()
        draws.manual_seed(seed)
        exact = isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
        draws.seed_int = int(random_state) if exact and 0 <= random_state < 2**32 else None
        draws.numpy = None if draws.seed_int is None else np.random.RandomState(draws.seed_int)
        return draws


def numpy_draws(generator: torch.Generator) -> np.random.RandomState | None:
    """The numpy RandomState a generator carries (:class:`Draws`), or None: one stream
    for the whole fit, as scikit-learn's estimators draw every restart's start from one."""
    return getattr(generator, "numpy", None)


def fresh_numpy(generator: torch.Generator) -> np.random.RandomState | None:
    """A new numpy RandomState from the int random_state a generator carries, or None:
    hmmlearn makes one at each step of its start (``check_random_state`` of an int, once
    for the transition probabilities, again for the emission, again for each k-means)."""
    seed = getattr(generator, "seed_int", None)
    return None if seed is None else np.random.RandomState(seed)


def fresh_draws(generator: torch.Generator) -> torch.Generator:
    """The generator itself, or, where it carries an int random_state, a :class:`Draws`
    whose RandomState is new (:func:`fresh_numpy`), for a step that hmmlearn starts from
    a new one (its torch draws continue from the generator's)."""
    seed = getattr(generator, "seed_int", None)
    if seed is None:
        return generator
    return Draws.of(int(torch.randint(2**62, (1,), generator=generator)), seed)


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
