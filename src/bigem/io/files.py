"""Where bigem writes: one check of an output path, and one way to write a file whole
or not at all. Every output goes through here: model files, checkpoints, streamed
predictions, the command line's tables and samples, pictures.

A file is written to a hidden temporary beside its target and renamed over the target
only when complete; an error, Ctrl-C, SIGTERM (on the command line) or a failed check
leaves the target as it was and no temporary behind.

- A symbolic link is followed to its final target: the temporary is written beside the
  target (the rename must stay in one folder to be atomic) and the target is replaced,
  so the link keeps pointing at the new file.
- Only regular files are written. An existing output that is a device, FIFO or socket
  (``/dev/null``, a named pipe) is refused before any work: replacing it would destroy
  it, and streaming into it could not be undone on an error.
- A temporary's name carries its writer's host and process id. A process killed before
  it could clean up (SIGKILL, a power cut) leaves its temporary behind; the next writer
  of the same output removes it, once that process is gone. Temporaries of live
  writers, or written on another host, are never touched.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable

from .._core.errors import OutputPathError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def is_url(path: str) -> bool:
    """Whether ``path`` names a remote location (a scheme other than file://)."""
    match = _SCHEME.match(path)
    return bool(match) and match.group(1).lower() != "file"


def local_path(path: str) -> str:
    """``file://`` URLs as plain paths; anything else unchanged."""
    return path[len("file://") :] if path.lower().startswith("file://") else path


def target_of(path: str) -> str:
    """The file a write to ``path`` replaces: ``path`` with every symbolic link resolved
    (a dangling link: the file it names, which the write creates)."""
    return os.path.realpath(path)


def check_output_path(out: object, formats: tuple[str, ...] | None = None, inputs=(), what: str = "") -> str:
    """The output path as a string, after every check that needs no computing: a local
    path, in an existing folder, not a folder, not a device, FIFO or socket, with a known
    extension (``formats``, e.g. ('.csv', '.npy'); None: any), and not one of the
    ``inputs``. A symbolic link is checked at its final target. ``what`` names the output
    in messages ("table", "picture", ...). Raises :class:`OutputPathError`."""
    if not isinstance(out, (str, os.PathLike)):
        raise OutputPathError(f"the {what or 'output'} path must be a str or os.PathLike (a file name), got "
                              f"{type(out).__name__}")
    path = local_path(os.fspath(out))
    name = f"{what} {path}" if what else path
    if is_url(path):
        raise OutputPathError(f"{name}: bigem writes its outputs to local files only; write it locally, then upload it")
    _check_target(path, name)
    ext = os.path.splitext(path)[1].lower()
    if formats is not None and ext not in formats:
        raise OutputPathError(f"{name}: unsupported file type {ext or '(none)'!r}; use {', '.join(formats)}")
    for other in inputs:
        if os.path.exists(other) and os.path.exists(path) and os.path.samefile(other, path):
            raise OutputPathError(f"{name}: is the input file; choose a different output path")
    Partial(path, name).abort()  # a file can be created there (a read-only folder fails now, not after the work)
    return path


# the extensions of data (what bigem reads and writes, and .npz, .json, compressed text):
# a model file or checkpoint is never written to such a path, where a slip of ``-o``
# would replace a data set with a model
_DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".arrow", ".ipc", ".feather", ".npy", ".npz", ".json",
                  ".gz", ".bz2", ".zst", ".xz", ".zip")


def check_model_path(out: object, inputs=(), what: str = "model") -> str:
    """:func:`check_output_path` for a model file or checkpoint (``what``), which is also
    refused at a path whose extension names data."""
    path = check_output_path(out, None, inputs, what)
    if path.lower().endswith(_DATA_SUFFIXES):
        ext = next(e for e in _DATA_SUFFIXES if path.lower().endswith(e))
        raise OutputPathError(f"{what} {path}: a {what} file would be written to a path that names data ({ext}), "
                              f"replacing whatever is there; give the {what} a path of its own, such as one ending "
                              "in .bigem")
    return path


def _check_target(path: str, name: str) -> str:
    """The final target of ``path``, in an existing folder and a regular file if it exists."""
    target = target_of(path)
    via = f" (a link to {target})" if target != os.path.abspath(path) else ""
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        above = folder
        while above and not os.path.lexists(above) and os.path.dirname(above) != above:
            above = os.path.dirname(above)
        if os.path.lexists(above) and not os.path.isdir(above):  # a file where a folder is named
            raise OutputPathError(f"{name}{via}: {above!r} is a file, not a folder; write to a path in a folder")
        raise OutputPathError(f"{name}{via}: the folder {folder!r} does not exist; create it first")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"{name}{via}: cannot be written ({exc.strerror}); choose another output path") from None
    if stat.S_ISDIR(mode):
        raise OutputPathError(f"{name}{via}: is a folder; give a file name")
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
        raise OutputPathError(
            f"{name}{via}: is {kind}; bigem writes whole regular files only (it would replace it); "
            "write to a regular file, then copy it there"
        )
    return target


# ------------------------------------------------------------------ temporaries
def _host() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _temporaries(name: str, ext: str) -> re.Pattern:
    """Names of the temporaries of a target called ``name``: ``.{name}.{host}-{pid}-{random}.part{ext}``."""
    return re.compile(rf"\.{re.escape(name)}\.([0-9a-f]{{8}})-([0-9]+)-[0-9a-f]{{8}}\.part{re.escape(ext)}")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (when unsure: yes)."""
    if pid == os.getpid():
        return True
    if os.name != "posix" or pid <= 0:  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def sweep(folder: str, name: str, ext: str) -> list[str]:
    """Remove the temporaries of target ``name`` in ``folder`` left by dead writers of this
    host (a process killed before it could clean up); returns the paths removed."""
    pattern, host, removed = _temporaries(name, ext), _host(), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or match.group(1) != host or _alive(int(match.group(2))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed.append(entry.path)
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


class Partial:
    """A file being written: ``tmp``, a hidden file beside the final target of ``path``
    (symbolic links resolved), created empty with the permissions of any new file (0666
    less the umask); :meth:`commit` moves it over the target, :meth:`abort` removes it.
    As a context manager it aborts on an error. Creating one removes the temporaries of
    the same target left by dead writers (:func:`sweep`)."""

    def __init__(self, path: str, name: str | None = None) -> None:
        self.path = os.fspath(path)
        # errors name the user's path (``name``: as check_output_path says it), never the temporary
        self.name = name or self.path
        self.target = _check_target(self.path, self.name)
        folder, base = os.path.split(self.target)
        ext = os.path.splitext(base)[1]
        sweep(folder, base, ext)
        self.tmp = os.path.join(folder, f".{base}.{_host()}-{os.getpid()}-{secrets.token_hex(4)}.part{ext}")
        with self.naming_errors():
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))

    @contextlib.contextmanager
    def naming_errors(self):
        """The OS's errors about the temporary (a read-only folder, a full disk) as
        OutputPathErrors that name the output. Inside it only the temporary is written,
        so an error that names no file (numpy's and pyarrow's short writes) is its too."""
        try:
            yield
        except OSError as exc:
            if exc.filename not in (self.tmp, None) or isinstance(exc, OutputPathError):
                raise
            reason = exc.strerror or str(exc)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "requested and" in reason:  # numpy: "n requested and m written"
                raise OutputPathError(f"{self.name}: cannot be written, the disk is full ({reason}); nothing was "
                                      "written: free some space, or choose an output path on a disk with room") from None
            raise OutputPathError(f"{self.name}: cannot be written ({reason}); choose another output path, "
                                  "in a folder you can write to") from None

    def commit(self) -> str:
        """Flush the finished file to disk and move it into place; returns its path."""
        with self.naming_errors():
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            _check_target(self.path, self.name)  # still a regular file (or none) at the last moment
        except OutputPathError:
            self.abort()
            raise
        with self.naming_errors():
            os.replace(self.tmp, self.target)
        return self.path

    def abort(self) -> None:
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)

    def __enter__(self) -> Partial:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


# Inside :func:`written_together`: the finished temporaries waiting to be committed together.
_TOGETHER: contextvars.ContextVar[list[Partial] | None] = contextvars.ContextVar("bigem_outputs_together", default=None)


def write_atomically(path: str, write: Callable[[str], None]) -> str:
    """``write(tmp)`` to a :class:`Partial` of ``path``, then commit it (inside
    :func:`written_together`, when that block ends)."""
    with Partial(path) as part:
        with part.naming_errors():
            write(part.tmp)
        pending = _TOGETHER.get()
        if pending is None:
            return part.commit()
        pending.append(part)
        return part.path


@contextlib.contextmanager
def written_together():
    """Outputs written inside the block (:func:`write_atomically`) appear together when it
    ends without error, or none of them: on an error (Ctrl-C and SIGTERM on the command
    line too) every finished temporary is removed. A command's model, table and picture
    are one result; a table that failed left the model written."""
    parts: list[Partial] = []
    token = _TOGETHER.set(parts)
    try:
        yield
    except BaseException:
        for part in parts:
            part.abort()
        raise
    finally:
        _TOGETHER.reset(token)
    for i, part in enumerate(parts):  # renames, which a full disk does not stop
        try:
            part.commit()
        except BaseException:
            for rest in parts[i + 1 :]:
                rest.abort()
            raise
