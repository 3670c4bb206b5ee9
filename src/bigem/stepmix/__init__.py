"""StepMix's modules by name: ``bigem.stepmix`` mirrors the ``stepmix`` package's layout,
so that code written for StepMix runs on bigem by changing ``stepmix`` to
``bigem.stepmix`` in its imports::

    from bigem.stepmix.stepmix import StepMix, StepMixClassifier
    from bigem.stepmix.bootstrap import bootstrap, blrt, blrt_sweep, find_best_permutation, mse
    from bigem.stepmix.utils import get_mixed_descriptor, modal, max_one_hot, identify_coef, print_report
    from bigem.stepmix.datasets import data_bakk_response   # StepMix's simulated designs

The estimators are :class:`bigem.StepMix` and :class:`bigem.StepMixClassifier`; the
functions follow StepMix's (their arguments, defaults and returns). StepMix's internals
(``stepmix.emission``, ``stepmix.corrections``, its ``check_*`` validators) have no
counterpart.
"""

from ..estimators.stepmix_api import StepMix, StepMixClassifier

__all__ = ["StepMix", "StepMixClassifier"]
