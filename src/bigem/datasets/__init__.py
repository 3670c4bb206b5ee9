"""Small public data sets the examples, tests and benchmarks use, shipped with bigem.

``faithful``: the Old Faithful geyser data of R's ``datasets`` package (272 eruptions:
``eruptions``, their length in minutes, and ``waiting``, the minutes to the next; W.
Härdle, via R; see Azzalini and Bowman, 1990, for a fuller version). mclust's
documentation fits it in its examples, so it is where mclust users check an answer.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_faithful"]


def load_faithful(as_frame: bool = False):
    """The Old Faithful data: a (272, 2) float64 array of (eruptions, waiting), or with
    ``as_frame`` a pandas DataFrame with those column names (needs pandas)."""
    with resources.files(__name__).joinpath("faithful.csv").open("r") as f:
        data = np.loadtxt(f, delimiter=",", skiprows=1)
    if not as_frame:
        return data
    from .._core.optional import require

    pd = require("pandas", "load_faithful(as_frame=True)")
    return pd.DataFrame(data, columns=["eruptions", "waiting"])
