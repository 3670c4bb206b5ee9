"""Where outputs land: a symbolic link is followed and its target replaced, a device,
FIFO or socket is refused before any work, and no temporary (``.NAME.*.part*``) is
left behind, even by a writer killed mid-way (SIGTERM cleans up; after SIGKILL the next
writer of the same output sweeps it).

Every entry point is covered: ``save``, ``write_predictions`` / ``predict(out=...)``,
the command line's ``fit``, ``select`` and ``predict``, and the picture functions.
"""

from __future__ import annotations

import copy
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import bigem
from bigem import GaussianMixture
from bigem._core.errors import OutputPathError
from bigem.cli import main
from bigem.io import files

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only (FIFOs, symbolic links, signals)")


def _blobs(n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0.0, 1.0, (n, 2)), rng.normal(6.0, 0.7, (n, 2))])


@pytest.fixture(scope="module")
def fitted():
    return GaussianMixture(2, random_state=0).fit(_blobs())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    np.save(d / "d.npy", _blobs())
    return d / "d.npy"


def _temporaries(*folders) -> list[str]:
    return [name for folder in folders for name in os.listdir(folder) if ".part" in name]


def _save(est, path):
    est.save(path)


def _predict_out(est, path):
    est.predict(_blobs(), out=path)


def _write_predictions(est, path):
    est.write_predictions(_blobs(), path, outputs=("label", "proba"))


def _plot_fit(est, path):
    pytest.importorskip("matplotlib")
    from bigem.plot import plot_fit

    plot_fit(est, _blobs(), path)


def _plot_convergence(est, path):
    pytest.importorskip("matplotlib")
    from bigem.plot import plot_convergence

    plot_convergence(est, path)


def _plot_selection(est, path):
    pytest.importorskip("matplotlib")
    from bigem.plot import plot_selection

    plot_selection(bigem.select(_blobs(), n_components=[1, 2], random_state=0), path)


def _check_written(path, est=None) -> None:
    """The file at ``path`` (through any link) is a complete output of its kind."""
    name = os.fspath(path)
    if name.endswith(".bigem"):
        assert bigem.load(path).n_components == (est.n_components if est is not None else 2)
    elif name.endswith(".npy"):
        assert np.load(path).shape[0] == 120
    elif name.endswith(".csv"):
        with open(path) as f:
            assert f.read().count("\n") == 121
    elif name.endswith(".png"):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    else:
        raise AssertionError(name)


LIBRARY = [
    (_save, ".bigem"),
    (_predict_out, ".npy"),
    (_write_predictions, ".csv"),
    (_plot_fit, ".png"),
    (_plot_convergence, ".png"),
    (_plot_selection, ".png"),
]
COMMANDS = [
    (("fit", "{data}", "-k", "2", "--seed", "0", "-o", "{out}"), ".bigem"),
    (("select", "{data}", "-k", "1..2", "--seed", "0", "-o", "{out}"), ".bigem"),
    (("predict", "MODEL", "{data}", "-o", "{out}"), ".npy"),
    (("plot", "MODEL", "{data}", "-o", "{out}"), ".png"),
]


def _entry_points():
    for write, ext in LIBRARY:
        yield pytest.param("library", write, ext, id=write.__name__.lstrip("_"))
    for argv, ext in COMMANDS:
        yield pytest.param("cli", argv, ext, id=f"bigem {argv[0]}")


def _writer(kind, how, tmp_path, fitted, data):
    """A function path -> None that writes through the entry point."""
    if kind == "library":
        return lambda path: how(fitted, path)
    if how[0] == "plot":
        pytest.importorskip("matplotlib")
    if "MODEL" in how:
        model = tmp_path / "model" / "m.bigem"
        model.parent.mkdir(exist_ok=True)
        fitted.save(model)
        how = tuple(str(model) if a == "MODEL" else a for a in how)
    return lambda path: _run(how, data, path)


def _run(argv, data, out) -> None:
    assert main([a.format(data=data, out=out) for a in argv]) == 0


@pytest.mark.parametrize("kind, how, ext", list(_entry_points()))
def test_a_symlinked_output_updates_its_target(kind, how, ext, tmp_path, fitted, data):
    write = _writer(kind, how, tmp_path, fitted, data)
    real = tmp_path / "real"
    real.mkdir()
    target = real / f"v1{ext}"
    target.write_bytes(b"old")
    link = tmp_path / f"latest{ext}"
    link.symlink_to(os.path.relpath(target, tmp_path))
    write(link)
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(target, tmp_path)
    assert target.read_bytes() != b"old"
    _check_written(target)
    assert _temporaries(tmp_path, real) == []


@pytest.mark.parametrize("kind, how, ext", list(_entry_points()))
def test_a_dangling_symlink_creates_its_target(kind, how, ext, tmp_path, fitted, data):
    write = _writer(kind, how, tmp_path, fitted, data)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / f"new{ext}"
    link = tmp_path / f"latest{ext}"
    link.symlink_to(target)
    write(link)
    assert link.is_symlink() and target.is_file()
    _check_written(link)
    assert _temporaries(tmp_path, tmp_path / "real") == []


@pytest.mark.parametrize("through_a_link", [False, True], ids=["fifo", "link to a fifo"])
@pytest.mark.parametrize("kind, how, ext", list(_entry_points()))
def test_a_fifo_output_is_refused_and_left_alone(kind, how, ext, tmp_path, fitted, data, capsys, through_a_link):
    write = _writer(kind, how, tmp_path, fitted, data)
    fifo = tmp_path / f"pipe{ext}"
    os.mkfifo(fifo)
    path = fifo
    if through_a_link:
        path = tmp_path / f"link{ext}"
        path.symlink_to(fifo)
    before = sorted(os.listdir(tmp_path))
    capsys.readouterr()
    if kind == "library":
        with pytest.raises(OutputPathError, match=rf"^(picture |model )?{path}.*: is a FIFO \(named pipe\); bigem writes whole "
                                                  r"regular files only"):
            write(path)
    else:
        with pytest.raises(AssertionError):
            write(path)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path}" in err and "is a FIFO (named pipe)" in err, err
    assert fifo.is_fifo()
    assert sorted(os.listdir(tmp_path)) == before


def test_a_device_is_refused_without_touching_it(tmp_path):
    with pytest.raises(OutputPathError, match=r"^/dev/null: is a character device; bigem writes whole regular files"):
        files.check_output_path("/dev/null")
    link = tmp_path / "m.bigem"
    link.symlink_to("/dev/null")
    with pytest.raises(OutputPathError, match=rf"^{link} \(a link to /dev/null\): is a character device"):
        files.Partial(str(link))
    assert os.listdir(tmp_path) == ["m.bigem"]


def test_a_link_into_a_missing_folder_names_that_folder(tmp_path, fitted):
    link = tmp_path / "m.bigem"
    link.symlink_to(tmp_path / "gone" / "m.bigem")
    with pytest.raises(OutputPathError, match=rf"\(a link to {tmp_path}/gone/m.bigem\): the folder '{tmp_path}/gone' "
                                              r"does not exist; create it first"):
        fitted.save(link)


def test_a_path_under_a_file_says_the_file_is_no_folder(tmp_path, fitted):
    """'-o data.parquet/x.csv': the old advice, create the folder, meant deleting the data."""
    data = tmp_path / "data.parquet"
    data.write_bytes(b"PAR1")
    for out in (data / "x.bigem", data / "deeper" / "x.bigem"):
        with pytest.raises(OutputPathError, match=rf"^model {out}: '{data}' is a file, not a folder; write to a path in a "
                                                  r"folder$"):
            fitted.save(out)
    assert data.read_bytes() == b"PAR1" and os.listdir(tmp_path) == ["data.parquet"]


# ---------------------------------------------------------------------- temporaries of dead writers


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def _temporary(folder, name, pid, host=None) -> str:
    ext = os.path.splitext(name)[1]
    path = os.path.join(folder, f".{name}.{host or files._host()}-{pid}-0123abcd.part{ext}")
    with open(path, "wb") as f:
        f.write(b"half")
    return path


def test_a_writer_sweeps_temporaries_of_dead_writers_only(tmp_path, fitted):
    dead, alive = _dead_pid(), os.getppid()
    stale = _temporary(tmp_path, "m.bigem", dead)
    live = _temporary(tmp_path, "m.bigem", alive)
    mine = _temporary(tmp_path, "m.bigem", os.getpid())
    elsewhere = _temporary(tmp_path, "m.bigem", dead, host="ffffffff" if files._host() != "ffffffff" else "00000000")
    other_output = _temporary(tmp_path, "other.bigem", dead)
    unrelated = tmp_path / ".m.bigem.0123abcd.part.bigem"  # not a name bigem gives with a pid
    unrelated.write_bytes(b"x")
    fitted.save(tmp_path / "m.bigem")
    left = set(os.listdir(tmp_path))
    assert os.path.basename(stale) not in left
    for kept in (live, mine, elsewhere, other_output, unrelated):
        assert os.path.basename(kept) in left, kept


_SLOW_PREDICT = textwrap.dedent(
    """
    import sys, time
    from bigem.sources import sinks
    from bigem.cli import main

    write = sinks.Sink.write

    def slow(self, columns):
        write(self, columns)
        open(sys.argv[1], "w").close()  # the temporary exists and holds rows: signal now
        time.sleep(120)

    sinks.Sink.write = slow
    sys.exit(main(sys.argv[2:]))
    """
)


def _predict_in_a_subprocess(tmp_path, data, fitted, out):
    model = tmp_path / "m.bigem"
    fitted.save(model)
    marker = tmp_path / "writing"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_PREDICT, str(marker), "predict", str(model), str(data), "-o",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"predict never started writing: {proc.communicate()}")
        time.sleep(0.05)
    return proc


def test_sigterm_during_predict_removes_the_temporary(tmp_path, data, fitted):
    out = tmp_path / "out" / "labels.csv"
    out.parent.mkdir()
    proc = _predict_in_a_subprocess(tmp_path, data, fitted, out)
    assert len(_temporaries(out.parent)) == 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err == "bigem predict: terminated\n"
    assert os.listdir(out.parent) == []


def test_the_next_run_sweeps_the_temporary_of_a_killed_predict(tmp_path, data, fitted, capsys):
    out = tmp_path / "out" / "labels.csv"
    out.parent.mkdir()
    proc = _predict_in_a_subprocess(tmp_path, data, fitted, out)
    proc.kill()
    proc.communicate(timeout=60)
    left = _temporaries(out.parent)
    assert len(left) == 1 and f"-{proc.pid}-" in left[0]
    assert main(["predict", str(tmp_path / "m.bigem"), str(data), "-o", str(out)]) == 0
    assert os.listdir(out.parent) == ["labels.csv"]
    _check_written(out)


class _FullDisk:
    """A file on a disk with ``room`` bytes left: a write past it fails, and so does the
    close after it (a buffered writer's last flush), as a real full disk does."""

    def __init__(self, file, room: int) -> None:
        self._file, self._room, self._failed = file, room, False

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self._room:
            self._failed = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= size
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()
        if self._failed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.fixture
def full_disk(monkeypatch):
    """Temporaries opened for writing land on a disk with 2000 bytes left."""
    import builtins

    real_open = builtins.open

    def opening(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        return _FullDisk(file, 2000) if ".part" in os.fspath(path) and "w" in mode else file

    monkeypatch.setattr(builtins, "open", opening)


def _streamed_predictions(est, path):
    copy.deepcopy(est).set_params(chunk_size=512).write_predictions(_blobs(5000), path, outputs=("proba",))


def _cli_array(est, path):
    from bigem.cli._io import write_array

    write_array(path, np.zeros((5000, 2)), ["a", "b"])


@pytest.mark.parametrize("write, name", [(_streamed_predictions, "out.npy"), (_save, "out.bigem"),
                                         (_cli_array, "out.npy")])
def test_a_full_disk_names_the_output_and_leaves_nothing(write, name, tmp_path, fitted, full_disk):
    # the streamed .npy's last flush failed again inside abort, which then never removed the
    # temporary: a disk already full kept a file as large as the room it had left
    with pytest.raises(OutputPathError, match=rf"{name}: cannot be written, the disk is full .*free some space"):
        write(fitted, str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_outputs_written_together_appear_together_or_not_at_all(tmp_path):
    from bigem.io.files import write_atomically, written_together

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"

    def text(value):
        return lambda tmp: Path(tmp).write_text(value)

    with pytest.raises(RuntimeError, match="the second output failed"):
        with written_together():
            write_atomically(str(a), text("a"))
            assert not a.exists()  # not before the block ends

            def fail(tmp):
                raise RuntimeError("the second output failed")

            write_atomically(str(b), fail)
    assert os.listdir(tmp_path) == []  # neither, and no temporary
    with written_together():
        write_atomically(str(a), text("a"))
        write_atomically(str(b), text("b"))
    assert a.read_text() == "a" and b.read_text() == "b" and sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]


@pytest.mark.parametrize("family", ["gaussian", "multinomial"])
def test_select_whose_picture_fails_writes_no_model_and_no_table(tmp_path, monkeypatch, capsys, family):
    """select's model, table and picture are one result: a picture that failed after the
    model and table were written left them behind."""
    import bigem.plot
    from bigem.cli import main

    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, (60, 5)) if family == "multinomial" else rng.normal(size=(60, 2))
    np.savetxt(tmp_path / "d.csv", X, delimiter=",", header="a,b,c,d,e"[: 2 * X.shape[1] - 1], comments="")

    def broken(result, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bigem.plot, "plot_selection", broken)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["select", str(tmp_path / "d.csv"), "-k", "1..2", "-o", str(out / "m.bigem"), "--table",
            str(out / "t.csv"), "--plot", str(out / "p.png")] + (["--family", "multinomial"] if family == "multinomial"
                                                                   else [])
    assert main(argv) != 0
    assert os.listdir(out) == []
