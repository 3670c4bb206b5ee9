"""What a newcomer meets first (issue #21): install hints, files that disagree on their
columns, id-like columns, DataFrames with an id column at predict time, Dask in a plain
script, and what ``verbose`` shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bigem
from bigem import GaussianMixture
from bigem._core.errors import DataError, IdentifierColumnWarning
from bigem._core.optional import MissingDependencyError
from bigem._core.types import Chunk
from bigem.engines import LocalEngine
from bigem.engines.dask import under_main_guard
from tests.conftest import make_blobs

SRC = str(Path(bigem.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def fitted():
    X, _, _ = make_blobs(0, n_per=100, k=2, d=2)
    return GaussianMixture(2, random_state=0).fit(X), X


# ---------------------------------------------------------------------- one install hint everywhere
def _plot_fit(gm, X, tmp):
    from bigem.plot import plot_fit

    plot_fit(gm, X, tmp / "fit.png")


def _plot_convergence(gm, X, tmp):
    from bigem.plot import plot_convergence

    plot_convergence(gm, tmp / "em.png")


def _to_pandas(gm, X, tmp):
    bigem.select(X, n_components=[1, 2], covariance_types=("diag",)).to_pandas()


def _faithful_frame(gm, X, tmp):
    from bigem.datasets import load_faithful

    load_faithful(as_frame=True)


def _parquet(gm, X, tmp):
    GaussianMixture(2).fit(str(tmp / "data.parquet"))


def _predict_to_csv(gm, X, tmp):
    gm.predict(X, out=tmp / "labels.csv")


def _predictions_to_parquet(gm, X, tmp):
    gm.write_predictions(X, tmp / "out.parquet", outputs=("label", "proba"))


def _dask_engine(gm, X, tmp):
    GaussianMixture(2, engine="dask").fit(X)


@pytest.mark.parametrize("use, blocked, hint", [
    (_plot_fit, "matplotlib", "pictures needs matplotlib: pip install 'bigem[plot]'"),
    (_plot_convergence, "matplotlib", "pictures needs matplotlib: pip install 'bigem[plot]'"),
    (_to_pandas, "pandas", "to_pandas() needs pandas: pip install 'bigem[pandas]'"),
    (_faithful_frame, "pandas", "load_faithful(as_frame=True) needs pandas: pip install 'bigem[pandas]'"),
    (_parquet, "pyarrow", "reading Parquet, CSV or Arrow files needs pyarrow: pip install 'bigem[files]'"),
    (_predict_to_csv, "pyarrow", "labels.csv: writing .csv files needs pyarrow: pip install 'bigem[files]'"),
    (_predictions_to_parquet, "pyarrow", "out.parquet: writing .parquet files needs pyarrow: pip install 'bigem[files]'"),
    (_dask_engine, "distributed", "the Dask engine needs dask.distributed: pip install 'bigem[dask]'"),
    (_dask_engine, "dask", "the Dask engine needs dask: pip install 'bigem[dask]'"),  # an array, without dask
])
def test_a_missing_optional_package_says_which_extra_installs_it(fitted, tmp_path, monkeypatch, use, blocked, hint):
    gm, X = fitted
    pd.DataFrame(X, columns=["a", "b"]).to_parquet(tmp_path / "data.parquet")
    for name in [m for m in sys.modules if m.split(".")[0] == blocked] or [blocked]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: import raises ModuleNotFoundError
    with pytest.raises(MissingDependencyError) as caught:
        use(gm, X, tmp_path)
    assert str(caught.value).endswith(hint) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ImportError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]  # no output, no temporary


def test_the_command_line_prints_the_library_hint(fitted, tmp_path, monkeypatch, capsys):
    from bigem.cli import main

    gm, X = fitted
    gm.save(tmp_path / "m.bigem")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(tmp_path / "m.bigem"), "--kind", "convergence", "-o", str(tmp_path / "em.png")]) == 2
    err = capsys.readouterr().err
    assert err == "bigem plot: error: pictures needs matplotlib: pip install 'bigem[plot]'\n"


# ---------------------------------------------------------------------- files that disagree on columns
def test_files_that_disagree_on_columns_are_named_and_columns_said_to_be_inferred(tmp_path):
    """The README's lake/ has events/, new/ and survey/ side by side: reading lake/
    mixes them. The error names both files, says the columns came from the first file,
    and never mentions a columns= that was not passed."""
    rng = np.random.default_rng(0)
    (tmp_path / "lake" / "events").mkdir(parents=True)
    (tmp_path / "lake" / "survey").mkdir()
    pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50), "z": rng.normal(size=50)}).to_parquet(
        tmp_path / "lake" / "events" / "a.parquet")
    pd.DataFrame({"x": rng.normal(size=50), "w": rng.random(50)}).to_parquet(tmp_path / "lake" / "survey" / "b.parquet")
    with pytest.raises(DataError) as caught:
        GaussianMixture(2).fit(str(tmp_path / "lake"))
    text = str(caught.value)
    assert "the files disagree on their columns" in text
    assert re.search(r"first file, \S*events/a\.parquet \(\['x', 'y', 'z'\]\)", text)
    assert re.search(r"survey/b\.parquet has \['x', 'w'\] \(no \['y', 'z'\]\)", text)
    assert "you passed" not in text
    # columns= that a file lacks is the user's choice: that message stays
    with pytest.raises(DataError, match=r"no column\(s\) \['z'\].*the columns= you passed"):
        GaussianMixture(2).fit(str(tmp_path / "lake"), columns=["x", "z"])


def test_a_later_file_with_an_extra_column_is_refused_too(tmp_path):
    """The features are the first file's columns: a later file's extra column would be
    left out silently; with columns= it is the user's choice."""
    rng = np.random.default_rng(1)
    (tmp_path / "d").mkdir()
    frame = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
    frame.to_parquet(tmp_path / "d" / "a.parquet")
    frame.assign(e=1.0).to_parquet(tmp_path / "d" / "b.parquet")
    with pytest.raises(DataError, match=r"b\.parquet has \['x', 'y', 'e'\] \(also \['e'\]\)"):
        GaussianMixture(1).fit(str(tmp_path / "d"))
    assert GaussianMixture(1).fit(str(tmp_path / "d"), columns=["x", "y"]).n_features_in_ == 2


# ---------------------------------------------------------------------- id-like columns
def _events(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X, _, _ = make_blobs(seed, n_per=n // 2, k=2, d=2)
    return pd.DataFrame({"event_id": np.arange(10_000, 10_000 + n), "x": X[:, 0], "y": X[:, 1],
                         "count": rng.integers(0, 5, n)})


def test_an_id_like_dataframe_column_is_warned_about_unless_columns_are_named():
    df = _events()
    with pytest.warns(IdentifierColumnWarning, match=r"X: column 'event_id' looks like a row identifier") as seen:
        GaussianMixture(2, random_state=0).fit(df)
    assert len(seen) == 1  # 'count' (integers, repeated) is not one
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianMixture(2, random_state=0).fit(df, columns=["x", "y", "count"])
        GaussianMixture(2, random_state=0).fit(df[["x", "y", "count"]])
        GaussianMixture(2, random_state=0).fit(df.iloc[:19])  # too few rows to tell
        GaussianMixture(2, random_state=0).fit(df.assign(event_id=df.event_id.astype(float)))  # not whole numbers


def test_a_decreasing_id_in_parquet_files_is_warned_about_on_the_first_pass(tmp_path):
    df = _events(300)
    df["event_id"] = df["event_id"].to_numpy()[::-1]
    for i in range(3):  # across file boundaries
        df.iloc[100 * i: 100 * (i + 1)].to_parquet(tmp_path / f"part{i}.parquet")
    with pytest.warns(IdentifierColumnWarning, match=r"part\d\.parquet|column 'event_id'") as seen:
        gm = GaussianMixture(2, random_state=0, chunk_size=64).fit(str(tmp_path))
    assert [str(w.message).split("column ")[1].split(" ")[0] for w in seen] == ["'event_id'"]
    assert list(gm.feature_names_in_) == ["event_id", "x", "y", "count"]
    with warnings.catch_warnings():  # named features: nothing to say; predicting: nothing either
        warnings.simplefilter("error")
        gm = GaussianMixture(2, random_state=0).fit(str(tmp_path), columns=["x", "y"])
        gm.predict(str(tmp_path))
    shuffled = df.sample(frac=1.0, random_state=1)
    shuffled.to_parquet(tmp_path / "part0.parquet")
    for i in (1, 2):
        os.remove(tmp_path / f"part{i}.parquet")
    with warnings.catch_warnings():  # ids out of order: not flagged
        warnings.simplefilter("error")
        GaussianMixture(2, random_state=0).fit(str(tmp_path))


# ---------------------------------------------------------------------- DataFrames with an id column at predict
def test_predict_on_a_dataframe_with_an_extra_id_column_reads_the_fitted_columns():
    df = _events()
    gm = GaussianMixture(2, random_state=0).fit(df[["x", "y"]])
    features = df[["x", "y"]]
    np.testing.assert_array_equal(gm.predict(df), gm.predict(features))
    np.testing.assert_array_equal(gm.predict_proba(df), gm.predict_proba(features))
    assert gm.score(df) == gm.score(features)
    # scikit-learn's rules hold otherwise: same names in another order, or a missing one, are refused
    with pytest.raises(DataError, match="The feature names should match"):
        gm.predict(df[["y", "x"]])
    with pytest.raises(DataError, match="The feature names should match"):
        gm.predict(df[["x", "count"]])


def test_predict_to_a_file_keeps_a_dataframe_id_column(tmp_path):
    df = _events()
    gm = GaussianMixture(2, random_state=0).fit(df, columns=["x", "y"])
    out = gm.predict(df, out=tmp_path / "labels.csv", id_column="event_id")
    got = pd.read_csv(out)
    assert list(got.columns) == ["event_id", "label"]
    np.testing.assert_array_equal(got["event_id"], df["event_id"])
    np.testing.assert_array_equal(got["label"], gm.predict(df))


# ---------------------------------------------------------------------- Dask in a plain script
SCRIPT = """\
import numpy as np
import dask.array as da
from bigem import GaussianMixture

rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(0, 1, (3000, 2)), rng.normal(6, 1, (3000, 2))])
X_dask = da.from_array(X, chunks=(2000, 2))
gm = GaussianMixture(2, random_state=0).fit(X_dask)
print("means", sorted(int(round(float(m))) for m in gm.means_[:, 0]))
"""


def test_dask_fit_in_a_script_without_a_main_guard(tmp_path):
    """Worker processes would import the script again and start clusters of their own
    ("Nanny failed to start"); the embedded cluster then computes in this process."""
    script = tmp_path / "fit_dask.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "means [0, 6]\n"
    assert "Nanny" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("source, line, guarded", [
    ("import x\nfit()\n", 2, False),
    ("import x\nif __name__ == '__main__':\n    fit()\n", 3, True),
    ("import x\nif '__main__' == __name__:\n    main()\n", 3, True),
    ("def main():\n    fit()\n\nmain()\n", 4, False),
    ("if __name__ == '__main__':\n    pass\nelse:\n    fit()\n", 4, False),
    ("if __name__ != '__main__':\n    fit()\n", 2, False),
    ("if x:\n    fit()\n", 2, False),
    ("this is not python(\n", 1, True),
])
def test_a_main_guard_is_recognised(source, line, guarded):
    assert under_main_guard(source, line) is guarded


# ---------------------------------------------------------------------- verbose
class _Chunks:
    """A source of four chunks."""

    def __init__(self, n=4, rows=10):
        self.rows, self.n = rows, n
        self.n_rows, self.n_features, self.decodes = n * rows, 1, False

    def chunks(self):
        for i in range(self.n):
            yield Chunk(torch.zeros(self.rows, 1), None, i * self.rows)


def _progress(verbose=1):
    from bigem.estimators._progress import Progress

    class S:
        n_init, max_iter, verbose_interval = 1, 10, 10

    S.verbose = verbose
    return Progress(LocalEngine(read_ahead=4), 40, S, False, "GaussianMixture")


def test_the_bar_counts_rows_once_computed_not_when_read_ahead():
    pytest.importorskip("tqdm")
    progress = _progress()
    seen = []

    def task(chunk):
        seen.append(progress._bar.n)  # rows counted before this chunk is computed
        return torch.ones(())

    with progress:
        for _ in range(3):  # every pass starts at 0 and ends at all rows, however few the chunks
            progress.engine.reduce(task, _Chunks())
            assert progress._bar.n == 40
    assert seen == [0, 10, 20, 30] * 3


def _lines(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.fullmatch(pattern, line)]


ITERATION = r"  Iteration \d+\t time lapse \d+\.\d{5}s\t ll change (-?\d+\.\d{5}|inf)"


def test_verbose_two_adds_scikit_learns_iteration_lines(capsys):
    sklearn = pytest.importorskip("sklearn.mixture")
    X, _, _ = make_blobs(2, n_per=300, k=3, d=2)
    sklearn.GaussianMixture(3, verbose=2, verbose_interval=1, random_state=0).fit(X)
    theirs = capsys.readouterr().out
    assert _lines(theirs, ITERATION)  # the reference's format, which ours must match
    gm = GaussianMixture(3, verbose=2, verbose_interval=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert len(_lines(out, ITERATION)) == gm.n_iter_
    assert out.splitlines()[0].startswith("Initialization 0")
    assert re.search(r"^Initialization converged\. time lapse \d+\.\d+s\t lower bound -?\d+\.\d+\.$", out, re.M)
    # the same lines as scikit-learn's, numbers aside, then bigem's summary
    skeleton = lambda text: [re.sub(r"-?\d+\.\d+|\binf\b", "#", line) for line in text.splitlines()]  # noqa: E731
    assert skeleton(out)[:-1] == skeleton(theirs)
    assert out.splitlines()[-1].startswith(f"GaussianMixture: converged after {gm.n_iter_} iterations over 900 rows")
    assert f"lower bound {gm.lower_bound_:.6f}" in out.splitlines()[-1]
    sklearn.GaussianMixture(3, verbose=1, verbose_interval=2, max_iter=7, random_state=0).fit(X)
    theirs = capsys.readouterr().out
    GaussianMixture(3, verbose=1, verbose_interval=2, max_iter=7, random_state=0, dtype="float64").fit(X)
    out = capsys.readouterr().out
    assert not _lines(out, ITERATION) and out.splitlines()[:2] == ["Initialization 0", "  Iteration 2"]
    assert out.splitlines()[:-1] == theirs.splitlines()  # scikit-learn's lines to the letter (no "Iteration 7")
    assert out.splitlines()[-1].startswith("GaussianMixture: ")  # the summary stays
    for verbose in (1, 2):  # max_iter=0 only initialises: scikit-learn says "Initialization 0" and no more
        sklearn.GaussianMixture(3, verbose=verbose, max_iter=0, random_state=0).fit(X)
        theirs = capsys.readouterr().out
        GaussianMixture(3, verbose=verbose, max_iter=0, random_state=0).fit(X)
        out = capsys.readouterr().out
        assert theirs.splitlines() == ["Initialization 0"] and out.splitlines()[:-1] == theirs.splitlines()


def test_verbose_lines_are_written_above_the_bar(capsys):
    tqdm = pytest.importorskip("tqdm")
    written = []
    real = tqdm.tqdm.write

    def spy(cls, s, file=None, end="\n", nolock=False):
        written.append(s)
        return real(s, file=file, end=end, nolock=nolock)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tqdm.tqdm, "write", classmethod(spy))
        X, _, _ = make_blobs(2, n_per=100, k=2, d=2)
        GaussianMixture(2, verbose=1, random_state=0).fit(X)
    assert written and written[0].startswith("Initialization 0")
    captured = capsys.readouterr()
    assert "Initialization" not in captured.err and "Initialization 0" in captured.out


def test_the_public_submodules_are_reached_from_a_plain_import():
    """The docs write bigem.plot.plot_profile(...) after `import bigem`; it raised AttributeError."""
    import subprocess
    import sys

    code = ("import bigem; print(bigem.plot.plot_profile.__name__, bigem.datasets.load_faithful.__name__, "
            "bigem.errors.PrecisionWarning.__name__, bigem.stepmix.StepMix.__name__)")
    here = os.path.dirname(os.path.dirname(bigem.__file__))  # the bigem under test
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
        filter(None, [here, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["plot_profile", "load_faithful", "PrecisionWarning", "StepMix"]
    with pytest.raises(AttributeError, match="module 'bigem' has no attribute 'nothing'"):
        bigem.nothing  # noqa: B018
    # tab completion and dir() list the names imported on first use (they listed none)
    assert {*bigem.__all__, "plot", "datasets", "errors", "stepmix"} <= set(dir(bigem))
