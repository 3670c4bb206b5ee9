"""A fit on a .npy file's columns picked by index keeps them (``feature_indices_``), as a
fit on named columns keeps their names: inference on a .npy file reads them unless told,
refuses others, and a model file carries them. Without it a model fitted on columns
[2, 0] read columns [0, 2] when told so (labels 72% the same) and gave no hint which."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bigem
from bigem import Files
from bigem.cli import main
from bigem.errors import DataError


@pytest.fixture
def wide(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    X[:200, 2] += 6.0
    path = tmp_path / "x.npy"
    np.save(path, X)
    return X, str(path)


@pytest.mark.parametrize("make", [lambda: bigem.GaussianMixture(2, random_state=0, dtype="float64"),
                                  lambda: bigem.GaussianHMM(2, n_iter=3, random_state=0)])
def test_the_fitted_columns_are_read_again_and_others_refused(wide, tmp_path, make):
    X, path = wide
    est = make().fit(path, columns=[2, 0])
    np.testing.assert_array_equal(est.feature_indices_, [2, 0])
    assert est.score(path) == pytest.approx(est.score(X[:, [2, 0]]), rel=1e-12)
    assert est.score(path, columns=["2", "0"]) == pytest.approx(est.score(X[:, [2, 0]]), rel=1e-12)
    with pytest.raises(DataError, match=r"was fitted on columns \[2, 0\] of a \.npy file, but columns=\[0, 2\] were "
                                        r"given; pass columns=\[2, 0\], or give no columns= to read those"):
        est.score(path, columns=[0, 2])
    est.save(tmp_path / "m.bigem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = bigem.load(tmp_path / "m.bigem")
    np.testing.assert_array_equal(back.feature_indices_, [2, 0])
    assert back.score(path) == pytest.approx(est.score(path), rel=1e-12)
    est.fit(X[:, [2, 0]])  # a fit on other data forgets them, as feature_names_in_
    assert not hasattr(est, "feature_indices_")


def test_partial_fit_keeps_the_first_calls_columns(wide):
    X, path = wide
    est = bigem.GaussianMixture(2, random_state=0).partial_fit(path, columns=[1, 3])
    est.partial_fit(path)  # reads columns 1 and 3 again
    np.testing.assert_array_equal(est.feature_indices_, [1, 3])
    assert est.n_steps_ == 2


def test_the_command_line_reads_the_fitted_columns_and_names_them(wide, tmp_path, capsys):
    X, path = wide
    model = str(tmp_path / "m.bigem")
    assert main(["fit", path, "-k", "2", "--columns", "2,0", "--dtype", "float64", "-o", model]) == 0
    capsys.readouterr()
    assert main(["info", model]) == 0
    assert "2 features (column 2, column 0)" in capsys.readouterr().out
    assert main(["predict", model, path, "-o", str(tmp_path / "p.npy")]) == 0
    expected = bigem.load(model).predict(X[:, [2, 0]])
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    capsys.readouterr()
    assert main(["score", model, path, "--columns", "0,2"]) == 2
    assert "but --columns 0,2 were given; pass --columns 2,0, or give no --columns to read those" in \
        capsys.readouterr().err


def test_a_files_objects_columns_and_a_folder_of_one_npy_file_are_kept_too(wide, tmp_path):
    """Files(path, columns=...) and a folder holding the .npy file were read by index at
    fit, but kept nothing, so swapped columns were read without a word (-60.9, not -3.49)."""
    X, path = wide
    est = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(Files(path, columns=[2, 0]))
    np.testing.assert_array_equal(est.feature_indices_, [2, 0])
    with pytest.raises(DataError, match=r"fitted on columns \[2, 0\] of a \.npy file, but columns=\[0, 2\]"):
        est.score(Files(path, columns=[0, 2]))
    assert est.score(Files(path)) == pytest.approx(est.score(X[:, [2, 0]]), rel=1e-12)
    folder = tmp_path / "folder"
    folder.mkdir()
    np.save(folder / "part.npy", X)
    on_folder = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(str(folder), columns=[2, 0])
    np.testing.assert_array_equal(on_folder.feature_indices_, [2, 0])
    with pytest.raises(DataError, match="fitted on columns"):
        on_folder.score(str(folder), columns=[0, 2])
    with pytest.raises(DataError, match="fitted on columns"):
        est.score(str(folder), columns=[0, 2])  # a model of the file, on the folder


def test_a_picture_of_the_fit_reads_the_fitted_columns(wide, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from bigem import plot

    X, path = wide
    est = bigem.GaussianMixture(2, random_state=0).fit(path, columns=[2, 0])
    plot.plot_fit(est, path, str(tmp_path / "fit.png"))  # was refused: 4 columns for a model of 2
    with pytest.raises(DataError, match="fitted on columns"):
        plot.plot_fit(est, Files(path, columns=[0, 2]), str(tmp_path / "swapped.png"))
    model = str(tmp_path / "m.bigem")
    est.save(model)
    capsys.readouterr()
    assert main(["plot", model, path, "--columns", "0,2", "-o", str(tmp_path / "cli.png")]) == 2
    assert "fitted on columns [2, 0] of a .npy file, but --columns 0,2" in capsys.readouterr().err
    assert not (tmp_path / "cli.png").exists() and not (tmp_path / "swapped.png").exists()
    assert main(["info", model, "--json"]) == 0
    assert '"feature_indices": [\n    2,\n    0\n  ]' in capsys.readouterr().out
