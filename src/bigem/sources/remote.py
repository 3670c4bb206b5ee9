"""Files behind a URL (s3://, gs://, az://, memory://, ...), read through fsspec.

Data lakes live in object stores. A URL goes through ``fsspec`` (``bigem[remote]``,
also installed with ``bigem[dask]``; and the store's package, such as ``s3fs``), which
gives a file object that pyarrow reads like a local file: the same readers, the same
chunks, the same fit. Local paths never come here (``file://`` URLs are made local),
so local reading does not depend on fsspec.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from .._core.errors import DataError
from .._core.optional import MissingDependencyError, install_hint
from ..io.files import is_url, local_path

__all__ = ["is_url", "local_path", "filesystem", "opened", "listing_errors"]


def filesystem(url: str):
    """(fsspec filesystem, path within it) for a URL; DataErrors that say what to install."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise MissingDependencyError(
            f"{url}: {install_hint('fsspec', 'reading from a URL')}, and the package for the store (s3fs, gcsfs, "
            "adlfs, ...); or copy the files to a local folder"
        ) from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # the store's package is missing; fsspec's message names it
        raise DataError(f"{url}: a package for this store is missing ({exc})") from None
    except ValueError as exc:  # an unknown protocol
        raise DataError(f"{url}: cannot open this URL ({exc}); check its scheme") from None


@contextmanager
def opened(path: str, compression: str | None = None) -> Iterator[str | IO[bytes]]:
    """What pyarrow should open: a local path as it is, a URL as a binary file object
    (decompressed by its extension with ``compression='infer'``), closed on exit."""
    if not is_url(path):
        yield local_path(path)
        return
    fs, inner = filesystem(path)
    with fs.open(inner, "rb", compression=compression) as f:
        yield f


@contextmanager
def listing_errors(url: str) -> Iterator[None]:
    """The store's errors while listing (permissions, network, credentials) as DataErrors
    that name the URL."""
    try:
        yield
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{url}: cannot be listed ({reason})") from None
