"""partial_fit's running state in a model file, so that ``partial_fit`` after ``load``
goes on as it would have in the estimator that was saved.

The state is the running statistics (a tree of bigem's statistics dataclasses, tensors,
numbers and tuples), the steps taken, the shift of its coordinates, the weight seen and
a full step's batch weight.
Tensors are written as ``online.<path>``; the tree's shape as JSON. Reading rebuilds
only bigem's own statistics dataclasses, named by module and class: a model file stays
data, never instructions. A field that holds a dict is a memo of derived values
(``SparseRows.memo``): it is not written, and comes back empty. A tree holding
anything else is not written; ``partial_fit`` after ``load`` then starts its running
average afresh.

A model file holds no row of the data: the re-seeding candidates the state keeps (a
``Lowest``, the worst-explained rows seen) are written empty, and ``partial_fit`` after
``load`` gathers them again from its batches. It goes on as the saved estimator would
until a component empties: the saved one re-seeds it at the worst rows seen since its
fit began, the loaded one at the worst of its batches since ``load`` (a file that could
be shared held K rows of the training data).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any

import torch
from torch import Tensor

from .._core.errors import ModelFileError
from .._core.stats import Lowest
from ..em.online import OnlineState

PREFIX = "online."
# the modules whose dataclasses a file may name: the models' statistics and their parts
# (the worst-explained rows, sparse for a text model)
_MODULES = ("bigem.models.", "bigem._core.stats", "bigem._core.sparse")


class _Unsupported(Exception):
    """The tree holds something a model file does not carry."""


def record(state: OnlineState) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """(tensors, JSON) of ``state``, or None when its statistics cannot be written."""
    if state.running is None:
        return None
    tensors: dict[str, Tensor] = {}
    try:
        tree = _encode(state.running, "running", tensors)
    except _Unsupported:
        return None
    if state.shift is not None:
        tensors["shift"] = state.shift.detach().to("cpu", torch.float64).contiguous()
    meta = {"running": tree, "steps": int(state.steps), "seen_weight": float(state.seen_weight),
            "data_weight": None if state.data_weight is None else float(state.data_weight),
            "seen": sorted(state.seen), "shift": state.shift is not None, "batch_weight": float(state.batch_weight),
            "batch_size": int(state.batch_size)}
    return {PREFIX + name: value for name, value in tensors.items()}, meta


def revive(meta: Any, tensors: dict[str, Tensor], where: str) -> OnlineState:
    """The state :func:`record` wrote (its parameters are set by the first ``partial_fit``:
    the fitted ones, in the state's coordinates); ModelFileError for a damaged one."""
    own = {name[len(PREFIX):]: value for name, value in tensors.items() if name.startswith(PREFIX)}
    try:
        running = _decode(meta["running"], own)
        steps, seen_weight = int(meta["steps"]), float(meta["seen_weight"])
        data_weight = meta["data_weight"]
        shift = own["shift"] if meta["shift"] else None
        if steps < 1 or not math.isfinite(seen_weight) or seen_weight <= 0:
            raise ValueError(f"steps {steps}, seen weight {seen_weight}")
        seen = {str(s) for s in meta["seen"]}
        # older files lack it: the mean weight of the batches seen
        batch_weight = float(meta.get("batch_weight", seen_weight / steps))
        batch_size = meta.get("batch_size", 0)  # 0: W holds for the next batch_size
        if not math.isfinite(batch_weight) or batch_weight < 0 or not isinstance(batch_size, int) or batch_size < 0:
            raise ValueError(f"batch weight {batch_weight}, batch size {batch_size!r}")
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ImportError) as exc:
        raise ModelFileError(f"{where}: invalid online state ({type(exc).__name__}: {exc}); the file is damaged") from None
    for name, value in own.items():
        # the worst-explained rows are rows of the data: with missing values, NaN marks their gaps
        gaps = name.endswith("worst.rows")
        if value.is_floating_point() and not gaps and bool(torch.isnan(value).any()):
            raise ModelFileError(f"{where}: the online state's {name} holds NaN; the file is damaged")
    return OnlineState(None, running=running, steps=steps, shift=shift, seen=seen, seen_weight=seen_weight,
                       data_weight=None if data_weight is None else float(data_weight), batch_weight=batch_weight,
                       batch_size=batch_size)


def _encode(value: Any, path: str, tensors: dict[str, Tensor]) -> Any:
    if isinstance(value, Lowest) and value.values.shape[0]:  # rows of the data: written without them
        value = Lowest(value.values[:0], value.rows[:0], value.m, value.places[:0])
    if isinstance(value, Tensor):
        # a model file holds float64, float32 and int64 tensors: others go as one of those
        kept = value.dtype in (torch.float64, torch.float32, torch.int64)
        stored = value if kept else value.double() if value.is_floating_point() else value.long()
        tensors[path] = stored.detach().to("cpu").contiguous()
        return {"tensor": path} if kept else {"tensor": path, "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).replace("torch.", "")}
    if value is None or isinstance(value, (bool, int, str)):
        return {"value": value}
    if isinstance(value, float):
        return {"float": repr(value)}  # inf and nan too, which JSON lacks
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    cls = type(value)
    if dataclasses.is_dataclass(value) and cls.__module__.startswith(_MODULES):
        return {"class": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: _encode(getattr(value, f.name), f"{path}.{f.name}", tensors)
                           for f in dataclasses.fields(value) if f.default_factory is not dict}}
    raise _Unsupported(cls.__name__)


def _decode(node: Any, tensors: dict[str, Tensor]) -> Any:
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"unexpected entry {node!r}")
    if "tensor" in node:
        value = tensors[node["tensor"]]
        return value.to(_dtype(node["dtype"])) if "dtype" in node else value
    if "dtype" in node:
        return _dtype(node["dtype"])
    if "value" in node:
        if not (node["value"] is None or isinstance(node["value"], (bool, int, str))):
            raise ValueError(f"unexpected value {node['value']!r}")
        return node["value"]
    if "float" in node:
        return float(node["float"])
    if "tuple" in node:
        return tuple(_decode(v, tensors) for v in node["tuple"])
    module, _, name = str(node["class"]).partition(":")
    if not module.startswith(_MODULES):
        raise ValueError(f"class {node['class']!r} is not one of bigem's statistics")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"{node['class']!r} is not one of bigem's statistics")
    fields = node["fields"]  # a field added since the file was written takes its default
    return cls(**{f.name: _decode(fields[f.name], tensors) for f in dataclasses.fields(cls)
                  if f.default_factory is not dict and (f.name in fields or not _has_default(f))})


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _dtype(name: Any) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name!r} is no dtype")
    return dtype
