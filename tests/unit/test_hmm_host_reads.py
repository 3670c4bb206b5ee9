"""The HMMs read nothing back to the host once a batch on an accelerator.

On a GPU every read-back (``bool(t)``, ``int(t)``, ``.cpu()``, ...) and every result
whose size depends on the data (``nonzero``, a boolean mask as an index) waits for the
device to finish. The HMM code chooses its strategy by device (``_core.numerics.defers_reads``): on the CPU
reads are free and the per-batch checks keep the exact path; on an accelerator the
checks stay on the device. Here that strategy is forced on the CPU, and the reads are
counted by wrapping Tensor's read-back methods (``reads.py``, shared with test_host_reads.py) and the
data-dependent shapes: a pass over 40 batches reads back as often as one over 4, and
gives the same answers as the per-batch path. A batch's lengths are host data (CPU by
contract, never a device read), so reads of them are not counted; nor is ``.numpy()``,
which the CPU's per-step loops call to take views and which an accelerator's tensor
refuses (it must come through ``.cpu()``, counted).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from bigem import CategoricalHMM, GaussianHMM
from bigem._core import jit, numerics
from bigem._core.stats import tree_sum
from bigem._core.types import SequenceChunk
from bigem.estimators.hmm import ImpossibleSequenceWarning
from bigem.models import hmm as hmm_model
from bigem.models.hmm import HMMParams, _keeps_in_range, forward_backward, forward_backward_log
from bigem.sources.sequences import SequenceBatches

from .reads import counting_device_reads

LENGTH, N_SEQ, D, K = 50, 40, 2, 3


@pytest.fixture(autouse=True)
def _tensor_path():
    """These tests simulate an accelerator on the CPU and compare it bit for bit with the
    CPU's own tensor path, so the compiled CPU kernels stay out of both sides."""
    with jit.off():
        yield


@pytest.fixture
def deferred(monkeypatch):
    """The accelerator's strategy on the CPU."""
    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)


@pytest.fixture
def host_lengths(monkeypatch):
    """Every batch's lengths registered as host data; the batches counted."""
    host: dict[int, torch.Tensor] = {}
    made = {"batches": 0}
    chunks = SequenceBatches.chunks

    def registered(self):
        for chunk in chunks(self):
            host[id(chunk.lengths)] = chunk.lengths
            made["batches"] += 1
            yield chunk

    monkeypatch.setattr(SequenceBatches, "chunks", registered)
    return host, made


def _data(seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    states = np.repeat(rng.integers(0, K, N_SEQ * LENGTH // 10), 10)
    return means[states] + rng.normal(0, 1, (N_SEQ * LENGTH, D)), [LENGTH] * N_SEQ


def _fitted(dtype="float64"):
    X, lengths = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed, short fit
        return GaussianHMM(K, covariance_type="diag", n_iter=3, random_state=0, dtype=dtype).fit(X, lengths), X, lengths


def _per_row_bytes() -> int:
    return (torch.finfo(torch.float64).bits // 8) * (6 * K + 3 * D + 4) + 48  # as GaussianHMM._rows_per_batch


# ---------------------------------------------------------------- the E-step (fit)
def _chunks(x: torch.Tensor, per_batch: int, host: dict) -> list[SequenceChunk]:
    out = []
    for s0 in range(0, N_SEQ, per_batch):
        lengths = torch.full((min(per_batch, N_SEQ - s0),), LENGTH, dtype=torch.int64)
        host[id(lengths)] = lengths
        out.append(SequenceChunk(x[s0 * LENGTH : (s0 + len(lengths)) * LENGTH], lengths, s0 * LENGTH, s0))
    return out


def _model_and_params(m):
    s = m._inference_settings()
    return m._model(s, m.n_features), m._fitted(s)


def test_an_e_step_pass_reads_back_as_often_for_40_batches_as_for_4(deferred):
    m, X, _ = _fitted()
    model, params = _model_and_params(m)
    x = torch.from_numpy(X)
    host: dict[int, torch.Tensor] = {}
    reads, passes = [], []
    for per_batch in (10, 1):
        chunks = _chunks(x, per_batch, host)
        model.e_step(params, chunks[0])  # the layout and the range check exist before counting
        with counting_device_reads(host) as counts:
            stats = tree_sum(model.e_step(params, chunk) for chunk in chunks)
            objective = model.objective(stats)
        reads.append(counts["n"])
        passes.append((stats, objective))
    assert reads[0] == reads[1] <= 4
    # the same pass as the per-batch path's (the CPU's own strategy)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(numerics, "defers_reads", lambda device: False)
        plain = tree_sum(model.e_step(params, chunk) for chunk in _chunks(x, 1, host))
    for stats, objective in passes:
        assert isinstance(stats.rows, torch.Tensor)  # counted on the device
        assert objective.total == pytest.approx(float(plain.loglik), rel=1e-12)
        assert objective.weight == plain.rows == N_SEQ * LENGTH
        torch.testing.assert_close(stats.start, plain.start, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(stats.trans, plain.trans, rtol=1e-12, atol=1e-12)
        expected = model.to_tensors(model.m_step(plain, params).params)
        for name, value in model.to_tensors(model.m_step(stats, params).params).items():
            torch.testing.assert_close(value, expected[name], rtol=1e-10, atol=1e-14)


def test_out_of_range_transitions_read_back_once_a_batch(deferred):
    # a zero transition: whether a sequence needs the log-space pass is read, once a batch
    m, X, _ = _fitted()
    model, params = _model_and_params(m)
    A = params.transmat.clone()
    A[0, 1], A[0, 0] = 0.0, A[0, 0] + A[0, 1]
    params = HMMParams(params.startprob, A, params.emission)
    assert not _keeps_in_range(params.startprob, A, torch.float64)
    x = torch.from_numpy(X)
    host: dict[int, torch.Tensor] = {}
    reads, totals = [], []
    for per_batch in (10, 1):
        chunks = _chunks(x, per_batch, host)
        model.e_step(params, chunks[0])
        with counting_device_reads(host) as counts:
            stats = tree_sum(model.e_step(params, chunk) for chunk in chunks)
        reads.append(counts["n"])
        totals.append(float(stats.loglik))
    assert reads[1] - reads[0] == 40 - 4
    assert totals[0] == pytest.approx(totals[1], rel=1e-12)


def test_a_fit_is_the_same_whichever_strategy(monkeypatch):
    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    m, _, _ = _fitted()
    monkeypatch.setattr(numerics, "defers_reads", lambda device: False)
    other, _, _ = _fitted()
    np.testing.assert_allclose(m.monitor_.history, other.monitor_.history, rtol=1e-12)
    np.testing.assert_allclose(m.transmat_, other.transmat_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(m.means_, other.means_, rtol=1e-10)


def test_a_variational_fit_is_the_same_whichever_strategy(monkeypatch):
    # its sub-normalised start and transition weights (exp E[log p]) take the same path
    from bigem import VariationalGaussianHMM

    X, lengths = _data(1)
    fits = []
    for deferring in (True, False):
        monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(VariationalGaussianHMM(K, covariance_type="diag", n_iter=4, random_state=0).fit(X, lengths))
    np.testing.assert_allclose(fits[0].monitor_.history, fits[1].monitor_.history, rtol=1e-12)
    np.testing.assert_allclose(fits[0].means_, fits[1].means_, rtol=1e-10)


def test_impossible_sequences_deferred_are_counted_on_the_device_and_named_once_a_pass(deferred):
    cat = CategoricalHMM(2, init_params="", n_iter=5, tol=0.0, dtype="float64")
    cat.startprob_ = np.array([1.0, 0.0])
    cat.transmat_ = np.array([[0.9, 0.1], [0.0, 1.0]])  # state 1 never returns to 0
    cat.emissionprob_ = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])  # symbol 2 only in state 1
    X = np.array([[0], [1], [0], [1], [0], [0], [2], [0], [0], [1], [0], [1], [2], [2]])
    lengths = [4, 4, 2, 4]  # sequence 1: 0 0 2 0 needs 1 -> 0: impossible
    with pytest.warns(ImpossibleSequenceWarning, match=r"1 sequence\(s\) are impossible .*first: sequence 1"):
        assert cat.score(X, lengths) == -np.inf
    with pytest.warns(ImpossibleSequenceWarning, match="first: sequence 1"):
        _, post = cat.score_samples(X, lengths)
    assert np.isnan(post[4:8]).all() and np.allclose(np.delete(post, range(4, 8), 0).sum(1), 1.0)
    with pytest.warns(ImpossibleSequenceWarning, match=r"1 sequence\(s\) are impossible .*first: sequence 1.*left out"):
        cat.fit(X, lengths)
    for p in (cat.startprob_, cat.transmat_, cat.emissionprob_):
        assert np.isfinite(p).all()


# ---------------------------------------------------------------- the fallback
def _sticky(m: float, K: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and transition probabilities whose smallest entry is m."""
    A = torch.full((K, K), m, dtype=torch.float64)
    A.fill_diagonal_(0.0)
    A += torch.diag(1.0 - A.sum(1))
    return torch.full((K,), 1.0 / K, dtype=torch.float64).clamp(min=m), A


def _forced_walk(T: int, K: int, gap: float, dtype) -> torch.Tensor:
    """log b where step t's only likely state is t mod K, the others ``gap`` nats lower:
    the path must take the rare transition at every step."""
    log_b = torch.full((T, K), -gap, dtype=dtype)
    log_b[torch.arange(T), torch.arange(T) % K] = 0.0
    return log_b


def _smallest_in_range(dtype, K=3) -> float:
    every, floor = hmm_model._EVERY[dtype], hmm_model._RANGE_FLOOR[dtype]
    return 2.0 ** ((floor + math.log2(K)) / (every + 2)) * 1.001


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_range_parameters_never_send_a_possible_sequence_to_the_log_space_redo(dtype):
    # the claim _keeps_in_range rests on, at its edge: the rarest transitions at every step,
    # the other states' emissions far below (their scaled emissions are exactly 0)
    m = _smallest_in_range(dtype)
    pi, A = _sticky(m)
    assert _keeps_in_range(pi, A, dtype)
    log_b = _forced_walk(5003, 3, 1e4, dtype)
    lengths = np.array([5003])
    redone = []
    original = hmm_model._redo_in_log_space
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hmm_model, "_redo_in_log_space", lambda *a, **k: redone.append(1) or original(*a, **k))
        for segment in (None, 64):  # cut into segments chained by transfer matrices, and finer
            post = forward_backward(log_b, lengths, pi, A, segment=segment)
            ref = forward_backward_log(log_b, lengths, pi, A)
            assert redone == []
            torch.testing.assert_close(post.loglik, ref.loglik, rtol=1e-9 if dtype == torch.float32 else 1e-13, atol=0)
            torch.testing.assert_close(post.gamma.double(), ref.gamma, atol=1e-7, rtol=0)
    # far below the edge the scaled recursion does run out of range: the check matters
    pi, A = _sticky(m ** 3)
    assert not _keeps_in_range(pi, A, dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hmm_model, "_redo_in_log_space", lambda *a, **k: redone.append(1) or original(*a, **k))
        forward_backward(log_b, lengths, pi, A)
    assert redone == [1]


def _batch(dtype):
    """Normal sequences, one underflowing (state 0 only reachable, its emissions 2000 nats
    below state 1's) and one impossible (a row no state explains), as log b."""
    rng = np.random.default_rng(4)
    normal = [torch.from_numpy(rng.normal(-3, 2, (n, 3))).to(dtype) for n in (40, 700, 25)]
    under = torch.zeros(30, 3, dtype=dtype)
    under[:, 0], under[:, 1], under[:, 2] = -2000.0, 0.0, -1.0
    impossible = torch.from_numpy(rng.normal(-3, 2, (20, 3))).to(dtype)
    impossible[7] = -math.inf
    parts = [normal[0], under, normal[1], impossible, normal[2]]
    return torch.cat(parts), np.array([len(p) for p in parts])


@pytest.mark.parametrize("segment", [None, 128])
@pytest.mark.parametrize("in_range", [True, False])
def test_underflowing_and_impossible_sequences_among_normal_ones_give_todays_answers(monkeypatch, in_range, segment):
    dtype = torch.float64
    log_b, lengths = _batch(dtype)
    if in_range:  # no underflow possible: the impossible sequence is masked on the device
        pi, A = _sticky(0.05)
        log_b[40:70] = _forced_walk(30, 3, 5.0, dtype)
    else:  # state 0 alone can start and never leaves: the scaled recursion underflows
        pi = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
        A = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64)
    today = forward_backward(log_b, lengths, pi, A, segment=segment)
    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    now = forward_backward(log_b, lengths, pi, A, segment=segment)
    for a, b in ((now.gamma, today.gamma), (now.loglik, today.loglik), (now.start, today.start),
                 (now.trans, today.trans)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same numbers
    ref = forward_backward_log(log_b, lengths, pi, A)
    assert torch.isinf(now.loglik[3]) and (now.gamma[770:790] == 0).all()
    assert bool(torch.isfinite(now.loglik[[0, 1, 2, 4]]).all())
    torch.testing.assert_close(now.loglik[[0, 1, 2, 4]], ref.loglik[[0, 1, 2, 4]], rtol=1e-10, atol=0)
    torch.testing.assert_close(now.gamma, ref.gamma, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- inference
METHODS = {
    "predict_proba": lambda m, X, L: m.predict_proba(X, L),
    "score_samples": lambda m, X, L: m.score_samples(X, L)[1],
    "score": lambda m, X, L: m.score(X, L),
    "decode": lambda m, X, L: m.decode(X, L)[1],
    "decode_map": lambda m, X, L: m.decode(X, L, algorithm="map")[1],
    "predict": lambda m, X, L: m.predict(X, L),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_inference_reads_back_as_often_for_40_batches_as_for_4(deferred, host_lengths, method):
    host, made = host_lengths
    m, X, lengths = _fitted()
    call = METHODS[method]
    reads, answers, batches = [], [], []
    for per_batch in (10, 1):
        m.set_params(memory_budget=_per_row_bytes() * LENGTH * per_batch)
        call(m, X, lengths)  # warm
        made["batches"] = 0
        with counting_device_reads(host) as counts:
            answers.append(call(m, X, lengths))
        reads.append(counts["n"])
        batches.append(made["batches"])
    assert batches == [4, 40]
    # once a call: the parameters' and the input's checks (host data) and the range check
    assert reads[0] == reads[1] <= 16
    np.testing.assert_allclose(answers[0], answers[1], rtol=1e-12)


def test_posteriors_of_batches_of_one_sequence_each_are_each_their_own():
    # float64 with one sequence per batch: the posteriors came back as a view of the
    # recursion's reused buffer, and every batch read the last one's (before the fix)
    m, X, lengths = _fitted("float64")
    whole = m.predict_proba(X, lengths)
    m.set_params(memory_budget=_per_row_bytes() * LENGTH)  # one sequence a batch
    np.testing.assert_allclose(m.predict_proba(X, lengths), whole, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.score_samples(X, lengths)[1], whole, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- on a GPU
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_and_inference_never_synchronise_per_batch():
    X, lengths = _data()
    fits = []
    for device in ("cpu", "cuda"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fixed, short fit
            fits.append(GaussianHMM(K, covariance_type="diag", n_iter=3, random_state=0, dtype="float64",
                                    device=device, memory_budget=_per_row_bytes() * LENGTH).fit(X, lengths))
    cpu, gpu = fits
    np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(gpu.predict_proba(X, lengths), cpu.predict_proba(X, lengths), atol=1e-9)
    np.testing.assert_array_equal(gpu.predict(X, lengths), cpu.predict(X, lengths))
    model, params = _model_and_params(gpu)
    chunks = _chunks(torch.from_numpy(X).cuda(), 1, {})
    model.e_step(params, chunks[0])  # the layout and the range check exist
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        parts = [model.e_step(params, chunk) for chunk in chunks]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert model.objective(tree_sum(parts)).weight == N_SEQ * LENGTH


# ---------------------------------------------------------------- the discrete HMMs' value rules
# Symbols, counts and trials are checked as the rows are read. Deferred, a batch's verdict
# stays on the device and is read once the pass ends: as many reads for 40 batches as for
# 4, and a broken value refused with the per-batch check's message, once the pass ends;
# the E-step before it indexes nothing out of range (a GPU would stop on a device assert).

def _discrete_hmm(kind: str):
    from bigem import MultinomialHMM, PoissonHMM

    rng = np.random.default_rng(5)
    states = np.repeat(rng.integers(0, 2, N_SEQ * LENGTH // 10), 10)
    if kind == "categorical":
        X = np.where(states[:, None] == 0, rng.integers(0, 2, (N_SEQ * LENGTH, 1)), rng.integers(1, 4, (N_SEQ * LENGTH, 1)))
        m = CategoricalHMM(2, n_features=4, n_iter=3, random_state=0, dtype="float64")
    elif kind == "poisson":
        X = rng.poisson(np.where(states[:, None] == 0, 1.0, 6.0), (N_SEQ * LENGTH, 2))
        m = PoissonHMM(2, n_iter=3, random_state=0, dtype="float64")
    else:
        p = np.where(states[:, None] == 0, [0.7, 0.2, 0.1], [0.1, 0.3, 0.6])
        X = np.stack([rng.multinomial(5, row) for row in p])
        m = MultinomialHMM(2, n_trials=5, n_iter=3, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed, short fit
        return m.fit(X.astype(np.float64), [LENGTH] * N_SEQ), X.astype(np.float64)


BREAKS = {"categorical": [(0, 4.0), (0, 9.0), (0, -1.0), (0, 1.5)], "poisson": [(1, -2.0), (0, 0.5)],
          "multinomial": [(2, 3.0), (1, -1.0)]}


def _budget(X, per_batch: int) -> int:
    """A 2-state HMM's memory budget for ``per_batch`` sequences a batch (as _rows_per_batch)."""
    per_row = (torch.finfo(torch.float64).bits // 8) * (6 * 2 + 3 * X.shape[1] + 4) + 48
    return per_row * LENGTH * per_batch


def _scored_in_4_and_40_batches(m, X, host_lengths) -> tuple[list[int], list[float]]:
    """(the reads, the scores) of ``m.score(X)`` in 4 batches and in 40."""
    host, made = host_lengths
    lengths = [LENGTH] * N_SEQ
    reads, scores, batches = [], [], []
    for per_batch in (10, 1):
        m.set_params(memory_budget=_budget(X, per_batch))
        m.score(X, lengths)  # warm
        made["batches"] = 0
        with counting_device_reads(host) as counts:
            scores.append(m.score(X, lengths))
        reads.append(counts["n"])
        batches.append(made["batches"])
    assert batches == [4, 40]
    return reads, scores


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_discrete_hmms_check_their_values_with_as_many_reads_for_40_batches_as_for_4(deferred, host_lengths, kind):
    m, X = _discrete_hmm(kind)
    reads, scores = _scored_in_4_and_40_batches(m, X, host_lengths)
    assert reads[0] == reads[1]
    assert scores[0] == pytest.approx(scores[1], rel=1e-12)


@pytest.mark.parametrize("fitting", [False, True], ids=["score", "fit"])
@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_a_broken_value_found_on_the_device_is_refused_as_the_per_batch_check_refuses_it(monkeypatch, kind, fitting):
    from bigem._core.errors import DataError

    m, X = _discrete_hmm(kind)
    m.set_params(memory_budget=((6 * 2 + 3 * X.shape[1] + 4) * 8 + 48) * LENGTH * 3, init_params="")
    for column, value in BREAKS[kind]:
        if kind == "multinomial" and value > 0 and not fitting:
            continue  # another total: n_trials binds fit's rows only (hmmlearn's rule)
        bad = X.copy()
        bad[1234, column] = value
        messages = []
        for deferring in (False, True):
            monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
            with pytest.raises(DataError, match="row 1234") as caught:
                m.fit(bad, [LENGTH] * N_SEQ) if fitting else m.score(bad, [LENGTH] * N_SEQ)
            messages.append(str(caught.value))
        assert messages[0] == messages[1]


@pytest.mark.parametrize("fitting", [False, True], ids=["score", "fit"])
def test_a_nan_in_a_streamed_file_found_on_the_device_is_refused_as_the_per_batch_check_refuses_it(monkeypatch,
                                                                                                  tmp_path, fitting):
    # the batches end the rows' pass, so the pass's deferred check is read and raised
    from bigem._core.errors import DataError

    m, X, lengths = _fitted()
    X = X.copy()
    X[1234, 1] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, X)
    m.set_params(memory_budget=_per_row_bytes() * LENGTH * 3, init_params="")
    messages = []
    for deferring in (False, True):
        monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
        with pytest.raises(DataError, match="row 1234") as caught:
            m.fit(path, lengths) if fitting else m.score(path, lengths)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


# ---------------------------------------------------------------- gaps (missing_values='fiml')
# A row's gaps leave its emission's log-density. Deferred, no batch asks the device
# whether it holds a gap (the gap kernels take every batch): as many reads for 40 batches
# as for 4, and the scores and fits of the per-batch path.

def _gapped_hmm(kind: str):
    from bigem import PoissonHMM

    rng = np.random.default_rng(9)
    n = N_SEQ * LENGTH
    states = np.repeat(rng.integers(0, 2, n // 10), 10)
    if kind == "categorical":
        X = np.where(states[:, None] == 0, rng.integers(0, 2, (n, 1)), rng.integers(1, 4, (n, 1))).astype(np.float64)
        m = CategoricalHMM(2, n_features=4, n_iter=3, random_state=0, dtype="float64", missing_values="fiml")
    elif kind == "poisson":
        X = rng.poisson(np.where(states[:, None] == 0, 1.0, 6.0), (n, 2)).astype(np.float64)
        m = PoissonHMM(2, n_iter=3, random_state=0, dtype="float64", missing_values="fiml")
    else:
        X = np.where(states[:, None] == 0, 0.0, 5.0) + rng.normal(0, 1, (n, D))
        m = GaussianHMM(2, covariance_type="diag", n_iter=3, random_state=0, dtype="float64", missing_values="fiml")
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:LENGTH] = X[:LENGTH] if kind == "categorical" else np.nan_to_num(X[:LENGTH])  # a batch may hold no gap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed, short fit
        return m.fit(X, [LENGTH] * N_SEQ), X


@pytest.mark.parametrize("kind", ["categorical", "poisson", "gaussian"])
def test_gapped_hmms_read_back_as_often_for_40_batches_as_for_4(deferred, host_lengths, kind):
    m, X = _gapped_hmm(kind)
    reads, scores = _scored_in_4_and_40_batches(m, X, host_lengths)
    assert reads[0] == reads[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(numerics, "defers_reads", lambda device: False)
        plain = m.score(X, [LENGTH] * N_SEQ)
    assert scores[0] == pytest.approx(plain, rel=1e-12) and scores[1] == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize("kind", ["categorical", "poisson", "gaussian"])
def test_gapped_hmm_fits_read_back_as_often_for_40_batches_as_for_4(deferred, host_lengths, kind):
    m, X = _gapped_hmm(kind)
    lengths = [LENGTH] * N_SEQ
    reads, histories = [], []
    for per_batch in (10, 1):
        m.set_params(memory_budget=_budget(X, per_batch))
        with counting_device_reads(host_lengths[0]) as counts, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fixed, short fit
            histories.append(list(m.fit(X, lengths).monitor_.history))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setattr(numerics, "defers_reads", lambda device: False)
        warnings.simplefilter("ignore")
        plain = list(m.fit(X, lengths).monitor_.history)
    np.testing.assert_allclose(histories, [plain, plain], rtol=1e-12)
