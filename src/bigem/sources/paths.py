"""From what the user typed (a file, a folder, a glob, a list) to an ordered list of files.
A path that exists is read as itself, even where its name holds glob characters.

The order is explicit and stable, because it is the row order: files sorted by path,
folders walked recursively. Names starting with ``.`` or ``_`` are skipped in folders
(``_SUCCESS``, ``.crc`` and other writers' markers), as Spark and pyarrow skip them.
URLs (s3://, gs://, ...) name files in an object store the same ways (see :mod:`.remote`).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath

from .._core.errors import DataError
from .remote import filesystem, is_url, listing_errors, local_path

FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".npy": "npy",
}


def format_of(path: str) -> str | None:
    """'parquet', 'csv', 'ipc', 'npy', or None for an extension bigem does not read."""
    name = path.lower()
    for suffix in (".gz", ".bz2", ".zst"):  # compressed CSV: pyarrow decompresses by extension
        if name.endswith(suffix) and FORMATS.get(os.path.splitext(name[: -len(suffix)])[1]) == "csv":
            return "csv"
    return FORMATS.get(os.path.splitext(name)[1])


READABLE = ", ".join(sorted(FORMATS))


def _hidden(name: str) -> bool:
    """Writers' markers and hidden entries, skipped inside folders."""
    return name.startswith((".", "_"))


def read_later(path: str, spec: str, every: bool = False) -> bool:
    """Whether a file written at ``path`` would be read as data by a later read of
    ``spec``: a folder (a file inside it at any depth, not hidden) or a glob that matches
    it, by glob's rules; a file of a format bigem reads (``every``: any file, as
    ``Files(format=)`` reads them). Links are followed on both sides. Outputs written
    there would join the data of the next run."""
    spec = local_path(os.fspath(spec))
    if is_url(spec) or is_url(path):
        return False
    folder, name = os.path.split(os.path.abspath(local_path(path)))
    target = os.path.join(os.path.realpath(folder), name)
    if not (every or format_of(target) is not None):
        return False
    if os.path.isdir(spec):
        parts = os.path.relpath(target, os.path.realpath(spec)).split(os.sep)
        return parts[0] != os.pardir and not any(_hidden(p) for p in parts)
    if not glob.has_magic(spec) or os.path.exists(spec):
        return False
    pattern = os.path.abspath(spec).split(os.sep)
    fixed = next(i for i, part in enumerate(pattern) if glob.has_magic(part))  # the folder the pattern starts in
    root = os.path.realpath(os.sep.join(pattern[:fixed]) or os.sep)
    parts = os.path.relpath(target, root).split(os.sep)
    return parts[0] != os.pardir and _glob_match(parts, pattern[fixed:])


def _glob_match(names: list[str], parts: list[str]) -> bool:
    """Whether the path ``names`` matches the pattern ``parts`` as ``glob.glob(...,
    recursive=True)`` matches: part by part, '*' within a name and not before a leading
    '.', '**' any number (zero too) of names not starting with '.'."""
    if not parts:
        return not names
    if parts[0] == "**":
        return _glob_match(names, parts[1:]) or (
            bool(names) and not names[0].startswith(".") and _glob_match(names[1:], parts))
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and \
        (not names[0].startswith(".") or parts[0].startswith(".")) and _glob_match(names[1:], parts[1:])


def _walk(folder: str, every: bool = False) -> list[str]:
    """A folder's data files, in path order (``every``: whatever their extension)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found += [os.path.join(root, f) for f in files if not _hidden(f) and (every or format_of(f))]
    return sorted(found)


def _expand_url(url: str, every: bool = False) -> list[str]:
    """The files a URL names, as URLs in path order, by the same rules as local paths
    (``every``: a folder's files whatever their extension)."""
    fs, inner = filesystem(url)
    with listing_errors(url):
        if glob.has_magic(inner) and not fs.exists(inner):  # an object named weird[1].csv is that object
            found = [p for p, info in fs.glob(inner, detail=True).items() if info.get("type") == "file"]
            if not found:
                raise DataError(f"{url}: the pattern matches no files; check the pattern")
        elif fs.isdir(inner):
            root = inner.rstrip("/")
            found = [p for p in fs.find(inner)
                     if not any(_hidden(part) for part in posixpath.relpath(p, root).split("/"))
                     and (every or format_of(p))]
            if not found:
                raise DataError(f"{url}: the folder holds no data files (bigem reads {READABLE}); "
                                "check the URL or point at the files")
        elif fs.isfile(inner):
            found = [inner]
        else:
            raise DataError(f"{url}: no such file or folder; check the URL")
    return [fs.unstrip_protocol(p) for p in sorted(found)]


def expand_paths(spec: object, fmt: str | None = None) -> tuple[list[str], str]:
    """The files named by ``spec`` in row order, and their one format: ``fmt`` where it
    is given (``Files(format=)``: any extension, a folder's every file), else each file's
    by its extension.

    Raises DataError for a missing path, a glob or folder with no readable files,
    an unknown extension, or formats mixed in one data set.
    """
    if fmt is not None and fmt not in set(FORMATS.values()):
        raise DataError(f"format={fmt!r} is not one of 'parquet', 'csv', 'ipc', 'npy'")
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)  # type: ignore[arg-type]
    if not items:
        raise DataError("X is an empty list of paths; give at least one file, folder or glob")
    files: list[str] = []
    for item in items:
        path = local_path(os.fspath(item))
        if is_url(path):
            files += _expand_url(path, every=fmt is not None)
        elif glob.has_magic(path) and not os.path.exists(path):  # a file named weird[1].csv is that file
            matched = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
            if not matched:
                raise DataError(f"{path}: the pattern matches no files; check the pattern and the current directory")
            files += matched
        elif os.path.isdir(path):
            inside = _walk(path, every=fmt is not None)
            if not inside:
                raise DataError(
                    f"{path}: the folder holds no data files (bigem reads {READABLE}); "
                    "check the path or point at the files"
                )
            files += inside
        elif os.path.isfile(path):
            files.append(path)
        elif os.path.exists(path):  # a pipe or a device: read once, it would block or end after a pass
            raise DataError(f"{path}: not a regular file (a pipe, socket or device); a fit reads its data once a pass, "
                            "and a stream can be read only once: write the data to a file and fit that")
        else:
            raise DataError(f"{path}: no such file or folder; check the path")
    if fmt is not None:
        return files, fmt
    formats = {}
    for f in files:
        kind = format_of(f)
        if kind is None:
            raise DataError(f"{f}: unsupported file type; bigem reads {READABLE} (by extension): rename the file, "
                            "or in Python pass bigem.Files(path, format='csv') (or 'parquet', 'ipc', 'npy')")
        formats.setdefault(kind, f)
    if len(formats) > 1:
        examples = ", ".join(f"{fmt} ({f})" for fmt, f in formats.items())
        raise DataError(f"X mixes file formats: {examples}; give files of one format")
    return files, next(iter(formats))
