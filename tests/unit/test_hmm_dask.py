"""HMMs on the Dask engine: the local fit's answer to 1e-8 in float64 for every emission,
sequences longer than a batch cut into pieces across partitions, shorter ones kept
whole (a sequence_column's runs that straddle partitions, a dask array cut
mid-sequence), inference on the workers, a worker killed mid-fit, checkpoints resumed
on Dask, and bad sequence ids named.

One LocalCluster of two single-threaded worker processes serves the module; the test
that kills a worker has its own.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from bigem import (GMMHMM, CategoricalHMM, GaussianHMM, GaussianMixture, MultinomialHMM, PoissonHMM,  # noqa: E402
                   VariationalCategoricalHMM, VariationalGaussianHMM)
from bigem._core.errors import DataError, ParameterError  # noqa: E402

LENGTHS = [120, 1, 199, 80, 150, 250]  # 800 rows; one sequence of a single row
TRANS = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


def _states(lengths, seed: int) -> np.ndarray:
    """A path of a known 3-state chain per sequence, one after the other."""
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        z = [rng.integers(3)]
        for _ in range(n - 1):
            z.append(rng.choice(3, p=TRANS[z[-1]]))
        out.extend(z)
    return np.asarray(out)


def _gaussian(lengths=LENGTHS, seed: int = 0) -> np.ndarray:
    z = _states(lengths, seed)
    means = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 5.0]])
    return means[z] + np.random.default_rng(seed + 1).normal(0, 1, (len(z), 2))


def _symbols(lengths=LENGTHS, seed: int = 0) -> np.ndarray:
    z = _states(lengths, seed)
    probs = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.1, 0.7, 0.1], [0.05, 0.05, 0.1, 0.8]])
    rng = np.random.default_rng(seed + 2)
    return np.array([rng.choice(4, p=probs[k]) for k in z])[:, None]


def _counts(lengths=LENGTHS, seed: int = 0) -> np.ndarray:
    z = _states(lengths, seed)
    rates = np.array([[1.0, 6.0], [5.0, 1.0], [9.0, 9.0]])
    return np.random.default_rng(seed + 3).poisson(rates[z]).astype(float)


def _multinomial(lengths=LENGTHS, seed: int = 0) -> np.ndarray:
    z = _states(lengths, seed)
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    rng = np.random.default_rng(seed + 4)
    return np.stack([rng.multinomial(5, probs[k]) for k in z]).astype(float)


F64 = dict(n_iter=12, tol=-np.inf, random_state=0, dtype="float64")
VARIATIONAL_GAUSSIAN = ("startprob_posterior_", "transmat_posterior_", "means_posterior_", "beta_posterior_",
                        "dof_posterior_", "scale_posterior_", "means_prior_", "startprob_", "transmat_", "means_",
                        "covars_")
CASES = {
    "gaussian-full": (lambda **kw: GaussianHMM(3, covariance_type="full", **F64, **kw), _gaussian,
                      ("startprob_", "transmat_", "means_", "covars_")),
    "gaussian-diag": (lambda **kw: GaussianHMM(3, covariance_type="diag", **F64, **kw), _gaussian,
                      ("startprob_", "transmat_", "means_", "covars_")),
    "categorical": (lambda **kw: CategoricalHMM(3, **F64, **kw), _symbols, ("startprob_", "transmat_", "emissionprob_")),
    "poisson": (lambda **kw: PoissonHMM(3, **F64, **kw), _counts, ("startprob_", "transmat_", "lambdas_")),
    "gmm": (lambda **kw: GMMHMM(2, n_mix=2, **F64, **kw), _gaussian, ("transmat_", "weights_", "means_", "covars_")),
    "multinomial": (lambda **kw: MultinomialHMM(3, n_trials=5, **F64, **kw), _multinomial,
                    ("startprob_", "transmat_", "emissionprob_")),
    # variational Bayes: the same statistics, summed the same way; posteriors and the bound from the sum
    "variational-gaussian-full": (lambda **kw: VariationalGaussianHMM(3, covariance_type="full", **F64, **kw),
                                  _gaussian, VARIATIONAL_GAUSSIAN),
    "variational-gaussian-diag": (lambda **kw: VariationalGaussianHMM(3, covariance_type="diag", **F64, **kw),
                                  _gaussian, VARIATIONAL_GAUSSIAN),
    "variational-categorical": (lambda **kw: VariationalCategoricalHMM(3, **F64, **kw), _symbols,
                                ("startprob_posterior_", "transmat_posterior_", "emissionprob_posterior_",
                                 "emissionprob_prior_", "startprob_", "transmat_", "emissionprob_")),
}


def _assert_same_fit(dask_fit, local_fit, fitted, rtol=1e-8) -> None:
    for name in fitted:
        np.testing.assert_allclose(getattr(dask_fit, name), getattr(local_fit, name), rtol=rtol, atol=1e-12,
                                   err_msg=name)
    np.testing.assert_allclose(dask_fit.monitor_.history, local_fit.monitor_.history, rtol=rtol)
    assert dask_fit.monitor_.iter == local_fit.monitor_.iter


# ---------------------------------------------------------------------- same answer as local
@pytest.mark.parametrize("case", list(CASES))
def test_dask_fit_and_inference_equal_the_local_engine(client, case):
    make, data, fitted = CASES[case]
    X = data()
    local = make().fit(X, LENGTHS)
    dist = make(engine="dask", client=client).fit(X, LENGTHS)
    _assert_same_fit(dist, local, fitted)
    # Baum-Welch: the likelihood never falls (beyond rounding); variational Bayes: nor does its lower bound
    for history in (np.asarray(local.monitor_.history), np.asarray(dist.monitor_.history)):
        assert len(history) == 12 and (np.diff(history) > -1e-10 * np.abs(history[1:])).all()
    assert dist.score(X, LENGTHS) == pytest.approx(local.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(dist.predict_proba(X, LENGTHS), local.predict_proba(X, LENGTHS), atol=1e-10)
    lp, path = dist.decode(X, LENGTHS)
    want_lp, want_path = local.decode(X, LENGTHS)
    assert lp == pytest.approx(want_lp, rel=1e-10)
    np.testing.assert_array_equal(path, want_path)
    assert dist.bic(X, LENGTHS) == pytest.approx(local.bic(X, LENGTHS), rel=1e-10)


def test_an_in_memory_x_is_cut_into_partitions_at_sequence_starts(client):
    from bigem.sources.dask_sequences import sequence_aligned

    X = _gaussian()
    aligned, lens, _ = sequence_aligned(X, LENGTHS, None, None, client, parts=4)
    starts = set(np.cumsum([0] + LENGTHS).tolist())
    cuts = np.cumsum((0,) + aligned.chunks[0]).tolist()
    assert len(cuts) == 5 and set(cuts) <= starts  # four partitions, each of whole sequences
    np.testing.assert_array_equal(aligned.compute(), X)
    np.testing.assert_array_equal(lens, LENGTHS)


# ---------------------------------------------------------------------- sequences across partitions
def _frame(X, lengths, ids=None) -> pd.DataFrame:
    ids = np.repeat([f"s{i}" for i in range(len(lengths))], lengths) if ids is None else ids
    return pd.DataFrame(X, columns=["a", "b"]).assign(seq=ids)


def test_the_local_engine_computes_a_dask_dataframe_into_this_process(tmp_path):
    """engine='local' (an HMM's default) is documented to compute a Dask collection into
    this process; a Dask DataFrame raised AttributeError in fit, predict and
    write_predictions instead."""
    frame = _frame(_gaussian(), LENGTHS).assign(event=np.arange(sum(LENGTHS)) * 3)
    ddf = dd.from_pandas(frame, npartitions=3)
    make, _, fitted = CASES["gaussian-diag"]
    want = make().fit(frame, columns=["a", "b"], sequence_column="seq")
    got = make().fit(ddf, columns=["a", "b"], sequence_column="seq")
    _assert_same_fit(got, want, fitted)
    np.testing.assert_array_equal(got.predict(ddf, sequence_column="seq"), want.predict(frame, sequence_column="seq"))
    out = got.write_predictions(ddf, tmp_path / "s.parquet", sequence_column="seq", id_column="event")
    written = pd.read_parquet(out)
    np.testing.assert_array_equal(written["event"], frame["event"])
    np.testing.assert_array_equal(written["state"], want.predict(frame, sequence_column="seq"))


def test_predictions_written_on_dask_carry_their_ids(client, tmp_path):
    """write_predictions(id_column=) on engine='dask' said "the rows came without it" for
    a DataFrame or file that holds it: the workers' outputs came back without ids. The
    ids are now read here, in row order, beside them."""
    frame = _frame(_gaussian(), LENGTHS).assign(event=[f"e{i}" for i in range(sum(LENGTHS))][::-1])
    frame.to_parquet(tmp_path / "x.parquet", row_group_size=77)
    make, _, _ = CASES["gaussian-diag"]
    model = make(engine="dask", client=client, memory_budget=CUT).fit(frame, columns=["a", "b"], sequence_column="seq")
    want = make(memory_budget=CUT).fit(frame, columns=["a", "b"], sequence_column="seq").predict(
        frame, sequence_column="seq")
    for what, X in {"frame": frame, "dask frame": dd.from_pandas(frame, npartitions=3),
                    "parquet": str(tmp_path / "x.parquet")}.items():
        out = model.write_predictions(X, tmp_path / f"{what}.parquet", sequence_column="seq", id_column="event",
                                      outputs=("state", "proba"))
        written = pd.read_parquet(out)
        assert list(written.columns) == ["event", "state", "proba_0", "proba_1", "proba_2"], what
        np.testing.assert_array_equal(written["event"], frame["event"])
        np.testing.assert_array_equal(written["state"], want)


def test_a_sequence_column_whose_sequences_straddle_partitions_fits_as_the_local_engine(client):
    X = _gaussian()
    frame = _frame(X, LENGTHS)
    ddf = dd.from_pandas(frame, npartitions=5)
    bounds = np.cumsum(ddf.map_partitions(len).compute().tolist())[:-1]
    starts = np.cumsum(LENGTHS)
    assert not set(bounds.tolist()) <= set(starts.tolist())  # some sequence straddles a partition boundary
    make, _, fitted = CASES["gaussian-full"]
    local = make().fit(X, LENGTHS)
    dist = make(engine="dask", client=client).fit(ddf, sequence_column="seq")
    _assert_same_fit(dist, local, fitted)
    # a pandas DataFrame with its id column, and scoring a Dask DataFrame by its ids, agree too
    assert dist.score(ddf, sequence_column="seq") == pytest.approx(local.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_array_equal(dist.predict(ddf, sequence_column="seq"), local.predict(X, LENGTHS))
    again = make(engine="dask", client=client).fit(frame, sequence_column="seq")
    _assert_same_fit(again, local, fitted)


def test_a_dask_array_cut_mid_sequence_is_realigned_to_whole_sequences(client):
    X = _gaussian()
    make, _, fitted = CASES["gaussian-diag"]
    local = make().fit(X, LENGTHS)
    dist = make(engine="dask", client=client).fit(da.from_array(X, chunks=(130, 2)), LENGTHS)
    _assert_same_fit(dist, local, fitted)
    # one sequence longer than several partitions: they merge into one
    long = [700, 100]
    local = make().fit(X, long)
    _assert_same_fit(make(engine="dask", client=client).fit(da.from_array(X, chunks=(90, 2)), long), local, fitted)


def _path_log_probability(m, X, lengths, path) -> float:
    """log p(X, path) of a discrete HMM, summed here term by term."""
    from scipy.stats import multinomial

    probs = m.emissionprob_
    log_b = (np.log(probs[:, X[:, 0].astype(int)]).T if X.shape[1] == 1 else
             np.stack([multinomial.logpmf(X, int(X[0].sum()), p) for p in probs], 1))
    total, o = 0.0, 0
    for n in lengths:
        s = path[o:o + n]
        total += np.log(m.startprob_[s[0]]) + np.log(m.transmat_[s[:-1], s[1:]]).sum() + log_b[o + np.arange(n), s].sum()
        o += n
    return total


PIECES = [1900, 1, 700, 150, 2250]  # batches of 100 rows: three sequences cut into pieces
CUT = 27_200  # memory_budget: 100 rows a batch (272 bytes a row: 3 states, 2 features, float64)


@pytest.mark.parametrize("case", ["gaussian-full", "categorical", "gmm", "multinomial"])
def test_sequences_longer_than_a_batch_are_cut_into_pieces_across_partitions(client, case):
    """Dask kept every sequence whole in one partition, so one sequence longer than a
    worker's memory could not be fitted. Its pieces now spread over partitions and are
    linked as in this process (bigem.models.hmm_pieces): the fit and inference equal the
    local engine's, and the sequences held whole, to rounding."""
    make, data, fitted = CASES[case]
    X = data(PIECES)
    local = make(memory_budget=CUT).fit(X, PIECES)
    whole = make(memory_budget=1 << 30).fit(X, PIECES)
    arrays = {"in memory": X, "a dask array cut mid-piece": da.from_array(X, chunks=(333, X.shape[1]))}
    for what, given in arrays.items():
        dist = make(engine="dask", client=client, memory_budget=CUT).fit(given, PIECES)
        _assert_same_fit(dist, local, fitted)
        _assert_same_fit(dist, whole, fitted, rtol=1e-7)
        assert dist.score(given, PIECES) == pytest.approx(whole.score(X, PIECES), rel=1e-10), what
        np.testing.assert_allclose(dist.predict_proba(given, PIECES), whole.predict_proba(X, PIECES), atol=1e-9)
        lp, path = dist.decode(given, PIECES)
        assert lp == pytest.approx(whole.decode(X, PIECES)[0], rel=1e-10)
        if case in ("categorical", "multinomial"):  # few symbols give exactly tied best paths: this is one
            assert _path_log_probability(dist, X, PIECES, path) == pytest.approx(lp, rel=1e-10)
        else:
            np.testing.assert_array_equal(path, local.decode(X, PIECES)[1])
    from bigem.estimators.hmm import _engine

    s = dist._settings()
    with _engine(s) as engine:  # the fit's source: pieces of a batch each, no partition beyond a batch's rows
        source = dist._open(X, PIECES, s, fitting=True, engine=engine)
    n = int(np.sum(-(-np.asarray(PIECES) // source.rows_per_batch) * (np.asarray(PIECES) > source.rows_per_batch)))
    assert source.rows_per_batch < 1900 and source.pieces is not None and source.pieces.n_pieces == n
    assert {b[4] for b in source.batches} == set(range(-1, n)) and max(b[3] - b[2] for b in source.batches) <= \
        source.rows_per_batch


def test_the_partitions_of_cut_sequences_start_at_sequence_or_piece_starts(client):
    from bigem.sources.dask_sequences import sequence_aligned
    from bigem.sources.sequences import partition_starts

    X = _gaussian(PIECES)
    allowed = set(partition_starts(np.asarray(PIECES), 100).tolist())
    starts = set(np.cumsum([0] + PIECES).tolist())
    assert len(allowed - starts) == 18 + 6 + 1 + 22  # the pieces' inner starts
    for given in (X, da.from_array(X, chunks=(333, 2))):
        aligned, _, _ = sequence_aligned(given, PIECES, None, None, client, parts=8, batch_rows=lambda d: 100)
        cuts = set(np.cumsum((0,) + aligned.chunks[0]).tolist())
        assert cuts <= allowed and cuts - starts  # some partitions start within a sequence, at a piece
        whole, _, _ = sequence_aligned(given, PIECES, None, None, client, parts=8)  # no cutting: whole sequences
        assert set(np.cumsum((0,) + whole.chunks[0]).tolist()) <= starts


def test_a_sequence_id_that_comes_back_in_another_partition_is_named_with_the_fix(client):
    X = _gaussian()
    ids = np.repeat(["a", "b", "c", "d", "e", "f"], LENGTHS)
    ids[-10:] = "b"  # 'b' again at the end, three partitions after its run
    ddf = dd.from_pandas(_frame(X, LENGTHS, ids), npartitions=4)
    with pytest.raises(DataError, match=r"X: sequence id 'b' in column 'seq' appears again at row 790 \(0-based\) "
                                        r"after other ids; rows of a sequence must be contiguous; sort by the id column"):
        GaussianHMM(3, engine="dask", client=client).fit(ddf, sequence_column="seq")


def test_a_missing_or_null_sequence_column_is_named(client):
    X = _gaussian()
    ddf = dd.from_pandas(_frame(X, LENGTHS), npartitions=3)
    with pytest.raises(DataError, match=r"X has no column 'id'; it has \['a', 'b', 'seq'\]\. Check the sequence_column"):
        GaussianHMM(3, engine="dask", client=client).fit(ddf, sequence_column="id")
    frame = _frame(X, LENGTHS)
    frame.loc[500, "seq"] = None
    with pytest.raises(DataError, match=r"X: column 'seq' has a null \(missing\) value at row \d+ of partition \d "
                                        r"\(0-based, counted from its start\); every row needs a sequence id"):
        GaussianHMM(3, engine="dask", client=client).fit(dd.from_pandas(frame, npartitions=3), sequence_column="seq")
    with pytest.raises(DataError, match=r"sequence_column='seq' is also in columns="):
        GaussianHMM(3, engine="dask", client=client).fit(ddf, sequence_column="seq", columns=["a", "seq"])
    with pytest.raises(DataError, match=r"sequence_column='seq' names a column, but X has no column names"):
        GaussianHMM(3, engine="dask", client=client).fit(da.from_array(X, chunks=(200, 2)), sequence_column="seq")
    with pytest.raises(DataError, match=r"lengths sum to 799 but X has 800 rows"):
        GaussianHMM(3, engine="dask", client=client).fit(da.from_array(X, chunks=(200, 2)), LENGTHS[:-1] + [249])


def test_bad_symbols_are_found_by_the_workers_and_named_by_their_row(client):
    X = _symbols()
    X[555, 0] = -1
    with pytest.raises(DataError, match=r"X row 555 holds -1: CategoricalHMM symbols must be non-negative integers"):
        CategoricalHMM(3, engine="dask", client=client).fit(da.from_array(X, chunks=(200, 1)), LENGTHS)


def test_integer_column_labels_of_a_dask_dataframe_are_read(client):
    """They raised KeyError '0' in open_dask_source (labels compared as strings, selected
    as strings): GaussianMixture too."""
    X = _gaussian()
    ddf = dd.from_pandas(pd.DataFrame(X), npartitions=3)  # columns 0 and 1
    gm = dict(n_components=3, random_state=0, dtype="float64")
    np.testing.assert_allclose(GaussianMixture(**gm, engine="dask", client=client).fit(ddf).means_,
                               GaussianMixture(**gm).fit(X).means_, rtol=1e-9)
    make, _, fitted = CASES["gaussian-diag"]
    _assert_same_fit(make(engine="dask", client=client).fit(ddf, LENGTHS), make().fit(X, LENGTHS), fitted)


# ---------------------------------------------------------------------- checkpoints and faults
class _Stop(Exception):
    pass


@pytest.mark.parametrize("case", ["gaussian-full", "variational-gaussian-full"])
def test_a_checkpointed_dask_fit_resumes_to_the_uninterrupted_answer(client, tmp_path, case):
    X = da.from_array(_gaussian(), chunks=(200, 2))
    make, _, fitted = CASES[case]
    whole = make(engine="dask", client=client).fit(X, LENGTHS)
    ck = tmp_path / "fit.ckpt"

    def stop(info):
        if info.iteration == 7:
            raise _Stop

    with pytest.raises(_Stop):
        make(engine="dask", client=client).fit(X, LENGTHS, checkpoint=ck, checkpoint_every=3, callback=stop)
    assert ck.exists()
    seen = []
    resumed = make(engine="dask", client=client).fit(X, LENGTHS, checkpoint=ck, checkpoint_every=3,
                                                   callback=lambda info: seen.append(info.iteration))
    assert seen[0] == 7  # continued after the checkpoint of iteration 6
    assert not ck.exists()
    _assert_same_fit(resumed, whole, fitted, rtol=1e-12)


@pytest.mark.parametrize("case", ["gaussian-full", "variational-categorical"])
def test_a_worker_killed_mid_fit_changes_nothing(case):
    make, data, fitted = CASES[case]
    X = np.concatenate([data(seed=s) for s in range(4)])  # 3200 rows: four partitions of whole sequences
    lengths = LENGTHS * 4
    local = make().fit(X, lengths)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        pids = c.run(os.getpid)
        victim = sorted(pids)[0]
        killed = []

        def callback(info):
            if info.iteration == 3 and not killed:  # iteration 4 runs with half its partitions lost
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)

        dist = make(engine="dask", client=c).fit(da.from_array(X, chunks=(800, X.shape[1])), lengths,
                                                 callback=callback)
        assert killed
        with pytest.raises(ProcessLookupError):
            os.kill(pids[victim], 0)
    _assert_same_fit(dist, local, fitted)


def test_parquet_files_cut_mid_sequence_are_read_by_the_workers(client, tmp_path):
    from bigem import Files

    X = _gaussian()
    frame = _frame(X, LENGTHS)
    folder = tmp_path / "sequences"
    folder.mkdir()
    for i, (a, b) in enumerate([(0, 250), (250, 610), (610, 800)]):  # 250 and 610 fall inside sequences
        frame.iloc[a:b].to_parquet(folder / f"part{i}.parquet")
    make, _, fitted = CASES["gaussian-diag"]
    local = make().fit(X, LENGTHS)
    _assert_same_fit(make(engine="dask", client=client).fit(str(folder), sequence_column="seq"), local, fitted)
    short = dict(n_components=3, n_iter=3, tol=-np.inf, random_state=0, dtype="float64")
    by_files = GaussianHMM(**short, engine="dask", client=client).fit(Files(str(folder), columns=["a", "b"]),
                                                                     sequence_column="seq")
    _assert_same_fit(by_files, GaussianHMM(**short).fit(X, LENGTHS), fitted)
    with pytest.raises(ParameterError, match=r"delimiter=, header=False\) apply to engine='local' only"):
        make(engine="dask", client=client).fit(Files(str(folder), header=False), sequence_column="seq")
    # a column beside the features and the ids: Dask's projection of the read lost its tasks
    for i, (a, b) in enumerate([(0, 250), (250, 610), (610, 800)]):
        frame.assign(other=1.0).iloc[a:b].to_parquet(folder / f"part{i}.parquet")
    for X in (str(folder), dd.read_parquet(str(folder))):
        beside = GaussianHMM(**short, engine="dask", client=client).fit(X, sequence_column="seq", columns=["a", "b"])
        _assert_same_fit(beside, by_files, fitted)


def test_the_hmm_is_shipped_once_per_fit_not_once_per_iteration(client, monkeypatch):
    from bigem.engines.dask import DaskEngine

    keys = []
    ask = DaskEngine._model_key

    def spy(self, model):
        key = ask(self, model)
        keys.append((type(model).__name__, key.key))
        return key

    monkeypatch.setattr(DaskEngine, "_model_key", spy)
    GaussianHMM(3, n_iter=5, tol=-np.inf, random_state=0, engine="dask", client=client).fit(_gaussian(), LENGTHS)
    steps = [k for name, k in keys if name == "Lockstep"]
    assert len(steps) == 5 and len(set(steps)) == 1  # five E-steps on one shipped model


def test_many_small_partitions_are_merged_at_sequence_starts_never_split():
    """Forward-backward pays its time loop once per partition a worker holds, so small
    partitions are merged into a multiple of the workers' threads, each within a batch,
    cut only at sequence starts; partitions already as few as that stay as they are."""
    from bigem.sources.dask_sequences import coalesced

    lengths = np.array([30, 50, 20, 40, 60, 10, 90, 100], dtype=np.int64)  # 400 rows
    starts = set(np.concatenate([[0], np.cumsum(lengths)]).tolist())
    X = da.from_array(np.arange(800.0).reshape(400, 2), chunks=((30, 70, 100, 60, 140), 2))
    merged = coalesced(X, lengths, threads=2, rows_per_batch=1_000)
    assert len(merged.chunks[0]) == 2 and sum(merged.chunks[0]) == 400
    assert set(np.cumsum((0,) + merged.chunks[0]).tolist()) <= starts
    np.testing.assert_array_equal(merged.compute(), X.compute())
    within = coalesced(X, lengths, threads=2, rows_per_batch=150)  # batches of 150 rows: 4 partitions
    assert len(within.chunks[0]) == 4 and set(np.cumsum((0,) + within.chunks[0]).tolist()) <= starts
    assert coalesced(X, lengths, threads=2, rows_per_batch=10) is X  # never split: 5 partitions stay
    assert coalesced(X, lengths, threads=8, rows_per_batch=1_000) is X
