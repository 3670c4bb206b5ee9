"""What every picture shares: a headless figure of a known pixel size, an atomic save,
and a bounded sample of the data."""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

from .._core.errors import DataError, ParameterError
from .._core.optional import require
from ..io.files import check_output_path, write_atomically

FORMATS = (".png", ".svg")
FIGSIZE = (8.0, 6.0)  # inches
DPI = 100  # PNG pixels per inch: an 800 x 600 image
MAX_POINTS = 20_000


def check_path(path: str | os.PathLike) -> str:
    """The output path, checked before any drawing (``io.files``): .png or .svg; and
    matplotlib, which drawing needs, installed (else one line saying how)."""
    path = check_output_path(path, FORMATS, what="picture")
    require("matplotlib", "pictures")
    return path


def check_fitted(estimator, attribute: str) -> None:
    """NotFittedError (scikit-learn's where it is imported) for a model without the
    fitted ``attribute`` a picture reads, before anything is drawn."""
    if not hasattr(estimator, attribute):
        raise not_fitted(estimator)


def gaussian_mixture_only(estimator, picture: str) -> None:
    """ParameterError for a model that is no Gaussian mixture, naming the picture it has:
    the pictures of components over the data read a mixture's means and covariances."""
    from ..estimators import BayesianGaussianMixture, GaussianMixture

    if not isinstance(estimator, (GaussianMixture, BayesianGaussianMixture)):
        name, library = type(estimator).__name__, type(estimator).__module__.split(".")[0]
        if library != "bigem":  # (scikit-learn's GaussianMixture, say)
            raise ParameterError(f"{picture} draws bigem's mixtures, and this is {library}'s {name}: fit "
                                 f"bigem.{name if name.endswith('GaussianMixture') else 'GaussianMixture'} instead "
                                 "(the same parameters)")
        instead = ("plot_convergence (its monitor_.history)" if hasattr(estimator, "n_iter")
                   else "plot_profile (each component's probabilities) or plot_convergence")
        raise ParameterError(
            f"{picture} draws a Gaussian mixture's densities over the data, and {name} is not one: use {instead}")


def not_fitted(estimator) -> Exception:
    """The NotFittedError that says ``estimator`` must be fitted before it is drawn."""
    from .._core.errors import not_fitted_error

    return not_fitted_error(f"This {type(estimator).__name__} instance is not fitted yet: call fit before drawing it")


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or MissingDependencyError."""
    matplotlib = require("matplotlib", "pictures")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(figsize: tuple[float, float] = FIGSIZE):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize, dpi=DPI)
    return fig, ax


def save(fig, path: str) -> None:
    """Write the figure atomically (``io.files``) and close it."""
    plt = pyplot()
    ext = os.path.splitext(path)[1].lower()
    try:
        fig.tight_layout()
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format=ext[1:]))
    finally:
        plt.close(fig)


def model_rows(estimator, X, max_points: int | None = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """:func:`as_rows` of X as the estimator's ``predict`` reads it: a data frame's columns
    checked against the fitted names by predict's rules (another order or other names
    are a DataError; every fitted column and more, such as an id, reads the fitted
    ones), so that no point is drawn on another feature's axis."""
    from ..sources.frames import frame_columns, native_frame

    from ..estimators._npy_columns import to_read
    from ..sources import Files

    indices = to_read(estimator, X, None)  # a model fitted on a .npy file's columns by index: those
    if indices is not None:
        X = dataclasses.replace(X, columns=indices) if isinstance(X, Files) else Files(X, columns=indices)
    check = getattr(estimator, "_check_features", None)
    if check is not None and frame_columns(X) is not None:
        with warnings.catch_warnings():  # a frame beside a model fitted on an array: read by position
            warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
            fitted = check(X)
        if fitted is not None:
            X = native_frame(X)[fitted]
    return as_rows(X, max_points, seed, getattr(estimator, "feature_names_in_", None))


def as_rows(X, max_points: int | None = MAX_POINTS, seed: int = 0, names=None) -> np.ndarray:
    """X as a float64 (n, D) array of at most ``max_points`` rows, drawn uniformly without
    replacement when X has more. X: an array, tensor or DataFrame, or anything
    :class:`bigem.GaussianMixture` reads (files, folders, globs, Source objects), of which
    only the sampled rows are read; ``names`` picks a file's columns (the model's)."""
    from ..sources import is_file_input, is_source

    if is_file_input(X) or is_source(X):
        return _file_rows(X, max_points, seed, names)
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    elif hasattr(X, "to_numpy"):
        X = X.to_numpy()
    X = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"expected data of shape (n_samples, n_features) with at least one row; got shape {X.shape}")
    X = X[_sample(X.shape[0], max_points, seed)]
    return _finite(np.asarray(X, dtype=np.float64))


def _sample(n: int, max_points: int | None, seed: int) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def _file_rows(X, max_points: int | None, seed: int, names) -> np.ndarray:
    import torch

    from ..sources import open_source

    path = os.fspath(X) if isinstance(X, (str, os.PathLike)) else None
    columns = None if names is None or (path is not None and path.lower().endswith(".npy")) else [str(n) for n in names]
    source = open_source(X, dtype=torch.float64, device=torch.device("cpu"), memory_budget=64 << 20, columns=columns)
    rows = _sample(source.n_rows, max_points, seed)
    return _finite(source.take(torch.from_numpy(rows)).double().cpu().numpy())


def _finite(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise DataError("data contain NaN or infinity; drop or impute them before plotting")
    return x


def feature_label(estimator, j: int) -> str:
    names = getattr(estimator, "feature_names_in_", None)
    return str(names[j]) if names is not None else f"column {j}"
