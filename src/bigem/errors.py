"""The exceptions and warnings bigem raises, to catch or filter by class.

Each error subclasses the builtin that scikit-learn raises for the same mistake
(``DataError`` is a ``ValueError``, ...), so ``except ValueError`` keeps working. Every
error and warning class of ``bigem._core.errors`` is here, under the same name.
"""

from ._core import errors as _errors
from ._core.errors import BigemError
from ._core.optional import MissingDependencyError  # noqa: F401 (in __all__)
from .sources.validate import ColumnNamesError, NonNumericDataError, SparseDataError  # noqa: F401 (in __all__)

_CLASSES = {
    name: obj for name, obj in vars(_errors).items()
    if isinstance(obj, type) and issubclass(obj, (BigemError, Warning)) and obj.__module__ == _errors.__name__
}
globals().update(_CLASSES)

__all__ = sorted([*_CLASSES, "ColumnNamesError", "MissingDependencyError", "NonNumericDataError", "SparseDataError"],
                 key=lambda n: (issubclass(globals()[n], Warning), n != "BigemError", n))
