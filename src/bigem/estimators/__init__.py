"""scikit-learn compatible façades over the EM driver."""

from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .gmm_hmm import GMMHMM
from .hierarchical import HCTree, hc
from .hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from .multinomial_hmm import MultinomialHMM
from .multinomial_mixture import MultinomialMixture
from .persistence import load
from .selection import SelectionResult, select

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "MultinomialMixture", "GaussianHMM", "CategoricalHMM",
           "PoissonHMM", "GMMHMM", "MultinomialHMM", "SelectionResult", "load", "select", "hc", "HCTree"]
