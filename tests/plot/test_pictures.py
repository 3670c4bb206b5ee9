"""Pictures: written atomically, of the expected size, and not blank."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import bigem
from bigem.plot import plot_clusters, plot_convergence, plot_density_1d, plot_fit, plot_selection
from bigem.estimators.selection import full_covariances
from bigem.plot._common import as_rows
from bigem.plot.density import component_variances_1d
from bigem.plot.clusters import projection

pytest.importorskip("matplotlib")
from matplotlib import image  # noqa: E402

WIDTH, HEIGHT = 800, 600


def assert_png_drawn(path, min_coloured: int = 300) -> np.ndarray:
    """An 800x600 PNG, mostly white background but with ink and coloured (non-grey) marks."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    img = image.imread(path)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    rgb = img[..., :3]
    ink = (rgb.min(axis=2) < 0.5).sum()
    coloured = (np.ptp(rgb, axis=2) > 0.3).sum()
    assert ink > 2_000, "nothing dark drawn (axes, labels, text)"
    assert coloured > min_coloured, "no coloured marks drawn"
    assert (rgb.min(axis=2) > 0.95).mean() > 0.3, "not a white-background picture"
    assert not [p for p in os.listdir(os.path.dirname(path)) if "partial" in p]
    return rgb


def assert_svg(path) -> str:
    text = Path(path).read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert 'width="576pt"' in text and 'height="432pt"' in text  # 8 x 6 inches
    return text


@pytest.fixture(scope="module")
def blobs2d():
    rng = np.random.default_rng(0)
    covs = [np.array([[1.0, 0.8], [0.8, 1.0]]), np.array([[1.0, -0.5], [-0.5, 0.6]]), np.eye(2) * 0.3]
    X = np.concatenate([rng.multivariate_normal(m, c, 300) for m, c in zip([(0, 0), (5, 0), (0, 5)], covs)])
    return X, bigem.GaussianMixture(3, n_init=3, random_state=0).fit(X)


def test_density_1d_png_and_svg(tmp_path):
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1.5, 300), rng.normal(5, 0.5, 300)][:, None]
    for ct in ("full", "spherical", "tied", "diag"):
        gm = bigem.GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
        np.testing.assert_array_equal(component_variances_1d(gm), full_covariances(gm)[:, 0, 0])
    png = tmp_path / "d1.png"
    plot_density_1d(gm, X, png, title="two components")
    assert_png_drawn(str(png))
    svg = tmp_path / "d1.svg"
    plot_fit(gm, X, svg)
    text = assert_svg(str(svg))
    assert "mixture density (sum)" in text and "component 1: w=" in text


def test_clusters_scatter_png_svg(tmp_path, blobs2d):
    X, gm = blobs2d
    png = tmp_path / "clusters.png"
    plot_fit(gm, X, png)
    rgb = assert_png_drawn(str(png), min_coloured=3_000)
    # the three default colours C0, C1, C2 of the clusters all appear
    for colour in ((0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17)):
        assert (np.abs(rgb - colour).max(axis=2) < 0.08).sum() > 30
    plot_clusters(gm, X, tmp_path / "c.svg")
    text = assert_svg(str(tmp_path / "c.svg"))
    assert "1 sigma ellipse" in text and "2 sigma ellipse" in text and "900 rows, coloured" in text


def test_large_data_is_sampled(tmp_path, blobs2d):
    X, gm = blobs2d
    big = np.repeat(X, 40, axis=0)  # 36k rows
    path = tmp_path / "big.npy"
    np.save(path, big)
    out = tmp_path / "big.svg"
    plot_clusters(gm, str(path), out, max_points=2_000)
    text = assert_svg(str(out))
    assert "2,000 rows (uniform sample)" in text
    sample = as_rows(str(path), 2_000, seed=0)
    assert sample.shape == (2_000, 2)
    # a uniform sample without replacement: every row is a row of the file, no row index twice
    assert np.isin(sample.view([("a", float), ("b", float)]), big.view([("a", float), ("b", float)])).all()


def test_projection_views(blobs2d):
    _, gm = blobs2d
    A, c, labels = projection(gm, None)
    assert np.array_equal(A, np.eye(2)) and labels == ["column 0", "column 1"]
    rng = np.random.default_rng(0)
    X5 = rng.normal(size=(400, 5)) * [5, 3, 1, 0.5, 0.1]
    gm5 = bigem.GaussianMixture(2, random_state=0).fit(X5)
    A, c, labels = projection(gm5, None)
    # the first principal axes of data scaled (5, 3, 1, .5, .1) are the first two coordinates
    np.testing.assert_allclose(np.abs(A[0]), [1, 0, 0, 0, 0], atol=0.05)
    np.testing.assert_allclose(np.abs(A[1]), [0, 1, 0, 0, 0], atol=0.05)
    assert labels[0].startswith("principal axis 1 (") and "% of variance" in labels[0]
    A, _, labels = projection(gm5, ["3", 1])
    assert A[0, 3] == 1 and A[1, 1] == 1 and labels == ["column 3", "column 1"]
    with pytest.raises(ValueError, match="out of range"):
        projection(gm5, [0, 7])
    with pytest.raises(ValueError, match="unknown column 'x'"):
        projection(gm5, ["x", 0])
    with pytest.raises(ValueError, match="two different columns"):
        projection(gm5, [1, 1])


def test_pca_view_png(tmp_path):
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(m, 1.0, (300, 4)) for m in (0.0, 6.0)])
    gm = bigem.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    plot_fit(gm, X, tmp_path / "pca.png")
    assert_png_drawn(str(tmp_path / "pca.png"), min_coloured=2_000)
    plot_clusters(gm, X, tmp_path / "cols.png", columns=[2, 3])
    assert_png_drawn(str(tmp_path / "cols.png"), min_coloured=2_000)


def test_convergence_one_line_per_restart(tmp_path, blobs2d):
    X, _ = blobs2d
    gm = bigem.GaussianMixture(3, n_init=3, init_params="random_from_data", random_state=0).fit(X)
    assert len(gm.history_) == 3
    svg = tmp_path / "conv.svg"
    plot_convergence(gm, svg)
    text = assert_svg(str(svg))
    for i, run in enumerate(gm.history_):
        assert f"restart {i}: {len(run['log_likelihood'])} iterations" in text
    png = tmp_path / "conv.png"
    plot_convergence(gm, png)
    assert_png_drawn(str(png))
    # the history survives save/load, so a saved model can still be drawn
    gm.save(tmp_path / "m.bigem")
    loaded = bigem.load(tmp_path / "m.bigem")
    assert [r["log_likelihood"] for r in loaded.history_] == [r["log_likelihood"] for r in gm.history_]


def test_selection_picture(tmp_path, blobs2d):
    X, _ = blobs2d
    result = bigem.select(X, n_components=range(1, 5), covariance_types=("full", "spherical"), random_state=0)
    svg = tmp_path / "sel.svg"
    plot_selection(result, svg)
    text = assert_svg(str(svg))
    best = result.best_
    assert f"chosen by BIC: K={best['n_components']}, {best['covariance_type']}" in text
    png = tmp_path / "sel.png"
    plot_selection(result, png, criterion="aic")
    assert_png_drawn(str(png))


@pytest.mark.parametrize(
    "name, match",
    [("fig.jpg", "unsupported file type '.jpg'"), ("fig", "unsupported file type"), ("nodir/fig.png", "does not exist")],
)
def test_bad_output_path(tmp_path, blobs2d, name, match):
    _, gm = blobs2d
    with pytest.raises((ValueError, OSError), match=match):
        plot_convergence(gm, tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_wrong_data_width(tmp_path, blobs2d):
    _, gm = blobs2d
    with pytest.raises(ValueError, match="X has 3 columns, but the model has 2 features"):
        plot_clusters(gm, np.zeros((10, 3)), tmp_path / "x.png")
    assert os.listdir(tmp_path) == []


def test_a_file_is_read_by_the_models_column_names(tmp_path, blobs2d):
    X, _ = blobs2d
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[np.arange(len(X)), X], delimiter=",", header="id,height,width", comments="", fmt="%.17g")
    gm = bigem.GaussianMixture(3, random_state=0).fit(str(path), columns=["height", "width"])
    rows = as_rows(str(path), 100, 0, gm.feature_names_in_)
    assert rows.shape == (100, 2) and np.isin(rows[:, 0], X[:, 0]).all()  # id column left out
    plot_fit(gm, str(path), tmp_path / "named.svg", max_points=100)
    text = assert_svg(str(tmp_path / "named.svg"))
    assert "height" in text and "width" in text and "100 rows (uniform sample)" in text


def test_plot_fit_of_another_family_names_the_pictures_it_has(tmp_path):
    import bigem
    from bigem._core.errors import ParameterError
    from bigem.plot import plot_fit

    X = np.random.default_rng(0).integers(0, 2, (200, 3))
    m = bigem.BernoulliMixture(2, random_state=0).fit(X)
    with pytest.raises(ParameterError, match="BernoulliMixture is not one: use plot_profile"):
        plot_fit(m, X, tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


def test_an_hmm_is_pointed_to_its_convergence_which_draws_its_monitor(tmp_path):
    """plot_fit named plot_profile to an HMM (which refuses it) and plot_convergence said an
    HMM fitted by EM was "not fitted by EM iterations"; its line is now monitor_.history."""
    from bigem._core.errors import ParameterError

    X = np.random.default_rng(0).normal(size=(300, 2))
    hmm = bigem.GaussianHMM(2, n_iter=5, random_state=0).fit(X)
    with pytest.raises(ParameterError, match=r"GaussianHMM is not one: use plot_convergence \(its monitor_.history\)"):
        plot_fit(hmm, X, tmp_path / "f.png")
    plot_convergence(hmm, tmp_path / "conv.svg")
    text = assert_svg(str(tmp_path / "conv.svg"))
    assert f"restart 0: {len(hmm.monitor_.history)} iterations" in text and "monitor_.history" in text


@pytest.mark.parametrize("draw", [lambda m, p: plot_fit(m, np.zeros((5, 2)), p),
                                  lambda m, p: plot_clusters(m, np.zeros((5, 2)), p),
                                  lambda m, p: plot_density_1d(m, np.zeros((5, 1)), p),
                                  lambda m, p: plot_convergence(m, p)])
def test_an_unfitted_model_is_named_not_fitted(tmp_path, draw):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="This GaussianMixture instance is not fitted yet"):
        draw(bigem.GaussianMixture(2), tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("draw", [plot_clusters, plot_density_1d])
def test_the_pictures_of_components_refuse_what_is_no_gaussian_mixture(tmp_path, draw):
    """An HMM fitted on a frame crashed ("'DataFrame' object has no attribute
    'n_features'": its _check_features reads a source) or asked for covariances_."""
    import pandas as pd
    from bigem.errors import ParameterError

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 2)), columns=["a", "b"])
    frame = frame if draw is plot_clusters else frame[["a"]]
    for model in (bigem.GaussianHMM(2, random_state=0).fit(frame),
                  bigem.PoissonMixture(2, random_state=0).fit(np.abs(frame.round()))):
        instead = "plot_convergence" if isinstance(model, bigem.GaussianHMM) else "plot_profile"
        with pytest.raises(ParameterError, match=rf"{draw.__name__} draws a Gaussian mixture's densities over the "
                                                 rf"data, and {type(model).__name__} is not one: use {instead}"):
            draw(model, frame, tmp_path / "f.png")
    from sklearn.mixture import GaussianMixture as Theirs

    with pytest.raises(ParameterError, match=rf"{draw.__name__} draws bigem's mixtures, and this is sklearn's "
                                             r"GaussianMixture: fit bigem.GaussianMixture instead"):
        draw(Theirs(2).fit(frame), frame, tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


def test_an_unfitted_hmm_is_named_not_fitted_not_without_history(tmp_path):
    """Its monitor_ exists from construction (as hmmlearn's): the picture said the model
    "was not fitted by EM iterations"."""
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="This GaussianHMM instance is not fitted yet: call fit before drawing it"):
        plot_convergence(bigem.GaussianHMM(2), tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


def test_a_frame_is_drawn_by_the_fitted_names_as_predict_reads_it(tmp_path):
    """Columns in another order were drawn on the wrong axes (every row one component),
    where predict refuses them; every fitted column and an id beside reads the fitted ones."""
    import pandas as pd

    from bigem.errors import DataError

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.r_[rng.normal(size=100), rng.normal(8, 1, 100)], "b": rng.normal(size=200),
                          "c": rng.normal(size=200)})
    gm = bigem.GaussianMixture(2, random_state=0).fit(frame)
    one = bigem.GaussianMixture(2, random_state=0).fit(frame[["a"]])
    for draw, X in ((lambda X, p: plot_clusters(gm, X, p), frame[["b", "a", "c"]]),
                    (lambda X, p: plot_fit(one, X, p), frame[["b"]])):
        with pytest.raises(DataError, match="The feature names should match those that were passed during fit"):
            draw(X, tmp_path / "f.svg")
        assert not list(tmp_path.iterdir())
    plot_clusters(gm, frame.assign(id=np.arange(200))[["id", "c", "b", "a"]], tmp_path / "ids.png")
    plot_clusters(gm, frame, tmp_path / "plain.png")
    np.testing.assert_array_equal(assert_png_drawn(str(tmp_path / "ids.png")),
                                  assert_png_drawn(str(tmp_path / "plain.png")))


def test_many_components_have_colours_of_their_own(tmp_path):
    from matplotlib.colors import to_rgba

    from bigem.plot.clusters import _colours

    for K in (3, 10, 15, 20, 31):
        colours = [to_rgba(c) for c in _colours(K)]
        assert len(set(colours)) == K
    X = np.random.default_rng(1).normal(size=(600, 2)) * 10
    plot_clusters(bigem.GaussianMixture(15, random_state=0, tol=0.1).fit(X), X, tmp_path / "many.png")
    assert_png_drawn(str(tmp_path / "many.png"))
