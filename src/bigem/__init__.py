"""bigem: Expectation-Maximization for latent-variable models on data of any size.

``from bigem import GaussianMixture`` is a drop-in for scikit-learn's, on CPU or GPU,
streaming data larger than memory. Estimators are imported on first use, so
``import bigem`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["GaussianMixture", "BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture", "PoissonMixture",
           "MultinomialMixture", "MixedMixture", "Tokens", "GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM",
           "MultinomialHMM", "VariationalGaussianHMM", "VariationalCategoricalHMM", "MixtureClassifier", "Files",
           "SelectionResult", "load", "select", "hc", "HCTree", "blrt", "BLRTResult", "BootstrapResult", "StructuralModel",
           "StepMix", "StepMixClassifier", "__version__"]


def __getattr__(name: str):
    if name in ("GaussianMixture", "BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture", "PoissonMixture",
                "MultinomialMixture", "MixedMixture", "GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM",
                "MultinomialHMM", "VariationalGaussianHMM", "VariationalCategoricalHMM", "MixtureClassifier",
                "SelectionResult", "load", "select", "hc", "HCTree", "blrt", "BLRTResult", "BootstrapResult",
                "StructuralModel", "StepMix", "StepMixClassifier"):
        from . import estimators

        return getattr(estimators, name)
    if name == "Files":
        from .sources import Files

        return Files
    if name == "Tokens":
        from .sources.counts import Tokens

        return Tokens
    if name in _SUBMODULES:  # bigem.plot.plot_profile(...) after a plain `import bigem`, as the docs write it
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'bigem' has no attribute {name!r}")


# the public submodules, imported when first named (each pulls in its own optional packages)
_SUBMODULES = ("plot", "datasets", "errors", "stepmix")


def __dir__() -> list[str]:
    """The lazily imported names too: ``dir(bigem)`` and tab completion list the estimators."""
    return sorted({*globals(), *__all__, *_SUBMODULES})
