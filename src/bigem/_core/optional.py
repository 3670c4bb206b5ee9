"""Optional dependencies: imported when a feature needs them, and when missing, one
error that names the feature, the package and the extra that installs it.

The library and the command line raise the same :class:`MissingDependencyError`, so
``plot_fit`` without matplotlib says what ``bigem plot`` says.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BigemError

# top-level module -> (the extra of bigem that installs it, the package pip installs)
EXTRAS: dict[str, tuple[str, str]] = {
    "matplotlib": ("plot", "matplotlib"),
    "pyarrow": ("files", "pyarrow"),
    "fsspec": ("remote", "fsspec"),
    "tqdm": ("progress", "tqdm"),
    "pandas": ("pandas", "pandas"),
    "dask": ("dask", "dask"),
    "distributed": ("dask", "dask.distributed"),
    "threadpoolctl": ("threads", "threadpoolctl"),
    "scipy": ("text", "scipy"),
    "numba": ("fast", "numba"),
}


class MissingDependencyError(BigemError, ImportError):
    """A feature needs an optional package that is not installed; the message says which
    extra installs it (an ImportError, so ``except ImportError`` catches it)."""


def install_hint(module: str, what: str) -> str:
    """'<what> needs <package>: pip install 'bigem[<extra>]'' for a top-level module name."""
    extra, package = EXTRAS[module.split(".")[0]]
    return f"{what} needs {package}: pip install 'bigem[{extra}]'"


def require(module: str, what: str) -> ModuleType:
    """``import module``, or :class:`MissingDependencyError` saying what needs it and the
    pip command. An ImportError from inside an installed package (a broken install)
    propagates as it is: the hint would be wrong."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise
        raise MissingDependencyError(install_hint(module, what)) from None
