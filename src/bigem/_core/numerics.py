"""Numeric helpers every layer may use: dtype and device parsing, distances, and the
BLAS route of skinny products. Covariance factors and log-determinants belong to the
covariance structures (``models.covariance``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .errors import ParameterError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """'float32' | 'float64' | torch dtype -> torch dtype, with a clear error otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    name = getattr(dtype, "__name__", None) or str(getattr(dtype, "name", ""))  # numpy dtypes and types
    if name in _DTYPES and not isinstance(dtype, str):
        return _DTYPES[name]
    raise ParameterError(
        f"dtype must be 'float32' or 'float64' (or the torch dtype), got {dtype!r}"
    )


def parse_device(device: str | torch.device | None) -> torch.device:
    """None -> cpu; validates that the device exists here, so a typo fails before any work.

    bigem computes on 'cpu' or 'cuda' ('cuda:N'): 'meta' holds no values, and Apple's
    'mps' has no float64, in which every statistic is accumulated.
    """
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"device {device!r} is not a torch device: {exc}; use 'cpu' or 'cuda'") from None
    if dev.type not in ("cpu", "cuda"):
        why = {
            "meta": "a 'meta' tensor holds no values to compute with",
            "mps": "Apple's MPS backend has no float64, in which bigem accumulates every statistic",
        }.get(dev.type, f"bigem computes on 'cpu' or 'cuda' only, not {dev.type!r}")
        raise ParameterError(f"device {device!r} is not supported: {why}; use device='cpu' (or 'cuda' on a GPU)")
    if dev.type == "cuda":
        reason = unavailable(dev)
        if reason:
            raise ParameterError(f"device {device!r} requested but {reason}; use device='cpu'")
    return dev


def unavailable(dev: torch.device) -> str | None:
    """Why a CUDA device cannot be used here (None when it can)."""
    if not torch.cuda.is_available():
        return "CUDA is not available here"
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        return f"this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
    return None


def defers_reads(device: torch.device) -> bool:
    """Whether checks of data on ``device`` stay there (device flags and counts, read back
    once a pass) rather than being read back per chunk or batch. On an accelerator every
    read-back waits for its queue to drain and stalls the copies behind it; on the CPU a
    read costs nothing, and the per-chunk checks keep the exact path (and error) at once.
    The one switch of that strategy: the tests force it to simulate an accelerator here."""
    return device.type != "cpu"


def device_here(device: object) -> str | None:
    """Where a model saved for ``device`` runs on this machine: None when ``device`` can be
    used as it is (or is not a device name at all, for validation to report); else the
    nearest available device, 'cuda' or 'cpu'."""
    try:
        dev = torch.device(device) if isinstance(device, (str, torch.device)) else None
    except (RuntimeError, TypeError):
        return None
    if dev is None or dev.type == "cpu" or dev.type == "cuda" and unavailable(dev) is None:
        return None
    return "cuda" if torch.cuda.is_available() else "cpu"


def matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """a @ b (into ``out`` if given), through numpy's BLAS on CPU for the skinny products
    of the HMM E-step.

    Measured on the 2-core benchmark machine (float32): (1e6 x 9) @ (9 x 8) 6 ms with
    numpy's OpenBLAS against 20 ms with torch's MKL; (8 x 1e6) @ (1e6 x 9) 13 ms
    against 35 ms (float64: 20 ms against 102 ms). Other devices use torch.
    """
    if a.device.type != "cpu" or a.dtype != b.dtype or a.dtype not in (torch.float32, torch.float64):
        return torch.matmul(a, b, out=out)
    if out is None:
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
    np.matmul(a.numpy(), b.numpy(), out=out.numpy())
    return out


def squared_distances(x: Tensor, centres: Tensor) -> Tensor:
    """|x_n - c_k|^2 by one product, clamped at 0.  (n, D), (K, D) -> (n, K)."""
    d = torch.addmm((x * x).sum(1, keepdim=True), x, centres.T, alpha=-2.0)
    return d.add_((centres * centres).sum(1)).clamp_(min=0)
