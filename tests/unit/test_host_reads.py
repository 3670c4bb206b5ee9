"""The fit's E-step reads nothing back to the host once a chunk.

On a GPU every read-back (``bool(t)``, ``float(t)``, ``t.item()``, ...) waits for the
device to finish, so a per-chunk read stalls the overlapped copies. The property does
not depend on the device: counted here on CPU by wrapping Tensor's read-back methods,
a pass over 60 chunks reads back exactly as often as a pass over 6 (none), and what
the pass found (a row no component explains) is still raised, once, with its row.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch

from bigem._core.errors import NumericalError
from bigem._core.stats import tree_sum
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture

from .reads import counting_device_reads, counting_reads

K, D, N = 3, 4, 6000


def _model_and_params(covariance_type: str):
    rng = np.random.default_rng(1)
    model = gaussian_mixture(K, covariance_type, 1e-6, torch.float32)
    means = torch.from_numpy(rng.normal(0, 3, (K, D)))
    cov = {"full": torch.eye(D, dtype=torch.float64).expand(K, D, D),
           "tied": torch.eye(D, dtype=torch.float64),
           "diag": torch.ones(K, D, dtype=torch.float64),
           "spherical": torch.ones(K, dtype=torch.float64)}[covariance_type]
    return model, model.make_params(torch.full((K,), 1 / K, dtype=torch.float64), means, cov)


def _chunks(x: torch.Tensor, rows: int, weights: torch.Tensor | None) -> list[Chunk]:
    return [Chunk(x[s : s + rows], None if weights is None else weights[s : s + rows], s)
            for s in range(0, N, rows)]


def _data(weighted: bool):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0, 3, (N, D)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(0.5, 2.0, N)) if weighted else None
    return x, w


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_a_pass_reads_back_nothing_per_chunk(covariance_type, weighted):
    model, params = _model_and_params(covariance_type)
    x, w = _data(weighted)
    reads, totals = [], []
    for rows in (1000, 100):
        chunks = _chunks(x, rows, w)
        model.e_step(params, chunks[0])  # buffers and the prepared parameters exist before counting
        with counting_reads() as counts:
            stats = tree_sum(model.e_step(params, chunk) for chunk in chunks)
        reads.append(counts["n"])
        totals.append(model.objective(stats).total)
    assert reads == [0, 0]
    assert totals[0] == pytest.approx(totals[1], rel=1e-6)  # the same pass, whatever the chunking


def test_a_row_no_component_explains_is_raised_once_a_pass_with_its_row():
    model, params = _model_and_params("full")
    x, _ = _data(False)
    x[4321] = 1e30  # float32 log-densities of every component underflow to -inf
    stats = tree_sum(model.e_step(params, chunk) for chunk in _chunks(x, 1000, None))
    assert int(stats.unexplained) == 4321
    with pytest.raises(NumericalError, match=r"row 4321 of X has zero density under every component"):
        model.objective(stats)
    with pytest.raises(NumericalError, match=r"row 4321 of X"):
        model.m_step(stats, params)


# ---------------------------------------------------------------- inference
# score, predict, predict_proba and score_samples read back what they must once a pass
# (the totals; the outputs, in groups on a GPU), never once a chunk: the same count for
# 6 chunks as for 60, and the same answers.

@pytest.mark.parametrize("weighted", [False, True])
def test_score_totals_read_back_once_a_pass(weighted):
    model, params = _model_and_params("full")
    x, w = _data(weighted)
    settled, reads = [], []
    for rows in (1000, 100):
        chunks = _chunks(x, rows, w)
        model.score_totals(params, chunks[0])
        with counting_reads() as counts:
            totals = tree_sum(model.score_totals(params, chunk) for chunk in chunks)
        reads.append(counts["n"])
        settled.append(totals.settled())
    assert reads == [0, 0]
    a, b = settled
    assert a.loglik == pytest.approx(b.loglik, rel=1e-9) and a.weight == pytest.approx(b.weight, rel=1e-12)
    assert a.rows == b.rows == N
    # against the mixture density written out here
    lp = _log_density(model, params, x)
    expected = float(lp.sum()) if w is None else float(lp @ w)
    assert a.loglik == pytest.approx(expected, rel=1e-6)


def _log_density(model, params, x: torch.Tensor) -> torch.Tensor:
    """log sum_k w_k N(x | mu_k, I): the unit covariances of _model_and_params."""
    x64 = x.double()
    means = params.component.means if hasattr(params.component, "means") else None
    assert means is not None
    sq = ((x64[:, None, :] - means[None]) ** 2).sum(-1)
    log_n = -0.5 * sq - 0.5 * D * np.log(2 * np.pi)
    return torch.logsumexp(log_n + params.weights.log()[None], 1)


def _fitted(covariance_type="full"):
    from bigem import GaussianMixture

    rng = np.random.default_rng(3)
    centres = np.array([[0.0] * D, [8.0] * D, [-8.0] + [8.0] * (D - 1)])
    x = torch.from_numpy((centres[rng.integers(0, K, N)] + rng.normal(0, 1, (N, D))).astype(np.float32))
    gm = GaussianMixture(K, covariance_type=covariance_type, random_state=0).fit(x)
    return gm, x


@pytest.mark.parametrize("method", ["score", "predict", "predict_proba", "score_samples"])
def test_inference_reads_back_as_often_for_60_chunks_as_for_6(method):
    gm, x = _fitted()
    reads, answers = [], []
    for rows in (1000, 100):
        gm.set_params(chunk_size=rows)
        getattr(gm, method)(x)  # the prepared parameters exist before counting
        with counting_reads() as counts:
            answers.append(getattr(gm, method)(x))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    assert reads[0] <= 4
    np.testing.assert_allclose(answers[0], answers[1], rtol=1e-6)


def test_inference_outputs_agree_with_scikit_learns():
    SkGM = pytest.importorskip("sklearn.mixture").GaussianMixture

    gm, x = _fitted()
    gm.set_params(chunk_size=700)
    sk = SkGM(K, covariance_type="full")
    sk.weights_, sk.means_, sk.covariances_ = gm.weights_, gm.means_, gm.covariances_
    sk.precisions_cholesky_ = gm.precisions_cholesky_
    x64 = x.double().numpy()
    np.testing.assert_allclose(gm.score_samples(x), sk.score_samples(x64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gm.predict_proba(x), sk.predict_proba(x64), atol=1e-4)
    assert (gm.predict(x) == sk.predict(x64)).mean() > 0.999
    assert gm.score(x) == pytest.approx(sk.score(x64), rel=1e-5)


@pytest.mark.parametrize("method", ["score", "predict", "predict_proba", "score_samples"])
def test_a_row_no_component_explains_is_raised_by_inference_with_its_row(method):
    gm, x = _fitted()
    gm.set_params(chunk_size=1000)
    x = x.clone()
    x[4321] = 1e30  # float32 log-densities of every component underflow to -inf
    with pytest.raises(NumericalError, match=r"row 4321 of X has zero density under every component"):
        getattr(gm, method)(x)


def test_predictions_written_to_a_file_stop_at_a_row_no_component_explains(tmp_path):
    gm, x = _fitted()
    gm.set_params(chunk_size=1000)
    x = x.clone()
    x[4321] = 1e30
    out = tmp_path / "labels.csv"
    with pytest.raises(NumericalError, match=r"row 4321 of X"):
        gm.predict(x, out=out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_class_log_joints_are_each_classes_logsumexp():
    from bigem.estimators._mixture import class_log_joint

    rng = np.random.default_rng(7)
    lj = torch.from_numpy(rng.normal(-50, 30, (500, 5)))
    lj[3] = -torch.inf  # a row no component explains stays -inf
    lj[4, :2] = -torch.inf  # a class none of whose components explains the row
    lj[5] = torch.tensor([-1e4, -1e4 - 3, 0.0, -2.0, -1e4 - 1])  # a class far below the row's best
    groups = torch.tensor([0, 0, 1, 1, 2])
    expected = torch.stack([torch.logsumexp(lj[:, groups == c], 1) for c in range(3)], 1)
    got = class_log_joint(lj, groups, 3)
    finite = torch.isfinite(expected)
    assert torch.equal(finite, torch.isfinite(got)) or bool((got[~finite] == -torch.inf).all())
    torch.testing.assert_close(got[finite & (expected > -700)], expected[finite & (expected > -700)], rtol=1e-12,
                               atol=1e-9)


def test_semi_supervised_inference_reads_back_as_often_for_60_chunks_as_for_6():
    from bigem import GaussianMixture

    rng = np.random.default_rng(8)
    centres = np.array([[0.0] * D, [8.0] * D, [-8.0] + [8.0] * (D - 1), [8.0] + [-8.0] * (D - 1)])
    y = rng.integers(0, 4, N)
    x = torch.from_numpy((centres[y] + rng.normal(0, 1, (N, D))).astype(np.float32))
    labels = np.where(y < 2, 0, 1)  # two classes of two components each
    labels[rng.random(N) < 0.5] = -1
    gm = GaussianMixture(4, unlabeled_weight=1.0, random_state=0).fit(x, labels)
    reads, answers = [], []
    for rows in (1000, 100):
        gm.set_params(chunk_size=rows)
        gm.predict_proba(x)
        with counting_reads() as counts:
            answers.append((gm.predict(x), gm.predict_proba(x)))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    assert set(np.unique(answers[0][0])) <= {0, 1} and answers[0][1].shape == (N, 2)
    np.testing.assert_array_equal(answers[0][0], answers[0][1].argmax(1))
    np.testing.assert_allclose(answers[0][1].sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(answers[0][0], answers[1][0])


# ---------------------------------------------------------------- a fit's first-pass value rules
# A family's rules on values (0/1 columns, non-negative integer counts) are checked as the
# rows are read. Where reads are deferred (a GPU's chunks; forced here on the CPU) each
# chunk's verdict stays on the device and is read once the pass ends: the same count of
# reads for 60 chunks as for 6, the same fit, and a broken value still refused with the
# message the per-chunk check gives, naming its row.

def _discrete(family: str, n: int = N, bad_row: int | None = None):
    rng = np.random.default_rng(3)
    z = rng.integers(0, 2, n)
    flags = (rng.random((n, 3)) < 0.2 + 0.6 * z[:, None]).astype(np.float64)
    counts = rng.poisson(2 + 3 * z[:, None], (n, 2)).astype(np.float64)
    if family == "bernoulli":
        X = flags
    elif family == "poisson":
        X = counts
    else:
        import pandas as pd

        X = pd.DataFrame({"x": rng.normal(2.0 * z, 1.0), "k": counts[:, 0], "flag": flags[:, 0]})
    if bad_row is not None:
        if family == "mixed":
            X.loc[bad_row, "k"] = 2.5
        else:
            X[bad_row, 1] = 2.0 if family == "bernoulli" else -1.0
    return X


def _family(family: str, **kw):
    from bigem import BernoulliMixture, MixedMixture, PoissonMixture

    kw = dict(n_components=2, max_iter=3, tol=0, random_state=0, dtype="float64", **kw)
    if family == "mixed":
        return MixedMixture(families={"k": "poisson", "flag": "bernoulli"}, **kw)
    return {"bernoulli": BernoulliMixture, "poisson": PoissonMixture}[family](**kw)


@pytest.fixture
def deferred(monkeypatch):
    """A GPU's strategy on the CPU: checks stay where the rows are, read once a pass."""
    from bigem._core import numerics

    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("family", ["bernoulli", "poisson", "mixed"])
def test_a_fits_value_rules_read_back_as_often_for_60_chunks_as_for_6(deferred, family, monkeypatch):
    X = _discrete(family)
    reads, fits = [], []
    for rows in (N // 6, N // 60):
        with counting_reads() as counts:
            fits.append(_family(family, chunk_size=rows).fit(X))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    from bigem._core import numerics

    monkeypatch.setattr(numerics, "defers_reads", lambda device: False)
    plain = _family(family, chunk_size=N // 60).fit(X)
    for fit in fits:
        np.testing.assert_allclose(fit.lower_bounds_, plain.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(fit.weights_, plain.weights_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "file"])
@pytest.mark.parametrize("family", ["bernoulli", "poisson", "mixed"])
def test_a_broken_value_found_on_the_device_is_refused_as_the_per_chunk_check_refuses_it(family, streamed, monkeypatch,
                                                                                         tmp_path):
    from bigem._core import numerics
    from bigem._core.errors import DataError

    X = _discrete(family, bad_row=4321)
    if streamed:
        path = tmp_path / ("x.parquet" if family == "mixed" else "x.npy")
        X.to_parquet(path) if family == "mixed" else np.save(path, X)
        X = path
    messages = []
    for deferring in (False, True):
        monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
        with pytest.raises(DataError, match="at row 4321") as caught:
            _family(family, chunk_size=500, init_params="random").fit(X)  # no rows taken by index first
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


# ---------------------------------------------------------------- gaps and labels in a fit
# With missing_values='fiml' each block asked "is there a gap?" and the count of rows with
# nothing observed was read once a chunk; with labels and unlabeled_weight each chunk
# asked whether it held labelled and unlabelled rows. Deferred, the gap kernels, the scale
# and the mask take every block whatever it holds, and the count stays on the device:
# a whole fit reads back as often over 60 chunks as over 6, and fits as the per-chunk
# path does. (The correlated Gaussian's missing patterns are still found on the host,
# once a chunk: full and tied covariances are not in this list.)

def _gapped_fit(case: str, **kw):
    from bigem import BernoulliMixture, CategoricalMixture, GaussianMixture, PoissonMixture

    rng = np.random.default_rng(4)
    z = rng.integers(0, 2, N)
    kw = dict(dict(max_iter=3, tol=0, random_state=0, dtype="float64"), **kw)
    labels = None
    if case == "labels":
        X = rng.normal(4.0 * z[:, None], 1.0, (N, 3))
        labels = np.where(rng.random(N) < 0.3, z, -1)
        return GaussianMixture(2, unlabeled_weight=0.5, **kw), X, labels
    if case == "gaussian-diag":
        X, make = rng.normal(4.0 * z[:, None], 1.0, (N, 3)), lambda: GaussianMixture(2, covariance_type="diag", **kw)
    elif case == "bernoulli":
        X, make = (rng.random((N, 5)) < 0.2 + 0.6 * z[:, None]).astype(float), lambda: BernoulliMixture(2, **kw)
    elif case == "poisson":
        X, make = rng.poisson(2.0 + 4.0 * z[:, None], (N, 3)).astype(float), lambda: PoissonMixture(2, **kw)
    elif case == "categorical":
        X, make = (rng.integers(0, 3, (N, 3)) + z[:, None]).astype(float), lambda: CategoricalMixture(2, **kw)
    else:
        import pandas as pd

        X = pd.DataFrame({"x": rng.normal(3.0 * z, 1.0), "k": rng.poisson(2.0 + 4.0 * z).astype(float),
                          "c": (rng.integers(0, 3, N) + z).astype(float)})
        from bigem import MixedMixture

        model = MixedMixture(2, families={"k": "poisson", "c": "categorical"}, missing_values="fiml", **kw)
        X = X.mask(rng.random(X.shape) < 0.1)
        return model, X, None
    X[rng.random(X.shape) < 0.1] = np.nan
    return make().set_params(missing_values="fiml"), X, labels


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::bigem.errors.EmptyRowWarning")  # a few rows lose every value
@pytest.mark.parametrize("init", ["kmeans", "random"])
@pytest.mark.parametrize("case", ["bernoulli", "poisson", "categorical", "mixed", "gaussian-diag", "labels"])
def test_a_fit_with_gaps_or_labels_reads_back_as_often_for_60_chunks_as_for_6(deferred, case, init, monkeypatch):
    from bigem._core import numerics

    reads, fits = [], []
    for rows in (N // 6, N // 60):
        model, X, y = _gapped_fit(case, chunk_size=rows, init_params=init)
        with counting_device_reads({}) as counts:  # boolean-mask indexing and nonzero count too
            fits.append(model.fit(X, y))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    monkeypatch.setattr(numerics, "defers_reads", lambda device: False)
    model, X, y = _gapped_fit(case, chunk_size=N // 60, init_params=init)
    plain = model.fit(X, y)
    for fit in fits:
        np.testing.assert_allclose(fit.lower_bounds_, plain.lower_bounds_, rtol=1e-12)
        np.testing.assert_allclose(fit.weights_, plain.weights_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.parametrize("deferring", [False, True])
def test_rows_with_nothing_observed_are_counted_on_the_device_and_named_once(deferring, monkeypatch):
    from bigem import BernoulliMixture
    from bigem._core import numerics
    from bigem.errors import EmptyRowWarning

    monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
    rng = np.random.default_rng(2)
    X = (rng.random((N, 4)) < 0.5).astype(float)
    X[:, :2][rng.random((N, 2)) < 0.1] = np.nan
    X[[17, 2500, 5999]] = np.nan  # three rows with nothing observed, in three chunks
    with pytest.warns(EmptyRowWarning, match=r"^3 row\(s\) have every value missing") as caught:
        BernoulliMixture(2, missing_values="fiml", max_iter=2, tol=0, random_state=0, chunk_size=1000).fit(X)
    assert len([w for w in caught if w.category is EmptyRowWarning]) == 1


def _e_step_pass(case: str, device: str, rows: int, count) -> tuple[int, float]:
    """(the reads or synchronisations ``count`` saw, the log-likelihood) of one E-step pass
    over a fitted model's data in chunks of ``rows``, on ``device``."""
    est, X, y = _gapped_fit(case, max_iter=2, chunk_size=1000)
    fitted = est.fit(X, y)
    model, params = fitted._model(fitted._inference_settings()), fitted._fitted().to(device)
    x = torch.as_tensor(np.asarray(X, dtype=np.float64), device=device)
    label = None if y is None else torch.as_tensor(y, device=device)
    chunks = [Chunk(x[s : s + rows], None, s, label=None if label is None else label[s : s + rows])
              for s in range(0, N, rows)]
    model.e_step(params, chunks[0])  # the prepared parameters exist before counting
    with count() as counts:
        stats = tree_sum(model.e_step(params, chunk) for chunk in chunks)
    return counts["n"], model.objective(stats).total


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::bigem.errors.EmptyRowWarning")
@pytest.mark.parametrize("case", ["bernoulli", "poisson", "gaussian-diag", "labels"])
def test_an_e_step_pass_with_gaps_or_labels_reads_nothing_per_chunk(deferred, case):
    reads, totals = zip(*(_e_step_pass(case, "cpu", rows, counting_reads) for rows in (1000, 100)))
    assert reads[0] == reads[1]
    assert totals[0] == pytest.approx(totals[1], rel=1e-12)


@contextlib.contextmanager
def counting_syncs():
    """Count the host synchronisations inside the block (torch's sync debug mode)."""
    counts = {"n": 0}
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield counts
            torch.cuda.synchronize()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    counts["n"] = sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::bigem.errors.EmptyRowWarning")
@pytest.mark.parametrize("case", ["bernoulli", "poisson", "gaussian-diag", "labels"])
def test_cuda_e_step_with_gaps_or_labels_synchronises_no_more_for_60_chunks_than_for_6(case):
    syncs, totals = zip(*(_e_step_pass(case, "cuda", rows, counting_syncs) for rows in (1000, 100)))
    assert syncs[0] == syncs[1]
    _, cpu = _e_step_pass(case, "cpu", 1000, lambda: contextlib.nullcontext({"n": 0}))
    assert totals[0] == pytest.approx(cpu, rel=1e-10) and totals[1] == pytest.approx(cpu, rel=1e-10)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_restarts_in_lockstep_read_back_as_often_for_60_chunks_as_for_6():
    """Each chunk feeds every restart's E-step in turn: each run's parameters are prepared
    once a pass (the preparation checks them, a read), not once a chunk."""
    from bigem import GaussianMixture

    x, _ = _data(False)
    reads, bounds = [], []
    for rows in (N // 6, N // 60):
        with counting_reads() as counts:
            gm = GaussianMixture(K, n_init=3, max_iter=3, tol=0, random_state=0, chunk_size=rows).fit(x)
        reads.append(counts["n"])
        bounds.append(gm.lower_bound_)
    assert reads[0] == reads[1]
    assert bounds[0] == pytest.approx(bounds[1], rel=1e-6)
