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
    seeds), which also carries, as ``numpy``, the numpy ``RandomState`` scikit-learn's
    ``check_random_state`` gives for the estimator's ``random_state``: a new one for an
    int below 2**32, the caller's own for a ``RandomState`` (``shared``), numpy's global
    one for None (else None: a ``Generator``, a larger int). The steps of a start that
    scikit-learn or hmmlearn take from it (k-means++ seeds, random responsibilities,
    Dirichlet transition rows, ...) draw from it instead, the same numbers in the same
    order: the same ``random_state`` then gives their start, where the data allow it
    (see each step). One generator object, so that every function that draws keeps its
    one argument."""

    numpy: np.random.RandomState | None
    seed_int: int | None  # the int random_state the RandomState was made from
    shared: bool  # the RandomState is the caller's (or numpy's global one): it goes on

    @classmethod
    def of(cls, seed: int, random_state: object = None) -> Draws:
        draws = cls()
        draws.manual_seed(seed)
        exact = isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
        draws.seed_int = int(random_state) if exact and 0 <= random_state < 2**32 else None
        draws.shared = isinstance(random_state, np.random.RandomState)
        draws.numpy = (np.random.RandomState(draws.seed_int) if draws.seed_int is not None
                       else random_state if draws.shared else None)
        draws._digest = state_digest(random_state) if draws.shared else None
        return draws

    def settle(self) -> None:
        """Once a fit or a draw is done: where the numbers come from the caller's
        RandomState and none was taken from it (bigem's own draws did the work), take
        one, so that the next call from the same RandomState differs, as in the
        reference libraries, whose every call draws from it."""
        if self.shared and state_digest(self.numpy) == self._digest:
            self.numpy.randint(2**31 - 1)


def state_digest(rs: np.random.RandomState) -> int:
    """A 63-bit number that names a RandomState's position, read without drawing from it:
    the seed of bigem's own draws from a caller's RandomState, which must leave its
    numbers to the steps that reproduce the reference library's draws."""
    import hashlib

    name, keys, pos, has_gauss, gauss = rs.get_state()
    blob = np.asarray(keys, dtype=np.uint32).tobytes() + np.array([pos, has_gauss], dtype=np.int64).tobytes()
    blob += np.array([gauss], dtype=np.float64).tobytes()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") & ((1 << 63) - 1)


def numpy_draws(generator: torch.Generator) -> np.random.RandomState | None:
    """The numpy RandomState a generator carries (:class:`Draws`), or None: one stream
    for the whole fit, as scikit-learn's estimators draw every restart's start from one."""
    return getattr(generator, "numpy", None)


def fresh_numpy(generator: torch.Generator) -> np.random.RandomState | None:
    """A new numpy RandomState from the int random_state a generator carries, the caller's
    own RandomState (which goes on), or None: hmmlearn calls ``check_random_state`` at
    each step of its start (once for the transition probabilities, again for the
    emission, again for each k-means), which makes a new one of an int and returns a
    RandomState as it is."""
    seed = getattr(generator, "seed_int", None)
    if seed is None:
        return generator.numpy if getattr(generator, "shared", False) else None
    return np.random.RandomState(seed)


def fresh_draws(generator: torch.Generator) -> torch.Generator:
    """The generator itself, or, where it carries an int random_state, a :class:`Draws`
    whose RandomState is new (:func:`fresh_numpy`), for a step that hmmlearn starts from
    a new one (its torch draws continue from the generator's)."""
    seed = getattr(generator, "seed_int", None)
    if seed is None:  # a shared RandomState goes on as it is; bigem's own draws too
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
