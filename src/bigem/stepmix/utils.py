"""``stepmix.utils``: the helpers StepMix users call: the descriptor of a table of mixed
columns, modal assignment, one-hot codes, the identified covariate coefficients, and the
report of a fit."""

from __future__ import annotations

import numpy as np

__all__ = ["get_mixed_descriptor", "identify_coef", "max_one_hot", "modal", "print_report"]


def get_mixed_descriptor(dataframe, **kwargs):
    """StepMix's mixed-model descriptor of a DataFrame: each keyword is a model name
    ('continuous', 'binary', 'categorical', their '_nan' versions, ...) and its list of
    columns. Returns (the DataFrame's columns in the descriptor's order, the nested
    descriptor {model: {'model': model, 'n_columns': len(columns)}}), for the
    ``measurement`` or ``structural`` argument of :class:`bigem.StepMix`."""
    descriptor, columns = {}, []
    for model, names in kwargs.items():
        columns += list(names)
        descriptor[model] = dict(model=model, n_columns=len(names))
    return dataframe[columns], descriptor


def modal(resp, clip=False):
    """The modal assignment of class probabilities ``resp`` (n, K): one-hot rows with a 1
    at each row's most probable class (the first where it ties); ``clip`` keeps them
    within [1e-15, 1 - 1e-15], as StepMix's does for logarithms."""
    resp = np.asarray(resp)
    out = np.zeros(resp.shape)
    out[np.arange(resp.shape[0]), resp.argmax(axis=1)] = 1.0
    return np.clip(out, 1e-15, 1 - 1e-15) if clip else out


def max_one_hot(array, max_n_outcomes=None, total_outcomes=None):
    """StepMix's one-hot codes of integer-coded categorical columns (n, D): (an array of
    D blocks of ``max_n_outcomes`` columns, block c holding column c's code as a 1 and a
    missing value as a block of NaN; ``max_n_outcomes``, the most categories of any
    column; ``total_outcomes``, the categories of all columns summed). The two counts
    are read from the data (the largest code + 1) unless both are given."""
    array = np.asarray(array, dtype=np.float64)
    n, D = array.shape
    if max_n_outcomes is None or total_outcomes is None:
        outcomes = np.nanmax(array, axis=0) + 1
        max_n_outcomes, total_outcomes = int(np.nanmax(outcomes)), int(np.sum(outcomes))
    out = np.zeros((n, D * max_n_outcomes))
    rows = np.arange(n)
    for c in range(D):
        gaps = np.isnan(array[:, c])
        codes = np.where(gaps, 0, array[:, c]).astype(int)
        out[rows, c * max_n_outcomes + codes] = 1.0
        out[gaps, c * max_n_outcomes:(c + 1) * max_n_outcomes] = np.nan
    return out, max_n_outcomes, total_outcomes


def identify_coef(coef):
    """Covariate coefficients (K, p) with a reference class: the row of the class whose
    second coefficient (the first slope) is the second smallest is subtracted from
    every row, in place, as StepMix identifies them; returns ``coef``."""
    reference = np.argsort(coef[:, 1])[1]
    coef -= coef[reference, :].reshape(1, -1)
    return coef


def print_report(model, X, Y=None, sample_weight=None, x_names=None, y_names=None):
    """Print StepMix's report of a fitted model on X (and Y) (:meth:`bigem.StepMix.report`),
    its columns named by ``x_names`` and ``y_names`` where given (else as fitted)."""
    given = {k: list(v) for k, v in (("x_names_", x_names), ("y_names_", y_names)) if v is not None}
    kept = {k: model.__dict__[k] for k in given if k in model.__dict__}
    model.__dict__.update(given)
    try:
        model.report(X, Y, sample_weight=sample_weight)
    finally:
        for k in given:
            model.__dict__.pop(k, None)
        model.__dict__.update(kept)
