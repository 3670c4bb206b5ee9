"""2-D and higher: the rows coloured by cluster, with each component's 1- and 2-sigma ellipse.

For more than two features the picture shows a chosen pair of columns or the plane of
the first two principal axes of the fitted mixture's overall covariance (computed
from the parameters, so it costs no pass over the data). Both views are linear maps
``y = A (x - c)``, so each component's ellipse is that of ``N(A (mu - c), A Sigma A^T)``,
drawn exactly.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from .._core.errors import DataError, ParameterError
from ..estimators.selection import full_covariances
from ._common import (MAX_POINTS, check_fitted, check_path, feature_label, gaussian_mixture_only, model_rows,
                      new_figure, save)


def projection(estimator, columns: Sequence[int | str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(A of shape (2, D), centre c of shape (D,), two axis labels) for the chosen view."""
    K, D = estimator.means_.shape
    if columns is not None:
        idx = [_column_index(estimator, c) for c in columns]
        if len(idx) != 2 or idx[0] == idx[1]:
            raise ParameterError(f"columns (--pair on the command line) must name two different columns; "
                                 f"got {list(columns)!r}")
        A = np.zeros((2, D))
        A[0, idx[0]] = A[1, idx[1]] = 1.0
        return A, np.zeros(D), [feature_label(estimator, j) for j in idx]
    if D == 2:
        return np.eye(2), np.zeros(2), [feature_label(estimator, 0), feature_label(estimator, 1)]
    w, mu = estimator.weights_, estimator.means_
    centre = w @ mu
    d = mu - centre
    total = np.einsum("k,kij->ij", w, full_covariances(estimator)) + np.einsum("k,ki,kj->ij", w, d, d)
    vals, vecs = np.linalg.eigh(total)
    order = np.argsort(vals)[::-1][:2]
    share = vals[order] / vals.sum()
    # sign convention: the largest loading of each axis is positive (stable pictures)
    A = vecs[:, order].T
    A *= np.sign(A[np.arange(2), np.abs(A).argmax(1)])[:, None]
    return A, centre, [f"principal axis {i + 1} ({s:.0%} of variance)" for i, s in enumerate(share)]


def _column_index(estimator, c) -> int:
    D = estimator.means_.shape[1]
    names = getattr(estimator, "feature_names_in_", None)
    if isinstance(c, str) and not c.lstrip("-").isdigit():
        if names is None or c not in list(names):
            known = list(names) if names is not None else f"indices 0..{D - 1} (the model has no column names)"
            raise ParameterError(f"unknown column {c!r}; known columns: {known}")
        return list(names).index(c)
    j = int(c)
    if not 0 <= j < D:
        raise ParameterError(f"column index {j} is out of range; the model has {D} columns (0..{D - 1})")
    return j


def plot_clusters(
    estimator,
    X,
    path: str | os.PathLike,
    title: str = "Gaussian mixture clusters",
    *,
    columns: Sequence[int | str] | None = None,
    max_points: int | None = MAX_POINTS,
    seed: int = 0,
) -> None:
    """Write a scatter of (a uniform sample of at most ``max_points``) rows of X, coloured
    by their most likely component, with each component's mean and 1- and 2-sigma ellipses."""
    path = check_path(path)
    gaussian_mixture_only(estimator, "plot_clusters")
    check_fitted(estimator, "means_")
    K, D = estimator.means_.shape
    if D < 2:
        raise DataError("plot_clusters needs at least 2 features; use plot_density_1d for a 1-feature model")
    A, centre, labels = projection(estimator, columns)
    x = model_rows(estimator, X, max_points, seed)
    if x.shape[1] != D:
        raise DataError(f"X has {x.shape[1]} columns, but the model has {D} features")
    with warnings.catch_warnings():  # x is a plain array whatever X was; model_rows checked its names
        warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
        cluster = estimator.predict(x)
    y = (x - centre) @ A.T
    means = (estimator.means_ - centre) @ A.T
    covs = A @ full_covariances(estimator) @ A.T  # (K, 2, 2)

    from matplotlib.patches import Ellipse

    fig, ax = new_figure()
    colours = _colours(K)
    size = max(2.0, min(20.0, 4000.0 / len(y)))
    for k in range(K):
        sel = cluster == k
        ax.scatter(y[sel, 0], y[sel, 1], s=size, color=colours[k], alpha=0.45, linewidths=0,
                   label=f"component {k} (w={estimator.weights_[k]:.2f}, {sel.sum():,} rows shown)")
    for k in range(K):
        vals, vecs = np.linalg.eigh(covs[k])
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        for n_sigma, style in ((1, "-"), (2, "--")):
            width, height = 2 * n_sigma * np.sqrt(np.maximum(vals[::-1], 0))
            ax.add_patch(Ellipse(means[k], width, height, angle=angle, fill=False, color=colours[k],
                                 lw=2.0 if n_sigma == 1 else 1.2, ls=style))
        ax.plot(*means[k], marker="X", ms=10, color=colours[k], mec="black")
    ax.plot([], [], color="0.3", lw=2.0, ls="-", label="1 sigma ellipse")
    ax.plot([], [], color="0.3", lw=1.2, ls="--", label="2 sigma ellipse")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    shown = f"{len(y):,} rows" + (" (uniform sample)" if max_points is not None and len(y) == max_points else "")
    ax.set_title(f"{title}\n{shown}, coloured by most likely component", fontsize=11)
    # beyond ten components the legend would cover the points: it goes beside them
    where = dict(loc="best") if K <= 10 else dict(loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.legend(fontsize=8, markerscale=max(1.0, 8 / size), **where)
    ax.autoscale_view()
    save(fig, path)


def _colours(K: int) -> list:
    """A colour per component, none repeated: matplotlib's ten-colour cycle, then the
    twenty of 'tab20', then evenly spaced hues of 'turbo'."""
    if K <= 10:
        return [f"C{k}" for k in range(K)]
    import matplotlib

    if K <= 20:
        return [matplotlib.colormaps["tab20"](k) for k in range(K)]
    return [matplotlib.colormaps["turbo"](t) for t in np.linspace(0.0, 1.0, K)]
