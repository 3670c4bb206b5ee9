"""``stepmix.stepmix``: the estimators (:class:`bigem.StepMix`, :class:`bigem.StepMixClassifier`)."""

from ..estimators.stepmix_api import StepMix, StepMixClassifier

__all__ = ["StepMix", "StepMixClassifier"]
