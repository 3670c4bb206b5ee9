"""``categories=``: a categorical column's vocabulary declared rather than learnt, so a
category no row of the fit holds keeps its place (and, with alpha > 0, a probability),
``partial_fit`` batches may bring it later, and the data is checked against it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.cli import main
from bigem.errors import DataError, ParameterError

F64 = dict(dtype="float64", random_state=0)


def _survey(n=600, seed=0):
    """Two classes, two questions coded 0..2; code 3 is a valid answer nobody gave."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    X = np.stack([np.array([rng.choice(3, p=p[k]) for k in z]) for _ in range(2)], 1)
    return X


def test_one_component_is_the_smoothed_frequencies_over_the_declared_categories():
    # K = 1 is closed form: p_m = (alpha + count_m) / (M alpha + n), M the declared size
    X = _survey()
    model = bigem.CategoricalMixture(1, alpha=1.0, categories=[[0, 1, 2, 3], [0, 1, 2]], **F64).fit(X)
    counts = np.bincount(X[:, 0], minlength=4)
    np.testing.assert_allclose(model.probabilities_[0][0], (1 + counts) / (4 + len(X)), rtol=0, atol=1e-12)
    assert [c.tolist() for c in model.categories_] == [[0, 1, 2, 3], [0, 1, 2]]
    # the unseen answer is scored with its probability, not refused
    row = np.array([[3, 0]])
    expected = np.log(1 / (4 + len(X))) + np.log(model.probabilities_[1][0, 0])
    np.testing.assert_allclose(model.score_samples(row), [expected], rtol=0, atol=1e-12)


def test_declared_as_the_data_holds_them_is_the_learnt_fit():
    X = _survey()
    learnt = bigem.CategoricalMixture(2, **F64).fit(X)
    declared = bigem.CategoricalMixture(2, categories={1: [2, 0, 1]}, **F64).fit(X)  # any order: kept sorted
    np.testing.assert_array_equal(declared.categories_[1], [0, 1, 2])
    np.testing.assert_allclose(declared.weights_, learnt.weights_, rtol=0, atol=1e-12)
    for a, b in zip(declared.probabilities_, learnt.probabilities_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_partial_fit_takes_a_declared_category_first_seen_in_a_later_batch():
    X = _survey(n=400)
    later = _survey(n=400, seed=1)
    later[:7, 0] = 3
    plain = bigem.CategoricalMixture(2, random_state=0)
    plain.partial_fit(X)
    with pytest.raises(DataError, match=r"did not see at fit.*declare every category up front with categories="):
        plain.partial_fit(later)
    model = bigem.CategoricalMixture(2, categories=[[0, 1, 2, 3], "auto"], random_state=0)
    model.partial_fit(X)
    before = [p.copy() for p in model.probabilities_]
    model.partial_fit(later)
    assert model.probabilities_[0].shape == (2, 4)
    # the batch that holds code 3 raises its probability in every component
    assert np.all(model.probabilities_[0][:, 3] > before[0][:, 3])
    for p in model.probabilities_:
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-6)


def test_a_pandas_categoricals_declared_levels():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"colour": pd.Categorical(rng.choice(["red", "blue"], 300), categories=["red", "blue", "green"]),
                       "x": rng.normal(size=300)})
    model = bigem.MixedMixture(2, categories={"colour": df.colour.cat.categories}, **F64).fit(df)
    assert model.categories_[0].tolist() == ["blue", "green", "red"]
    new = pd.DataFrame({"colour": ["green"], "x": [0.0]})
    assert np.isfinite(model.score_samples(new)).all()


@pytest.mark.parametrize("categories, error, message", [
    ([[0, 1], "auto"], DataError, r"column 0 holds 2, which its declared categories \(0, 1\) do not list; add it to "
                                  r"categories="),
    ([["a", "b"], "auto"], DataError, r"column 0 holds int values \(0, 1, 2\) but its declared categories are str"),
    ([[0, 1, 2]], ParameterError, r"categories lists 1 entry but X has 2 columns; give one list of categories per "
                                  r"column"),
    ({5: [0, 1]}, ParameterError, r"categories names column 5, but X has columns 0..1"),
    ({"q": [0, 1]}, ParameterError, r"categories names column 'q', which X does not have"),
    ({0: "abc"}, ParameterError, r"categories for column 0 must be a non-empty list of its categories"),
    ({0: []}, ParameterError, r"categories for column 0 must be a non-empty list"),
    ({0: [0, "a"]}, ParameterError, r"categories for column 0 mixes categories of types \['int', 'str'\]"),
    ("all", ParameterError, r"The 'categories' parameter of CategoricalMixture must be 'auto', a list"),
])
def test_bad_declarations_are_refused_and_leave_the_model_as_it_was(categories, error, message):
    X = _survey(n=100)
    model = bigem.CategoricalMixture(2, random_state=0).fit(X)
    fitted = [p.copy() for p in model.probabilities_]
    with pytest.raises(error, match=message):
        model.set_params(categories=categories).fit(X)
    model.set_params(categories="auto")
    for a, b in zip(model.probabilities_, fitted):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(X), bigem.CategoricalMixture(2, random_state=0).fit(X).predict(X))


def test_categories_of_a_column_that_is_not_categorical_are_refused():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"c": rng.choice(["a", "b"], 50), "x": rng.normal(size=50)})
    with pytest.raises(ParameterError, match="column 'x', which MixedMixture reads as a real column, not a "
                                             "categorical one"):
        bigem.MixedMixture(2, categories={"x": [1, 2]}).fit(df)


@pytest.mark.parametrize("categories", [{2: [0, 1, 2, 5]}, ["auto", None, [0, 1, 2, 5]]])
def test_model_files_keep_declarations_and_positional_families(tmp_path, categories):
    rng = np.random.default_rng(4)
    X = np.c_[rng.normal(size=(120, 2)), np.arange(120) % 3]
    model = bigem.MixedMixture(2, families={2: "categorical"}, categories=categories, **F64).fit(X)
    path = tmp_path / "m.bigem"
    model.save(path)
    back = bigem.load(path)
    # a dict keyed by position stays one (JSON alone would turn its keys into names)
    assert back.get_params()["families"] == {2: "categorical"}
    assert back.get_params()["categories"] == categories
    np.testing.assert_allclose(back.score_samples(X), model.score_samples(X), rtol=0, atol=1e-12)
    refit = bigem.MixedMixture(**back.get_params()).fit(X)
    assert refit.categories_[0].tolist() == [0, 1, 2, 5]


def test_the_command_line_declares_categories(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    pd.DataFrame({"q1": [1, 2] * 20, "q2": ["a", "b", "b", "a"] * 10}).to_csv(csv, index=False)
    model = str(tmp_path / "m.bigem")
    assert main(["fit", str(csv), "-k", "2", "--family", "categorical", "--categories", "q1=1,2,3",
                 "--categories", "q2=a,b,c", "-o", model]) == 0
    capsys.readouterr()
    fitted = bigem.load(model)
    assert [c.tolist() for c in fitted.categories_] == [[1, 2, 3], ["a", "b", "c"]]
    assert main(["fit", str(csv), "-k", "2", "--family", "categorical", "--categories", "q1=1",
                 "-o", str(tmp_path / "n.bigem")]) == 2
    err = capsys.readouterr().err
    assert "column 'q1' holds 2, which its declared categories (1) do not list; add it to --categories" in err
    assert not (tmp_path / "n.bigem").exists()
    assert main(["fit", str(csv), "-k", "2", "--categories", "q1=1,2", "-o", str(tmp_path / "n.bigem")]) == 2
    assert "--categories lists a categorical column's categories, which --family gaussian does not have" in \
        capsys.readouterr().err
    assert main(["fit", str(csv), "-k", "2", "--family", "categorical", "--categories", "q3=1,2",
                 "-o", str(tmp_path / "n.bigem")]) == 2
    assert "--categories names column 'q3', which the data do not have" in capsys.readouterr().err
