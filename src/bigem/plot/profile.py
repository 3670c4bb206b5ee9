"""The profile of a latent class model: per component, the probability of each category
of each column (and of 1 for each binary column), as a heatmap; the picture that
latent-class users read."""

from __future__ import annotations

import os

import numpy as np

from .._core.errors import DataError
from ._common import check_path, new_figure, save

MAX_ROWS = 60  # (column, category) rows drawn at most; more would not be legible


def profile_table(estimator) -> tuple[list[str], np.ndarray]:
    """(a label per row, a (rows, K) array): P(column = category | component) for every
    category of every categorical column ('colour=red'), then P(x = 1 | component) for
    every binary column ('flag=1'), in the columns' order. A DataError for a model with
    neither (a Gaussian or Poisson mixture has no probabilities to show)."""
    names = getattr(estimator, "feature_names_in_", None)
    n = int(getattr(estimator, "n_features_in_", 0))
    cols = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(n)]
    families = getattr(estimator, "families_", None) or [_family(estimator)] * n
    categories = iter(getattr(estimator, "categories_", []))
    probabilities = iter(getattr(estimator, "probabilities_", []) if families.count("categorical") else [])
    binary = np.asarray(getattr(estimator, "bernoulli_probabilities_",
                                estimator.probabilities_ if _family(estimator) == "bernoulli" else np.zeros((0, 0))))
    labels, rows, b = [], [], 0
    for name, family in zip(cols, families):
        if family == "categorical":
            for c, p in zip(next(categories), np.asarray(next(probabilities)).T):
                labels.append(f"{name}={c}")
                rows.append(p)
        elif family == "bernoulli":
            labels.append(f"{name}=1")
            rows.append(binary[:, b])
            b += 1
    if not rows:
        raise DataError(f"a profile shows category and binary probabilities, and this {type(estimator).__name__} has "
                        "none; use a CategoricalMixture, BernoulliMixture or a MixedMixture with such columns")
    return labels, np.stack(rows)


def _family(estimator) -> str:
    return {"CategoricalMixture": "categorical", "BernoulliMixture": "bernoulli"}.get(type(estimator).__name__, "other")


def plot_profile(estimator, path: str | os.PathLike, title: str = "Latent class profile") -> None:
    """Write a heatmap of :func:`profile_table`: a row per (column, category), a column per
    component (headed by its weight), each cell's probability written in it when there is
    room. At most MAX_ROWS rows are drawn (the first ones; the title says so)."""
    path = check_path(path)
    labels, table = profile_table(estimator)
    shown = min(len(labels), MAX_ROWS)
    K = table.shape[1]
    fig, ax = new_figure()
    image = ax.imshow(table[:shown], aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks(range(shown), labels[:shown], fontsize=max(5, min(9, 400 // max(shown, 1))))
    weights = np.asarray(estimator.weights_)
    ax.set_xticks(range(K), [f"{k}\n({w:.2f})" for k, w in enumerate(weights)], fontsize=8)
    ax.set_xlabel("component (weight)")
    if shown * K <= 300:
        for i in range(shown):
            for k in range(K):
                v = table[i, k]
                ax.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="probability")
    ax.set_title(title if shown == len(labels) else f"{title} (first {shown} of {len(labels)} rows)")
    save(fig, path)
