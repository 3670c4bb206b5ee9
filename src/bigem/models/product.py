"""A product of components over blocks of columns: mixed-type data. Math only.

Each part is a component (Gaussian, categorical, Bernoulli, Poisson) over some of the
row's columns; within a mixture component the blocks are independent (local
independence, as in latent class and latent profile analysis), so

    log p_k(x) = sum_b log p_kb(x[:, columns_b]),

the statistics are the parts' statistics side by side, and each part's M-step reads its
own. A product is itself a component (``components.Component``), so a mixture or an
HMM takes it as it takes any other; it adds no arithmetic of its own but the sum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._core.numerics import squared_distances
from .gaps import observed_distances


@dataclass(frozen=True, slots=True)
class Part:
    """One block: a ``name`` (its parameters' prefix in files), its component, and the
    columns of the row it models (indices, in its own order)."""

    name: str
    component: Any
    columns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProductParams:
    """parts: each block's parameters, in the order of the product's parts."""

    parts: tuple

    @property
    def n_components(self) -> int:
        return int(self.parts[0].n_components)

    def to(self, device: torch.device | str) -> ProductParams:
        return ProductParams(tuple(p.to(device) for p in self.parts))


@dataclass(frozen=True, slots=True)
class ProductStats:
    """n_k (K,): responsibility mass; parts: each block's statistics. Additive part by part."""

    n_k: Tensor
    parts: tuple

    # how each field combines, for engines that ship statistics (engines.wire): both summed,
    # the parts element by element
    combining = (("n_k", "sum"), ("parts", "sum"))

    def __add__(self, other: ProductStats) -> ProductStats:
        return ProductStats(self.n_k + other.n_k, tuple(a + b for a, b in zip(self.parts, other.parts)))

    def scale(self, factor: float) -> ProductStats:
        return ProductStats(self.n_k * factor, tuple(p.scale(factor) for p in self.parts))

    def to(self, device: torch.device | str) -> ProductStats:
        return ProductStats(self.n_k.to(device), tuple(p.to(device) for p in self.parts))

    def rebase(self, like: ProductStats) -> ProductStats:
        return ProductStats(self.n_k, tuple(p.rebase(q) for p, q in zip(self.parts, like.parts)))


@dataclass(frozen=True, slots=True)
class _Prepared:
    parts: tuple
    zeros: tuple  # each part's (K,) zero log-weights, in its dtype
    centres: Tensor  # (K, E) the centres in the (scaled) embedding, for nearest-centre assignment
    dtype: torch.dtype

    @property
    def n_components(self) -> int:
        return int(self.centres.shape[0])


@dataclass(slots=True)
class _Block:
    x: Tensor  # the block's rows, every column
    parts: tuple  # each part's block of its columns


class _Sums:
    def __init__(self, component: ProductComponent, p: _Prepared) -> None:
        self.accs = [part.component.accumulator(pp) for part, pp in zip(component.parts, p.parts)]
        self.dtypes = [pp.dtype for pp in p.parts]

    def add(self, block: _Block, rw: Tensor, w: Tensor | None) -> None:
        for acc, b, dt in zip(self.accs, block.parts, self.dtypes):
            acc.add(b, rw.to(dt), None if w is None else w.to(dt))

    def result(self) -> ProductStats:
        parts = tuple(acc.result() for acc in self.accs)
        return ProductStats(parts[0].n_k, parts)


class ProductComponent:
    """K products of the ``parts``' distributions, each over its own columns.

    ``dtype``: the compute dtype of the log-densities' sum; ``scale``: the spread of
    each column of the k-means embedding (the parts' ``embed`` side by side), by which
    initialisation divides so that no block dominates the distances (None: 1).
    """

    translatable = False  # only the Gaussian columns are positions; their kernel centres them itself

    def __init__(self, parts: Sequence[Part], dtype: torch.dtype = torch.float64, *, scale: Tensor | None = None,
                 advice: str = "check the data") -> None:
        names = [p.name for p in parts]
        if len(set(names)) != len(names) or not parts:
            raise ValueError(f"a product needs parts with distinct names; got {names}")
        self.parts = tuple(parts)
        self.dtype = dtype
        self.advice = advice
        self.letters = "".join(sorted({c for p in parts for c in p.component.letters}))
        self.failure = "Fitting the mixture failed: every component lost its support"
        # rows arrive in float64 where a part needs it (large counts), or where a part
        # centres its rows itself (Gaussians: float64 rows keep their digits before the cast)
        wide = any(p.component.row_dtype == torch.float64 or p.component.translatable for p in parts)
        self.row_dtype = torch.float64 if wide else dtype
        self.widths = [int(p.component.embed(torch.zeros(1, len(p.columns), dtype=torch.float64)).shape[1])
                       for p in parts]
        self.scale = scale

    def scaled(self, scale: Tensor) -> ProductComponent:
        """The same product whose k-means embedding divides column e by ``scale[e]``."""
        return ProductComponent(self.parts, self.dtype, scale=scale.to(torch.float64), advice=self.advice)

    @property
    def regularised(self) -> bool:
        return any(bool(p.component.regularised) for p in self.parts)

    @property
    def ascent(self) -> bool:
        """Whether every part's M-step is a plain ascent (a Newton step is not)."""
        return all(bool(getattr(p.component, "ascent", True)) for p in self.parts)

    @property
    def gaps(self) -> bool:
        """Whether rows may have gaps (NaN): each part then marginalises its own."""
        return any(bool(getattr(p.component, "gaps", False)) for p in self.parts)

    def translate(self, p: ProductParams, offset: Tensor) -> ProductParams:
        return p

    def location(self, p: ProductParams) -> None:
        return None

    def make_params(self, *parts: Any) -> ProductParams:
        return ProductParams(tuple(parts))

    def part(self, name: str) -> int:
        """The index of the part called ``name``."""
        return [p.name for p in self.parts].index(name)

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: ProductParams, device: torch.device) -> _Prepared:
        parts = tuple(part.component.prepare(q, device) for part, q in zip(self.parts, p.parts))
        zeros = tuple(torch.zeros(pp.n_components, dtype=pp.dtype, device=device) for pp in parts)
        return _Prepared(parts, zeros, self.centres_of(p).to(device, self.dtype), self.dtype)

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return min(part.component.block_rows(K, len(part.columns), device) for part in self.parts)

    def _columns(self, x: Tensor, part: Part) -> Tensor:
        cols = part.columns
        if list(cols) == list(range(cols[0], cols[0] + len(cols))):
            return x[:, cols[0] : cols[0] + len(cols)]
        return x[:, list(cols)]

    def _ordering(self) -> int | None:
        """The part whose rows' gaps order a chunk's reading (``expect_gaps``: a Gaussian
        block with a full or tied covariance), the first that can; None: none can."""
        return next((i for i, part in enumerate(self.parts) if hasattr(part.component, "expect_gaps")), None)

    def expect_gaps(self, p: _Prepared, mask: Tensor) -> Tensor | None:
        """The order in which to read a chunk whose (n, D) missing mask is ``mask``: the
        order its Gaussian block asks for its own gaps (their patterns factored at once,
        rows read by number of gaps); the other blocks take rows in any order. None: as
        they are."""
        i = self._ordering()
        if i is None:
            return None
        part = self.parts[i]
        return part.component.expect_gaps(p.parts[i], mask[:, list(part.columns)])

    def block(self, p: _Prepared, x: Tensor, read: slice | None = None, mask: Tensor | None = None) -> _Block:
        """Each part's block of its columns; the ordering part (see :meth:`expect_gaps`)
        also takes the rows' positions in the chunk's order and its columns' mask."""
        ordering = None if mask is None else self._ordering()
        blocks = []
        for i, (part, pp) in enumerate(zip(self.parts, p.parts)):
            cols = self._columns(x, part)
            if i == ordering:
                blocks.append(part.component.block(pp, cols, read=read, mask=mask[:, list(part.columns)]))
            else:
                blocks.append(part.component.block(pp, cols))
        return _Block(x, tuple(blocks))

    def log_joint(self, p: _Prepared, block: _Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + sum_b log p_kb(x_b): (K, n), or (n, K) into ``into``."""
        total = None
        for part, pp, zeros, b in zip(self.parts, p.parts, p.zeros, block.parts):
            lj = part.component.log_joint(pp, b, zeros)
            total = lj.to(self.dtype) if total is None else total.add_(lj)
        total = total.add_(log_w.to(self.dtype)[:, None])
        return total if into is None else into.copy_(total.T)

    def accumulator(self, p: _Prepared) -> _Sums:
        return _Sums(self, p)

    # ------------------------------------------------------------------ initialisation
    def _inverse_scale(self, like: Tensor) -> Tensor | None:
        return None if self.scale is None else (1.0 / self.scale).to(like)

    def embed(self, x: Tensor) -> Tensor:
        """The parts' embeddings side by side, divided by ``scale``."""
        out = torch.cat([part.component.embed(self._columns(x, part)).to(x.dtype) for part in self.parts], 1)
        inv = self._inverse_scale(out)
        return out if inv is None else out * inv

    def centres_of(self, p: ProductParams) -> Tensor:
        out = torch.cat([part.component.centres_of(q).to(torch.float64) for part, q in zip(self.parts, p.parts)], 1)
        inv = self._inverse_scale(out)
        return out if inv is None else out * inv

    def at(self, centres: Tensor) -> ProductParams:
        """Each part at its slice of the (scaled) embedding's centres."""
        centres = centres.to(torch.float64)
        if self.scale is not None:
            centres = centres * self.scale.to(centres)
        parts, start = [], 0
        for part, width in zip(self.parts, self.widths):
            parts.append(part.component.at(centres[:, start : start + width]))
            start += width
        return ProductParams(tuple(parts))

    def nearest(self, p: _Prepared, block: _Block) -> tuple[Tensor, Tensor]:
        """The nearest centre in the scaled embedding (what k-means minimised), over each
        row's observed coordinates (a gap embeds as NaN)."""
        rows = self.embed(block.x.to(p.dtype))
        if self.gaps:
            best, labels = observed_distances(rows, p.centres).min(1)
        else:
            best, labels = squared_distances(rows, p.centres).min(1)
        return labels, best.neg_()

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: ProductStats, old: ProductParams | None, update: str = "") -> tuple[ProductParams, Tensor]:
        """Each part's M-step on its own statistics (with the mixture's floored mass)."""
        new, valid = [], None
        for i, part in enumerate(self.parts):
            stats = dataclasses.replace(s.parts[i], n_k=s.n_k)
            q, ok = part.component.m_step(stats, None if old is None else old.parts[i], part.component.letters)
            new.append(q)
            valid = ok if valid is None else valid & ok.to(valid.device)
        return ProductParams(tuple(new)), valid

    def prior_gain(self, new: ProductParams, old: ProductParams) -> float:
        return sum(part.component.prior_gain(a, b) for part, a, b in zip(self.parts, new.parts, old.parts))

    def reseed(self, p: ProductParams, dead: list[int], rows: Tensor, weights: Tensor) -> ProductParams:
        return ProductParams(tuple(part.component.reseed(q, dead, self._columns(rows, part), weights)
                                   for part, q in zip(self.parts, p.parts)))

    def impute(self, p: _Prepared, x: Tensor, resp: Tensor, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """x (n, D) with every gap completed by each part over its columns, (n, D) float64;
        ``resp`` (K, n) is the posterior given the whole row's observed values, and a draw
        takes the same component in every part (``gaps.drawn_components``)."""
        out = x.double().clone()
        for part, pp in zip(self.parts, p.parts):
            cols = list(part.columns)
            draw = {} if uniforms is None else {"uniforms": uniforms, "normals": normals[:, cols]}
            out[:, cols] = part.component.impute(pp, self._columns(x, part), resp, **draw)
        return out

    @property
    def expected_log_density(self):
        """The parts' expected log-densities summed (``MixtureModel.restate``), or None
        where a part's statistics cannot restate theirs (a Poisson block's need the rows'
        log-factorials, which they do not keep)."""
        if not all(getattr(part.component, "expected_log_density", None) is not None for part in self.parts):
            return None
        return lambda p, s: sum(part.component.expected_log_density(q, t)
                                for part, q, t in zip(self.parts, p.parts, s.parts))

    def decrease_tolerance(self, p: ProductParams, weights: Tensor, value: float) -> float:
        return sum(part.component.decrease_tolerance(q, weights, value) for part, q in zip(self.parts, p.parts))

    # ------------------------------------------------------------------ the rest
    def sample(self, p: ProductParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        D = sum(len(part.columns) for part in self.parts)
        out = torch.empty(labels.shape[0], D, dtype=torch.float64)
        for part, q in zip(self.parts, p.parts):
            out[:, list(part.columns)] = part.component.sample(q, labels, generator).to("cpu", torch.float64)
        return out

    def n_free_parameters(self, K: int, D: int) -> int:
        return sum(part.component.n_free_parameters(K, len(part.columns)) for part in self.parts)

    def to_tensors(self, p: ProductParams) -> dict[str, Tensor]:
        return {f"{part.name}.{k}": v for part, q in zip(self.parts, p.parts)
                for k, v in part.component.to_tensors(q).items()}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> ProductParams:
        parts = []
        for part in self.parts:
            prefix = f"{part.name}."
            parts.append(part.component.from_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}))
        return ProductParams(tuple(parts))

    def flatten(self, p: ProductParams) -> Tensor:
        return torch.cat([part.component.flatten(q) for part, q in zip(self.parts, p.parts)])

    def unflatten(self, vector: Tensor, like: ProductParams) -> ProductParams:
        parts, start = [], 0
        for part, q in zip(self.parts, like.parts):
            size = part.component.flatten(q).numel()
            parts.append(part.component.unflatten(vector[start : start + size], q))
            start += size
        return ProductParams(tuple(parts))
