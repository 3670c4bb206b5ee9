"""torch.distributed engine: each process folds its own rows, and one all-reduce per
E-step sums the statistics across the group (float64 on the wire).

Launched by ``torchrun`` (or any launcher that sets up a process group, or sets the
environment ``init_process_group`` reads: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE):
every process runs the same script on the same input, and each reads only its share of
the rows, its part of ``source.split(world size)``: a row range of a ``.npy`` file, whole
row groups of Parquet files, a slice of an in-memory array, whole sequences for HMMs.
Every process then holds the same sum, runs the same M-step and holds the same
parameters; the driver writes files and prints on the primary process (rank 0) alone.
NCCL on GPUs, gloo on CPUs, through the same code.

One E-step's exchange:

1. each process folds its part's chunks in row order (:class:`LocalEngine`, reading
   ahead), catching any error;
2. one small all-gather of a header per process: its state (statistics, no rows, an
   error, statistics the wire cannot carry), the layout of its statistics and a
   checksum of their shared values (the E-step's parameters);
3. one all-reduce of the statistics as float64 (``engines.wire``) when every process has
   them in the same layout; else the statistics objects themselves are gathered and
   summed in process order (parts without rows, unknown statistics classes); an error on
   any process is raised on every process, so none waits for the others in vain.

Every collective waits at most the process group's timeout: a process that dies makes
the others raise :class:`ClusterError` at once (gloo sees the connection close) or
after the timeout (a process that hangs), never wait forever.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from .._core.batches import rebatch
from .._core.errors import ClusterError, DataError

_ERRORS_MODULE = ClusterError.__module__  # bigem's error classes, plain to rebuild
from .._core.stats import tree_sum
from .._core.types import READ_AHEAD, Chunk
from .local import LocalEngine, sharing_cores
from .wire import Opaque, encode

_LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")
_DEFAULT_TIMEOUT = 600.0  # seconds, where the process group does not say (torch's NCCL default)
_PARTS_KEPT = 8  # sources whose parts an engine remembers (a fit uses a few)

# header fields, one int64 row per process
_OK, _EMPTY, _FAILED, _OPAQUE = 0, 1, 2, 3


def _dist():
    import torch.distributed as dist

    if not dist.is_available():
        raise ClusterError("engine='torch' needs torch.distributed, which this build of PyTorch lacks; "
                           "install a PyTorch with distributed support, or use engine='local'")
    return dist


def launched() -> bool:
    """Whether this process belongs to a process group, or was started by a launcher
    that describes one (torchrun)."""
    import torch.distributed as dist

    return (dist.is_available() and dist.is_initialized()) or all(v in os.environ for v in _LAUNCH_VARIABLES)


def rank() -> int:
    """This process's rank in the default process group (0 outside one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0)) if launched() else 0


def process_device(device: torch.device) -> torch.device:
    """The device this process computes on: a bare 'cuda' means this process's own GPU
    (LOCAL_RANK among the visible ones), as torchrun's users expect; any other device as
    given (with CUDA_VISIBLE_DEVICES set per process, 'cuda:0' is each process's own)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return device


def _start_group(device: torch.device) -> None:
    """Join the process group torchrun describes: NCCL for a GPU, gloo otherwise."""
    dist = _dist()
    missing = [v for v in _LAUNCH_VARIABLES if v not in os.environ]
    if missing:
        raise ClusterError(
            f"engine='torch' runs in a group of processes, and this one belongs to none: launch the script with "
            f"torchrun (torchrun --nproc_per_node=2 script.py), or call torch.distributed.init_process_group "
            f"before fitting (the environment lacks {', '.join(missing)}); for one process use engine='local'"
        )
    backend = "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    atexit.register(_leave_group)


def _leave_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _group_timeout(wire: torch.device) -> float:
    """The default group's timeout in seconds (torch keeps it in its backend's options,
    which are not public API: torch's NCCL default where they cannot be read)."""
    import torch.distributed as dist

    try:
        return dist.group.WORLD._get_backend(wire).options._timeout.total_seconds()
    except (AttributeError, RuntimeError):
        return _DEFAULT_TIMEOUT


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[TorchEngine]:
    """A :class:`TorchEngine` over the default process group, joined first if need be
    (and left when the program exits: later fits use it again)."""
    dist = _dist()
    device = process_device(device)
    if not dist.is_initialized():
        _start_group(device)
    elif device.type == "cuda":  # a group the caller started: object collectives use the current device
        torch.cuda.set_device(device)
    yield TorchEngine(device)


class TorchEngine:
    """Folds this process's part of a source; sums the statistics over the process group."""

    def __init__(self, device: torch.device, prefetch: bool = True, read_ahead: int = READ_AHEAD) -> None:
        dist = _dist()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.primary = self.rank == 0
        self.device = torch.device(device)
        backend = str(dist.get_backend()).lower()
        # the wire: the compute device where the group's backend reaches it (NCCL), else the host
        self.wire = self.device if self.device.type == "cuda" and "nccl" in backend else torch.device("cpu")
        self.timeout = _group_timeout(self.wire)
        self.local = LocalEngine(prefetch, read_ahead)
        self._parts: OrderedDict[int, tuple[object, list]] = OrderedDict()

    # ------------------------------------------------------------------ parts
    def parts(self, source) -> list:
        """Every process's part of ``source`` (``source.split(world)``), remembered per
        source so that each part keeps its first-pass checks and cache across passes."""
        key = id(source)
        held = self._parts.get(key)
        if held is None or held[0] is not source:
            held = self._parts[key] = (source, list(source.split(self.world)))
            while len(self._parts) > _PARTS_KEPT:
                self._parts.popitem(last=False)
        self._parts.move_to_end(key)
        return held[1]

    def _mine(self, source):
        return self.parts(source)[self.rank]

    # ------------------------------------------------------------------ the Engine protocol
    def sharing_cores(self, source):
        return sharing_cores(self._mine(source))

    def stream(self, source) -> Iterator[Chunk]:
        """This process's part of the source, in row order."""
        return self.local.stream(self._mine(source))

    def reduce(self, task: Callable[[Chunk], Any], source) -> Any:
        """The sum over the group of ``task`` folded over each process's part."""
        mine = self._mine(source)
        local, error = None, None
        try:
            if mine.n_rows:
                local = self.local.reduce(task, mine)
        except Exception as exc:  # every process must hear of it, or they wait in vain
            error = exc
        total = self._sum(local, error, "an E-step")
        if total is None:
            raise DataError("the source yielded no rows; pass at least one row")
        return total

    def combine(self, stats: Any) -> Any:
        """The sum over the group of each process's statistics (online EM's mini-batches)."""
        return self._sum(stats, None, "a mini-batch of online EM")

    def batches(self, source, rows: int) -> Iterator[Chunk | None]:
        """This process's part of each of online EM's mini-batches: the group's rows are
        cut into ceil(N / rows) steps, and each process cuts its own part into as many
        pieces, so each step holds about ``rows`` rows from every process in proportion.
        A process with fewer rows than steps (or none: a file of one row group) yields
        None for a step it has no rows for, and still takes part in its exchange."""
        sizes = [p.n_rows for p in self.parts(source)]
        steps = math.ceil(sum(sizes) / rows)
        mine = sizes[self.rank]
        cuts = [t * mine // steps for t in range(steps + 1)]
        pieces = [b - a for a, b in zip(cuts, cuts[1:])]
        return _with_gaps(rebatch(self.stream(source), [n for n in pieces if n]) if mine else iter(()), pieces)

    def share(self, make: Callable[[], Any]) -> Any:
        """``make()`` on the primary process, its value or its exception on every process."""
        payload = None
        if self.primary:
            try:
                payload = ("value", make())
            except Exception as exc:
                payload = ("error", exc)
        box = [payload]
        self._collective(lambda: _dist().broadcast_object_list(box, src=0, device=self._object_device()),
                         "sharing the primary process's checkpoint")
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def opened(self, make: Callable[[], Any], settings: dict | None = None) -> Any:
        """``make()`` (opening this process's data) on every process, checked together.
        A process that fails to open its data (a missing file, a NaN in its rows) would
        leave the others waiting in the first exchange until the group's timeout (30
        minutes by default): its error is raised by every process now. Processes that
        opened different data (other files, columns, rows, labels or sequence lengths),
        or were given different ``settings`` (name -> (digest, text): the estimator's
        parameters), are refused: their statistics would be summed as if they were one
        data set's, or their parameters would part (a process with a smaller ``max_iter``
        would leave the others waiting)."""
        value, error = None, None
        try:
            value = make()
        except Exception as exc:  # every process must hear of it
            error = exc
        mine = ("error", _portable(error), None) if error is not None else ("ok", _described(value), settings)
        box: list[Any] = [None] * self.world
        self._collective(lambda: _dist().all_gather_object(box, mine), "opening the data")
        failed = [r for r, (kind, _, _) in enumerate(box) if kind == "error"]
        if failed:
            raise self._first_error(error, failed, [b[1] for b in box], "opening the data")
        for r, (_, _, given) in enumerate(box):
            name = _first_apart(box[0][2] or {}, given or {})
            if name is not None:
                raise ClusterError(
                    f"the {self.world} processes were given different settings: {name}={_shown(box[0][2], name)} on "
                    f"process 0 and {name}={_shown(given, name)} on process {r}; every process must run the same "
                    "script with the same settings (only device, memory_budget, chunk_size, cache_budget and "
                    "verbose may differ)"
                )
        for r, (_, seen, _) in enumerate(box):
            if seen != box[0][1]:
                raise ClusterError(
                    f"the {self.world} processes opened different data: {_difference(box[0][1], seen, r)}; every "
                    "process must run the same script on the same data (the same files, columns, rows, labels and "
                    "sequence lengths): each reads its own share of it"
                )
        return value

    # ------------------------------------------------------------------ the exchange
    def _sum(self, local: Any, error: BaseException | None, during: str) -> Any:
        dist = _dist()
        encoded, status = None, _OK
        if error is not None:
            status = _FAILED
        elif local is None:
            status = _EMPTY
        else:
            try:
                encoded = encode(local, self.wire)
            except Opaque:
                status = _OPAQUE
        head = [status, 0, 0, 0, 0] if encoded is None else [
            status, encoded.summed.numel(), encoded.gathered.numel(), encoded.signature, encoded.shared]
        mine = torch.tensor(head, dtype=torch.int64, device=self.wire)
        heads = [torch.empty_like(mine) for _ in range(self.world)]
        self._collective(lambda: dist.all_gather(heads, mine, async_op=True), during)
        table = torch.stack(heads).cpu().tolist()
        failed = [r for r, h in enumerate(table) if h[0] == _FAILED]
        if failed:
            raise self._relay(error, failed, during)
        if all(h[0] == _OK for h in table) and all(h[1:4] == table[0][1:4] for h in table):
            if any(h[4] != table[0][4] for h in table):
                raise ClusterError(
                    f"the {self.world} processes computed {during} under different parameters: each must run the "
                    "same script with the same data, settings and random_state, on the same kind of device"
                )
            return self._all_reduce(encoded, during)
        return self._gather_objects(local, during)

    def _all_reduce(self, encoded, during: str) -> Any:
        """One all-reduce of [summed | one gathered slot per process]."""
        s, g = encoded.summed.numel(), encoded.gathered.numel()
        buffer = torch.zeros(s + g * self.world, dtype=torch.float64, device=self.wire)
        buffer[:s] = encoded.summed
        buffer[s + g * self.rank : s + g * (self.rank + 1)] = encoded.gathered
        self._collective(lambda: _dist().all_reduce(buffer, async_op=True), during)
        slots = [buffer[s + g * r : s + g * (r + 1)] for r in range(self.world)]
        return encoded.decode(buffer[:s], slots)

    def _gather_objects(self, local: Any, during: str) -> Any:
        """The statistics objects themselves, gathered and summed in process order (parts
        without rows, or statistics the wire cannot carry)."""
        box: list[Any] = [None] * self.world
        mine = None if local is None else local.to("cpu")
        self._collective(lambda: _dist().all_gather_object(box, mine), during)
        present = [b for b in box if b is not None]
        if not present:
            return None
        try:
            return tree_sum(present).to(self.device)
        except (RuntimeError, ValueError, TypeError, AttributeError) as exc:  # other shapes or kinds: other settings
            raise ClusterError(
                f"the {self.world} processes computed {during} with statistics that do not add up ({exc}): each must "
                "run the same script with the same data and settings (n_components, covariance_type, ...)"
            ) from None

    def _relay(self, error: BaseException | None, failed: list[int], during: str) -> BaseException:
        """The first failing process's error, for every process to raise (its own where
        it failed: the same exception, traceback and all)."""
        box: list[Any] = [None] * self.world
        self._collective(lambda: _dist().all_gather_object(box, _portable(error)), during)
        return self._first_error(error, failed, box, during)

    def _first_error(self, error: BaseException | None, failed: list[int], gathered: list, during: str):
        """The error to raise: this process's own where it failed first, else the first
        failing process's, as gathered (rebuilt, or its text in a ClusterError)."""
        first = failed[0]
        if error is not None and self.rank == first:
            return error
        relayed = gathered[first]
        if isinstance(relayed, BaseException):
            return relayed
        return ClusterError(f"process {first} of {self.world} failed during {during}: {relayed}")

    def _object_device(self) -> torch.device | None:
        return self.wire if self.wire.type == "cuda" else None

    def _collective(self, start: Callable[[], Any], during: str) -> None:
        """Run a collective, waiting at most the group's timeout; a lost or silent peer
        becomes a :class:`ClusterError` that says what happened and what to do."""
        try:
            work = start()
            if work is not None:
                work.wait(timeout=datetime.timedelta(seconds=self.timeout))
        except ClusterError:
            raise
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            why = lines[0] if lines else type(exc).__name__
            raise ClusterError(
                f"process {self.rank} of {self.world}: another process stopped answering during {during} ({why}); "
                f"it ended or lost its connection (see its output), or did not answer within {self.timeout:g}s; "
                "relaunch the job (a fit given checkpoint= resumes from its last checkpoint)"
            ) from None


def _with_gaps(batches: Iterator[Chunk], pieces: list[int]) -> Iterator[Chunk | None]:
    """The batches, with None for each piece of no rows; then the stream is asked once
    more, so that it ends its pass (its end-of-pass checks run)."""
    for n in pieces:
        yield next(batches) if n else None
    for _ in batches:
        pass


def _described(source: Any) -> dict | None:
    """What every process's data must share: its rows, columns, their names, its files'
    sizes or its rows' digest (not the files' paths or modification times, which differ
    between machines that hold copies of the same files), and digests of its labels and
    sequence lengths where it has them."""
    if source is None or not hasattr(source, "n_rows"):
        return None
    seen = source.fingerprint() if hasattr(source, "fingerprint") else {}
    files = seen.get("files") or []
    return {"rows": int(source.n_rows), "columns": int(getattr(source, "n_features", 0) or 0),
            "names": list(getattr(source, "feature_names", None) or []),
            "file sizes": [f[1] for f in files if len(f) > 1], "digest": seen.get("digest"),
            "labels": _digest(getattr(source, "labels", None)),
            "lengths": _digest(getattr(source, "lengths", None))}


def _digest(values: Any, most: int = 65536) -> str | None:
    """A digest of a 1-D array's length and of at most ``most`` of its values, evenly
    spaced (the ends included): labels or lengths as long as the rows cost no pass."""
    if values is None:
        return None
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values).reshape(-1)
    if array.shape[0] > most:
        array = array[np.linspace(0, array.shape[0] - 1, most).round().astype(np.int64)]
    return hashlib.sha256(f"{len(values)}:".encode() + np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _difference(first: dict | None, other: dict | None, r: int) -> str:
    """What differs between process 0's data and process r's, in words."""
    shown = (_as_text(first), _as_text(other))
    if shown[0] != shown[1] or first is None or other is None:
        return f"process 0 {shown[0]}, process {r} {shown[1]}"
    what = next((w for key, w in (("lengths", "other sequence lengths"), ("labels", "other labels (y)"),
                                  ("digest", "other values or sample weights")) if first.get(key) != other.get(key)),
                "other contents")
    return f"process 0 {shown[0]}, as does process {r}, but process {r} has {what}"


def _first_apart(first: dict, other: dict) -> str | None:
    """The first setting, by name, whose digest differs between two processes' settings
    (name -> (digest, text)); a setting one of them lacks differs."""
    return next((k for k in sorted(set(first) | set(other)) if first.get(k, ("",))[0] != other.get(k, ("",))[0]),
                None)


def _shown(given: dict | None, name: str) -> str:
    held = (given or {}).get(name)
    return "(not given)" if held is None else held[1]


def _as_text(seen: dict | None) -> str:
    if seen is None:
        return "opened nothing"
    names = f" ({', '.join(map(str, seen['names'][:8]))}{', ...' if len(seen['names']) > 8 else ''})" if seen["names"] else ""
    text = f"has {seen['rows']} rows of {seen['columns']} columns{names}"
    if seen["file sizes"]:
        text += f" in files of {seen['file sizes'][:4]}{'...' if len(seen['file sizes']) > 4 else ''} bytes"
    return text


def _portable(error: BaseException | None) -> Any:
    """The error itself where the other processes can rebuild it from its message alone
    (bigem's errors and Python's built-in ones, whose arguments are plain values), else
    its text, which the others raise as a :class:`ClusterError`."""
    if error is None:
        return None
    kind = type(error)
    if kind.__module__ in ("builtins", _ERRORS_MODULE) and all(isinstance(a, (str, int, float)) for a in error.args):
        return error
    return f"{kind.__name__}: {error}"
