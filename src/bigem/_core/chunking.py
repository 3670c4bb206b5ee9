"""A source's request to have its chunk size measured on the compute device.

``memory_budget='auto'`` (the default) on a CUDA device: instead of a fixed budget, the
engine that runs the first task over the source measures what that task really
allocates per row (the E-step's scratch, its responsibilities, the chunk's copies) and
sizes the chunks from the GPU's free memory. The request is plain data, set by the
source opener; the measuring is execution, done by the engine (``engines.sizing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

AUTO = "auto"  # the memory_budget that asks for measured chunks
DEFAULT_HOST_BUDGET = 256 * 10**6  # bytes of chunks in flight in host memory under 'auto' ('256MB', as before)


def host_budget(memory_budget: int | str) -> int:
    """Bytes of chunks in flight in host memory: the budget given, or under 'auto' the
    default (on a GPU, 'auto' also bounds the device's share by measurement)."""
    return DEFAULT_HOST_BUDGET if memory_budget == AUTO else int(memory_budget)


@dataclass
class MeasuredChunks:
    """How the engine may size a source's chunks on ``device``.

    ``host_rows``: the most rows the host side allows (a file's chunks in flight within
    the host budget), None where the rows are already in memory. ``copies``: copies of
    a chunk on the device at once beside the one computing (chunks copied ahead while
    it computes; 0 for rows that live on the device, whose chunks are views).
    ``fraction``: the share of the device's free memory the chunks may take (the rest:
    the parameters, the M-step, other work on the device). ``rows``: the chunk rows
    chosen for each task measured so far (the source reads the smallest).
    """

    device: torch.device
    host_rows: int | None
    copies: int
    fraction: float = 0.5
    rows: dict = field(default_factory=dict)
