"""Where rows come from: arrays, tensors, DataFrames, Parquet/CSV/Arrow/.npy files, as
validated chunks. I/O only: sources know no model and no engine.

:func:`open_source` (``inputs``) is the one entry point the estimators use: it accepts
whatever a user passes as X, converts and validates it, and returns a :class:`Source`.
"""

from .._core.types import Source
from .arrays import TensorSource
from .inputs import (
    Files,
    check_sample_weight,
    describe_input,
    feature_names_of,
    has_column_names,
    input_files,
    is_file_input,
    is_source,
    open_source,
    sequence_lengths,
    validate_finite,
)
from .npy import NpySource

__all__ = [
    "Files",
    "Source",
    "TensorSource",
    "NpySource",
    "open_source",
    "check_sample_weight",
    "feature_names_of",
    "describe_input",
    "is_file_input",
    "has_column_names",
    "is_source",
    "input_files",
    "sequence_lengths",
    "validate_finite",
]
