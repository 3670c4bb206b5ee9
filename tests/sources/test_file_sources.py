"""File sources yield exactly the rows of the same data in memory, and fits agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import torch

from bigem import Files, GaussianMixture
from bigem.errors import DataError, ParameterError
from bigem.sources import open_source
from tests.conftest import make_blobs

COLS = ["a", "b", "c"]


def _frame(seed=0, n_per=300):
    X, _, _ = make_blobs(seed, n_per=n_per)
    df = pd.DataFrame(X, columns=COLS)
    df.insert(0, "id", [f"row{i}" for i in range(len(df))])  # a non-numeric column to select around
    df["count"] = np.arange(len(df)) % 7  # an integer column
    return df


def _write_parquet_folder(df, folder, parts=3, row_group_size=101):
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), parts)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), folder / f"part-{i}.parquet",
                       row_group_size=row_group_size)
    (folder / "_SUCCESS").write_text("")  # writers' markers are skipped
    return folder


def _open(X, chunk_rows=128, dtype=torch.float64, **kw):
    return open_source(X, dtype=dtype, device=torch.device("cpu"), memory_budget=1 << 20, chunk_size=chunk_rows, **kw)


def _all_rows(source):
    chunks = list(source.chunks())
    assert all(c.n_rows == 128 for c in chunks[:-1])  # fixed-size chunks whatever the files' layout
    assert [c.row_start for c in chunks] == list(range(0, source.n_rows, 128))
    return torch.cat([c.x for c in chunks]).numpy()


@pytest.mark.parametrize("fmt", ["parquet-folder", "parquet-glob", "parquet-list", "csv", "tsv", "feather", "ipc-stream"])
def test_every_file_source_yields_the_rows_in_memory(tmp_path, fmt):
    df = _frame()
    if fmt.startswith("parquet"):
        folder = _write_parquet_folder(df, tmp_path / "data")
        X = {"parquet-folder": str(folder), "parquet-glob": str(folder / "*.parquet"),
             "parquet-list": sorted(str(p) for p in folder.glob("*.parquet"))}[fmt]
    elif fmt in ("csv", "tsv"):
        X = str(tmp_path / f"data.{fmt}")
        df.to_csv(X, index=False, sep="," if fmt == "csv" else "\t")
        X = Files(X, delimiter="," if fmt == "csv" else "\t")
    elif fmt == "feather":
        X = str(tmp_path / "data.feather")
        feather.write_feather(df, X, chunksize=77)
    else:
        X = str(tmp_path / "data.arrow")
        table = pa.Table.from_pandas(df, preserve_index=False)
        with ipc.new_stream(X, table.schema) as w:
            for b in table.to_batches(max_chunksize=50):
                w.write_batch(b)
    source = _open(X, columns=["a", "count", "c"])
    assert source.n_rows == len(df) and source.feature_names == ["a", "count", "c"]
    np.testing.assert_array_equal(_all_rows(source), df[["a", "count", "c"]].to_numpy(np.float64))
    rows = torch.tensor([0, 5, 299, 300, 301, 899])
    np.testing.assert_array_equal(source.take(rows).numpy(), df[["a", "count", "c"]].to_numpy()[rows.numpy()])


def test_csv_without_header_names_columns_f0_f1(tmp_path):
    X = np.random.default_rng(1).normal(size=(50, 2))
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=";")
    source = _open(Files(str(path), delimiter=";", header=False))
    assert source.feature_names == ["f0", "f1"]
    np.testing.assert_allclose(torch.cat([c.x for c in source.chunks()]).numpy(), X, rtol=1e-15)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_from_parquet_and_csv_equals_the_fit_in_memory(tmp_path, covariance_type):
    df = _frame(seed=3)
    folder = _write_parquet_folder(df, tmp_path / "data")
    csv = tmp_path / "data.csv"
    df.to_csv(csv, index=False)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, chunk_size=200, dtype="float64")
    ref = GaussianMixture(**kw).fit(df[COLS])
    fits = []
    for X in (str(folder), str(csv)):
        gm = GaussianMixture(**kw).fit(X, columns=COLS)
        fits.append(gm)
        # same chunks; file chunks are column-major views, which BLAS may sum in another order
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-12, atol=1e-12)
        assert list(gm.feature_names_in_) == COLS
        # predict reads the fitted columns from the file, whatever else it holds
        np.testing.assert_array_equal(gm.predict(X), ref.predict(df[COLS]))
        assert gm.score(X) == pytest.approx(ref.score(df[COLS]), rel=1e-12)
    # how the rows are split into files and row groups does not change a single bit
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


def test_cached_and_uncached_passes_and_overlap_give_identical_fits(tmp_path, monkeypatch):
    df = _frame(seed=4)
    folder = _write_parquet_folder(df, tmp_path / "data")
    kw = dict(n_components=3, random_state=1, chunk_size=128)
    cached = GaussianMixture(cache_budget="1GB", **kw).fit(str(folder), columns=COLS)
    uncached = GaussianMixture(cache_budget=0, **kw).fit(str(folder), columns=COLS)
    from bigem.engines import local

    monkeypatch.setattr(local.LocalEngine.__init__, "__defaults__", (False, local.READ_AHEAD))  # no prefetch thread
    serial = GaussianMixture(cache_budget=0, **kw).fit(str(folder), columns=COLS)
    for other in (uncached, serial):
        np.testing.assert_array_equal(cached.means_, other.means_)
        np.testing.assert_array_equal(cached.covariances_, other.covariances_)
        assert cached.n_iter_ == other.n_iter_


def test_a_row_group_streamed_page_by_page_gives_the_fit_read_whole(tmp_path, monkeypatch):
    """A row group larger than the batches read from it (a file of one group) is streamed
    through a buffer, not pre-buffered whole: the same rows, in batches and in a sample."""
    from bigem.sources import tables

    df = _frame(seed=5)
    path = tmp_path / "one.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=len(df))  # one group
    kw = dict(n_components=3, random_state=1, chunk_size=128, cache_budget=0, dtype="float64")
    whole = GaussianMixture(**kw).fit(str(path), columns=COLS)
    opened = []
    real = tables._ParquetReader._open

    def spy(self, streamed=False):
        opened.append(streamed)
        return real(self, streamed)

    monkeypatch.setattr(tables._ParquetReader, "_open", spy)
    monkeypatch.setattr(tables, "_STREAM_ABOVE", 0)  # every group is "large"
    streamed = GaussianMixture(**kw).fit(str(path), columns=COLS)
    assert True in opened  # the streamed reads ran
    np.testing.assert_array_equal(streamed.means_, whole.means_)
    np.testing.assert_array_equal(streamed.covariances_, whole.covariances_)
    assert streamed.n_iter_ == whole.n_iter_


def test_cache_keeps_data_after_the_first_complete_pass_only(tmp_path):
    df = _frame()
    path = tmp_path / "x.parquet"
    df[COLS].to_parquet(path)
    source = _open(str(path), cache_bytes=1 << 30)
    first = next(iter(source.chunks()))  # an interrupted pass caches nothing
    assert not source.cached and first.n_rows == 128
    assert source.decodes  # the engine leaves a core to the decoder...
    rows = _all_rows(source)
    assert source.cached
    assert not source.decodes  # ...until the rows come from memory
    assert not getattr(_open(df[COLS].to_numpy()), "decodes", False)  # nor for rows in memory
    path.unlink()  # later passes no longer touch the file
    np.testing.assert_array_equal(_all_rows(source), rows)
    np.testing.assert_array_equal(source.take(torch.tensor([3, 400])).numpy(), rows[[3, 400]])


def test_a_source_object_is_accepted_as_is(tmp_path):
    df = _frame()
    X = df[COLS].to_numpy()
    inner = _open(X)
    gm = GaussianMixture(n_components=3, random_state=0, chunk_size=128).fit(inner)
    ref = GaussianMixture(n_components=3, random_state=0, chunk_size=128).fit(X)
    np.testing.assert_array_equal(gm.means_, ref.means_)


def test_a_model_fitted_with_names_reads_an_unnamed_npy_file_by_position(tmp_path):
    df = _frame(seed=2)
    path = tmp_path / "x.parquet"
    df.to_parquet(path)
    gm = GaussianMixture(n_components=3, random_state=0).fit(str(path), columns=COLS)
    npy = tmp_path / "x.npy"
    np.save(npy, df[COLS].to_numpy())
    np.testing.assert_array_equal(gm.predict(str(npy)), gm.predict(str(path)))


@pytest.mark.parametrize("layout", ["C", "F", "big-endian"])
def test_an_npy_files_columns_by_index_stream_as_those_columns_in_memory(tmp_path, layout):
    X = _frame(seed=3)[["a", "count", "b", "c"]].to_numpy(np.float64)
    stored = {"C": X, "F": np.asfortranarray(X), "big-endian": X.astype(">f8")}[layout]
    path = tmp_path / "x.npy"
    np.save(path, stored)
    for columns in ([3, 0], ["2", "1", "0"], [np.int64(1)]):
        picked = X[:, [int(c) for c in columns]]
        for dtype in (torch.float64, torch.float32):
            source = _open(str(path), dtype=dtype, columns=columns)
            assert (source.n_rows, source.n_features) == picked.shape
            shift = 0 if source.shift is None else source.shift.numpy()
            np.testing.assert_allclose(_all_rows(source) + shift, picked, rtol=1e-6 if dtype == torch.float32 else 0)
            rows = torch.tensor([0, 5, 299, 300, 899])
            np.testing.assert_allclose(source.take(rows).numpy() + shift, picked[rows.numpy()],
                                       rtol=1e-6 if dtype == torch.float32 else 0)
    kw = dict(n_components=3, random_state=0, dtype="float64")
    streamed = GaussianMixture(**kw, chunk_size=100).fit(str(path), columns=[3, 0])
    in_memory = GaussianMixture(**kw).fit(X[:, [3, 0]])
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-12)
    np.testing.assert_array_equal(streamed.predict(Files(str(path), columns=[3, 0])), in_memory.predict(X[:, [3, 0]]))


def test_an_npy_files_chosen_category_columns_are_learnt_from_those_columns(tmp_path):
    """The categories are counted in the chosen columns: they were read from the file's
    first columns (an IndexError, or another column's categories)."""
    from bigem import CategoricalMixture

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 5, 400), rng.integers(0, 3, 400), rng.integers(0, 2, 400)].astype(np.float64)
    path = tmp_path / "codes.npy"
    np.save(path, X)
    for columns in ([2], [2, 1], [1, 0]):
        in_memory = CategoricalMixture(2, random_state=0, dtype="float64").fit(X[:, columns])
        streamed = CategoricalMixture(2, random_state=0, dtype="float64").fit(str(path), columns=columns)
        assert [p.shape for p in streamed.probabilities_] == [p.shape for p in in_memory.probabilities_]
        assert streamed.bic(str(path), columns=columns) == pytest.approx(in_memory.bic(X[:, columns]), rel=1e-12)


def test_an_npy_files_chosen_columns_are_part_of_what_a_checkpoint_checks(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _frame(seed=3)[COLS].to_numpy(np.float64))
    every, chosen, other = (_open(str(path), columns=c).fingerprint() for c in (None, [0, 1], [1, 0]))
    assert "columns" not in every and chosen["columns"] == [0, 1] and chosen != other


@pytest.mark.parametrize("columns, message", [
    ([0, 4], r"x\.npy: column index 4 is out of range; the file has 3 columns \(0\.\.2\)"),
    (["a"], r"x\.npy: unknown column 'a'; a \.npy file has no column names: use indices 0\.\.2"),
    ([-1], r"x\.npy: unknown column -1; a \.npy file has no column names: use indices 0\.\.2"),
    ([1, 1], r"x\.npy: columns= lists \[1\] more than once"),
    (["\u00b2"], r"x\.npy: unknown column '\u00b2'; a \.npy file has no column names"),
])
def test_bad_npy_column_indices_are_named(tmp_path, columns, message):
    path = tmp_path / "x.npy"
    np.save(path, _frame(seed=3)[COLS].to_numpy(np.float64))
    with pytest.raises((DataError, ParameterError), match=message):
        GaussianMixture(2).fit(str(path), columns=columns)


def test_indices_for_a_file_with_column_names_are_refused(tmp_path):
    path = tmp_path / "x.parquet"
    _frame(seed=3).to_parquet(path)
    with pytest.raises(DataError, match=r"x\.parquet: columns=\[0, 2\] holds indices, but a Parquet file has column "
                                        r"names: choose its columns by name"):
        GaussianMixture(2).fit(Files(str(path), columns=[0, 2]))


# ---------------------------------------------------------------------- sample weights
def _weighted_frame(seed=5):
    df = _frame(seed=seed)
    df["w"] = np.random.default_rng(seed).integers(0, 4, len(df)).astype(float)
    return df


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_weight_column_in_files_equals_in_memory_weights(tmp_path, covariance_type):
    """sample_weight='w' reads the weights with the rows (not as a feature); the fit,
    k-means initialisation included, equals the in-memory fit with the same weights,
    and equals the fit with the weights given as an array beside the files."""
    df = _weighted_frame()
    folder = _write_parquet_folder(df, tmp_path / "data")
    csv = tmp_path / "data.csv"
    df.drop(columns="id").to_csv(csv, index=False)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, chunk_size=200, dtype="float64")
    ref = GaussianMixture(**kw).fit(df[COLS], sample_weight=df["w"].to_numpy())
    fits = [
        GaussianMixture(**kw).fit(str(folder), columns=COLS, sample_weight="w"),
        GaussianMixture(**kw).fit(str(csv), sample_weight="w", columns=COLS),
        GaussianMixture(**kw).fit(str(folder), columns=COLS, sample_weight=df["w"].to_numpy()),
        GaussianMixture(**kw).fit(df[COLS + ["w"]], sample_weight="w"),
    ]
    for gm in fits:
        np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gm.covariances_, ref.covariances_, rtol=1e-12, atol=1e-12)
        assert list(gm.feature_names_in_) == COLS
    # without columns=, the features are every other column: the weight is not one
    plain = _write_parquet_folder(df.drop(columns=["id", "count"]), tmp_path / "plain")
    gm = GaussianMixture(**kw).fit(str(plain), sample_weight="w")
    assert list(gm.feature_names_in_) == COLS
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-12, atol=1e-12)


def test_zero_weight_rows_are_as_good_as_absent(tmp_path):
    """From the same initial parameters, a file fit whose rows weigh 0 or 1 equals the
    in-memory fit of the rows of weight 1 alone, for exact and online EM."""
    df = _weighted_frame(seed=6)
    df["w"] = (df["w"] > 0).astype(float)
    folder = _write_parquet_folder(df, tmp_path / "data")
    kept = df.loc[df["w"] > 0, COLS]
    init = dict(means_init=kept.to_numpy()[:3], weights_init=np.full(3, 1 / 3))
    kw = dict(n_components=3, random_state=0, chunk_size=128, dtype="float64", **init)
    weighted = GaussianMixture(max_iter=30, **kw).fit(str(folder), columns=COLS, sample_weight="w")
    alone = GaussianMixture(max_iter=30, **kw).fit(kept)
    np.testing.assert_allclose(weighted.means_, alone.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, alone.covariances_, rtol=1e-10, atol=1e-10)
    # online EM reads the weight column as it streams: the same fit as weights in memory
    online = dict(algorithm="online", batch_size=64, max_iter=2, **kw)
    from_file = GaussianMixture(**online).fit(str(folder), columns=COLS, sample_weight="w")
    in_memory = GaussianMixture(**online).fit(df[COLS], sample_weight=df["w"].to_numpy())
    np.testing.assert_allclose(from_file.means_, in_memory.means_, rtol=1e-12, atol=1e-12)
    assert not np.allclose(from_file.means_, GaussianMixture(**online).fit(df[COLS]).means_, rtol=1e-3)


def test_weighted_row_sampling_is_proportional_and_independent_of_blocks():
    """Efraimidis-Spirakis keys: zero weights are never drawn, a large n takes every
    positive row, the sample does not depend on the blocks the weights came in, and
    inclusion frequencies match successive sampling in proportion to weight."""
    from bigem.em.init import weighted_rows

    w = torch.tensor([0.0, 1.0, 0.0, 2.0, 5.0] * 2000)
    whole = weighted_rows([(w, 0)], 300, torch.Generator().manual_seed(1))
    cuts = [0, 7, 4096, 4100, 9001, len(w)]
    split = weighted_rows([(w[a:b], a) for a, b in zip(cuts, cuts[1:])], 300, torch.Generator().manual_seed(1))
    assert torch.equal(whole.sort().values, split.sort().values) and len(whole) == 300
    assert not bool((w[whole] == 0).any())
    assert sorted(weighted_rows([(w, 0)], 10**6, torch.Generator()).tolist()) == torch.nonzero(w).reshape(-1).tolist()
    # n=2 of weights 1, 2, 3, 4: P(i in sample) = p_i + sum_j p_j w_i / (W - w_j)
    small = torch.tensor([1.0, 2.0, 3.0, 4.0])
    p = small / small.sum()
    exact = [float(p[i] + sum(p[j] * small[i] / (10 - small[j]) for j in range(4) if j != i)) for i in range(4)]
    gen, counts, trials = torch.Generator().manual_seed(2), np.zeros(4), 20_000
    for _ in range(trials):
        counts[weighted_rows([(small, 0)], 2, gen).numpy()] += 1
    np.testing.assert_allclose(counts / trials, exact, atol=0.015)  # 4 sd of a proportion at 2e4 trials


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_bad_weight_columns_name_the_file_and_row(tmp_path, fmt):
    from bigem._core.errors import DataError

    df = _weighted_frame(seed=7).drop(columns="id")

    def write(frame, name):
        path = tmp_path / f"{name}.{fmt}"
        frame.to_parquet(path) if fmt == "parquet" else frame.to_csv(path, index=False)
        return str(path)

    def fit(path, **kw):
        return GaussianMixture(n_components=2, chunk_size=128, random_state=0).fit(path, **{"sample_weight": "w", **kw})

    neg = df.assign(w=np.where(np.arange(len(df)) == 250, -1.5, df["w"]))
    with pytest.raises(DataError, match=r"neg\.\w+: sample_weight column 'w' has -1\.5 at row 250 of the data set \(row 250 "):
        fit(write(neg, "neg"))
    nan = df.assign(w=np.where(np.arange(len(df)) == 7, np.inf, df["w"]))
    with pytest.raises(DataError, match=r"sample_weight column 'w' has inf at row 7 .*finite and non-negative"):
        fit(write(nan, "inf"))
    with pytest.raises(DataError, match=r"^sample_weight column 'w' is zero in every row; give at least one row"):
        fit(write(df.assign(w=0.0), "zero"))
    with pytest.raises(DataError, match=r"no column\(s\) \['weight'\]; the file has \['a', 'b', 'c', 'count', 'w'\]"):
        fit(write(df, "ok"), sample_weight="weight")
    with pytest.raises(DataError, match=r"^sample_weight='w' is also in columns=; a column is either a feature or"):
        fit(write(df, "ok"), columns=["a", "w"])
    nulls = df.assign(w=np.where(np.arange(len(df)) == 30, np.nan, df["w"]))
    if fmt == "parquet":  # pandas writes NaN as a null in Parquet
        nulls = pa.Table.from_pandas(nulls, preserve_index=False)
        pq.write_table(nulls, tmp_path / "null.parquet")
        with pytest.raises(DataError, match=r"null \(missing\) value\(s\) in the file, in column\(s\) \['w'\]; the first in column 'w' at row 30"):
            fit(str(tmp_path / "null.parquet"))
    words = df.assign(w=np.where(np.arange(len(df)) == 40, "heavy", df["w"].astype(str)))
    with pytest.raises(DataError, match=r"words\.\w+: (sample_weight column 'w' is not numeric|column 'w' has a non-numeric value 'heavy' at data row 40)"):
        fit(write(words, "words"))


def test_score_bic_and_aic_of_files_stream_in_the_memory_of_a_chunk(tmp_path):
    """A per-row array of log-densities would take 8 bytes a row; the totals take none."""
    import tracemalloc

    n = 400_000
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(n, 3)), columns=COLS)
    path = tmp_path / "x.parquet"
    df.to_parquet(path, row_group_size=8192)
    gm = GaussianMixture(2, random_state=0, dtype="float64", chunk_size=4096).fit(df.iloc[:2000])
    ll = gm.score_samples(df)  # the reference, in memory
    p = gm._n_parameters()
    gm.score(str(path))  # once untraced: first-use allocations (imports, caches) are not per row
    tracemalloc.start()
    try:
        score, bic, aic = gm.score(str(path)), gm.bic(str(path)), gm.aic(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert score == pytest.approx(ll.mean(), rel=1e-12)
    assert bic == pytest.approx(-2 * ll.sum() + p * np.log(n), rel=1e-12)
    assert aic == pytest.approx(-2 * ll.sum() + 2 * p, rel=1e-12)
    assert peak < n * 8 / 2, f"{peak} bytes traced at peak"


@pytest.mark.parametrize("cores, device, threads", [(2, "cpu", False), (8, "cpu", True), (2, "cuda", True)])
def test_parquet_decodes_on_one_thread_only_beside_cpu_compute_on_two_cores(tmp_path, monkeypatch, cores, device,
                                                                             threads):
    from bigem.sources import tables

    folder = _write_parquet_folder(_frame(), tmp_path / "data")
    asked = []
    batches = tables._ParquetReader.batches
    monkeypatch.setattr(tables, "_usable_cores", lambda: cores)
    monkeypatch.setattr(tables._ParquetReader, "batches", lambda self, *a, **kw: asked.append(kw) or batches(self, *a, **kw))
    source = tables.TableSource(sorted(str(p) for p in folder.glob("*.parquet")), "parquet", dtype=torch.float64,
                                device=torch.device(device), chunk_rows=128, columns=COLS)
    rows = sum(b.num_rows for b, _, _ in source._batches())  # the batches alone: no tensor goes to the device
    assert rows == 900 and asked and all(kw == {"threads": threads} for kw in asked)


def test_an_existing_path_with_glob_characters_is_that_file(tmp_path):
    """d[1].csv exists: it is read, not the pattern (which matches d1.csv); a pattern
    that names no file is still a pattern."""
    df = _frame()
    df.iloc[:100].to_csv(tmp_path / "d[1].csv", index=False)
    df.iloc[100:].to_csv(tmp_path / "d1.csv", index=False)
    np.testing.assert_array_equal(_all_rows(_open(str(tmp_path / "d[1].csv"), columns=COLS)), df[COLS].to_numpy()[:100])
    np.testing.assert_array_equal(_all_rows(_open(str(tmp_path / "d[0-9].csv"), columns=COLS)), df[COLS].to_numpy()[100:])


def test_csv_category_columns_are_read_in_their_categories_type(tmp_path):
    """A CSV's category column is read as text, then as the model's categories: integers
    written 1.0 are integers, and a word is named with its row."""
    from bigem import CategoricalMixture
    from bigem._core.errors import DataError

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.integers(1, 4, 500), "b": rng.random(500) < 0.3})
    df.to_parquet(tmp_path / "x.parquet")
    est = CategoricalMixture(2, random_state=0).fit(str(tmp_path / "x.parquet"))
    assert [c.dtype.kind for c in est.categories_] == ["i", "b"]
    expected = est.predict(df)
    as_text = df.astype({"g": float, "b": str})  # g: 1.0, 2.0, 3.0; b: True, False
    as_text.to_csv(tmp_path / "x.csv", index=False)
    np.testing.assert_array_equal(est.predict(str(tmp_path / "x.csv")), expected)
    as_text = as_text.astype({"g": object})
    as_text.loc[321, "g"] = "many"
    as_text.to_csv(tmp_path / "y.csv", index=False)
    with pytest.raises(DataError, match=r"y\.csv: column 'g' holds 'many' \(str\) at row 321, but the model's "
                       "categories are of type int"):
        est.predict(str(tmp_path / "y.csv"))
