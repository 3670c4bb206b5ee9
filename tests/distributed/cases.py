"""Fits run the same way by every process of a torchrun group (engine='torch') and by the
test process alone (engine='local'): each case returns named arrays to compare.

Every case runs in the current directory (each process of a group runs in its own, so
what a process writes is seen apart from the others'), on small seeded data.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings

import numpy as np

COV_TYPES = ("full", "tied", "diag", "spherical")
# fixed iteration counts (no early stop); the mixtures' device: BIGEM_CASES_DEVICE, or the CPU
FIXED = dict(dtype="float64", tol=0.0, random_state=0, device=os.environ.get("BIGEM_CASES_DEVICE", "cpu"))


def blobs(seed: int = 1, n_per: int = 201, k: int = 3, d: int = 3, with_classes: bool = False):
    """k Gaussian blobs of n_per rows each, shuffled (and each row's blob, if asked)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 4.0, (k, d))
    X = np.concatenate([rng.normal(means[i], rng.uniform(0.5, 1.5, d), (n_per, d)) for i in range(k)])
    order = rng.permutation(len(X))
    return (X[order], np.repeat(np.arange(k), n_per)[order]) if with_classes else X[order]


def sequences(seed: int = 2, n_seq: int = 23, d: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``n_seq`` sequences of 3-state Gaussian HMMs, lengths 8 to 60, and the lengths."""
    rng = np.random.default_rng(seed)
    trans = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    means = np.array([[-4.0, 0.0], [0.0, 3.0], [4.0, -1.0]])[:, :d]
    lengths = rng.integers(8, 61, n_seq)
    rows = []
    for n in lengths:
        state = rng.integers(3)
        for _ in range(n):
            rows.append(rng.normal(means[state], 0.8))
            state = rng.choice(3, p=trans[state])
    return np.asarray(rows), lengths


@contextlib.contextmanager
def _quiet():
    """Fits stopped at a fixed iteration count warn that they did not converge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _mixture(gm) -> dict:
    return dict(weights=gm.weights_, means=gm.means_, covariances=gm.covariances_,
                lower_bound=np.float64(gm.lower_bound_), n_iter=np.int64(gm.n_iter_),
                history=np.concatenate([np.asarray(r["log_likelihood"]) for r in gm.history_]))


def _hmm(model) -> dict:
    return dict(startprob=model.startprob_, transmat=model.transmat_, means=model.means_, covars=model.covars_,
                history=np.asarray(model.monitor_.history))


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _gmm_in_memory(covariance_type):
    def run(engine: str) -> dict:
        from bigem import GaussianMixture

        with _quiet():
            gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=12, engine=engine, **FIXED).fit(blobs())
        return _mixture(gm)

    run.__name__ = f"gmm_{covariance_type}"
    return run


for _ct in COV_TYPES:
    case(_gmm_in_memory(_ct))


@case
def discrete_ties(engine: str) -> dict:
    """0/1 and category rows of few distinct values, seeded from rows ('random_from_data'):
    seeds repeat, components are re-seeded from rows whose scores tie, and the rows kept
    differed with the cut (two processes fitted other models, with no error)."""
    from bigem import BernoulliMixture, CategoricalMixture

    rng = np.random.default_rng(5)
    X = (rng.normal(0, 1, (600, 3)) > 0).astype(float)  # 8 distinct rows
    weight = rng.uniform(0.5, 2.0, 600)
    codes = rng.integers(0, 3, (600, 2)).astype(float)  # 9 distinct rows
    kw = dict(init_params="random_from_data", n_init=3, max_iter=6, engine=engine, **{**FIXED, "random_state": 3})
    with _quiet():
        bern = BernoulliMixture(3, **kw).fit(X, sample_weight=weight)
        cat = CategoricalMixture(3, **kw).fit(codes)
    return dict(bern_weights=bern.weights_, bern_p=bern.probabilities_, bern_bound=np.float64(bern.lower_bound_),
                cat_weights=cat.weights_, cat_bound=np.float64(cat.lower_bound_))


@case
def gmm_npy(engine: str) -> dict:
    """A .npy file, each process reading its own row range, in chunks of 50 rows."""
    from bigem import GaussianMixture

    np.save("x.npy", blobs(3))
    with _quiet():
        gm = GaussianMixture(3, covariance_type="full", max_iter=10, chunk_size=50, engine=engine,
                             **FIXED).fit("x.npy")
    return _mixture(gm)


def _parquet(path: str, X: np.ndarray, group_rows: int, weights: np.ndarray | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    if weights is not None:
        columns["w"] = weights
    pq.write_table(pa.table(columns), path, row_group_size=group_rows)


@case
def gmm_parquet(engine: str) -> dict:
    """Parquet row groups of 97 rows: each process reads whole row groups, weights from a column."""
    from bigem import GaussianMixture

    X = blobs(4)
    _parquet("x.parquet", X, 97, np.random.default_rng(0).uniform(0.5, 2.0, len(X)))
    with _quiet():
        gm = GaussianMixture(3, covariance_type="diag", max_iter=10, chunk_size=40, engine=engine,
                             **FIXED).fit("x.parquet", sample_weight="w")
    return _mixture(gm)


@case
def gmm_one_row_group(engine: str) -> dict:
    """One row group only: the group's other processes hold no rows and sit the fit out."""
    from bigem import GaussianMixture

    _parquet("one.parquet", blobs(5), 10_000)
    with _quiet():
        gm = GaussianMixture(2, covariance_type="tied", max_iter=8, engine=engine, **FIXED).fit("one.parquet")
    return _mixture(gm)


@case
def gmm_restarts(engine: str) -> dict:
    """Three restarts in lockstep (one read per iteration), SQUAREM on."""
    from bigem import GaussianMixture

    with _quiet():
        gm = GaussianMixture(3, covariance_type="full", n_init=3, init_params="random_from_data", max_iter=10,
                             accelerate="squarem", engine=engine, **FIXED).fit(blobs(6))
    return _mixture(gm)


def _hmm_case(covariance_type):
    def run(engine: str) -> dict:
        from bigem import GaussianHMM

        X, lengths = sequences()
        with _quiet():
            model = GaussianHMM(3, covariance_type=covariance_type, n_iter=8, tol=0.0, dtype="float64",
                                random_state=0, engine=engine).fit(X, lengths)
        return _hmm(model)

    run.__name__ = f"hmm_{covariance_type}"
    return run


case(_hmm_case("diag"))
case(_hmm_case("full"))


def _variational_gaussian(covariance_type):
    def run(engine: str) -> dict:
        from bigem import VariationalGaussianHMM

        X, lengths = sequences()
        with _quiet():
            model = VariationalGaussianHMM(3, covariance_type=covariance_type, n_iter=8, tol=-np.inf, random_state=0,
                                           engine=engine).fit(X, lengths)
        return dict(startprob=model.startprob_posterior_, transmat=model.transmat_posterior_,
                    means=model.means_posterior_, beta=model.beta_posterior_, dof=np.asarray(model.dof_posterior_),
                    scale=model.scale_posterior_, covars=model.covars_, history=np.asarray(model.monitor_.history))

    run.__name__ = f"vhmm_{covariance_type}"
    return run


case(_variational_gaussian("diag"))
case(_variational_gaussian("full"))


@case
def vhmm_categorical(engine: str) -> dict:
    """Symbols of the sequences' states (their first feature, cut into four bins)."""
    from bigem import VariationalCategoricalHMM

    X, lengths = sequences(5)
    symbols = np.digitize(X[:, :1], [-2.0, 0.0, 2.0])
    with _quiet():
        model = VariationalCategoricalHMM(3, n_iter=8, tol=-np.inf, random_state=0, engine=engine).fit(symbols, lengths)
    return dict(startprob=model.startprob_posterior_, transmat=model.transmat_posterior_,
                emission=model.emissionprob_posterior_, emissionprob=model.emissionprob_,
                history=np.asarray(model.monitor_.history))


@case
def hmm_pieces(engine: str) -> dict:
    """Two sequences longer than a batch, cut into linked pieces (models.hmm_pieces):
    each process links the pieces of its own sequence through the group's transfers; a
    variational HMM's fit too."""
    from bigem import GaussianHMM, VariationalGaussianHMM

    X, _ = sequences(11, n_seq=60)
    lengths = [len(X) // 2, len(X) - len(X) // 2 - 10, 10]
    with _quiet():
        model = GaussianHMM(3, covariance_type="full", n_iter=6, tol=0.0, dtype="float64", random_state=0,
                            memory_budget=40_000, engine=engine).fit(X, lengths)
        vb = VariationalGaussianHMM(3, covariance_type="diag", n_iter=4, tol=-np.inf, random_state=0,
                                    memory_budget=40_000, engine=engine).fit(X, lengths)
    return dict(_hmm(model), score=np.asarray(model.score(X, lengths)), vb_means=vb.means_posterior_,
                vb_transmat=vb.transmat_posterior_, vb_history=np.asarray(vb.monitor_.history))


@case
def hmm_parquet(engine: str) -> dict:
    """Sequences told apart by an id column of Parquet files whose row groups (41 rows) cut
    through sequences: each process reads whole sequences."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bigem import GaussianHMM

    X, lengths = sequences(7)
    ids = np.repeat(np.arange(len(lengths)), lengths)
    pq.write_table(pa.table({"seq": ids, "a": X[:, 0], "b": X[:, 1]}), "s.parquet", row_group_size=41)
    with _quiet():
        model = GaussianHMM(3, covariance_type="diag", n_iter=6, tol=0.0, dtype="float64", random_state=1,
                            engine=engine).fit("s.parquet", sequence_column="seq")
    return _hmm(model)


@case
def select(engine: str) -> dict:
    from bigem import select

    with _quiet():
        result = select(blobs(8), [1, 2, 3], ["full", "diag"], max_iter=15, engine=engine, **FIXED)
    return dict(bic=np.asarray([r["bic"] for r in result.table]), icl=np.asarray([r["icl"] for r in result.table]),
                best=np.int64(result.best_index_), means=result.best_estimator_.means_)


@case
def checkpoint(engine: str) -> dict:
    """A fit stopped at iteration 6 (checkpoints every 4) and resumed, beside an
    uninterrupted one; where the checkpoint file was (the primary process alone writes it;
    every process resumes from what the primary read)."""
    from bigem import GaussianMixture

    class Stop(Exception):
        pass

    def stop(info):
        if info.iteration == 6:
            raise Stop

    kw = dict(n_components=3, covariance_type="full", max_iter=11, engine=engine, **FIXED)
    X = blobs(9)
    with _quiet():
        whole = GaussianMixture(**kw).fit(X)
        try:
            GaussianMixture(**kw).fit(X, checkpoint="fit.ckpt", checkpoint_every=4, callback=stop)
        except Stop:
            pass
        written = os.path.exists("fit.ckpt")
        resumed = GaussianMixture(**kw).fit(X, checkpoint="fit.ckpt", checkpoint_every=4)
    out = {f"resumed_{k}": v for k, v in _mixture(resumed).items()}
    out.update({f"whole_{k}": v for k, v in _mixture(whole).items()})
    out.update(written=np.bool_(written), left=np.bool_(os.path.exists("fit.ckpt")))
    return out


@case
def writes_and_prints(engine: str) -> dict:
    """verbose output, save and predict(out=): which process wrote and printed what."""
    from bigem import GaussianMixture

    X = blobs(10)
    printed = io.StringIO()
    with _quiet(), contextlib.redirect_stdout(printed):
        gm = GaussianMixture(2, max_iter=5, verbose=2, verbose_interval=1, engine=engine, **FIXED).fit(X)
        gm.save("m.bigem")
        path = gm.predict(X, out="p.npy")
        labels = gm.predict(X)
        gaps = X.copy()
        gaps[::7, 1] = np.nan
        imputed = gm.impute(gaps, out="i.parquet")
    # the text with its timings and speeds masked: it must read as the one-process fit's
    text = re.sub(r"[\d,]+ rows/s", "R rows/s", re.sub(r"\d+\.\d+s", "Ts", printed.getvalue()))
    return dict(printed=np.asarray(text), saved=np.bool_(os.path.exists("m.bigem")),
                predicted=np.bool_(os.path.exists("p.npy")), path_returned=np.bool_(path.endswith("p.npy")),
                imputed=np.bool_(os.path.exists("i.parquet")), imputed_path=np.bool_(imputed.endswith("i.parquet")),
                labels=labels)


@case
def online(engine: str) -> dict:
    """Online EM: every process steps on its part of each mini-batch of 90 rows."""
    from bigem import GaussianMixture

    X, z = blobs(11, n_per=300, with_classes=True)
    with _quiet():
        gm = GaussianMixture(3, algorithm="online", batch_size=90, max_iter=3, engine=engine, **FIXED).fit(X)
        more = GaussianMixture(3, batch_size=90, engine=engine, **FIXED).partial_fit(X)
        # partly labelled: the start is the first rows' labelled ones, the primary's on every process
        y = np.where(np.arange(len(X)) % 7 == 0, z, -1)
        labelled = GaussianMixture(3, algorithm="online", batch_size=90, max_iter=3, unlabeled_weight=1.0,
                                   engine=engine, **FIXED).fit(X, y)
        labelled_more = GaussianMixture(3, batch_size=90, unlabeled_weight=1.0, engine=engine, **FIXED)
        for start in range(0, len(X), 300):
            labelled_more.partial_fit(X[start:start + 300], y[start:start + 300], classes=[0, 1, 2])
    return dict(means=gm.means_, weights=gm.weights_, score=np.float64(gm.score(X)),
                partial_means=more.means_, n_steps=np.int64(more.n_steps_), labelled_means=labelled.means_,
                labelled_partial_means=labelled_more.means_)


@case
def nan_in_a_part(engine: str) -> dict:
    """A NaN in the last process's rows: every process raises the same clear error."""
    from bigem import GaussianMixture

    X = blobs(12)
    X[len(X) - 5, 1] = np.nan
    np.save("nan.npy", X)
    try:
        GaussianMixture(2, max_iter=3, engine=engine, **FIXED).fit("nan.npy")
    except ValueError as exc:
        return dict(error=np.asarray(f"{type(exc).__name__}: {exc}"))
    return dict(error=np.asarray(""))


def _raised(fit) -> dict:
    """The error a fit raised (its class and message), and how long it took."""
    import time

    started = time.monotonic()
    try:
        fit()
    except Exception as exc:
        return dict(error=np.asarray(f"{type(exc).__name__}: {exc}"), seconds=np.float64(time.monotonic() - started))
    return dict(error=np.asarray(""), seconds=np.float64(time.monotonic() - started))


def _rank() -> int:
    return int(os.environ.get("RANK", 0))


@case
def online_with_an_empty_process(engine: str) -> dict:
    """Online EM on a Parquet file of one row group: one process holds no row. It was
    refused for every batch_size, with advice that could not be followed."""
    import pandas as pd

    from bigem import GaussianMixture

    X = blobs(16, n_per=200)  # 600 rows: six steps of 100, the one-process fit's own batches
    pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet("one_group.parquet", row_group_size=len(X))
    with _quiet():
        gm = GaussianMixture(3, algorithm="online", batch_size=100, max_iter=3, engine=engine,
                             **FIXED).fit("one_group.parquet")
        more = GaussianMixture(3, batch_size=100, engine=engine, **FIXED).partial_fit("one_group.parquet")
    return dict(means=gm.means_, weights=gm.weights_, lower_bound=np.float64(gm.lower_bound_),
                partial_means=more.means_, n_steps=np.int64(more.n_steps_))


@case
def missing_file_on_one(engine: str) -> dict:
    """The last process cannot open its data (a path missing on its machine): before, the
    others waited in the first exchange for the group's timeout (30 minutes under gloo)."""
    from bigem import GaussianMixture

    np.save("x.npy", blobs(13))
    path = "nope.npy" if _rank() == int(os.environ.get("WORLD_SIZE", 1)) - 1 else "x.npy"
    with _quiet():
        return _raised(lambda: GaussianMixture(2, max_iter=3, engine=engine, **FIXED).fit(path))


@case
def other_files_per_process(engine: str) -> dict:
    """Each process given another file (other columns, rows and values): before, every
    process finished, each with the same parameters fitted to neither data set."""
    import pandas as pd

    from bigem import GaussianHMM, GaussianMixture

    X = blobs(14)
    if _rank() == 0:
        pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet("data.parquet")
    else:
        pd.DataFrame(X[:500] * 10 + 100, columns=["p", "q", "r"]).to_parquet("data.parquet")
    with _quiet():
        out = _raised(lambda: GaussianMixture(2, max_iter=3, engine=engine, **FIXED).fit("data.parquet"))
        hmm = _raised(lambda: GaussianHMM(2, n_iter=3, engine=engine, random_state=0).fit("data.parquet"))
    return dict(out, hmm_error=hmm["error"])


@case
def other_settings_per_process(engine: str) -> dict:
    """The same data, but another setting in one process: n_components (statistics of
    other shapes, which torch refused in a raw error), n_init (an AttributeError from
    the sum), max_iter (the process that stopped first left the others waiting, then
    aborted in gloo), reg_covar (every process finished, with other parameters each)."""
    from bigem import GaussianHMM, GaussianMixture

    other = _rank() != 0
    X = blobs(15)
    fits = {"components": lambda: GaussianMixture(3 if other else 2, max_iter=3, engine=engine, **FIXED),
            "restarts": lambda: GaussianMixture(2, n_init=2 if other else 1, max_iter=3, engine=engine, **FIXED),
            "iterations": lambda: GaussianMixture(2, max_iter=5 if other else 3, engine=engine, **FIXED),
            "regularised": lambda: GaussianMixture(2, reg_covar=1e-3 if other else 1e-6, max_iter=3, engine=engine,
                                                   **FIXED),
            "budget": lambda: GaussianMixture(2, memory_budget="8MB" if other else "64MB", max_iter=3, engine=engine,
                                              **FIXED)}
    with _quiet():
        out = {name: _raised(lambda: make().fit(X))["error"] for name, make in fits.items()}
        rows, lengths = sequences(15)
        out["hmm"] = _raised(lambda: GaussianHMM(2, n_iter=4 if other else 3, engine=engine,
                                                 random_state=0).fit(rows, lengths))["error"]
    return out


@case
def other_values_per_process(engine: str) -> dict:
    """The same shape of data, but other values, labels or sequence lengths in one
    process: the values were refused in words that named no difference (both processes
    "had 603 rows of 3 columns"), and other labels or lengths were summed silently."""
    from bigem import BernoulliMixture, GaussianHMM, GaussianMixture

    other = _rank() != 0
    X = blobs(17)
    rows, lengths = sequences(17)
    cut = np.array([lengths[:2].sum(), *lengths[2:]]) if other else lengths
    labels = np.where(np.arange(len(X)) % 3 == 0, np.arange(len(X)) % 2, -1)
    if other:
        labels[:6] = 1 - np.abs(labels[:6])
    binary = (X > 0).astype(np.float64)
    with _quiet():
        return dict(
            values=_raised(lambda: GaussianMixture(2, max_iter=3, engine=engine, **FIXED).fit(X + other))["error"],
            lengths=_raised(lambda: GaussianHMM(2, n_iter=3, engine=engine, random_state=0).fit(rows, cut))["error"],
            labels=_raised(lambda: BernoulliMixture(2, max_iter=3, engine=engine, unlabeled_weight=1.0,
                                                    random_state=0).fit(binary, labels))["error"])


@case
def seeded_by_the_primary(engine: str) -> dict:
    """random_state=None (the default) and an unseeded RandomState: each process drew its
    own seed, so the processes' k-means starts differed and the fit stopped with "the 2
    processes computed an E-step under different parameters" (the README's own torchrun
    example failed so). The primary process's seed now serves them all."""
    from bigem import GaussianHMM, GaussianMixture

    X = blobs(18)
    rows, lengths = sequences(18)
    with _quiet():
        gm = GaussianMixture(3, max_iter=4, engine=engine, dtype="float64").fit(X)
        fresh = GaussianMixture(3, max_iter=4, engine=engine, dtype="float64",
                                random_state=np.random.RandomState()).fit(X)
        online = GaussianMixture(3, batch_size=200, engine=engine, dtype="float64").partial_fit(X)
        hmm = GaussianHMM(3, n_iter=4, engine=engine, dtype="float64").fit(rows, lengths)
    return dict(means=gm.means_, fresh_means=fresh.means_, online_means=online.means_, hmm_means=hmm.means_,
                hmm_transmat=hmm.transmat_)


@case
def mixed_labelled(engine: str) -> dict:
    """A mixed-type mixture (Gaussian, categorical and binary columns) fitted semi-supervised
    from Parquet row groups of 61 rows with a label column: the product's statistics travel
    part by part, and each process reads its rows' labels with them; then a Bernoulli
    mixture from arrays in memory, y an array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bigem import BernoulliMixture, MixedMixture

    rng = np.random.default_rng(8)
    n = 400
    z = rng.integers(0, 2, n)
    colour = np.where(rng.random(n) < 0.2 + 0.6 * z, "red", np.where(rng.random(n) < 0.5, "blue", "green"))
    label = np.where(rng.random(n) < 0.15, z, -1)
    pq.write_table(pa.table({"x": rng.normal(2.0 * z, 1.0), "colour": colour, "flag": rng.random(n) < 0.2 + 0.6 * z,
                             "y": label}), "m.parquet", row_group_size=61)
    with _quiet():
        est = MixedMixture(2, families={"flag": "bernoulli"}, unlabeled_weight=0.5, max_iter=8, chunk_size=40,
                           engine=engine, **FIXED).fit(
            "m.parquet", y="y")
        # in memory: each process's part of X carries its part of the labels array
        codes = np.stack([z + (rng.random(n) < 0.3), rng.integers(0, 3, n)], 1).astype(float)
        lca = BernoulliMixture(2, unlabeled_weight=1.0, max_iter=6, chunk_size=50, engine=engine, **FIXED).fit(
            (codes > 0).astype(float), label)
    return dict(weights=est.weights_, means=est.means_, probabilities=est.probabilities_[0],
                bernoulli=est.bernoulli_probabilities_, classes=np.asarray(est.classes_),
                lower_bound=np.float64(est.lower_bound_), in_memory=lca.probabilities_,
                in_memory_bound=np.float64(lca.lower_bound_))


@case
def bayesian_parquet(engine: str) -> dict:
    """BayesianGaussianMixture (a Dirichlet process prior) from Parquet row groups of 83
    rows with a weight column: its data moments, initial pass and variational updates all
    go through the engine's one all-reduce a pass."""
    from bigem import BayesianGaussianMixture

    X = blobs(9)
    _parquet("b.parquet", X, 83, np.random.default_rng(1).uniform(0.5, 2.0, len(X)))
    with _quiet():
        est = BayesianGaussianMixture(n_components=5, covariance_type="full", max_iter=10, chunk_size=45,
                                      engine=engine, **FIXED).fit("b.parquet", sample_weight="w")
    return dict(weights=est.weights_, means=est.means_, covariances=est.covariances_,
                weight_concentration=np.asarray(est.weight_concentration_), mean_precision=est.mean_precision_,
                degrees_of_freedom=est.degrees_of_freedom_, lower_bound=np.float64(est.lower_bound_),
                n_iter=np.int64(est.n_iter_))


@case
def multinomial(engine: str) -> dict:
    """MultinomialMixture from each kind of count source, each process reading its own
    rows: a CSR matrix in memory with sample weights (k-means start), a compressed .npz
    file (random start: responsibilities drawn per row, wherever the row is read), Parquet
    token lists cut between row groups of 53, and dense counts with labels
    (semi-supervised); then predict_proba in the group."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    from bigem import MultinomialMixture, Tokens

    rng = np.random.default_rng(11)
    n, D = 300, 40
    z = rng.integers(0, 2, n)
    topics = rng.dirichlet(np.full(D, 0.3), 2)
    counts = np.stack([rng.multinomial(rng.integers(5, 30), topics[k]) for k in z]).astype(np.float64)
    X = sp.csr_matrix(counts)
    sp.save_npz("c.npz", X, compressed=True)
    ids = [X.indices[X.indptr[i]:X.indptr[i + 1]].tolist() for i in range(n)]
    values = [X.data[X.indptr[i]:X.indptr[i + 1]].astype(np.int64).tolist() for i in range(n)]
    pq.write_table(pa.table({"tokens": ids, "counts": values}), "t.parquet", row_group_size=53)
    weights = rng.uniform(0.5, 2.0, n)
    labels = np.where(rng.random(n) < 0.2, z, -1)
    kw = dict(max_iter=8, chunk_size=45, engine=engine, **FIXED)
    with _quiet():
        memory = MultinomialMixture(2, **kw).fit(X, sample_weight=weights)
        npz = MultinomialMixture(2, init_params="random", **kw).fit("c.npz")
        tokens = MultinomialMixture(2, **kw).fit(Tokens("t.parquet", "tokens", "counts", vocabulary_size=D))
        labelled = MultinomialMixture(2, unlabeled_weight=0.5, **{**kw, "max_iter": 6}).fit(counts, labels)
    return dict(memory=memory.probabilities_, memory_weights=memory.weights_,
                memory_bound=np.float64(memory.lower_bound_), npz=npz.probabilities_,
                npz_bound=np.float64(npz.lower_bound_), tokens=tokens.probabilities_,
                tokens_bound=np.float64(tokens.lower_bound_), labelled=labelled.probabilities_,
                classes=np.asarray(labelled.classes_), proba=memory.predict_proba(X),
                score=np.float64(npz.score("c.npz")))


@case
def families_gaps(engine: str) -> dict:
    """Missing values in a mixed-type mixture (missing_values='fiml'): Parquet row groups
    of 59 rows with nulls in every kind of column, each process reading its own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bigem import MixedMixture

    rng = np.random.default_rng(21)
    n = 360
    z = rng.integers(0, 2, n)
    colour = np.where(rng.random(n) < 0.2 + 0.6 * z, "red", np.where(rng.random(n) < 0.5, "blue", "green"))
    gap = rng.random((n, 4)) < 0.15
    pq.write_table(pa.table({
        "x": pa.array(rng.normal(2.0 * z, 1.0), mask=gap[:, 0]),
        "colour": pa.array(colour, mask=gap[:, 1]),
        "flag": pa.array((rng.random(n) < 0.2 + 0.6 * z).astype(float), mask=gap[:, 2]),
        "k": pa.array(rng.poisson(1 + 3 * z).astype(float), mask=gap[:, 3]),
    }), "g.parquet", row_group_size=59)
    with _quiet():
        est = MixedMixture(2, families={"flag": "bernoulli", "k": "poisson"}, missing_values="fiml", max_iter=8,
                           chunk_size=40, engine=engine, **FIXED).fit("g.parquet")
    return dict(weights=est.weights_, means=est.means_, probabilities=est.probabilities_[0],
                bernoulli=est.bernoulli_probabilities_, lambdas=est.lambdas_, lower_bound=np.float64(est.lower_bound_),
                proba=est.predict_proba("g.parquet"))
