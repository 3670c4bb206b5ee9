"""scikit-learn compatible façades over the EM driver."""

from .gaussian_mixture import GaussianMixture
from .persistence import load
from .selection import SelectionResult, select

__all__ = ["GaussianMixture", "SelectionResult", "load", "select"]
