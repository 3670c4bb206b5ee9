"""``stepmix.utils``: the helper that describes a table of mixed columns."""

from __future__ import annotations

__all__ = ["get_mixed_descriptor"]


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
