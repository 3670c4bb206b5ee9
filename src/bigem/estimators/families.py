"""Mixture families by name: what :func:`bigem.select` and the command line's ``--family``
choose from. A family's façade is listed here once; nothing else names them all."""

from __future__ import annotations

from importlib import import_module

from .._core.errors import ParameterError

# family name -> (module of bigem.estimators, estimator class)
FAMILIES = {
    "gaussian": ("gaussian_mixture", "GaussianMixture"),
    "bernoulli": ("bernoulli_mixture", "BernoulliMixture"),
    "categorical": ("categorical_mixture", "CategoricalMixture"),
    "poisson": ("poisson_mixture", "PoissonMixture"),
    "multinomial": ("multinomial_mixture", "MultinomialMixture"),
    "mixed": ("mixed_mixture", "MixedMixture"),  # a family per column
}


def family_estimator(family: str) -> type:
    """The estimator class of a family name ('gaussian', 'categorical', 'multinomial', ...)."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ParameterError(f"family must be one of {sorted(FAMILIES)}; got {family!r}")
    module, name = FAMILIES[family]
    return getattr(import_module(f".{module}", __package__), name)
