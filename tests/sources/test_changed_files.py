"""A file rewritten while a fit reads it, once a pass, is refused by name: it would mix
two data sets in one fit, silently (a fit of N(0, 1) rows rewritten after two passes as
100 x + 50 ended with means near 47-100 and only a ConvergenceWarning)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bigem import GaussianMixture, MultinomialMixture
from bigem._core.errors import DataError
from bigem.sources import npy, npz, tables

X = np.random.default_rng(0).normal(size=(4000, 2))


def _write(path: str, values: np.ndarray) -> None:
    if path.endswith(".npy"):
        np.save(path, values)
    elif path.endswith(".npz"):
        sp.save_npz(path, sp.csr_matrix(np.abs(values).round() * 3))
    elif path.endswith(".parquet"):
        pd.DataFrame(values, columns=["a", "b"]).to_parquet(path)
    else:
        pd.DataFrame(values, columns=["a", "b"]).to_csv(path, index=False)


def _rewritten_at_third_pass(monkeypatch, cls, path: str, values: np.ndarray) -> None:
    calls = {"n": 0}
    chunks = cls.chunks

    def counting(self):
        calls["n"] += 1
        if calls["n"] == 3:
            _write(path, values)
            os.utime(path, ns=(1, 1))  # a new modification time, even on a coarse clock
        return chunks(self)

    monkeypatch.setattr(cls, "chunks", counting)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("ext, cls, how", [
    ("npy", npy.NpySource, "same size"), ("npy", npy.NpySource, "larger"),
    ("parquet", tables.TableSource, "smaller"), ("csv", tables.TableSource, "larger"),
    ("npz", npz.NpzSource, "smaller"),
])
def test_a_file_rewritten_between_passes_is_refused_by_name(ext, cls, how, tmp_path, monkeypatch):
    path = str(tmp_path / f"x.{ext}")
    _write(path, X)
    new = {"same size": 100 * X + 50, "larger": np.r_[X, X], "smaller": 100 * X[:1000] + 50}[how]
    _rewritten_at_third_pass(monkeypatch, cls, path, new)
    est = (MultinomialMixture if ext == "npz" else GaussianMixture)(2, max_iter=6, tol=0, random_state=0,
                                                                    cache_budget=0)
    with pytest.raises(DataError, match=rf"^{path}: (changed|was rewritten) .* while bigem was reading it; .* until "
                                        "it ends: let the writer finish first, or fit a copy"):
        est.fit(path)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_a_file_removed_between_passes_is_refused_by_name(tmp_path, monkeypatch):
    path = str(tmp_path / "x.parquet")
    _write(path, X)
    calls = {"n": 0}
    chunks = tables.TableSource.chunks

    def counting(self):
        calls["n"] += 1
        if calls["n"] == 3:
            os.remove(path)
        return chunks(self)

    monkeypatch.setattr(tables.TableSource, "chunks", counting)
    with pytest.raises(DataError, match=rf"^{path}: was removed while bigem was reading it"):
        GaussianMixture(2, max_iter=6, tol=0, cache_budget=0).fit(path)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_files_left_alone_fit_as_before(tmp_path):
    path = str(tmp_path / "x.parquet")
    _write(path, X)
    streamed = GaussianMixture(2, max_iter=6, tol=0, random_state=0, cache_budget=0, dtype="float64").fit(path)
    held = GaussianMixture(2, max_iter=6, tol=0, random_state=0, dtype="float64").fit(X)
    np.testing.assert_allclose(streamed.means_, held.means_, rtol=0, atol=1e-12)
