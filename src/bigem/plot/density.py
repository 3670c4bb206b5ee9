"""1-D mixture picture: histogram of the data with each weighted component density and their sum."""

from __future__ import annotations

import os

import numpy as np

from .._core.errors import DataError
from ..estimators.selection import full_covariances
from ._common import (MAX_POINTS, check_fitted, check_path, feature_label, gaussian_mixture_only, model_rows,
                      new_figure, save)


def component_variances_1d(estimator) -> np.ndarray:
    """(K,) variances of a fitted 1-D mixture, whatever its covariance type."""
    return full_covariances(estimator)[:, 0, 0]


def plot_density_1d(
    estimator,
    X,
    path: str | os.PathLike,
    title: str = "Gaussian mixture fit",
    *,
    bins: int | str = "auto",
    max_points: int | None = MAX_POINTS * 10,
) -> None:
    """Write a PNG/SVG (by extension) of a fitted 1-D mixture over the histogram of X.

    Each component is drawn as ``w_k N(x | mu_k, var_k)`` and the black curve is their sum,
    the mixture density; both are on the histogram's density scale.
    """
    path = check_path(path)
    gaussian_mixture_only(estimator, "plot_density_1d")
    check_fitted(estimator, "means_")
    if estimator.means_.shape[1] != 1:
        raise DataError(f"plot_density_1d needs a 1-feature model; this one has {estimator.means_.shape[1]} features")
    x = model_rows(estimator, X, max_points, 0)
    if x.shape[1] != 1:
        raise DataError(f"X has {x.shape[1]} columns, but the model has 1 feature")
    x = x[:, 0]
    means, var, w = estimator.means_[:, 0], component_variances_1d(estimator), estimator.weights_
    sd = np.sqrt(var)
    lo, hi = min(x.min(), (means - 3 * sd).min()), max(x.max(), (means + 3 * sd).max())
    pad = 0.05 * (hi - lo or 1.0)
    grid = np.linspace(lo - pad, hi + pad, 800)
    dens = w[:, None] * np.exp(-0.5 * (grid - means[:, None]) ** 2 / var[:, None]) / np.sqrt(2 * np.pi * var[:, None])
    fig, ax = new_figure()
    ax.hist(x, bins=bins, density=True, color="0.85", edgecolor="0.6", label=f"data ({len(x):,} rows)")
    ax.plot(grid, dens.sum(0), color="black", lw=2.5, alpha=0.7, label="mixture density (sum)")
    for k, d in enumerate(dens):
        label = f"component {k}: w={w[k]:.2f}, mean={means[k]:.3g}, sd={sd[k]:.3g}"
        (line,) = ax.plot(grid, d, lw=1.6, ls="--", label=label)
        ax.fill_between(grid, d, color=line.get_color(), alpha=0.12)
    ax.set_xlabel(feature_label(estimator, 0))
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    save(fig, path)
