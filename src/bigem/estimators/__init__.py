"""scikit-learn compatible façades over the EM driver."""

from .gaussian_mixture import GaussianMixture
from .gmm_hmm import GMMHMM
from .hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from .persistence import load

__all__ = ["GaussianMixture", "GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM", "load"]
