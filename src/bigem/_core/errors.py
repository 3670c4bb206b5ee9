"""The exceptions users see. Each subclasses the builtin that scikit-learn raises for
the same mistake, so ``except ValueError`` written against scikit-learn keeps working."""

from __future__ import annotations

import sys


class BigemError(Exception):
    """Base class of every error bigem raises on purpose."""


class DataError(BigemError, ValueError):
    """The data is unusable: NaN/inf, wrong shape, too few rows, not numeric."""


class OutputPathError(DataError, FileNotFoundError):
    """An output cannot be written there (missing folder, unknown format, the input
    itself, a URL). A DataError (so a ValueError, as a bad argument) and a
    FileNotFoundError, as ``open`` raises for a missing folder, so code written for
    either catches it."""


class ParameterError(BigemError, ValueError, TypeError):
    """A hyper-parameter or an initial parameter is invalid (ValueError and TypeError, like
    scikit-learn's InvalidParameterError)."""


class NumericalError(BigemError, ValueError):
    """The arithmetic broke down (a covariance is not positive definite, ...)."""


class ComponentLostError(NumericalError):
    """Under mclust's stopping rule, a component lost its support or turned singular,
    which ends the fit as it ends mclust's EM (mclust's missing BIC) instead of
    re-seeding the component."""


class ModelFileError(BigemError, ValueError):
    """A model file is missing, truncated, corrupted or not a bigem model."""


class ClusterError(BigemError, RuntimeError):
    """A distributed engine could not run: no scheduler at the address, a worker
    without bigem, a cluster that lost every worker."""


class NotFittedError(BigemError, ValueError, AttributeError):
    """An estimator was used before ``fit``.  Same bases as scikit-learn's."""


def not_fitted_error(message: str) -> NotFittedError:
    """A NotFittedError that is also scikit-learn's when scikit-learn is already imported.

    We never import scikit-learn for this; code that catches its exception has
    imported it, and then gets an instance of both classes.
    """
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError(message)
    both = _BOTH.get(sk.NotFittedError)
    if both is None:
        both = type("NotFittedError", (NotFittedError, sk.NotFittedError), {"__module__": __name__})
        _BOTH[sk.NotFittedError] = both
    return both(message)


_BOTH: dict[type, type] = {}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the command line in its main thread so that it unwinds as
    Ctrl-C does: an output being written is removed, the target left as it was."""


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the change of log-likelihood fell below ``tol``.

    What bigem raises is :func:`convergence_warning`'s class: this one, and also
    scikit-learn's ``sklearn.exceptions.ConvergenceWarning`` whenever scikit-learn is
    imported, so filters and ``pytest.warns`` written for scikit-learn keep working.
    """


def convergence_warning() -> type[ConvergenceWarning]:
    """The class of the ConvergenceWarning to raise now: ours, and scikit-learn's too
    when ``sklearn.exceptions`` is imported.

    A filter on scikit-learn's class (``filterwarnings``, ``-W``, pytest's ini) imports
    it first, so it always sees ours as its subclass. We never import scikit-learn for
    this: it is optional, and importing it costs about a second.
    """
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return ConvergenceWarning
    both = _BOTH.get(sk.ConvergenceWarning)
    if both is None:
        both = type("ConvergenceWarning", (ConvergenceWarning, sk.ConvergenceWarning), {"__module__": __name__})
        _BOTH[sk.ConvergenceWarning] = both
    return both


class LikelihoodDecreaseWarning(RuntimeWarning):
    """The log-likelihood fell between two EM iterations: EM forbids it, so it signals a bug."""


class DeviceWarning(UserWarning):
    """A model file names a device this machine lacks (a GPU): it was loaded on another."""


class ComponentReseededWarning(RuntimeWarning):
    """A component lost its support and was re-seeded at poorly explained points."""


class ImpossibleSequenceWarning(RuntimeWarning):
    """A sequence has zero probability under the model (its log-likelihood is -inf)."""


class CollapsedStateWarning(RuntimeWarning):
    """An HMM state's covariance collapsed (not positive definite: a constant feature, fewer
    rows than features); its diagonal was raised by min_covar so the fit goes on."""


class SampleWeightWarning(UserWarning):
    """Sample weights look like probabilities, not the frequencies BIC's n assumes."""


class PrecisionWarning(UserWarning):
    """float32 rows round a fitted component's values by a share of its spread that
    changes the answer (data spanning more than float32's 24 bits): fit in float64."""


class DegenerateFitWarning(UserWarning):
    """Model selection dropped candidates whose components collapsed onto repeated values."""


class UninformativeColumnWarning(UserWarning):
    """A categorical column has a single category: it carries no information about the components."""


class EmptyRowWarning(UserWarning):
    """Rows with every value missing: they carry no information, are counted, and take
    the mixture weights as their posterior."""


class IdentifierColumnWarning(UserWarning):
    """A column used as a feature looks like a row identifier (whole numbers, all
    different, in order): name the features with ``columns=``."""
