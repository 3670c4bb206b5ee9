"""scikit-learn compatible façades over the EM driver."""

from .bayesian_mixture import BayesianGaussianMixture
from .bernoulli_mixture import BernoulliMixture
from .bootstrap import BLRTResult, BootstrapResult, blrt
from .categorical_mixture import CategoricalMixture
from .classifier import MixtureClassifier
from .gaussian_mixture import GaussianMixture
from .gmm_hmm import GMMHMM
from .hierarchical import HCTree, hc
from .hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from .mixed_mixture import MixedMixture
from .multinomial_hmm import MultinomialHMM
from .multinomial_mixture import MultinomialMixture
from .persistence import load
from .poisson_mixture import PoissonMixture
from .selection import SelectionResult, select
from .stepmix_api import StepMix, StepMixClassifier
from .structural import StructuralModel
from .variational_hmm import VariationalCategoricalHMM, VariationalGaussianHMM

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture", "PoissonMixture",
           "MultinomialMixture", "MixedMixture", "GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM",
           "MultinomialHMM", "VariationalGaussianHMM", "VariationalCategoricalHMM", "MixtureClassifier", "SelectionResult",
           "load", "select", "hc", "HCTree", "blrt", "BLRTResult", "BootstrapResult",
           "StructuralModel", "StepMix", "StepMixClassifier"]
