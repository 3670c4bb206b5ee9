"""The discrete and mixed-type mixtures' inputs and outputs: streamed files (strings read
through Arrow's dictionary encoding), Dask, model files with their category mappings and
class labels, online EM, and every bad input refused with its column, row and fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bigem import BernoulliMixture, CategoricalMixture, MixedMixture, PoissonMixture, load
from bigem._core.errors import DataError, ParameterError


def _fit(est, X, *args, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        return est.fit(X, *args, **kw)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 900
    z = rng.integers(0, 2, n)
    colours = np.array(["red", "green", "blue"])
    return pd.DataFrame({
        "colour": colours[np.where(z == 0, rng.choice(3, n, p=[0.7, 0.2, 0.1]), rng.choice(3, n, p=[0.1, 0.2, 0.7]))],
        "size": np.where(rng.random(n) < 0.3 + 0.4 * z, "big", "small"),
        "x": rng.normal(2.0 * z, 1.0),
        "k": rng.poisson(2 + 3 * z),
        "flag": rng.random(n) < 0.2 + 0.6 * z,
    })


KW = dict(n_components=2, random_state=0, dtype="float64", tol=0, max_iter=8)
FAMILIES = {"k": "poisson", "flag": "bernoulli"}


def test_parquet_with_dictionary_and_string_columns_streams_to_the_in_memory_fit(frame, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(0, "colour", table.column("colour").dictionary_encode())  # and 'size' plain strings
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=200)
    memory = _fit(MixedMixture(families=FAMILIES, **KW), frame)
    streamed = _fit(MixedMixture(families=FAMILIES, chunk_size=128, **KW), path)
    assert streamed.families_ == ["categorical", "categorical", "gaussian", "poisson", "bernoulli"]
    np.testing.assert_allclose(streamed.lower_bounds_, memory.lower_bounds_, rtol=1e-12)
    for name in ("weights_", "means_", "lambdas_", "bernoulli_probabilities_"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(memory, name), rtol=1e-10)
    np.testing.assert_array_equal(streamed.predict(path), memory.predict(frame))
    lca = _fit(CategoricalMixture(**KW), path, columns=["colour", "size"])
    assert [list(c) for c in lca.categories_] == [["blue", "green", "red"], ["big", "small"]]
    np.testing.assert_allclose(lca.lower_bounds_, _fit(CategoricalMixture(**KW), frame[["colour", "size"]]).lower_bounds_,
                               rtol=1e-12)


def test_dask_dataframe_equals_the_in_memory_fit(frame):
    distributed = pytest.importorskip("distributed")
    import dask.dataframe as dd

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            dask = _fit(MixedMixture(families=FAMILIES, engine="dask", client=client, **KW),
                        dd.from_pandas(frame, npartitions=3))
    memory = _fit(MixedMixture(families=FAMILIES, **KW), frame)
    np.testing.assert_allclose(dask.lower_bounds_, memory.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(dask._probabilities_, memory._probabilities_, rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda f: (CategoricalMixture(**KW), f[["colour", "size"]]),
    lambda f: (BernoulliMixture(**KW), f[["flag"]].to_numpy(float)),
    lambda f: (PoissonMixture(**KW), f[["k"]]),
    lambda f: (MixedMixture(families=FAMILIES, covariance_type="full", **KW), f),
], ids=["categorical", "bernoulli", "poisson", "mixed"])
def test_save_and_load_give_the_same_answers(frame, tmp_path, make):
    est, X = make(frame)
    rng = np.random.default_rng(1)
    y = np.where(rng.random(len(frame)) < 0.1, np.where(frame["x"] > 1, "high", "low"), None)
    _fit(est.set_params(unlabeled_weight=1.0), X, y)
    est.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert type(back) is type(est)
    np.testing.assert_array_equal(back.classes_, ["high", "low"])
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert set(back.predict(X)) <= {"high", "low"}
    np.testing.assert_allclose(back.score_samples(X), est.score_samples(X), rtol=1e-12)
    for name in ("categories_",):
        if hasattr(est, name):
            for a, b in zip(getattr(back, name), getattr(est, name)):
                np.testing.assert_array_equal(a, b)


def test_an_unknown_category_is_refused_or_ignored(frame):
    X = frame[["colour", "size"]]
    strict = _fit(CategoricalMixture(**KW), X)
    new = pd.DataFrame({"colour": ["red", "purple"], "size": ["big", "big"]})
    with pytest.raises(DataError, match=r"column 'colour' has category 'purple' at row 1.*handle_unknown='ignore'"):
        strict.predict(new)
    # on Dask, the partition is named (the row was its row alone, with nothing to find it by)
    import dask.dataframe as dd

    later = pd.concat([X.iloc[:9], new.iloc[[1]]], ignore_index=True)
    with pytest.raises(DataError, match=r"^X, partition 1 \(rows counted from its start\): column 'colour' has "
                                        r"category 'purple' at row 4"):
        strict.predict(dd.from_pandas(later, npartitions=2)).compute(scheduler="sync")
    lenient = _fit(CategoricalMixture(handle_unknown="ignore", **KW), X)
    # an ignored entry carries no information: the row scores as if the column were absent
    p = lenient.probabilities_[1][:, 0]  # P(size = 'big') per component
    expected = np.log((lenient.weights_ * p).sum())
    assert lenient.score_samples(new)[1] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["mean", "sample"])
def test_impute_completes_an_ignored_unknown_category_as_a_gap(frame, method):
    """It came back as the column's last category (the code -1 read as an index)."""
    X = frame[["colour", "size"]]
    est = _fit(CategoricalMixture(handle_unknown="ignore", missing_values="fiml", **KW), X)
    new = pd.DataFrame({"colour": ["purple", None, "purple", None], "size": ["big", "big", "small", "small"]})
    gaps = new.replace("purple", None)
    np.testing.assert_array_equal(est.impute(new, method=method, random_state=3),
                                  est.impute(gaps, method=method, random_state=3))
    mixed = _fit(MixedMixture(handle_unknown="ignore", families={"k": "poisson"}, **KW), frame[["colour", "k"]])
    rows = pd.DataFrame({"colour": ["purple", "purple"], "k": [9, 0]})
    filled = mixed.impute(rows, method=method, random_state=3)
    np.testing.assert_array_equal(filled, mixed.impute(rows.replace("purple", None), method=method, random_state=3))
    if method == "mean":  # each row's most probable colour given its count
        proba = mixed.predict_proba(rows)
        for i in range(2):
            best = np.argmax(proba[i] @ mixed.probabilities_[0])
            assert filled[i, 0] == mixed.categories_[0][best]
        assert filled[0, 0] != filled[1, 0]


@pytest.mark.parametrize("est, X, message", [
    (PoissonMixture(2), np.array([[1, 2], [3, -1], [2, 2]]), r"column 1 holds -1 at row 1: PoissonMixture takes counts"),
    (PoissonMixture(2), np.array([[1, 2], [3, 1.5], [2, 2]]), r"column 1 holds 1.5 at row 1"),
    (BernoulliMixture(2), np.array([[1, 0], [0, 2], [1, 1]]), r"column 1 holds 2 at row 1: BernoulliMixture takes 0/1"),
    (BernoulliMixture(2), np.array([[1, 0], [np.nan, 1], [1, 1]]), r"NaN.*row 1"),
    (CategoricalMixture(2), pd.DataFrame({"a": ["x", None, "y"]}), r"column 'a' has a missing .* at row 1"),
    (MixedMixture(2), pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]}), r"column 'a' holds integers.*families="),
], ids=["negative-count", "fractional-count", "not-binary", "nan", "null-category", "integer-unstated"])
def test_bad_values_name_the_column_the_row_and_the_fix(est, X, message):
    with pytest.raises(DataError, match=message):
        est.fit(X)
    assert not hasattr(est, "weights_")


def test_a_column_with_one_category_warns():
    with pytest.warns(UserWarning, match=r"column 0 has a single category \('a'\): it carries no information"):
        _fit(CategoricalMixture(2, random_state=0), np.array([["a", "b"], ["a", "c"], ["a", "b"]]))


def test_labels_of_the_wrong_length_or_too_many_classes_are_refused():
    X = np.array([[1, 0], [0, 1], [1, 1]] * 3, dtype=float)
    with pytest.raises(DataError, match=r"y has 2 labels but X has 9 rows"):
        BernoulliMixture(2, unlabeled_weight=1.0).fit(X, [0, 1])
    with pytest.raises(ParameterError, match=r"y has 4 classes \(0, 1, 2, 3\) but n_components=3"):
        BernoulliMixture(3, unlabeled_weight=1.0).fit(X, [0, 1, 2, 3, -1, -1, -1, -1, -1])
    # a -2 meant as 'unlabelled' is a class: the message lists the classes and says what marks a row unlabelled
    with pytest.raises(ParameterError, match=r"y has 3 classes \(-2, 0, 1\) but n_components=2: .*Only -1, None, NaN "
                                             r"or an empty field mark an unlabelled row$"):
        BernoulliMixture(2, unlabeled_weight=1.0).fit(X, [0, 1, -2, -2, -2, -1, -1, -1, -1])


def test_the_text_minus_one_among_text_labels_is_refused_not_a_class(tmp_path):
    """A text column written with -1 for its unlabelled rows: its "-1" was a class of its own,
    which took every unlabelled row (classes_ ['-1', 'a', 'b'], predict '-1'). It is refused
    with the fix, in memory and in a file's label column; an object array's -1 is unlabelled."""
    X = np.array([[1, 0], [0, 1], [1, 1]] * 4, dtype=float)
    names = np.array(["a", "b"] * 6)
    labelled = np.arange(12) < 4
    text = np.where(labelled, names, "-1")
    for y in (text, np.where(labelled, names, "")):
        with pytest.raises(DataError, match=r"y holds the text '(-1)?' as a class label.*object array"):
            BernoulliMixture(3, unlabeled_weight=1.0).fit(X, y)
    path = tmp_path / "labelled.csv"
    pd.DataFrame({"f0": X[:, 0], "f1": X[:, 1], "lab": text}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"holds the text '-1' as a class label"):
        BernoulliMixture(3, unlabeled_weight=1.0).fit(str(path), y="lab")
    y = names.astype(object)
    y[~labelled] = -1
    fit = _fit(BernoulliMixture(2, unlabeled_weight=1.0, random_state=0), X, y)
    assert list(fit.classes_) == ["a", "b"]


def test_all_rows_labelled_or_none_both_fit():
    rng = np.random.default_rng(2)
    z = rng.integers(0, 2, 300)
    X = (rng.random((300, 5)) < np.where(z[:, None] == 0, 0.2, 0.8)).astype(float)
    everything = _fit(BernoulliMixture(2, unlabeled_weight=1.0, random_state=0, dtype="float64"), X, z)
    # all labelled, one component per class: the closed-form naive Bayes fit (alpha=1)
    for c in range(2):
        np.testing.assert_allclose(everything.probabilities_[c], (1 + X[z == c].sum(0)) / (2 + (z == c).sum()),
                                   rtol=1e-10)
    with pytest.warns(UserWarning, match="y labels none of X's rows, so this fit is unsupervised"):
        nothing = _fit(BernoulliMixture(2, unlabeled_weight=1.0, random_state=0), X, np.full(300, -1))
    assert np.isfinite(nothing.lower_bound_)


def test_online_em_reaches_the_batch_fit_with_pseudo_counts(frame):
    """The running statistics are per unit weight; the M-step must weigh alpha against the
    data they stand for (not one row), or every probability is pulled to uniform."""
    rng = np.random.default_rng(3)
    n, P = 20000, np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    z = rng.integers(0, 2, n)
    X = np.stack([(rng.random(n)[:, None] > P[z].cumsum(1)).sum(1) for _ in range(5)], 1)
    batch = _fit(CategoricalMixture(2, random_state=0), X)
    online = _fit(CategoricalMixture(2, random_state=0, algorithm="online", batch_size=1000), X)
    assert online.score(X) == pytest.approx(batch.score(X), abs=1e-3)
    order = np.argsort(online.probabilities_[0][:, 0])
    np.testing.assert_allclose(online.probabilities_[0][order], P[::-1], atol=0.03)


def test_partial_fit_with_labels(frame):
    flags = frame[["flag"]].to_numpy(float)
    y = np.where(frame["x"] > 1, 1, 0)
    y[::2] = -1
    est = BernoulliMixture(2, unlabeled_weight=1.0, random_state=0)
    for start in range(0, len(flags), 300):
        est.partial_fit(flags[start:start + 300], y[start:start + 300], classes=[0, 1])
    np.testing.assert_array_equal(est.classes_, [0, 1])
    whole = _fit(BernoulliMixture(2, unlabeled_weight=1.0, random_state=0), flags, y)
    assert est.score(flags) == pytest.approx(whole.score(flags), abs=0.01)
    np.testing.assert_array_equal(est.predict(flags), whole.predict(flags))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_maximum_likelihood_from_a_hard_start_keeps_every_row_explained(frame, dtype):
    """alpha=0 from k-means' hard assignments: a (colour, size) pair may get probability 0
    in every component; the M-step's floor keeps the row's density positive (StepMix clips)."""
    est = _fit(CategoricalMixture(2, alpha=0.0, dtype=dtype, random_state=0, max_iter=100), frame[["colour", "size"]])
    assert np.isfinite(est.score_samples(frame[["colour", "size"]])).all()
    assert all(p.min() > 0 for p in est.probabilities_)


def test_y_is_ignored_unless_unlabeled_weight_is_set():
    """scikit-learn's clusterers ignore fit(X, y)'s y (a Pipeline passes one): so do these."""
    rng = np.random.default_rng(4)
    X = (rng.random((200, 4)) < 0.5).astype(float)
    y = rng.integers(0, 5, 200)
    plain = _fit(BernoulliMixture(2, random_state=0, dtype="float64"), X)
    given = _fit(BernoulliMixture(2, random_state=0, dtype="float64"), X, y)
    assert not hasattr(given, "classes_")
    np.testing.assert_array_equal(given.probabilities_, plain.probabilities_)


def test_a_damaged_probability_table_is_refused_at_load(tmp_path):
    from bigem._core.errors import ModelFileError
    from bigem.io import read_model_file, write_model_file

    X = np.random.default_rng(5).choice(["a", "b", "c"], (100, 2))
    CategoricalMixture(2, random_state=0).fit(X).save(tmp_path / "m.bigem")
    tensors, meta = read_model_file(tmp_path / "m.bigem")
    tensors["probabilities"][0, 0] += 0.3
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match=r"column 0 of component 0 sums to 1.3, not 1"):
        load(tmp_path / "bad.bigem")
