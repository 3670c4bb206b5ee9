"""The exceptions users see. Each subclasses the builtin that scikit-learn raises for
the same mistake, so ``except ValueError`` written against scikit-learn keeps working."""

from __future__ import annotations

import sys


class BigemError(Exception):
    """Base class of every error bigem raises on purpose."""

    def __reduce__(self):
        # pickled (a Dask worker's error) as bigem's own class, not one that is also
        # scikit-learn's (:func:`_also`): the receiving process adds that again
        return (_own_class(type(self)), *super().__reduce__()[1:])


class _Twinned(BigemError):
    """An error scikit-learn has a class for, named in ``_sklearn_twin`` (module, name):
    raised as an instance of both once that module is imported, so code that catches
    scikit-learn's class keeps catching bigem's. We never import scikit-learn for this:
    code that catches its class has imported it."""

    _sklearn_twin: tuple[str, str]

    def __new__(cls, *args, **kwargs):
        theirs = _twin(cls)
        if theirs is not None and not issubclass(cls, theirs):
            cls = _also(cls, theirs)
        return super().__new__(cls, *args, **kwargs)


class DataError(BigemError, ValueError):
    """The data is unusable: NaN/inf, wrong shape, too few rows, not numeric."""


class OutputPathError(DataError, FileNotFoundError):
    """An output cannot be written there (missing folder, unknown format, the input
    itself, a URL). A DataError (so a ValueError, as a bad argument) and a
    FileNotFoundError, as ``open`` raises for a missing folder, so code written for
    either catches it."""


class ParameterError(_Twinned, ValueError, TypeError):
    """A hyper-parameter or an initial parameter is invalid (ValueError and TypeError, like
    scikit-learn's InvalidParameterError).

    Also scikit-learn's ``InvalidParameterError`` once that is imported (:class:`_Twinned`).
    """

    _sklearn_twin = ("sklearn.utils._param_validation", "InvalidParameterError")


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


class NotFittedError(_Twinned, ValueError, AttributeError):
    """An estimator was used before ``fit``.  Same bases as scikit-learn's, and also its
    class once ``sklearn.exceptions`` is imported (:class:`_Twinned`)."""

    _sklearn_twin = ("sklearn.exceptions", "NotFittedError")


def not_fitted_error(message: str) -> NotFittedError:
    """A NotFittedError (also scikit-learn's when scikit-learn is already imported)."""
    return NotFittedError(message)


_BOTH: dict[tuple[type, type], type] = {}


def _also(ours: type, theirs: type) -> type:
    """A class that is both ours and scikit-learn's, under our name (made once)."""
    both = _BOTH.get((ours, theirs))
    if both is None:
        both = type(ours.__name__, (ours, theirs), {"__module__": ours.__module__, "__qualname__": ours.__qualname__,
                                                    "_bigem_own": ours})
        _BOTH[ours, theirs] = both
    return both


def _twin(cls: type) -> type | None:
    """scikit-learn's class that ``cls`` names, when its module is already imported."""
    where = getattr(cls, "_sklearn_twin", None)
    module = sys.modules.get(where[0]) if where else None
    return getattr(module, where[1], None) if module is not None else None


def _own_class(cls: type) -> type:
    """Our class behind one made by :func:`_also` (the class itself otherwise)."""
    return cls.__dict__.get("_bigem_own", cls)


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
    return _also(ConvergenceWarning, sk.ConvergenceWarning)


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


class SmallBatchWarning(UserWarning):
    """An online fit starts from a mini-batch with fewer rows than one component has free
    parameters: its first steps estimate the components from too few rows."""


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


def caller_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning raised here to the first frame outside
    bigem (the user's call), however deep in bigem it is raised."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level
