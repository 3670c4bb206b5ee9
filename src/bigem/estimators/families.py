"""Mixture families by name: what :func:`bigem.select` and the command line's ``--family``
choose from. A family's façade is listed here once; nothing else names them all."""

from __future__ import annotations

from .._core.errors import ParameterError

FAMILIES = {"gaussian": "GaussianMixture", "multinomial": "MultinomialMixture"}


def family_estimator(family: str) -> type:
    """The estimator class of a family name ('gaussian', 'multinomial', ...)."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ParameterError(f"family must be one of {sorted(FAMILIES)}; got {family!r}")
    from . import gaussian_mixture, multinomial_mixture

    modules = (gaussian_mixture, multinomial_mixture)
    name = FAMILIES[family]
    return next(getattr(m, name) for m in modules if hasattr(m, name))
