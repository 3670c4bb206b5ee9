"""Per-row results brought back from the compute device in a few large copies.

On a GPU each read-back (``tensor.cpu()``) waits until the device has finished
everything queued before it. Read once a chunk, it stalls the pipeline that keeps the
next chunk's copy and kernels queued behind this one; read once every few hundred MB,
the device stays busy and the copies run at the link's speed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# device bytes of results gathered before they come back to the host in one copy
READ_BACK_BYTES = 256 << 20


class HostRows:
    """Rows of per-chunk results (a label, a density, a row of posteriors) gathered in
    row order and read back to the host in groups of about ``group_bytes``: on a GPU one
    wait per group, not per chunk; on the CPU one concatenation at the end."""

    def __init__(self, group_bytes: int | None = None) -> None:
        self.group_bytes = READ_BACK_BYTES if group_bytes is None else group_bytes
        self._host: list[Tensor] = []  # groups already on the host
        self._pending: list[Tensor] = []  # chunks still on their device
        self._pending_bytes = 0

    def add(self, rows: Tensor) -> None:
        """The next chunk's results, (n, ...) on any device."""
        if rows.device.type == "cpu":
            self._host.append(rows)
            return
        self._pending.append(rows)
        self._pending_bytes += rows.numel() * rows.element_size()
        if self._pending_bytes >= self.group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            group = self._pending[0] if len(self._pending) == 1 else torch.cat(self._pending)
            self._host.append(group.cpu())
            self._pending, self._pending_bytes = [], 0

    def result(self) -> np.ndarray:
        """Every row added, in order, as one numpy array."""
        self._flush()
        if not self._host:
            raise ValueError("HostRows.result() needs at least one chunk of rows")
        return (self._host[0] if len(self._host) == 1 else torch.cat(self._host)).numpy()
