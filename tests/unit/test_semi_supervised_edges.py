"""Semi-supervised settings without labels: a fit with unlabeled_weight and no y warns
that it is unsupervised; the bootstrap's and the BLRT's drawn rows (which have no
labels) refit without that warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bigem import GaussianMixture, PoissonMixture, blrt
from bigem.errors import ConvergenceWarning, DataError


def _blobs():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 300)
    return rng.normal(4.0 * z[:, None], 1.0, (300, 2)), np.where(rng.random(300) < 0.2, z, -1)


@pytest.mark.parametrize("cls", [GaussianMixture, PoissonMixture])
def test_unlabeled_weight_without_y_warns_that_the_fit_is_unsupervised(cls):
    X, y = _blobs()
    X = np.abs(np.round(X)) if cls is PoissonMixture else X
    with pytest.warns(UserWarning, match=r"unlabeled_weight=0.5 .* fit got no y, so this fit is unsupervised"):
        est = cls(2, unlabeled_weight=0.5, random_state=0).fit(X)
    assert not hasattr(est, "classes_") or est.classes_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(2, unlabeled_weight=0.5, random_state=0).fit(X, y)  # labels given: no warning
        cls(2, random_state=0).fit(X, y)  # y ignored, as scikit-learn's mixtures ignore it


@pytest.mark.parametrize("cls", [GaussianMixture, PoissonMixture])
def test_a_y_that_labels_no_row_warns_that_the_fit_is_unsupervised(cls):
    """With unlabeled_weight > 0 such a fit had no classes_ and said nothing: predict then
    gave components where the caller expected classes."""
    X, _ = _blobs()
    X = np.abs(np.round(X)) if cls is PoissonMixture else X
    with pytest.warns(UserWarning, match=r"^y labels none of X's rows, so this fit is unsupervised: the model has no "
                                         r"classes_") as caught:
        est = cls(2, unlabeled_weight=0.5, random_state=0).fit(X, np.full(len(X), -1))
    assert caught[0].filename == __file__  # the caller's line
    assert getattr(est, "classes_", None) is None and est.predict_proba(X).shape == (len(X), 2)


def test_labels_are_refused_in_the_words_of_labels():
    """The categorical columns' advice ("model it as a Gaussian column", "convert the
    column to the type it had at fit") read wrongly for class labels."""
    X, _ = _blobs()
    y = np.full(len(X), -1.0)
    y[:3] = [0.0, 1.5, 1.0]
    with pytest.raises(DataError, match=r"^y holds 1\.5, which is not a whole number: class labels are strings, "
                                        r"integers or booleans; give each class one label \(-1 or None where a row "
                                        r"is unlabelled\)$"):
        GaussianMixture(2, unlabeled_weight=1.0).fit(X, y)
    text = np.array(["a", "b"] * 150, dtype=object)
    with pytest.raises(DataError, match=r"y holds 'a' \(str\) at row 0, but the classes are of type int; give y "
                                        r"labels of the classes' type"):
        GaussianMixture(2, unlabeled_weight=1.0).partial_fit(X, text, classes=[0, 1])


def test_drawn_rows_refit_without_the_warning():
    X, y = _blobs()
    est = GaussianMixture(2, unlabeled_weight=0.5, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = est.bootstrap(X, n_boot=3, method="parametric", random_state=0)
        assert np.isfinite(result.replicates["means_"]).all()
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # a third component on two blobs
        more = GaussianMixture(3, unlabeled_weight=0.5, random_state=0).fit(X, y)
        test = blrt(est, more, X, n_boot=3, random_state=0)
    assert np.isfinite(test.bootstrap_statistics).all()


def test_prediction_files_of_a_class_fit_name_the_probabilities_by_class(tmp_path, capsys):
    """They were proba_0, proba_1 whatever the classes, so a reader had to know classes_'
    order; a component fit keeps proba_0, ..., and a .npy file its one matrix."""
    import pandas as pd

    from bigem.cli import main

    X, y = _blobs()
    labels = np.where(y >= 0, np.array(["cat", "dog"])[np.maximum(y, 0)], None)
    est = GaussianMixture(3, unlabeled_weight=1.0, random_state=0).fit(X, labels)
    path = tmp_path / "x.parquet"
    pd.DataFrame(X, columns=["a", "b"]).to_parquet(path)
    written = pd.read_parquet(est.write_predictions(path, tmp_path / "p.parquet", outputs=("label", "proba")))
    assert list(written.columns) == ["label", "proba_cat", "proba_dog"]
    np.testing.assert_allclose(written[["proba_cat", "proba_dog"]].to_numpy(), est.predict_proba(X), rtol=1e-6)
    assert np.load(est.write_predictions(path, tmp_path / "p.npy", outputs="proba")).shape == (300, 2)
    est.save(tmp_path / "m.bigem")
    assert main(["predict", str(tmp_path / "m.bigem"), str(path), "--proba", "-o", str(tmp_path / "q.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "q.csv").columns) == ["proba_cat", "proba_dog"]
    plain = GaussianMixture(2, random_state=0).fit(X)
    assert list(pd.read_parquet(plain.write_predictions(path, tmp_path / "r.parquet", outputs="proba")).columns) == [
        "proba_0", "proba_1"]
