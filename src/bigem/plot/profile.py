"""Profiles: per component, the probability of each category of each column (latent
class models, binary columns as 'column=1'), or of its most probable words (multinomial
models), as one heatmap; the picture latent-class and topic users read.

One table, one drawing: :func:`profile_table` gives a row per shown item (a
'column=category' or a word) and a column per component, whatever the family.
"""

from __future__ import annotations

import os

import numpy as np

from .._core.errors import ParameterError
from ._common import check_path, new_figure, not_fitted, save

MAX_ROWS = 60  # rows (categories or words) drawn at most; more would not be legible
MAX_WORDS = MAX_ROWS  # a word profile's rows at most

# the families whose fitted probabilities a profile shows
_FAMILIES = {"CategoricalMixture": "categorical", "BernoulliMixture": "bernoulli", "MixedMixture": "mixed",
             "MultinomialMixture": "multinomial"}


def has_profile(estimator) -> bool:
    """Whether the estimator's family has a profile (categories, binary columns or words)."""
    return type(estimator).__name__ in _FAMILIES


def profile_words(probabilities: np.ndarray, top: int) -> np.ndarray:
    """The words of a word profile: each component's ``top`` most probable words,
    component by component (a word already shown is not repeated), at most
    ``MAX_WORDS`` in all."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    seen: dict[int, None] = {}
    for row in order:
        for j in row.tolist():
            seen.setdefault(j, None)
    return np.fromiter(seen, dtype=np.int64)[:MAX_WORDS]


def profile_table(estimator, top: int | None = None, vocabulary=None) -> tuple[list[str], np.ndarray]:
    """(a label per row, a (rows, K) array) of a fitted model's probabilities.

    Latent class models (CategoricalMixture, BernoulliMixture, MixedMixture):
    P(column = category | component) for every category of every categorical column
    ('colour=red'), then P(x = 1 | component) for every binary column ('flag=1'), in the
    columns' order. A MultinomialMixture: the probability of each word of
    :func:`profile_words` (``top`` per component; default as many as fit 60 rows, at
    most 10 per component), named by ``vocabulary`` (one name per column of the fitted
    data; default ``feature_names_in_``, else the word ids). A ParameterError for a
    model with no such probabilities, a NotFittedError for one not fitted.
    """
    name = type(estimator).__name__
    family = _FAMILIES.get(name)
    if family is None:
        raise ParameterError(
            f"plot_profile draws a fitted model's probabilities of categories, binary columns or words, and this {name} "
            "has none: use a CategoricalMixture, BernoulliMixture, MixedMixture (with such columns) or MultinomialMixture"
        )
    probs = getattr(estimator, "probabilities_", None)
    if probs is None or getattr(estimator, "weights_", None) is None:
        raise not_fitted(estimator)
    if family != "multinomial":
        if top is not None or vocabulary is not None:
            raise ParameterError("top= and vocabulary= choose the words of a MultinomialMixture's profile; a latent "
                                 f"class profile shows every category of a {name}: drop them")
        return _latent_class_table(estimator, family)
    return _word_table(estimator, np.asarray(probs, dtype=np.float64), top, vocabulary)


def _latent_class_table(estimator, family: str) -> tuple[list[str], np.ndarray]:
    names = getattr(estimator, "feature_names_in_", None)
    n = int(getattr(estimator, "n_features_in_", 0))
    cols = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(n)]
    families = getattr(estimator, "families_", None) or [family] * n
    categories = iter(getattr(estimator, "categories_", []))
    probabilities = iter(getattr(estimator, "probabilities_", []) if families.count("categorical") else [])
    binary = np.asarray(getattr(estimator, "bernoulli_probabilities_",
                                estimator.probabilities_ if family == "bernoulli" else np.zeros((0, 0))))
    labels, rows, b = [], [], 0
    for col, fam in zip(cols, families):
        if fam == "categorical":
            for c, p in zip(next(categories), np.asarray(next(probabilities)).T):
                labels.append(f"{col}={c}")
                rows.append(p)
        elif fam == "bernoulli":
            labels.append(f"{col}=1")
            rows.append(binary[:, b])
            b += 1
    if not rows:
        raise ParameterError(f"a profile shows category and binary probabilities, and this {type(estimator).__name__} "
                             "has none: give it categorical or binary columns, or use a CategoricalMixture or "
                             "BernoulliMixture")
    return labels, np.stack(rows)


def _word_table(estimator, probs: np.ndarray, top: int | None, vocabulary) -> tuple[list[str], np.ndarray]:
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
    return [names[j] for j in words], probs[:, words].T


def plot_profile(estimator, path: str | os.PathLike, top: int | None = None, vocabulary=None,
                 title: str | None = None) -> None:
    """Write a heatmap of :func:`profile_table`: a row per category (latent class models)
    or word (a MultinomialMixture; ``top`` and ``vocabulary`` as there), a column per
    component headed by its weight, each cell's probability written in it when there is
    room. At most MAX_ROWS rows are drawn (the first ones; the title says so). Nothing is
    written when the model or the arguments are refused."""
    path = check_path(path)
    labels, table = profile_table(estimator, top, vocabulary)
    words = type(estimator).__name__ == "MultinomialMixture"
    title = title or ("Component profiles" if words else "Latent class profile")
    shown = min(len(labels), MAX_ROWS)
    K = table.shape[1]
    fig, ax = new_figure()
    # categories: probabilities on one 0-1 scale; words: each is small, the scale is theirs
    vmax = float(table[:shown].max()) if words else 1.0
    image = ax.imshow(table[:shown], aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax or 1.0, interpolation="nearest")
    ax.set_yticks(range(shown), labels[:shown], fontsize=max(5, min(9, 400 // max(shown, 1))))
    weights = np.asarray(estimator.weights_)
    ax.set_xticks(range(K), [f"{k}\n({w:.2f})" for k, w in enumerate(weights)], fontsize=8 if K <= 20 else 6)
    ax.set_xlabel("component (weight)")
    ax.set_ylabel("word" if words else "column=category")
    if shown * K <= 300:
        for i in range(shown):
            for k in range(K):
                v = table[i, k]
                ax.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.6 * vmax else "black")
    fig.colorbar(image, ax=ax, label="probability of the word in the component" if words else "probability")
    ax.set_title(title if shown == len(labels) else f"{title} (first {shown} of {len(labels)} rows)")
    save(fig, path)
