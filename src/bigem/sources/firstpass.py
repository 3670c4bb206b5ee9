"""Checks values on the first pass instead of in a pass of their own, and keeps data in memory.

A file source is only worth reading once per EM iteration. So a streamed source is not
validated up front: the first complete pass (initialisation or the first E-step) checks
every chunk for NaN/inf (with gaps allowed, for inf, and at its end for a column that no
row observes), and any later pass skips the check. When the decoded data fits
in ``cache_bytes``, the first pass also keeps the chunks, and later passes read no file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace

import torch
from torch import Tensor

from .._core import numerics
from .._core.types import Chunk
from . import identity
from .arrays import PROBE_ROWS, choose_shift
from .identifiers import IdentifierWatch
from .parts import CutByRows, RowRange
from .validate import ColumnsSeen, DeviceCheck, RulePass, check_values, column_label, raise_not_finite


class FirstPassSource(CutByRows):
    """Wraps a streamed source: lazy finiteness check, an in-memory cache when it fits, and
    conversion to the compute dtype and device (a user's Source may yield anything)."""

    def __init__(self, inner, name: str, cache_bytes: int = 0, dtype=None, device=None, shift=None,
                 identify: bool = False, *, gaps: bool = False, every_column: bool = False, schema=None,
                 offer_fiml: bool = True) -> None:
        self.inner = inner
        candidates = getattr(inner, "id_candidates", None) if identify else None
        self._watch = IdentifierWatch(candidates, name) if candidates else None  # on the first pass
        self.gaps = gaps  # NaN is a missing value: only infinities are refused
        self.offer_fiml = offer_fiml  # else a NaN's error names missing_values='fiml' only where it exists
        self.every_column = every_column  # and a column no row observes (checked at the end of the first pass)
        # a family's column rules (sources.schema): checked in the first pass; category
        # values turned into codes here for sources that read numbers only (.npy, Source
        # objects), on every pass (file tables encode their own columns)
        self.schema = schema
        self._encode = schema is not None and schema.encodes() and not getattr(inner, "encodes_categories", False)
        self.dtype = dtype or getattr(inner, "dtype", torch.float64)
        # files apply their own shift; a user's Source gets one applied here, chosen from
        # its first rows as for an array (see arrays.choose_shift)
        self._own_shift = None
        if shift is not None and getattr(inner, "shift", None) is None:
            first = inner.take(torch.arange(min(inner.n_rows, PROBE_ROWS)))
            self._own_shift = choose_shift(first, first.dtype, self.dtype, shift)
        self.shift = getattr(inner, "shift", None) if self._own_shift is None else self._own_shift
        self.device = device or getattr(inner, "device", torch.device("cpu"))
        self.name = name
        self.n_rows, self.n_features = inner.n_rows, inner.n_features
        self.feature_names = inner.feature_names
        self.weight = inner.weight
        # a user's Source object may have only the protocol's four essentials: this adapter
        # gives the rest their plain defaults (no weights, no decoding, fixed chunks)
        self.weighted = self.weight is not None or getattr(inner, "weighted", False)
        self.weight_blocks = getattr(inner, "weight_blocks", None)  # the weight column alone, for sampling
        itemsize = torch.finfo(self.dtype).bits // 8
        self.decoded_bytes = self.n_rows * self.n_features * itemsize
        self.cache_bytes = cache_bytes
        self.caching = 0 < self.decoded_bytes <= cache_bytes
        self.checked = False
        self._cache: list[Chunk] | None = None

    @property
    def cached(self) -> bool:
        return self._cache is not None

    @property
    def decodes(self) -> bool:
        return self._cache is None and getattr(self.inner, "decodes", False)

    def read_in(self, rows: int) -> None:
        if hasattr(self.inner, "read_in"):
            self.inner.read_in(rows)

    def boundaries(self):
        """Rows where the inner source cuts for free (None: anywhere, or a user's Source)."""
        return self.inner.boundaries() if hasattr(self.inner, "part") else None

    def part(self, start: int, stop: int) -> FirstPassSource:
        """Rows [start, stop), with their own first-pass check and cache (a process of a
        group checks and keeps its own rows). A user's Source without ``part`` is read
        whole and the rows in range kept (``parts.RowRange``)."""
        inner = self.inner.part(start, stop) if hasattr(self.inner, "part") else RowRange(self.inner, start, stop)
        part = copy.copy(self)
        part.inner, part.n_rows = inner, inner.n_rows
        part.weight = inner.weight
        part.decoded_bytes = part.n_rows * part.n_features * (torch.finfo(self.dtype).bits // 8)
        part.caching = 0 < part.decoded_bytes <= self.cache_bytes
        part.checked, part._cache = False, None
        return part


    def fingerprint(self) -> dict:
        """The inner source's, or for a user's Source without one, a digest of its first
        chunk and last rows."""
        if hasattr(self.inner, "fingerprint"):
            return self.inner.fingerprint()
        first = next(iter(self.inner.chunks())).x
        last = self.inner.take(torch.arange(max(0, self.n_rows - 1024), self.n_rows))
        return {"rows": self.n_rows, "digest": identity.digest(first[:1024], last)}

    def chunks(self) -> Iterator[Chunk]:
        if self._cache is not None:
            yield from self._cache
            return
        kept: list[Chunk] | None = [] if self.caching else None
        # a GPU's chunks: finiteness and the schema's rules checked on the device, read back once a pass
        pending = DeviceCheck(self.gaps)
        rules = RulePass(self.schema.rule(self._where)) if self.schema is not None and not self.checked else None
        seen = ColumnsSeen(self.n_features) if self.gaps and self.every_column and not self.checked else None
        for chunk in self.inner.chunks():
            chunk = self._in_place(chunk)
            if not self.checked:
                if numerics.defers_reads(chunk.x.device):
                    pending.add(chunk.x)
                elif check_values(chunk.x, chunk.row_start, self.gaps) is not None:
                    self._raise_not_finite()
            if seen is not None:
                seen.add(chunk.x)
            if not self.checked and self._watch is not None:
                self._watch.update(chunk.x)
            chunk = self._encoded(chunk)
            if rules is not None:
                rules.see(chunk)
            if kept is not None:
                kept.append(chunk)
            yield chunk
        if not self.checked and pending.any_bad():
            self._raise_not_finite()
        if rules is not None:
            rules.finish(lambda: (self._encoded(self._in_place(c)) for c in self.inner.chunks()))
        if seen is not None:
            seen.check(self.feature_names, self.name)
        self.checked = True  # only a complete pass counts
        if self._watch is not None:
            self._watch.finish()
            self._watch = None
        self._cache = kept

    def _in_place(self, chunk: Chunk) -> Chunk:
        """A chunk of a user's Source on this source's device and dtype (in the caller's
        coordinates when it has its own shift); others as they are."""
        if self._own_shift is not None:
            x = chunk.x.to(self.device, torch.float64) - self._own_shift.to(self.device)
            return replace(chunk, x=x.to(self.dtype))
        if chunk.x.dtype != self.dtype or chunk.x.device != self.device:
            return replace(chunk, x=chunk.x.to(self.device, self.dtype))
        return chunk

    def _encoded(self, chunk: Chunk) -> Chunk:
        """Category columns as codes, where this source encodes them."""
        if not self._encode:
            return chunk
        return replace(chunk, x=self.schema.encode_codes(chunk.x, self._where(chunk.row_start), chunk.row_start))

    def _raise_not_finite(self) -> None:
        """Error path: one full pass for the counts, then the message names the file."""
        n_nan = n_inf = 0
        first = None
        for chunk in self.inner.chunks():
            found = check_values(chunk.x, chunk.row_start, self.gaps)
            if found:
                n_nan, n_inf = n_nan + found[0], n_inf + found[1]
                first = found[2:] if first is None else first
        assert first is not None
        row, column = first
        picked = getattr(self.inner, "columns", None)  # a .npy file's columns picked by index: the file's own
        names = self.feature_names if self.feature_names is not None or picked is None else [int(c) for c in picked]
        raise_not_finite(n_nan, n_inf, row, self._where(row), offer_fiml=self.offer_fiml,
                         column=column_label(names, column), file_row=self._row_in_file(row))

    def _where(self, row: int) -> str:
        """The file that holds ``row`` (for messages), or the source's name."""
        return self.inner.file_of_row(row) if hasattr(self.inner, "file_of_row") else self.name

    def _row_in_file(self, row: int) -> int | None:
        """Data-set row ``row`` counted in its file, where the data are several files (else None)."""
        several = len(getattr(self.inner, "files", ())) > 1 and hasattr(self.inner, "row_in_file")
        return self.inner.row_in_file(row) if several else None

    def take(self, rows: Tensor) -> Tensor:
        if self._cache is not None:
            starts = torch.tensor([c.row_start for c in self._cache])
            which = torch.searchsorted(starts, rows.cpu(), right=True) - 1
            parts = []
            for i in torch.unique(which).tolist():
                chunk = self._cache[i]
                local = rows.cpu()[which == i] - chunk.row_start
                parts.append(chunk.x[local.to(chunk.x.device)])
            return torch.cat(parts) if parts else self._cache[0].x[:0]
        out = self.inner.take(rows)
        if self._own_shift is not None:
            out = out.to(self.device, torch.float64) - self._own_shift.to(self.device)
        out = out.to(self.device, self.dtype)
        if not self.checked and check_values(out, 0, self.gaps) is not None:
            self._raise_not_finite()
        if self._encode:
            out = self.schema.encode_codes(out, self.name)
        if not self.checked and self.schema is not None:
            self.schema.check(out, 0, self.name, rows=rows)
        return out
