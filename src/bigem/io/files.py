"""Where bigem writes: one check of an output path, and one way to write a file whole
or not at all. Every output goes through here: model files, checkpoints, streamed
predictions, the command line's tables and samples, pictures.

A file is written to a hidden temporary beside its target (the same folder, so the
final rename is atomic) and renamed over the target only when complete; an error,
Ctrl-C or a failed check leaves the target as it was and no temporary behind.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable

from .._core.errors import OutputPathError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def is_url(path: str) -> bool:
    """Whether ``path`` names a remote location (a scheme other than file://)."""
    match = _SCHEME.match(path)
    return bool(match) and match.group(1).lower() != "file"


def local_path(path: str) -> str:
    """``file://`` URLs as plain paths; anything else unchanged."""
    return path[len("file://") :] if path.lower().startswith("file://") else path


def check_output_path(out: object, formats: tuple[str, ...] | None = None, inputs=(), what: str = "") -> str:
    """The output path as a string, after every check that needs no computing: a local
    path, in an existing folder, not a folder, with a known extension (``formats``,
    e.g. ('.csv', '.npy'); None: any), and not one of the ``inputs``. ``what`` names
    the output in messages ("table", "picture", ...). Raises :class:`OutputPathError`."""
    path = local_path(os.fspath(out))
    name = f"{what} {path}" if what else path
    if is_url(path):
        raise OutputPathError(f"{name}: bigem writes its outputs to local files only; write it locally, then upload it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputPathError(f"{name}: the folder {folder!r} does not exist; create it first")
    if os.path.isdir(path):
        raise OutputPathError(f"{name}: is a folder; give a file name")
    ext = os.path.splitext(path)[1].lower()
    if formats is not None and ext not in formats:
        raise OutputPathError(f"{name}: unsupported file type {ext or '(none)'!r}; use {', '.join(formats)}")
    for other in inputs:
        if os.path.exists(other) and os.path.exists(path) and os.path.samefile(other, path):
            raise OutputPathError(f"{name}: is the input file; choose a different output path")
    return path


class Partial:
    """A file being written: ``tmp``, a hidden file beside ``path``, created empty with the
    permissions of any new file (0666 less the umask); :meth:`commit` moves it over
    ``path``, :meth:`abort` removes it. As a context manager it aborts on an error."""

    def __init__(self, path: str) -> None:
        self.path = os.fspath(path)
        folder, name = os.path.split(os.path.abspath(self.path))
        if not os.path.isdir(folder):  # else the error would name a temporary file the user never chose
            raise OutputPathError(f"{self.path}: the folder {folder!r} does not exist; create it first")
        ext = os.path.splitext(name)[1]
        self.tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part{ext}")
        os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))

    def commit(self) -> str:
        """Flush the finished file to disk and move it into place; returns its path."""
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)

    def __enter__(self) -> Partial:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


def write_atomically(path: str, write: Callable[[str], None]) -> str:
    """``write(tmp)`` to a :class:`Partial` of ``path``, then commit it."""
    with Partial(path) as part:
        write(part.tmp)
        return part.commit()
