"""The latent class profile: its table is the fitted probabilities, row by row, and its
picture is drawn; a model without probabilities is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem._core.errors import ParameterError
from bigem.plot import plot_profile
from bigem.plot.profile import profile_table
from tests.plot.test_pictures import assert_png_drawn


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 600
    z = rng.integers(0, 2, n)
    return pd.DataFrame({
        "colour": np.where(z == 0, rng.choice(["red", "blue"], n, p=[0.8, 0.2]), rng.choice(["red", "blue"], n, p=[0.2, 0.8])),
        "x": rng.normal(2.0 * z, 1.0),
        "flag": rng.random(n) < 0.2 + 0.6 * z,
        "size": rng.choice(["S", "M", "L"], n),
    })


def test_the_profile_table_is_the_fitted_probabilities(frame):
    est = bigem.MixedMixture(2, families={"flag": "bernoulli"}, random_state=0).fit(frame)
    labels, table = profile_table(est)
    assert labels == ["colour=blue", "colour=red", "flag=1", "size=L", "size=M", "size=S"]
    np.testing.assert_array_equal(table[:2], est.probabilities_[0].T)
    np.testing.assert_array_equal(table[2], est.bernoulli_probabilities_[:, 0])
    np.testing.assert_array_equal(table[3:], est.probabilities_[1].T)
    lca = bigem.CategoricalMixture(2, random_state=0).fit(frame[["colour", "size"]])
    labels, table = profile_table(lca)
    assert labels[0] == "colour=blue" and table.shape == (5, 2)
    np.testing.assert_allclose(table[:2].sum(0), 1.0)


def test_the_profile_is_drawn(frame, tmp_path):
    est = bigem.CategoricalMixture(2, random_state=0).fit(frame[["colour", "size"]])
    plot_profile(est, tmp_path / "profile.png")
    assert_png_drawn(str(tmp_path / "profile.png"))
    flags = bigem.BernoulliMixture(2, random_state=0).fit(frame[["flag"]].to_numpy(float))
    assert profile_table(flags)[0] == ["x0=1"]


def test_a_model_without_probabilities_is_refused(tmp_path):
    est = bigem.PoissonMixture(2, random_state=0).fit(np.random.default_rng(0).poisson(3, (100, 2)))
    with pytest.raises(ParameterError, match="PoissonMixture has none"):
        plot_profile(est, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_word_options_are_refused_for_a_latent_class_profile(frame, tmp_path):
    est = bigem.CategoricalMixture(2, random_state=0).fit(frame[["colour", "size"]])
    for kw in ({"top": 3}, {"vocabulary": ["a", "b"]}):
        with pytest.raises(ParameterError, match="top= and vocabulary= choose the words of a MultinomialMixture"):
            plot_profile(est, tmp_path / "p.png", **kw)
    from sklearn.exceptions import NotFittedError

    # (it was a ParameterError, where every other picture says NotFittedError)
    with pytest.raises(NotFittedError, match="This CategoricalMixture instance is not fitted yet: call fit before "
                                             "drawing it"):
        plot_profile(bigem.CategoricalMixture(2), tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
