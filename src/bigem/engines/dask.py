"""Dask engine: one E-step is a map over partitions plus a tree reduction of the statistics.

An engine reduces a :class:`~bigem._core.protocols.Task`: a model, a method and its
arguments. The model is shipped once per fit: the first task naming it persists it as
one key of the cluster (pickled once, here), later tasks refer to that key, and each
worker process keeps the first copy it unpickles (``_held``), so its scratch buffers
are reused across iterations. The arguments (the parameters) travel once per
iteration inside each partition's task when they are small (a few kB: most
models), else as one key of the task graph that workers fetch from its holder and
from each other; Dask can recompute every key if a holder dies (scattered data could
not be recomputed, and a broadcast scatter waits on a dead worker). Partitions held
in worker memory are named by their futures, so an iteration is one message of
tasks to the scheduler with no graph to build; partitions read again every pass go
as a graph. The results come back in one gather. The data never passes through the
client.
Partitions held in worker memory stay there across iterations; partitions that do
not fit are read again from storage by the workers each iteration. Dask recomputes
work lost with a worker, and every task is a pure function of its inputs, so a
worker lost mid-fit changes neither the result nor its reduction order.

Reduction order: each partition folds its chunks in row order (as the local engine
does), and partitions are summed as a balanced tree in partition order. The sums
are float64, so any partitioning agrees with the local fold to rounding (about
1e-16 relative per addition). Dask is imported lazily.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import importlib.metadata
import os
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import torch

from .._core.errors import ClusterError, DataError
from .._core.optional import require
from .._core.protocols import Task
from .._core.stats import tree_sum
from .._core.types import Chunk, Partitioned
from .local import OneProcess

SPLIT_EVERY = 8  # partitions (or partial sums) combined per reduction task
PERSIST_FRACTION = 0.5  # persist the data when it takes at most this share of the workers' memory
NO_WORKERS_TIMEOUT = 60.0  # seconds an E-step waits for a cluster without workers before it gives up
INLINE_BYTES = 1 << 20  # arguments up to this size travel inside each task, larger ones as one key


# glibc's mallopt parameters, and the adaptive mmap threshold's own ceiling on 64 bits
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_CEILING = 32 << 20
_MMAP_DEFAULT = 128 << 10


def _adaptive_heap(on: bool) -> bool:
    """Runs on a worker: with ``on``, large freed blocks stay in the heap for the next
    iteration's temporaries, as glibc's adaptive thresholds would keep them; without,
    the thresholds the worker was started with come back. True where it acted.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which turns glibc's
    adaptive mmap threshold off: every temporary above 128 kB is then a fresh mapping,
    page-faulted again each time (13,000 faults a worker an iteration of the HMM
    benchmark, a fifth of its time; 2.3x the local engine's iteration for the Gaussian
    mixture's). Workers started without it (bigem's own LocalCluster) are left alone,
    as is any C library without glibc's mallopt."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if trim is None or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
        if on:
            return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_CEILING) and mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_CEILING))
        mmap = int(os.environ.get("MALLOC_MMAP_THRESHOLD_", _MMAP_DEFAULT))
        return bool(mallopt(_M_TRIM_THRESHOLD, int(trim)) and mallopt(_M_MMAP_THRESHOLD, mmap))
    except (AttributeError, OSError, ValueError):
        return False


_MODELS: OrderedDict[str, object] = OrderedDict()  # on each worker: the model of each recent fit
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 4


def _held(token: str, model: object) -> object:
    """This worker's copy of the model shipped under ``token``: the first one to arrive,
    kept so that its per-thread scratch buffers outlive one iteration."""
    with _MODELS_LOCK:
        held = _MODELS.get(token)
        if held is None:
            held = _MODELS[token] = model
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(token)
        return held


@dataclasses.dataclass(frozen=True, slots=True)
class _Payload:
    """A task's arguments, as one literal of the graph (a plain tuple could be read by
    Dask as a task when its first item is callable)."""

    args: tuple
    kwargs: dict


def _nbytes(value) -> int:
    """The bytes of the arrays in ``value`` (tensors and numpy arrays, in nested
    tuples, lists, dicts and dataclasses such as a model's parameters): about what
    pickling it costs."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(_nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 0


def _partition_stats(held: tuple[str, object], method: str, payload: _Payload, reader, block, row_start: int):
    """Runs on a worker: the statistics of one partition, its chunks folded in row order."""
    fn = getattr(_held(*held), method)
    args, keywords = payload.args, payload.kwargs
    total = None
    for chunk in reader(block, row_start):
        part = fn(*args, chunk, **keywords)
        total = part if total is None else total + part
    return total  # None for an empty partition


def _partition_results(held: tuple[str, object], method: str, payload: _Payload, reader, block,
                       row_start: int) -> list:
    """Runs on a worker: the task's result for each chunk of one partition, in row order."""
    fn = getattr(_held(*held), method)
    args, keywords = payload.args, payload.kwargs
    return [fn(*args, chunk, **keywords) for chunk in reader(block, row_start)]


def _value(value):
    """Runs on a worker: ``value`` itself (large task arguments, one key shipped once)."""
    return value


def _combine(*parts):
    """The sum of partial statistics, skipping empty partitions (on a worker; the last
    level in the client)."""
    present = [p for p in parts if p is not None]
    return tree_sum(present) if present else None


_DURING_E_STEP = "an E-step; restart workers and resume the fit from its checkpoint"
_DURING_STREAM = "reading a partition for online EM; restart workers and fit again"


class DaskEngine(OneProcess):
    """Evaluates ``fn`` on every partition of a :class:`Partitioned` source on a Dask cluster."""

    def __init__(self, client, split_every: int = SPLIT_EVERY, no_workers_timeout: float = NO_WORKERS_TIMEOUT) -> None:
        self.client = client
        self.split_every = max(2, int(split_every))
        self.no_workers_timeout = no_workers_timeout
        self._shipped: dict[int, tuple[object, object]] = {}  # id(model) -> (model, its persisted key)

    # ------------------------------------------------------------------ set-up
    def check_workers(self, distribution: str = "bigem") -> None:
        """Every worker must import the same bigem as the client: name the ones that do not."""
        try:
            mine = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            mine = None
        found = self.client.run(importlib.metadata.version, distribution, on_error="return")
        if not found:
            raise ClusterError("the Dask cluster has no workers; start workers or wait for them before fitting")
        missing = {w: v for w, v in found.items() if isinstance(v, BaseException)}
        if missing:
            raise ClusterError(
                f"{distribution} is not installed on Dask worker(s) {sorted(missing)}: install the same version "
                f"as the client ({mine}) in every worker's environment (pip install {distribution})"
            )
        other = {w: v for w, v in found.items() if mine is not None and v != mine}
        if other:
            raise ClusterError(
                f"Dask worker(s) run {distribution} {sorted(set(other.values()))}, the client {mine} "
                f"(workers {sorted(other)}); install the same version everywhere"
            )

    def persist(self, source: Partitioned, fraction: float = PERSIST_FRACTION) -> Partitioned:
        """The source with its converted partitions held in worker memory when they fit;
        else the source itself, whose partitions the workers re-read every pass."""
        workers = self.client.scheduler_info()["workers"]
        limits = [w.get("memory_limit") or 0 for w in workers.values()]
        total = sum(limits)
        if any(m == 0 for m in limits) or source.nbytes() <= fraction * total:
            return source.with_partitions(self._spread(source.partitions, workers))
        return source

    def _spread(self, partitions: list, workers: dict) -> list:
        """The partitions persisted, an equal share of consecutive ones on each worker
        thread (loosely: Dask may recompute one elsewhere if its worker is lost). Left to
        itself, Dask may put three of four equal partitions on one of two workers, and
        every iteration then waits on that one (measured: 1.8x against 1.3x of the
        local engine for the HMM benchmark)."""
        slots = [addr for addr, w in sorted(workers.items()) for _ in range(max(1, int(w.get("nthreads", 1))))]
        if len(partitions) < 2 or len(slots) < 2:
            return list(self.client.persist(partitions))
        out = []
        n = len(partitions)
        for i, part in enumerate(partitions):
            home = slots[i * len(slots) // n]
            out.append(self.client.persist(part, workers=[home], allow_other_workers=True))
        return out

    # ------------------------------------------------------------------ streaming
    def stream(self, source: Partitioned) -> Iterator[Chunk]:
        """The chunks in row order through this process, for algorithms that step after
        every mini-batch (online EM): the workers read and convert each partition, the
        next one while this one is used (see ``DaskSource.chunks``). A cluster left
        without workers raises, as in :meth:`reduce`."""
        return source.chunks(wait=partial(self._wait, during=_DURING_STREAM))

    def sharing_cores(self, source: Partitioned):
        """Nothing to share: the workers decode, this process only computes."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ E-step
    def _model_key(self, model: object) -> object:
        """The cluster key holding (token, model): persisted the first time the model is
        named, then reused (the driver names the same model object every iteration)."""
        from dask import delayed

        held = self._shipped.get(id(model))
        if held is None or held[0] is not model:
            token = uuid.uuid4().hex
            key = self.client.persist(delayed((token, model), traverse=False, pure=False))
            held = self._shipped[id(model)] = (model, key)
        return held[1]

    def _wait(self, future, during: str = _DURING_E_STEP) -> Any:
        """The future's result; a cluster left without any worker for NO_WORKERS_TIMEOUT
        seconds (``no_workers_timeout``) raises instead of hanging (``during``: what was
        interrupted, and what to do); lost workers that come back are waited for."""
        return self._wait_all([future], during)[0]

    def _wait_all(self, futures: list, during: str = _DURING_E_STEP) -> list:
        """The futures' results, fetched together once all are done (one request, not
        one per future); a cluster without workers raises as :meth:`_wait` says."""
        from distributed import wait

        since = None
        while True:
            try:
                with self.client.as_current():  # wait() asks for the current client
                    wait(futures, timeout=min(2.0, self.no_workers_timeout))
                break
            except TimeoutError:
                if self.client.scheduler_info()["workers"]:
                    since = None
                    continue
                since = since or time.monotonic()
                if time.monotonic() - since > self.no_workers_timeout:
                    self.client.cancel(futures)
                    raise ClusterError(
                        f"the Dask cluster at {self.client.scheduler.address} has had no workers for "
                        f"{self.no_workers_timeout:g}s in the middle of {during}"
                    ) from None
        return self.client.gather(futures)

    def _payload(self, task: Task):
        """The task's arguments for the graph: inline in each partition's task when they
        are small (the parameters of most models: a few kB), so no worker waits to fetch
        them from another before it starts (measured: 2-6 ms an iteration on a
        LocalCluster); else one key, shipped once to each worker."""
        from dask import delayed

        payload = _Payload(tuple(task.args), dict(task.kwargs))
        if _nbytes(payload.args) + _nbytes(payload.kwargs) <= INLINE_BYTES:
            return payload
        return delayed(payload, traverse=False, pure=False)

    def map(self, task: Task, source: Partitioned) -> list:
        """The task's result for every chunk, in row order, each computed where its
        partition lives (per-row outputs of inference, which do not add up); only the
        results travel."""
        from dask import delayed

        held = self._model_key(task.model)
        payload = self._payload(task)
        parts = [
            delayed(_partition_results, pure=False)(held, task.method, payload, source.reader, part, start)
            for part, start in zip(source.partitions, source.row_starts)
        ]
        return [result for results in self._wait_all(self.client.compute(parts)) for result in results]

    def reduce(self, task: Task, source: Partitioned) -> Any:
        """The sum over all partitions of the task folded over their chunks."""
        held = self._model_key(task.model)
        held_futures = self._futures([held])
        futures = self._futures(source.partitions) if held_futures else None
        if not source.partitions:
            raise DataError("the Dask collection has no partitions with rows; pass at least one row")
        if futures is not None:
            level = self._submitted(task, held_futures[0], futures, source)
        else:
            level = self._graph(task, held, source)
        total = _combine(*self._wait_all(level))
        if total is None:
            raise DataError("the Dask collection yielded no rows; pass at least one row")
        return total

    @staticmethod
    def _futures(collections: list) -> list | None:
        """The future behind each persisted collection, or None if any is not one key
        held by the cluster (a lazy partition read again each pass)."""
        from distributed import futures_of

        out = []
        for c in collections:
            found = futures_of(c)
            if len(found) != 1 or found[0].key != getattr(c, "key", None):
                return None
            out.append(found[0])
        return out

    def _submitted(self, task: Task, held, futures: list, source: Partitioned) -> list:
        """The partition tasks submitted straight on the held partitions' futures: one
        message to the scheduler and no graph to build or optimise, which the client
        and the scheduler would otherwise do every iteration."""
        payload = self._payload(task)
        if not isinstance(payload, _Payload):
            payload = self.client.submit(_value, payload.compute(), pure=False)
        n = len(futures)
        level = self.client.map(_partition_stats, [held] * n, [task.method] * n, [payload] * n, [source.reader] * n,
                                futures, list(source.row_starts), pure=False)
        return self._tree(level, lambda parts: self.client.submit(_combine, *parts, pure=False))

    def _graph(self, task: Task, held, source: Partitioned) -> list:
        """The partition tasks as a graph over lazy partitions (read on the workers)."""
        from dask import delayed

        payload = self._payload(task)
        level = [
            delayed(_partition_stats, pure=False)(held, task.method, payload, source.reader, part, start)
            for part, start in zip(source.partitions, source.row_starts)
        ]
        return self.client.compute(self._tree(level, lambda parts: delayed(_combine, pure=False)(*parts)))

    def _tree(self, level: list, combine) -> list:
        """``level`` combined on the workers (``combine``: a task summing some of them)
        down to at most ``split_every`` partial sums, which the client adds: one task hop
        less per iteration than a last combine task on a worker (its transfers and
        dispatch cost about 8 ms an iteration on 2 shared cores, against 48 ms
        partitions), and the same sum in the same order, so the same bits."""
        while len(level) > self.split_every:
            k = self.split_every
            level = [combine(level[i : i + k]) for i in range(0, len(level), k)]
        return level


@contextlib.contextmanager
def session(client: object = None) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` on ``client`` (a ``distributed.Client``), a scheduler address,
    or, with None, a LocalCluster started for the block and closed after it: one
    single-threaded worker process per core, or, called from the top level of a script
    without an ``if __name__ == "__main__":`` guard (whose code worker processes would
    run again), one worker thread in this process."""
    config = require("dask.config", "the Dask engine")
    distributed = require("distributed", "the Dask engine")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    with contextlib.ExitStack() as stack:
        if client is None:
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's
            # adaptive mmap threshold: every large temporary of the E-step is then a fresh,
            # page-faulted mapping (docs/architecture.md, Speed). The embedded cluster leaves it unset
            # (see BENCHMARKS.md, Dask, for the measured difference).
            if _workers_would_rerun_the_script(config):
                # worker processes would run the caller's script again (spawn imports __main__), and
                # so start clusters of their own: a plain script without a __main__ guard. One
                # worker thread in this process computes the same fit; torch's threads share the cores.
                cluster = stack.enter_context(
                    LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                 silence_logs=40)
                )
            else:
                with config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    cluster = stack.enter_context(
                        LocalCluster(
                            n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=":0",
                            silence_logs=40,
                        )
                    )
            client = stack.enter_context(Client(cluster, set_as_default=False))
        elif isinstance(client, (str, os.PathLike)):
            address = os.fspath(client)
            timeout = config.get("distributed.comm.timeouts.connect")
            try:
                client = stack.enter_context(Client(address, timeout=timeout, set_as_default=False))
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(
                    f"could not reach a Dask scheduler at {address!r} within {timeout} ({type(exc).__name__}: "
                    f"{exc}); check the address and that the scheduler is running, or pass client=None to start "
                    "a local cluster"
                ) from None
        elif not hasattr(client, "scheduler_info") or not hasattr(client, "compute"):
            raise ClusterError(
                f"client must be a distributed.Client, a scheduler address such as 'tcp://host:8786', or None; "
                f"got {type(client).__name__}"
            )
        elif str(getattr(client, "status", "running")) in ("closing", "closed"):
            raise ClusterError(
                f"client= is {client.status} (its close() was called, or its cluster shut down); pass an open "
                "distributed.Client, the scheduler's address, or client=None to start a local cluster"
            )
        engine = DaskEngine(client)
        engine.check_workers()
        # the workers keep their freed memory for the fit's temporaries, and give it back after
        client.run(_adaptive_heap, True, on_error="return")
        stack.callback(_quietly, client.run, _adaptive_heap, False, on_error="return")
        yield engine


def _quietly(fn, *args, **kwargs) -> None:
    """``fn(*args, **kwargs)``, whatever it raises (tidying up a cluster that may be gone)."""
    with contextlib.suppress(Exception):
        fn(*args, **kwargs)


def _workers_would_rerun_the_script(config) -> bool:
    """Whether worker processes started now would run the calling script's code again.

    Python starts them by importing ``__main__`` afresh ("spawn", Dask's default), which
    re-runs a script's top level: a fit there, outside an ``if __name__ == "__main__":``
    block, would start clusters inside the workers ("Nanny failed to start"). True when
    ``__main__`` is a file and the call comes from one of its top-level statements other
    than such a guard; False for interactive sessions, notebooks, ``python -c`` and guarded code.
    """
    import sys

    if config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return False
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return False
    frame, line = sys._getframe(1), None
    while frame is not None:  # the outermost frame running the script's top level
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return False
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError):
        return False
    return not under_main_guard(source, line)


def under_main_guard(source: str, line: int) -> bool:
    """Whether ``line`` of a module's ``source`` lies inside a top-level ``if __name__ ==
    "__main__":`` block (which a re-import as ``__mp_main__`` skips)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True  # cannot tell: keep worker processes, Dask's default
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return isinstance(node, ast.If) and _is_main_test(node.test) and not any(
                n.lineno <= line <= (n.end_lineno or n.lineno) for n in node.orelse)
    return False


def _is_main_test(test) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    import ast

    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]
