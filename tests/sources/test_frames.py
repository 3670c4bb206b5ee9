"""Data frames of other libraries as X (polars, pyarrow Tables and RecordBatches, any
frame with the Arrow PyCapsule stream interface): the same fit, names and answers as
the pandas DataFrame of the same columns; one-shot streams and lazy frames refused."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bigem import CategoricalMixture, GaussianHMM, GaussianMixture, MixedMixture, MixtureClassifier, MultinomialMixture
from bigem._core.errors import DataError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3)) + RNG.integers(0, 2, 200)[:, None] * 3.0
COLUMNS = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}


class PyCapsuleFrame:
    """A frame of no known library: columns, a list of dtypes (as polars has), and the
    Arrow stream interface, which is all bigem may rely on."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.columns = list(table.column_names)
        self.dtypes = [str(t) for t in table.schema.types]
        self.shape = (table.num_rows, table.num_columns)

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


def _frames():
    table = pa.table(COLUMNS)
    return {"Table": table, "RecordBatch": table.to_batches()[0], "PyCapsule": PyCapsuleFrame(table)}


@pytest.mark.parametrize("kind", ["Table", "RecordBatch", "PyCapsule"])
def test_a_foreign_frame_fits_and_predicts_as_its_pandas_frame(kind):
    frame, reference = _frames()[kind], pd.DataFrame(COLUMNS)
    ours = GaussianMixture(2, random_state=0).fit(frame)
    theirs = GaussianMixture(2, random_state=0).fit(reference)
    assert list(ours.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(ours.means_, theirs.means_)
    # the names are read at inference too: no "X does not have valid feature names" (an error here)
    assert ours.score(frame) == theirs.score(reference)
    np.testing.assert_array_equal(ours.predict(frame), theirs.predict(reference))
    picked = GaussianMixture(2, random_state=0).fit(frame, columns=["c", "a"])
    assert list(picked.feature_names_in_) == ["c", "a"]


def test_a_frame_with_other_columns_is_read_by_the_fitted_names():
    table = pa.table({**COLUMNS, "id": np.arange(200)})
    model = GaussianMixture(2, random_state=0).fit(table, columns=["a", "b", "c"])
    np.testing.assert_array_equal(model.predict(table), model.predict(pd.DataFrame(COLUMNS)))


def test_a_one_shot_stream_is_refused_with_what_to_do():
    table = pa.table(COLUMNS)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    with pytest.raises(DataError, match=r"RecordBatchReader.*read once.*read_all\(\)"):
        GaussianMixture(2).fit(reader)


def test_polars_frames_of_every_kind_of_column():
    pl = pytest.importorskip("polars")
    columns = {"x": ["u", "v", "w"] * 50, "y": ["p", "q"] * 75, "z": RNG.normal(size=150)}
    for frame in (pl.DataFrame(columns), pl.DataFrame(columns).with_columns(pl.col("x").cast(pl.Categorical))):
        ours = MixedMixture(2, random_state=0).fit(frame)
        theirs = MixedMixture(2, random_state=0).fit(pd.DataFrame(columns))
        assert ours.score(frame) == pytest.approx(theirs.score(pd.DataFrame(columns)), rel=1e-12)
        categorical = CategoricalMixture(2, random_state=0).fit(frame.select(["x", "y"]))
        assert [list(c) for c in categorical.categories_] == [["u", "v", "w"], ["p", "q"]]
    counts = {f"w{j}": RNG.poisson(2.0, 150) for j in range(5)}
    text = MultinomialMixture(2, random_state=0).fit(pl.DataFrame(counts))
    np.testing.assert_array_equal(text.probabilities_,
                                  MultinomialMixture(2, random_state=0).fit(pd.DataFrame(counts)).probabilities_)
    numeric = pl.DataFrame(COLUMNS)
    model = GaussianMixture(2, random_state=0).fit(numeric)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert model.score(numeric) == GaussianMixture(2, random_state=0).fit(X).score(X)


def test_polars_sequences_labels_and_id_columns(tmp_path):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"seq": [0] * 100 + [1] * 100, "v": X[:, 0], "cls": np.where(X[:, 0] > 1.5, "hi", "lo"),
                          "id": np.arange(200)})
    hmm = GaussianHMM(2, random_state=0).fit(frame.select(["seq", "v"]), sequence_column="seq")
    reference = GaussianHMM(2, random_state=0).fit(X[:, :1], lengths=[100, 100])
    assert hmm.score(frame.select(["seq", "v"]), sequence_column="seq") == pytest.approx(
        reference.score(X[:, :1], lengths=[100, 100]), rel=1e-12)
    classifier = MixtureClassifier().fit(frame.select(["v"]), frame["cls"])
    np.testing.assert_array_equal(classifier.predict(frame.select(["v"])),
                                  MixtureClassifier().fit(X[:, :1], np.asarray(frame["cls"])).predict(X[:, :1]))
    model = GaussianMixture(2, random_state=0).fit(frame, columns=["v"])
    written = pd.read_parquet(model.predict(frame, out=str(tmp_path / "p.parquet"), id_column="id"))
    np.testing.assert_array_equal(written["id"], np.arange(200))
    with pytest.raises(DataError, match=r"lazy frame \(LazyFrame\).*X.collect\(\)"):
        GaussianMixture(2).fit(frame.lazy())
