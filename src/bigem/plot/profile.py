"""Profiles: per component, the probability of each word, the picture topic and
latent-class users read (a heatmap, components by words)."""

from __future__ import annotations

import os

import numpy as np

from .._core.errors import ParameterError
from ._common import check_path, new_figure, save

MAX_WORDS = 60  # columns an 800-pixel picture can label legibly


def profile_words(probabilities: np.ndarray, top: int) -> np.ndarray:
    """The columns of the picture: each component's ``top`` most probable words, component
    by component (a word already shown is not repeated), at most ``MAX_WORDS`` in all."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    seen: dict[int, None] = {}
    for row in order:
        for j in row.tolist():
            seen.setdefault(j, None)
    return np.fromiter(seen, dtype=np.int64)[:MAX_WORDS]


def plot_profile(estimator, path: str | os.PathLike, top: int | None = None, vocabulary=None,
                 title: str = "Component profiles") -> None:
    """Write a heatmap of a fitted mixture's word probabilities: one row per component
    (labelled with its weight), one column per word among each component's ``top`` most
    probable (default: as many as fit 60 columns, at most 10 per component).

    ``vocabulary``: the words' names, one per column of the fitted data (for example
    ``CountVectorizer.get_feature_names_out()``); default the model's
    ``feature_names_in_`` when it has them, else the word ids.
    """
    path = check_path(path)
    probs = getattr(estimator, "probabilities_", None)
    if probs is None or np.ndim(probs) != 2:
        raise ParameterError(
            f"plot_profile draws a fitted model's word probabilities (probabilities_ of shape (n_components, "
            f"n_words)); {type(estimator).__name__} has none: fit a MultinomialMixture first"
        )
    probs = np.asarray(probs, dtype=np.float64)
    K, V = probs.shape
    if top is None:
        top = max(1, min(10, MAX_WORDS // K))
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ParameterError(f"top must be an int >= 1 (words per component); got {top!r}")
    if vocabulary is None:
        vocabulary = getattr(estimator, "feature_names_in_", None)
    names = [str(j) for j in range(V)] if vocabulary is None else [str(w) for w in vocabulary]
    if len(names) != V:
        raise ParameterError(f"vocabulary has {len(names)} names, but the model has {V} words; pass one name per "
                             "word, in the columns' order")
    words = profile_words(probs, int(top))
    fig, ax = new_figure()
    shown = ax.imshow(probs[:, words], aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(np.arange(len(words)))
    ax.set_xticklabels([names[j] for j in words], rotation=90, fontsize=7 if len(words) > 30 else 9)
    weights = getattr(estimator, "weights_", None)
    ax.set_yticks(np.arange(K))
    ax.set_yticklabels([f"{k}" if weights is None else f"{k} ({float(weights[k]):.2f})" for k in range(K)],
                       fontsize=7 if K > 20 else 9)
    ax.set_ylabel("component (weight)")
    ax.set_xlabel("word")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="probability of the word in the component")
    save(fig, path)
