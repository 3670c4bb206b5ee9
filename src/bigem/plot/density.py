"""1-D mixture picture: histogram of the data with each weighted component density and their sum."""

from __future__ import annotations

import os

import numpy as np


def plot_density_1d(estimator, X, path: str | os.PathLike, title: str = "Gaussian mixture fit") -> None:
    """Write a PNG/SVG (by extension) of a fitted 1-D mixture over the histogram of X."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = np.asarray(X, dtype=np.float64).reshape(-1)
    grid = np.linspace(x.min() - 1.0, x.max() + 1.0, 600)
    means = estimator.means_[:, 0]
    var = np.asarray(estimator.covariances_, dtype=np.float64).reshape(len(means), -1)[:, 0]
    if estimator.covariance_type == "tied":
        var = np.full(len(means), float(np.asarray(estimator.covariances_).reshape(-1)[0]))
    dens = estimator.weights_[:, None] * np.exp(-0.5 * (grid - means[:, None]) ** 2 / var[:, None]) / np.sqrt(
        2 * np.pi * var[:, None]
    )
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.hist(x, bins=40, density=True, color="0.85", edgecolor="0.6", label="data")
    ax.plot(grid, dens.sum(0), color="black", lw=3, alpha=0.45, label="mixture density (sum)")
    for k, d in enumerate(dens):
        label = f"component {k}: w={estimator.weights_[k]:.2f}, mu={means[k]:.2f}, var={var[k]:.2f}"
        (line,) = ax.plot(grid, d, lw=1.6, ls="--", label=label)
        ax.fill_between(grid, d, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    tmp = f"{os.fspath(path)}.partial{os.path.splitext(os.fspath(path))[1]}"
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
