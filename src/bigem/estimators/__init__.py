"""scikit-learn compatible façades over the EM driver."""

from .bernoulli_mixture import BernoulliMixture
from .categorical_mixture import CategoricalMixture
from .gaussian_mixture import GaussianMixture
from .gmm_hmm import GMMHMM
from .hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from .mixed_mixture import MixedMixture
from .persistence import load
from .poisson_mixture import PoissonMixture
from .selection import SelectionResult, select

__all__ = ["GaussianMixture", "BernoulliMixture", "CategoricalMixture", "PoissonMixture", "MixedMixture", "GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM", "SelectionResult", "load", "select"]
