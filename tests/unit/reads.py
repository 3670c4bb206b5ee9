"""Counting what a computation reads back from its device, for the tests that hold the
E-step to no read-back per chunk or batch (on a GPU each one waits for the device).

:func:`counting_reads` counts Tensor's read-back methods and host values sent to a
device (``torch.tensor(value, device=...)``, which waits on a GPU); :func:`counting_device_reads`
also counts data-dependent shapes (``nonzero``, boolean-mask indexing, an unsized
``repeat_interleave``), which wait as well, and leaves out reads of host data.
"""

from __future__ import annotations

import contextlib

import torch

READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu")


def _uploads(counts: dict):
    """torch.tensor and torch.as_tensor wrapped to count host values sent to a device:
    on a GPU, ``torch.tensor(value, device=...)`` builds the value on the host and
    copies it with a synchronisation (a fill, ``torch.full``, does not wait)."""
    originals = {"tensor": torch.tensor, "as_tensor": torch.as_tensor}

    def wrap(original):
        def counted(data, *args, **kwargs):
            if kwargs.get("device") is not None and not isinstance(data, torch.Tensor):
                counts["n"] += 1
            return original(data, *args, **kwargs)
        return counted

    return originals, {name: wrap(fn) for name, fn in originals.items()}


@contextlib.contextmanager
def counting_reads():
    """Count calls of Tensor's read-back methods inside the block, and host values sent
    to a device (each waits on a GPU as a read does)."""
    counts = {"n": 0}
    originals = {name: getattr(torch.Tensor, name) for name in READS}
    torch_fns, counted_fns = _uploads(counts)

    def wrap(original):
        def counted(self, *args, **kwargs):
            counts["n"] += 1
            return original(self, *args, **kwargs)
        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(original))
    for name, fn in counted_fns.items():
        setattr(torch, name, fn)
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        for name, fn in torch_fns.items():
            setattr(torch, name, fn)


_DEBUG, _Counts = False, dict  # set to see where reads happen


@contextlib.contextmanager
def counting_device_reads(host: dict[int, torch.Tensor]):
    """Count read-backs and data-dependent shapes inside the block, leaving out reads of
    the tensors in ``host`` (id -> tensor: host data such as a batch's lengths)."""
    counts = _Counts({"n": 0}) if _DEBUG else {"n": 0}
    names = [name for name in READS if name != "numpy"] + ["__getitem__", "__setitem__", "nonzero"]
    saved = {name: torch.Tensor.__dict__.get(name) for name in names}
    originals = {name: getattr(torch.Tensor, name) for name in saved}
    torch_fns = {"nonzero": torch.nonzero, "repeat_interleave": torch.repeat_interleave}

    def is_mask(index) -> bool:
        items = index if isinstance(index, tuple) else (index,)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            if id(self) not in host and (name not in ("__getitem__", "__setitem__") or is_mask(args[0])):
                counts["n"] += 1
            return original(self, *args, **kwargs)
        return counted

    def sized(original):
        def counted(*args, **kwargs):
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if original is torch.nonzero or (isinstance(repeats, torch.Tensor) and kwargs.get("output_size") is None):
                counts["n"] += 1
            return original(*args, **kwargs)
        return counted

    uploads, counted_uploads = _uploads(counts)
    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    for name, fn in torch_fns.items():
        setattr(torch, name, sized(fn))
    for name, fn in counted_uploads.items():
        setattr(torch, name, fn)
    try:
        yield counts
    finally:
        for name, own in saved.items():
            if own is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, own)
        for name, fn in {**torch_fns, **uploads}.items():
            setattr(torch, name, fn)
