"""scikit-learn compatible façades over the EM driver."""

from .gaussian_mixture import GaussianMixture
from .persistence import load

__all__ = ["GaussianMixture", "load"]
