"""What every bigem estimator shares with scikit-learn's BaseEstimator, without importing it.

scikit-learn is optional: get_params/set_params/clone/repr work without it, and its
estimator checks find our tags through ``__sklearn_tags__`` (imported lazily, since
only scikit-learn calls it).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Any, ClassVar

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from . import _params
from ._by_column import per_column_to_json

# Parameters that say where and how a fit runs, not what it computes: never part of a
# checkpoint's fingerprint, and ``client`` (a connection) is never written to a file.
EXECUTION_ONLY = ("verbose", "verbose_interval", "engine", "client", "memory_budget", "cache_budget", "device",
                  "warm_start", "random_state")


class EstimatorBase:
    """get_params / set_params / repr / tags in scikit-learn's conventions, and settings
    checked from the class's declared ``_constraints``."""

    _estimator_type = "density_estimator"
    _constraints: ClassVar[dict[str, _params.Constraint]] = {}
    # the hyper-parameters that shape the fitted parameters: changed after a fit, they
    # take effect at the next fit (as in scikit-learn); until then the fitted ones hold
    _structural: ClassVar[tuple[str, ...]] = ("n_components",)
    # fitted arrays some fits leave and others do not (attribute -> tensor name): a model
    # file keeps each one that is set, and loading sets the ones the file holds
    _kept_arrays: ClassVar[dict[str, str]] = {}
    # settings given per column (``_by_column``): a model file holds them as JSON text
    _per_column: ClassVar[tuple[str, ...]] = ()

    def _saved_array(self, attr: str):
        """The fitted array ``attr`` as a model file holds it (default: the attribute)."""
        return getattr(self, attr)

    def _arrays_kept(self) -> dict[str, str]:
        """The ``_kept_arrays`` a model file of this estimator holds now: those set."""
        return {attr: name for attr, name in self._kept_arrays.items() if hasattr(self, attr)}

    def _settings(self):
        """Every hyper-parameter checked (ParameterError naming the bad one), frozen."""

        def settle(values: dict) -> None:
            _params.check_stopping(values, type(self).__name__)
            _params.check_client(values, type(self).__name__)
            self._settle(values)

        return _params.settings(self, settle)

    def _remember_structure(self) -> None:
        """Record the structure the parameters now fitted have (at the end of a fit or load)."""
        s = self._settings()
        self._fit_structure_ = {name: getattr(s, name) for name in self._structural}

    def _inference_settings(self):
        """The settings predict, score, sample and save run with: the current ones, but the
        structure (n_components, ...) the fitted parameters have. A structural
        hyper-parameter changed by set_params after a fit takes effect at the next fit,
        as in scikit-learn, which keeps predicting with the fitted parameters."""
        s = self._settings()
        fitted = getattr(self, "_fit_structure_", None)
        return dataclasses.replace(s, **fitted) if fitted else s

    def _structure_changes(self, s) -> str:
        """'n_components is 5, but the fitted model's is 3' ('' if nothing changed): set since
        the fit, or the fitted arrays changed (a component pruned)."""
        fitted = getattr(self, "_fit_structure_", None) or {}
        changed = [f"{name} is {getattr(s, name)!r}, but the fitted model's is {fitted[name]!r}"
                   for name in self._structural if name in fitted and fitted[name] != getattr(s, name)]
        return " and ".join(changed)

    def _settle(self, values: dict) -> None:
        """Adjust checked values that depend on each other (default: none do)."""

    def _hyper_parameters(self, as_fitted: bool = True) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The constructor parameters as a model file holds them: JSON values, and arrays
        (initial parameters, array priors) as float64 tensors. A numpy scalar is its
        Python value; an object with ``saved_as`` is that; what a file cannot reproduce
        (a RandomState) is None; ``client``
        is left out: a file never says where to connect. ``as_fitted``: the structure
        (n_components, ...) the fitted parameters have, whatever set_params did since."""
        values: dict[str, Any] = {}
        arrays: dict[str, torch.Tensor] = {}
        params = self.get_params(deep=False)
        if as_fitted:
            params.update(getattr(self, "_fit_structure_", None) or {})
        for name, value in params.items():
            if name == "client":
                continue
            if isinstance(value, torch.dtype):
                values[name] = str(value).replace("torch.", "")
            elif isinstance(value, torch.device):
                values[name] = str(value)
            elif value is None or isinstance(value, (bool, int, float, str)):
                values[name] = value
            elif isinstance(value, (np.bool_, np.integer, np.floating)):
                values[name] = value.item()
            elif name in self._per_column:
                values[name] = per_column_to_json(value)
            elif _names_only(value):  # family names by column (a list, or a dict by column name): JSON text
                values[name] = list(value) if isinstance(value, (list, tuple)) else dict(value)
            elif isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
                arrays[name] = torch.as_tensor(np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value,
                                                          dtype=np.float64))
            else:  # an object that names its method (an HCTree: 'hc', rebuilt by a refit), else None
                values[name] = getattr(value, "saved_as", None)
        return values, arrays

    def _parts(self) -> list["EstimatorBase"]:
        """The fitted estimators this one is made of, saved beside it in its model file
        (a classifier's class densities); none for a single model."""
        return []

    def _restore_parts(self, state: dict, parts: list["EstimatorBase"]) -> None:
        """The fitted state of a composite estimator from its model file and its parts."""
        from .._core.errors import ModelFileError

        raise ModelFileError(f"a {type(self).__name__} is not made of parts, but the file lists {len(parts)}")

    def _fingerprint(self) -> dict[str, Any]:
        """The hyper-parameters that decide what a fit computes (checkpoints compare them)."""
        values, _ = self._hyper_parameters(as_fitted=False)
        found = {k: v for k, v in values.items() if k not in EXECUTION_ONLY}
        if "random_state" in values:  # an int seed decides the starts and re-seeds; a generator's state is its own
            seed = getattr(self, "random_state", None)
            if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
                found["random_state"] = int(seed)
            else:  # None, or only the kind of a RandomState / Generator
                found["random_state"] = None if seed is None else type(seed).__name__
        return found

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters and their current values; ``deep``: an estimator among
        them gives its own too, as ``name__param`` (scikit-learn's nesting, which
        ``set_params`` and a grid search over ``measurement__n_components`` read)."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update({f"{name}__{key}": inner for key, inner in value.get_params(deep=True).items()})
        return params

    # parameters that say how one process computes, not what: they may differ between the
    # processes of a torch.distributed group (device='cuda:1' on rank 1, a smaller budget)
    _per_process: ClassVar[tuple[str, ...]] = ("device", "memory_budget", "chunk_size", "cache_budget", "verbose",
                                              "verbose_interval", "client")

    def _group_settings(self) -> dict[str, tuple[str, str]]:
        """What every process of a torch.distributed group must be given alike: each
        parameter (but those of ``_per_process``) as (digest, short text), for the engine
        to compare when the processes open their data. A numpy RandomState or Generator
        counts by its type alone: the primary process's seeds them all
        (``_params.shared_state``)."""
        import hashlib

        seen = {}
        for name, value in self.get_params(deep=False).items():
            if name in self._per_process:
                continue
            if isinstance(value, (np.random.RandomState, np.random.Generator)):
                text = f"a numpy {type(value).__name__}"
                whole = text
            elif isinstance(value, (np.ndarray, torch.Tensor)):
                arr = np.ascontiguousarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
                text = f"an array of shape {arr.shape}"
                whole = f"{arr.dtype}{arr.shape}".encode() + arr.tobytes()
            else:
                text = whole = repr(value)
                if " at 0x" in text:  # an object shown by its address (a function): by its type
                    text = whole = f"a {type(value).__name__}"
            data = whole if isinstance(whole, bytes) else whole.encode()
            seen[name] = (hashlib.sha256(data).hexdigest()[:16], text if len(text) <= 60 else text[:57] + "...")
        return seen

    def set_params(self, **params):
        """Set constructor parameters, and a nested estimator's as ``name__param`` (set after
        the estimator itself, as scikit-learn sets them); unknown names raise with the
        valid ones listed."""
        valid = self._param_names()
        nested: dict[str, dict] = {}
        for name, value in params.items():
            outer, _, inner = name.partition("__")
            if outer not in valid or inner and not hasattr(params.get(outer, getattr(self, outer)), "set_params"):
                raise ParameterError(
                    f"Invalid parameter {name!r} for estimator {self!r}. "  # scikit-learn's words
                    f"Valid parameters are: {valid!r}."
                )
            if inner:
                nested.setdefault(outer, {})[inner] = value
            else:
                setattr(self, name, value)
        for outer, inner in nested.items():
            getattr(self, outer).set_params(**inner)
        return self

    def __repr__(self) -> str:
        """scikit-learn's: the parameters set apart from their defaults, by name, wrapped
        at 80 columns under the opening parenthesis."""
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name in self._param_names():
            default = sig.parameters[name].default
            value = getattr(self, name, default)
            if value is default or (_plain(value) and _plain(default) and value == default):
                continue
            shown.append(f"{name}={value!r}")
        return _wrapped(type(self).__name__, shown)

    def __sklearn_clone__(self):
        """scikit-learn's ``clone`` (an unfitted copy with the same parameters), except
        that a Dask ``client`` is shared, not deep-copied: a connection cannot be copied,
        and ``GridSearchCV`` or ``cross_val_score`` of an estimator on a cluster clones it."""
        from sklearn.base import clone

        import copy

        params = {name: value if name == "client" else clone(value, safe=False)
                  for name, value in self.get_params(deep=False).items()}
        out = type(self)(**params)
        if "_routing_requests" in self.__dict__:  # what was requested stays requested, as clone keeps it
            out._routing_requests = copy.deepcopy(self._routing_requests)
        return out

    # ------------------------------------------------------------------ metadata routing
    # scikit-learn's routing of metadata (sample_weight, lengths, ...) through Pipeline,
    # GridSearchCV or cross_validate, when sklearn.set_config(enable_metadata_routing=True):
    # each method's metadata are its parameters but the data (scikit-learn's rule), and
    # set_{method}_request records which of them the estimator wants.
    _ROUTED = ("fit", "partial_fit", "predict", "predict_proba", "score")
    # parameters a method takes that the reference's does not: not metadata, so that a
    # search routing sample_weight to fit runs as it does there (scikit-learn's mixtures
    # score unweighted; a weighted score is called by hand)
    _UNROUTED: ClassVar[dict[str, tuple[str, ...]]] = {"score": ("sample_weight",)}

    def _metadata(self, method: str) -> list[str]:
        import inspect

        fn = getattr(type(self), method, None)
        if not inspect.isfunction(fn):
            return []
        data = {"self", "X", "y", "Y", "Xt", "yt", *self._UNROUTED.get(method, ())}
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.name not in data and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def _request(self, method: str, requests: dict):
        from sklearn import get_config

        if not get_config().get("enable_metadata_routing", False):
            raise RuntimeError("This method is only available when metadata routing is enabled. You can enable it "
                               "using sklearn.set_config(enable_metadata_routing=True).")
        known = self._metadata(method)
        if set(requests) - set(known):
            raise TypeError(f"Unexpected args: {set(requests) - set(known)} in {method}. Accepted arguments are: "
                            f"{set(known)}")
        self.__dict__.setdefault("_routing_requests", {}).setdefault(method, {}).update(requests)
        return self

    def set_fit_request(self, **requests):
        """Which metadata ``fit`` takes when scikit-learn routes them (True, False, None or
        an alias), as scikit-learn's estimators take them; returns self."""
        return self._request("fit", requests)

    def set_partial_fit_request(self, **requests):
        """As :meth:`set_fit_request`, for ``partial_fit``."""
        return self._request("partial_fit", requests)

    def set_predict_request(self, **requests):
        """As :meth:`set_fit_request`, for ``predict``."""
        return self._request("predict", requests)

    def set_predict_proba_request(self, **requests):
        """As :meth:`set_fit_request`, for ``predict_proba``."""
        return self._request("predict_proba", requests)

    def set_score_request(self, **requests):
        """As :meth:`set_fit_request`, for ``score``."""
        return self._request("score", requests)

    def get_metadata_routing(self):
        """scikit-learn's MetadataRequest of this estimator: each method's metadata, with
        what ``set_{method}_request`` asked for (None, unrequested, by default)."""
        from sklearn.utils.metadata_routing import MetadataRequest

        request = MetadataRequest(owner=type(self).__name__)
        asked = self.__dict__.get("_routing_requests", {})
        for method in self._ROUTED:
            for name in self._metadata(method):
                getattr(request, method).add_request(param=name, alias=asked.get(method, {}).get(name))
        return request

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_params_")

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=False))
        tags.estimator_type = self._estimator_type  # scikit-learn's 'density_estimator' for the densities
        tags.input_tags.allow_nan = getattr(self, "missing_values", "error") == "fiml"
        tags.non_deterministic = False
        return tags

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_bigem_version"] = _version()
        return state

    def __deepcopy__(self, memo: dict):
        """A deep copy sharing ``client``, as :meth:`__sklearn_clone__` does: a connection to
        a cluster cannot be copied (a fitted model copied to hold other parameters, as
        StructuralModel's one step does, raised "cannot pickle '_asyncio.Task' object")."""
        client = self.__dict__.get("client")
        if client is not None:
            memo[id(client)] = client
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def __setstate__(self, state: dict) -> None:
        state.pop("_bigem_version", None)
        self.__dict__.update(state)


def check_positions(columns: list[str], fitted: list[str]) -> None:
    """``columns`` are read as the fitted features in their order: one that names a fitted
    feature at another position would be read as another feature (a DataError). Columns
    of other names map by position, for files whose columns are named otherwise."""
    moved = [c for i, c in enumerate(columns) if c in fitted and (i >= len(fitted) or fitted[i] != c)]
    if moved:
        raise DataError(
            f"columns {columns} name the model's features at other positions ({', '.join(map(repr, moved))}): each "
            f"column is read as the feature at its position, and the model was fitted on {fitted}; pass "
            f"columns={fitted} (or no columns, which reads the fitted names)"
        )


def writes_files(est) -> bool:
    """Whether this process writes the estimator's files: every process but those of a
    torch.distributed group other than its primary (rank 0), when the estimator runs in
    one (engine='torch')."""
    if getattr(est, "engine", None) != "torch":
        return True
    from ..engines.distributed import rank

    return rank() == 0


def _wrapped(name: str, items: list[str], width: int = 80) -> str:
    """``name(item, item, ...)`` as scikit-learn prints an estimator (pprint's compact
    layout): on one line where it fits within ``width``; else each item with its ", "
    goes on the line while it fits (the last with its ")"), else on a new line under the
    first; an item of several lines starts a line, and the next item starts another."""
    line = f"{name}({', '.join(items)})"
    if len(line) <= width:
        return line
    indent = " " * (len(name) + 1)
    full = width - len(indent) + 1
    out, room, delim = [name, "("], full, ""
    for i, item in enumerate(items):
        if i == len(items) - 1:
            full, room = full - 1, room - 1  # the closing parenthesis
        need = len(item) + 2
        if room < need:
            room = full
            delim = ",\n" + indent if delim else delim
        out += [delim, item]
        room -= need
        delim = ",\n" + indent if "\n" in item else ", "
    return "".join(out + [")"])


def _plain(value) -> bool:
    return isinstance(value, (int, float, str, bool, type(None)))


def _version() -> str:
    from .. import __version__

    return __version__


def _names_only(value: object) -> bool:
    """A non-empty list of strings, or a dict from strings to strings: hyper-parameters a
    model file holds as JSON (a dict keyed by position is left out: JSON would make its
    keys strings, which name columns)."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(isinstance(v, str) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return False
