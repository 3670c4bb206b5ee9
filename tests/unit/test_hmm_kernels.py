"""The compiled CPU forward-backward pass (models/hmm_kernels.py) against the tensor path
(jit.off()), which the hmmlearn parity tests check, and against the log-space reference."""

import numpy as np
import pytest
import torch

from bigem._core import jit
from bigem.models import hmm, hmm_kernels
from bigem.models.categorical import CategoricalComponent, CategoricalParams

pytest.importorskip("numba")


def _model(rng, K):
    A = rng.random((K, K)) + 0.05
    A /= A.sum(1, keepdims=True)
    pi = rng.random(K) + 0.05
    return torch.tensor(pi / pi.sum()), torch.tensor(A)


def _both(log_b, lengths, pi, A, need_trans=True):
    compiled = hmm.forward_backward(log_b, lengths, pi, A, need_trans=need_trans)
    with jit.off():
        tensor = hmm.forward_backward(log_b, lengths, pi, A, need_trans=need_trans)
    return compiled, tensor


def _close(got, want, rtol):
    for name in ("gamma", "start", "trans", "loglik"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(torch.isfinite(a), torch.isfinite(b)), name
        fin = torch.isfinite(b)
        a, b = a[fin].double(), b[fin].double()
        scale = b.abs().max().clamp(min=1e-300) if name != "loglik" else b.abs().clamp(min=1.0)
        assert float(((a - b).abs() / scale).max(), ) <= rtol if a.numel() else True, name


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    """The kernels run even where BIGEM_JIT=0 turns them off for the rest of the suite."""
    monkeypatch.setitem(jit._STATE, "off", False)


@pytest.fixture
def small_parts(monkeypatch):
    """Parts and segments small enough that tests cut and spread their sequences."""
    monkeypatch.setattr(hmm_kernels, "_PART_ROWS", 64)
    monkeypatch.setattr(hmm_kernels, "_SEGMENT_ROWS", 100)
    monkeypatch.setattr(hmm_kernels, "_CROSS_ROWS", 37)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_the_tensor_path(small_parts, dtype):
    rng = np.random.default_rng(0)
    K = 5
    pi, A = _model(rng, K)
    # unequal lengths, a sequence of length 1, and one cut into segments (> 2 x 100 rows)
    lengths = np.array([1, 7, 130, 2, 1, 950, 40, 64, 1, 300])
    log_b = torch.tensor(rng.normal(size=(lengths.sum(), K)) * 4, dtype=dtype)
    got, want = _both(log_b, lengths, pi, A)
    _close(got, want, 1e-10 if dtype == torch.float64 else 2e-4)
    assert torch.allclose(got.gamma.double().sum(1), torch.ones(len(log_b), dtype=torch.float64), atol=1e-5)
    got_nt, _ = _both(log_b, lengths, pi, A, need_trans=False)
    assert torch.equal(got_nt.trans, torch.zeros(K, K, dtype=torch.float64))
    assert torch.equal(got_nt.gamma, got.gamma)


def test_long_sequence_equals_one_sequential_pass(small_parts, monkeypatch):
    """The guessed segments and their fix-up give the sequential recursion's posteriors,
    to the bit; only the sums' order differs."""
    rng = np.random.default_rng(1)
    K = 4
    pi, A = _model(rng, K)
    lengths = np.array([2000])
    log_b = torch.tensor(rng.normal(size=(2000, K)) * 3)
    cut = hmm.forward_backward(log_b, lengths, pi, A)
    monkeypatch.setattr(hmm_kernels, "_SEGMENT_ROWS", 10**6)
    whole = hmm.forward_backward(log_b, lengths, pi, A)
    assert torch.equal(cut.gamma, whole.gamma)
    torch.testing.assert_close(cut.trans, whole.trans, rtol=1e-13, atol=0)
    torch.testing.assert_close(cut.loglik, whole.loglik, rtol=1e-13, atol=0)
    assert torch.equal(cut.start, whole.start)
    ref = hmm.forward_backward_log(log_b, lengths, pi, A)
    torch.testing.assert_close(cut.gamma, ref.gamma, rtol=0, atol=1e-10)
    torch.testing.assert_close(cut.loglik, ref.loglik, rtol=1e-12, atol=0)


def test_same_bits_on_one_and_two_threads(small_parts):
    rng = np.random.default_rng(2)
    K = 3
    pi, A = _model(rng, K)
    lengths = np.array([500, 3, 90, 1, 700, 33] * 3)
    log_b = torch.tensor(rng.normal(size=(lengths.sum(), K)) * 2)
    before = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(hmm.forward_backward(log_b, lengths, pi, A))
    finally:
        torch.set_num_threads(before)
    for name in ("gamma", "start", "trans", "loglik"):
        assert torch.equal(getattr(results[0], name), getattr(results[1], name)), name


def test_impossible_and_underflowing_sequences(small_parts):
    """An impossible sequence (a row no state can emit) gets -inf and zero posteriors;
    one whose scaled recursion underflows (the only reachable state is 800 nats below
    the best) is redone in log space: both as the tensor path does."""
    K = 2
    pi = torch.tensor([1.0, 0.0], dtype=torch.float64)
    A = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # alternate
    rng = np.random.default_rng(3)
    ok = rng.normal(size=(12, K))
    impossible = rng.normal(size=(9, K))
    impossible[4] = -np.inf
    under = np.zeros((250, K))  # cut into segments too (> 200 rows)
    under[np.arange(250), np.arange(250) % 2] = -800.0  # the reachable state: 800 nats below the other
    lengths = np.array([12, 9, 250])
    log_b = torch.tensor(np.concatenate([ok, impossible, under]))
    got, want = _both(log_b, lengths, pi, A)
    assert got.loglik[1] == -np.inf and bool((got.gamma[12:21] == 0).all())
    assert np.isfinite(float(got.loglik[2]))
    torch.testing.assert_close(got.loglik[2], torch.tensor(-800.0 * 250, dtype=torch.float64), rtol=1e-12, atol=0)
    _close(got, want, 1e-10)


def test_hmm_fits_equal_with_and_without_kernels():
    from bigem import CategoricalHMM, GaussianHMM

    rng = np.random.default_rng(4)
    lengths = [40, 1, 75, 30]
    x = rng.normal(size=(sum(lengths), 2))
    codes = rng.integers(0, 5, size=(sum(lengths), 1))
    for make, data in ((lambda: GaussianHMM(3, n_iter=5, random_state=0, tol=-np.inf, dtype="float64"), x),
                       (lambda: CategoricalHMM(3, n_iter=5, random_state=0, tol=-np.inf, n_features=6, dtype="float64"), codes)):
        on = make().fit(data, lengths)
        with jit.off():
            off = make().fit(data, lengths)
        np.testing.assert_allclose(on.transmat_, off.transmat_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(on.startprob_, off.startprob_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(on.score(data, lengths), off.score(data, lengths), rtol=1e-11)
        np.testing.assert_allclose(on.predict_proba(data, lengths), off.predict_proba(data, lengths), atol=1e-10)


def test_categorical_lookup_and_counts():
    """The one-column table lookup and counts equal the component's tensor kernels: a
    negative code or NaN carries no information; a code past the symbols raises."""
    from bigem.models import components

    comp = CategoricalComponent(4, dtype=torch.float64, gaps=True)
    rng = np.random.default_rng(5)
    probs = torch.tensor(rng.dirichlet(np.ones(4), 3))
    probs[1, 2] = 0.0  # a symbol state 1 never emits
    p = CategoricalParams(probs / probs.sum(1, keepdim=True))
    x = torch.tensor(rng.integers(0, 4, size=(300, 1)), dtype=torch.float64)
    x[5], x[17] = -1.0, float("nan")
    eb, shift = comp.scaled_log_prob(p, x)
    want_eb, want_shift = hmm_kernels.scale(components.log_prob(comp, p, x))
    torch.testing.assert_close(eb, want_eb, rtol=1e-15, atol=0)
    torch.testing.assert_close(shift, want_shift, rtol=1e-15, atol=0)
    resp = torch.softmax(torch.tensor(rng.normal(size=(300, 3))), 1)
    got = comp.compiled_statistics(p, x, resp)
    want = components.statistics(comp, p, x, resp)
    torch.testing.assert_close(got.counts, want.counts, rtol=1e-13, atol=0)
    torch.testing.assert_close(got.n_k, want.n_k, rtol=1e-13, atol=0)
    x[42] = 4.0
    with pytest.raises(ValueError, match="row 42 holds a symbol outside 0..3"):
        comp.scaled_log_prob(p, x)
    with pytest.raises(ValueError, match="row 42"):
        comp.compiled_statistics(p, x, resp)
    with jit.off():
        assert comp.scaled_log_prob(p, x) is None and comp.compiled_statistics(p, x, resp) is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_viterbi_equals_the_tensor_path(small_parts, dtype):
    """The same best paths and log-probabilities, unequal lengths, a length-1 sequence, a
    long one, an impossible one (-inf); ties break as hmmlearn's backtracking breaks them
    (the last state the lowest, a predecessor the highest)."""
    rng = np.random.default_rng(6)
    K = 4
    pi, A = _model(rng, K)
    A[2, 1] = 0.0  # a forbidden transition
    A = A / A.sum(1, keepdim=True)
    lengths = np.array([1, 50, 3, 700, 12, 2])
    log_b = torch.tensor(rng.normal(size=(lengths.sum(), K)) * 3, dtype=dtype)
    log_b[60, :] = -np.inf  # sequence 3 (rows 54..753) is impossible
    got_lp, got_path = hmm.viterbi(log_b, lengths, pi, A)
    with jit.off():
        want_lp, want_path = hmm.viterbi(log_b, lengths, pi, A)
    assert got_lp[3] == -np.inf
    fin = torch.isfinite(want_lp)
    torch.testing.assert_close(got_lp[fin], want_lp[fin], rtol=1e-12, atol=0)
    rows = torch.repeat_interleave(fin, torch.as_tensor(lengths))
    assert torch.equal(got_path[rows], want_path[rows])
    # brute force on the short sequences: every path of sequence 2 (3 steps)
    lb, lp = log_b[51:54].double(), torch.log(A)
    best = max(((float(torch.log(pi[a]) + lb[0, a] + lp[a, b] + lb[1, b] + lp[b, c] + lb[2, c]), (a, b, c))
                for a in range(K) for b in range(K) for c in range(K)), key=lambda v: v[0])
    assert abs(best[0] - float(got_lp[2])) < 1e-9 and tuple(got_path[51:54].tolist()) == best[1]
    flat = torch.full((3,), 1.0 / 3, dtype=torch.float64)
    lp, path = hmm.viterbi(torch.zeros(6, 3, dtype=dtype), np.array([6]), flat, flat.expand(3, 3).clone())
    assert path.tolist() == [2] * 5 + [0] and abs(float(lp[0]) - 6 * np.log(1 / 3)) < 1e-12


def test_scoring_by_the_forward_pass_alone(small_parts):
    """score_totals on the CPU runs the forward pass alone: the same totals as the tensor
    path's forward-backward, with a sequence that underflows the scaled pass (state 0
    never stays, and rows at state 0's mean force state 1, 5e5 nats below; cut into
    segments) redone in log space, and an impossible one (a symbol no state emits)."""
    from bigem._core.types import SequenceChunk
    from bigem.models.gaussian import GaussianComponent

    rng = np.random.default_rng(7)
    K = 2
    lengths = np.array([12, 9, 250, 1, 400])
    x = 1000.0 * (np.arange(lengths.sum()) % 2) + rng.normal(size=lengths.sum())
    x[21:271] = 0.0  # sequence 2: underflows
    x = torch.tensor(x[:, None])
    model = hmm.HMMModel(GaussianComponent("diag", 0.0, torch.float64), K, torch.float64)
    gauss = model.emission.make_params(torch.tensor([[0.0], [1000.0]], dtype=torch.float64),
                                       torch.ones(K, 1, dtype=torch.float64))
    A = torch.tensor([[0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    params = hmm.HMMParams(torch.tensor([0.5, 0.5], dtype=torch.float64), A, gauss)
    loglik, bad = hmm_kernels.log_likelihood(model._scaled_emission(params, x), lengths, params.startprob, A)
    assert bad.nonzero().reshape(-1).tolist() == [2]  # left to the log-space redo
    codes = torch.tensor(rng.integers(0, 2, size=(lengths.sum(), 1)), dtype=torch.float64)
    codes[12 + 4] = 2.0  # sequence 1: impossible
    cat = hmm.HMMModel(CategoricalComponent(3, dtype=torch.float64), K, torch.float64)
    cat_params = hmm.HMMParams(params.startprob, A, CategoricalParams(torch.tensor([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0]],
                                                                                   dtype=torch.float64)))
    for m, p, rows, expect in ((model, params, x, (0, -1)), (cat, cat_params, codes, (1, 4))):
        chunk = SequenceChunk(rows, torch.as_tensor(lengths), 0, 3)
        got = m.score_totals(p, chunk).settled()
        with jit.off():
            want = m.score_totals(p, chunk).settled()
        assert (got.impossible, got.first_impossible) == (want.impossible, want.first_impossible) == expect
        np.testing.assert_allclose(got.loglik, want.loglik, rtol=1e-12)
    assert np.isfinite(want.loglik)


def test_rare_transitions_at_every_step_stay_in_range():
    """A path that must take a transition of probability 2^-55 at every step (the other
    states' emissions 1e4 nats below: their scaled emissions are 0) stays in the scaled
    range (no log-space redo) and gives the closed form: the forced states, and
    log(1/3) + (T - 1) log m (the log-space pass rounds to ~1e-8 here)."""
    K, T, m = 3, 5003, 2.0**-55
    A = torch.full((K, K), m, dtype=torch.float64)
    A.fill_diagonal_(0.0)
    A += torch.diag(1.0 - A.sum(1))
    pi = torch.full((K,), 1.0 / K, dtype=torch.float64)
    log_b = torch.full((T, K), -1e4, dtype=torch.float64)
    log_b[torch.arange(T), torch.arange(T) % K] = 0.0
    lengths = np.array([T])
    *_, bad = hmm_kernels.forward_backward(hmm_kernels.scale(log_b), lengths, pi, A)
    assert not bool(bad.any())
    got = hmm.forward_backward(log_b, lengths, pi, A)
    forced = torch.nn.functional.one_hot(torch.arange(T) % K, K).double()
    torch.testing.assert_close(got.gamma, forced, rtol=0, atol=1e-13)
    torch.testing.assert_close(got.loglik, torch.tensor([np.log(1 / 3) + (T - 1) * np.log(m)], dtype=torch.float64),
                               rtol=1e-13, atol=0)
    want = torch.zeros(K, K, dtype=torch.float64)
    for j in range(K):
        want[j, (j + 1) % K] = len(range(j, T - 1, K))
    torch.testing.assert_close(got.trans, want, rtol=1e-12, atol=1e-9)


def test_a_sequence_out_of_the_scaled_range_is_redone_without_spoiling_the_others_counts():
    """A row only an unreachable state explains (the reachable one at e^-1e5: 0 once
    scaled) drives the scaled normaliser to 0 and alpha to NaN: its segment's counts were
    left out, but alpha's NaN times w's 0 still reached the transition sums, which came
    back NaN (a VariationalCategoricalHMM start failed so, where hmmlearn's fits). The
    counts now equal the log-space reference, the good sequences' included."""
    pi = torch.tensor([0.0, 1.0], dtype=torch.float64)
    A = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    good = torch.log(torch.tensor([[0.3, 0.6], [0.5, 0.5], [0.2, 0.4]], dtype=torch.float64))
    bad = torch.tensor([[0.0, -0.1], [0.0, -1e5], [-0.5, -0.2]], dtype=torch.float64)
    log_b = torch.cat([good, bad, good])
    lengths = np.array([3, 3, 3])
    got = hmm.forward_backward(log_b, lengths, pi, A)
    want = hmm.forward_backward_log(log_b, lengths, pi, A)
    assert torch.isfinite(want.loglik).all() and torch.isfinite(want.trans).all()
    _close(got, want, 1e-12)
