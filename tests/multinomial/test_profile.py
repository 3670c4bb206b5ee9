"""The profile picture of a multinomial mixture: the words it shows, and its refusals."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from bigem import MultinomialMixture
from bigem._core.errors import ParameterError
from bigem.plot import plot_profile
from bigem.plot.profile import MAX_WORDS, profile_words

from ..plot.test_pictures import assert_png_drawn

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def fitted(documents):
    return MultinomialMixture(3, random_state=0).fit(sp.csr_matrix(documents[0]))


def test_the_columns_are_each_components_most_probable_words(fitted):
    probs = fitted.probabilities_
    words = profile_words(probs, 5)
    expected = []
    for k in range(probs.shape[0]):  # brute force: sort each row, keep first appearances
        for j in sorted(range(probs.shape[1]), key=lambda j: -probs[k, j])[:5]:
            if j not in expected:
                expected.append(j)
    assert words.tolist() == expected
    assert len(profile_words(np.random.default_rng(0).dirichlet(np.ones(500), 40), 10)) == MAX_WORDS


def test_the_profile_is_drawn_with_the_vocabulary(tmp_path, fitted):
    path = str(tmp_path / "profile.png")
    plot_profile(fitted, path, vocabulary=[f"word{j}" for j in range(fitted.probabilities_.shape[1])])
    assert_png_drawn(path)


def test_bad_requests_are_refused_and_leave_no_picture(tmp_path, fitted):
    path = tmp_path / "p.png"
    with pytest.raises(ParameterError, match="vocabulary has 3 names, but the model has 60 words"):
        plot_profile(fitted, path, vocabulary=["a", "b", "c"])
    with pytest.raises(ParameterError, match="top must be an int >= 1"):
        plot_profile(fitted, path, top=0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="This MultinomialMixture instance is not fitted yet: call fit before"):
        plot_profile(MultinomialMixture(3), path)
    assert not os.listdir(tmp_path)


def test_the_command_line_draws_profiles_with_a_vocabulary_file(tmp_path, fitted, capsys):
    from bigem.cli import main

    model, picture = str(tmp_path / "m.bigem"), str(tmp_path / "profile.png")
    fitted.save(model)
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("".join(f"w{j}\n" for j in range(60)), encoding="utf-8")
    assert main(["plot", model, "-o", picture, "--kind", "profile", "--top", "4", "--vocabulary", str(vocabulary)]) == 0
    assert_png_drawn(picture)
    assert main(["plot", model, "-o", str(tmp_path / "em.png"), "--kind", "convergence"]) == 0
    capsys.readouterr()
    # a multinomial has no 'fit' picture, a vocabulary of another length is refused: nothing written
    assert main(["plot", model, str(tmp_path / "d.npz"), "-o", str(tmp_path / "a.png")]) == 2
    assert "--kind profile or --kind convergence" in capsys.readouterr().err
    vocabulary.write_text("a\nb\n", encoding="utf-8")
    assert main(["plot", model, "-o", str(tmp_path / "b.png"), "--kind", "profile", "--vocabulary",
                 str(vocabulary)]) == 2
    assert "vocabulary has 2 names, but the model has 60 words" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["em.png", "m.bigem", "profile.png", "words.txt"]


def test_a_vocabulary_line_ends_at_a_newline_only(tmp_path):
    """str.splitlines also broke words at U+2028 and \x85: a 5-word file read as 6 names."""
    from bigem.cli.multinomial import read_vocabulary

    path = tmp_path / "words.txt"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("a\r\nline\u2028sep\nnext\x85line\nplain\nlast")
    assert read_vocabulary(str(path)) == ["a", "line\u2028sep", "next\x85line", "plain", "last"]
