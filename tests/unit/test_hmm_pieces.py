"""Sequences longer than a batch, cut into linked pieces (bigem.models.hmm_pieces).

Truth: the log-space forward-backward of the whole sequence (an independent
reference), and the same estimator fitted with a budget that holds every sequence
whole. Memory: no batch holds more rows than the budget allows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bigem import CategoricalHMM, GaussianHMM, GMMHMM, MultinomialHMM, PoissonHMM, VariationalGaussianHMM
from bigem._core import jit
from bigem.estimators.hmm import ImpossibleSequenceWarning
from bigem.models import hmm, hmm_pieces
from bigem.sources import open_source
from bigem.sources.sequences import SequenceBatches

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = 150_000  # a memory_budget of a few hundred rows per batch


def _walk(T: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = np.array([[0.95, 0.03, 0.02], [0.04, 0.9, 0.06], [0.05, 0.05, 0.9]])
    states = np.zeros(T, dtype=np.int64)
    u = rng.random(T)
    cdf = np.cumsum(A, 1)
    for t in range(1, T):
        states[t] = int(np.searchsorted(cdf[states[t - 1]], u[t]))
    return states


def _pieces(log_b: torch.Tensor, cuts: list[int], pi: torch.Tensor, A: torch.Tensor):
    """Posteriors of one sequence from its pieces at ``cuts``, linked."""
    first = np.asarray([a == 0 for a in cuts[:-1]])
    log_N = torch.stack([hmm_pieces.transfer(lambda i, j, a=a: log_b[a + i : a + j], b - a, pi, A, a == 0)
                         for a, b in zip(cuts, cuts[1:])])
    links = hmm_pieces.link(log_N, first)
    gammas, start, trans, loglik = [], 0, 0, 0
    for j, (a, b) in enumerate(zip(cuts, cuts[1:])):
        enter = None if first[j] else links.log_enter[j]
        leave = None if j == len(cuts) - 2 else links.log_leave[j]
        post = hmm.forward_backward(log_b[a:b], np.asarray([b - a]), pi, A, log_enter=enter, log_leave=leave)
        logged = hmm.forward_backward_log(log_b[a:b], np.asarray([b - a]), pi, A, log_enter=enter, log_leave=leave)
        torch.testing.assert_close(post.gamma.double(), logged.gamma, atol=1e-9 if log_b.dtype == torch.float64 else 1e-4,
                                   rtol=0)
        gammas.append(post.gamma.double())
        start, trans, loglik = start + post.start, trans + post.trans, loglik + post.loglik
    return torch.cat(gammas), start, trans, loglik


@pytest.mark.parametrize("cuts", [[0, 1700, 3400, 5000], [0, 4999, 5000], [0, 1, 2, 5000], [0, 300, 2600, 2601, 5000]])
def test_linked_pieces_give_the_whole_sequences_posteriors(cuts):
    rng = np.random.default_rng(0)
    K = 4
    A = torch.from_numpy(rng.dirichlet(np.full(K, 0.5), size=K))
    pi = torch.from_numpy(rng.dirichlet(np.ones(K)))
    log_b = torch.from_numpy(rng.normal(size=(5000, K)) * 3)
    ref = hmm.forward_backward_log(log_b, np.asarray([5000]), pi, A)
    gamma, start, trans, loglik = _pieces(log_b, cuts, pi, A)
    torch.testing.assert_close(gamma, ref.gamma, atol=1e-9, rtol=0)
    torch.testing.assert_close(start, ref.start, atol=1e-10, rtol=0)
    torch.testing.assert_close(trans, ref.trans, atol=1e-9, rtol=1e-10)  # counts sum to 4999
    assert float(loglik) == pytest.approx(float(ref.loglik), abs=1e-8)


def test_linked_pieces_in_float32_agree_to_float32s_rounding():
    rng = np.random.default_rng(2)
    K = 3
    A = torch.from_numpy(rng.dirichlet(np.ones(K), size=K))
    pi = torch.from_numpy(rng.dirichlet(np.ones(K)))
    log_b = torch.from_numpy(rng.normal(size=(3000, K)) * 2)
    ref = hmm.forward_backward_log(log_b, np.asarray([3000]), pi, A)
    gamma, _, trans, loglik = _pieces(log_b.float(), [0, 1000, 2000, 3000], pi, A)
    assert float((gamma - ref.gamma).abs().max()) < 1e-5
    assert float(loglik) == pytest.approx(float(ref.loglik), rel=1e-5)


def test_a_left_right_chain_links_through_its_zeros():
    """Zero transitions (a left-right model) give -inf in the log transfers; the links
    go through them, and a transfer computed in log space agrees with the scaled one."""
    K = 3
    A = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]], dtype=torch.float64)
    pi = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    rng = np.random.default_rng(3)
    states = np.minimum(np.arange(600) // 200, 2)
    log_b = torch.from_numpy(-0.5 * (rng.normal(size=600)[:, None] + states[:, None] * 3 - np.arange(K) * 3) ** 2)
    ref = hmm.forward_backward_log(log_b, np.asarray([600]), pi, A)
    gamma, start, trans, loglik = _pieces(log_b, [0, 150, 390, 600], pi, A)
    torch.testing.assert_close(gamma, ref.gamma, atol=1e-9, rtol=0)
    torch.testing.assert_close(trans, ref.trans, atol=1e-8, rtol=0)
    assert float(loglik) == pytest.approx(float(ref.loglik), abs=1e-8)
    for first in (True, False):
        scaled = torch.exp(hmm_pieces._full(log_b[100:400], pi, A, first))
        logged = torch.exp(hmm_pieces._full_log(log_b[100:400], pi, A, first))
        torch.testing.assert_close(scaled / scaled.sum(), logged / logged.sum(), atol=1e-12, rtol=1e-9)


def test_a_long_sequences_batches_stay_within_the_budget():
    x = torch.zeros(10_000, 2, dtype=torch.float64)
    lengths = np.asarray([300, 9000, 200, 500])
    source = SequenceBatches(open_source(x.numpy(), dtype=torch.float64, device=torch.device("cpu"), memory_budget=1 << 62), lengths, 1000)
    chunks = list(source.chunks())
    assert max(c.n_rows for c in chunks) <= 1000
    pieces = [c for c in chunks if c.piece >= 0]
    assert [c.piece for c in pieces] == list(range(9)) and all(c.n_pieces == 9 for c in chunks)
    assert [c.first for c in pieces] == [True] + [False] * 8 and [c.last for c in pieces] == [False] * 8 + [True]
    assert sum(c.n_rows for c in pieces) == 9000 and all(c.seq_start == 1 for c in pieces)
    assert sum(c.n_rows for c in chunks) == 10_000
    np.testing.assert_array_equal(source.sequence_of_outputs(), [0] + [1] * 9 + [2, 3])
    whole = SequenceBatches(open_source(x.numpy(), dtype=torch.float64, device=torch.device("cpu"), memory_budget=1 << 62), lengths, 1000,
                            cut=False)
    assert whole.pieces is None and max(c.n_rows for c in whole.chunks()) == 9000
    # a process's part keeps the data set's piece numbers
    parts = source.split(2)
    got = [c.piece for p in parts for c in p.chunks() if c.piece >= 0]
    assert got == list(range(9))


def _series(T: int = 8000):
    rng = np.random.default_rng(4)
    states = _walk(T)
    gauss = rng.normal(size=(T, 2)) + np.array([[0, 0], [3, 0], [0, 3]])[states]
    symbols = np.array([rng.choice(4, p=p) for p in np.array([[.7, .1, .1, .1], [.1, .7, .1, .1],
                                                                [.1, .1, .1, .7]])[states]])[:, None]
    counts = rng.poisson(np.array([[1, 5], [5, 1], [9, 9]])[states])
    trials = np.stack([rng.multinomial(10, p) for p in np.array([[.7, .2, .1], [.1, .7, .2], [.2, .1, .7]])[states]])
    return gauss, symbols, counts, trials


@pytest.mark.parametrize("family", ["full", "diag", "categorical", "poisson", "gmm", "multinomial", "squarem",
                                    "tensor-path"])
def test_a_fit_on_pieces_equals_the_fit_on_whole_sequences(family):
    if family == "tensor-path":  # the path of GPUs and of CPUs without numba
        with jit.off():
            test_a_fit_on_pieces_equals_the_fit_on_whole_sequences("diag")
        return
    gauss, symbols, counts, trials = _series()
    lengths = [1500, 6000, 500]
    cls, X, kw = {
        "full": (GaussianHMM, gauss, {"covariance_type": "full"}),
        "diag": (GaussianHMM, gauss, {"covariance_type": "diag"}),
        "categorical": (CategoricalHMM, symbols, {}),
        "poisson": (PoissonHMM, counts, {}),
        "gmm": (GMMHMM, gauss, {"n_mix": 2}),
        "multinomial": (MultinomialHMM, trials, {"n_trials": 10}),
        "squarem": (GaussianHMM, gauss, {"accelerate": "squarem"}),
    }[family]
    settings = dict(n_components=3, n_iter=4, random_state=0, tol=1e-12, dtype="float64", **kw)
    whole = cls(**settings).fit(X, lengths)
    cut = cls(memory_budget=SMALL, **settings)
    assert cut._open(X, lengths, cut._settings(), fitting=True).pieces is not None  # the budget does cut
    cut.fit(X, lengths)
    np.testing.assert_allclose(cut.transmat_, whole.transmat_, atol=1e-8)
    np.testing.assert_allclose(cut.startprob_, whole.startprob_, atol=1e-8)
    np.testing.assert_allclose(cut.monitor_.history[-1], whole.monitor_.history[-1], rtol=1e-11)
    assert cut.score(X, lengths) == pytest.approx(whole.score(X, lengths), rel=1e-11)
    ll_cut, post_cut = cut.score_samples(X, lengths)
    ll_whole, post_whole = whole.score_samples(X, lengths)
    assert ll_cut == pytest.approx(ll_whole, rel=1e-11)
    np.testing.assert_allclose(post_cut, post_whole, atol=1e-8)
    # Viterbi keeps sequences whole: its paths on parameters 1e-15 apart (ties flip)
    (lp_cut, path_cut), (lp_whole, path_whole) = cut.decode(X, lengths), whole.decode(X, lengths)
    assert lp_cut == pytest.approx(lp_whole, rel=1e-11) and (path_cut == path_whole).mean() > 0.99


def test_pieces_from_a_file_equal_pieces_from_an_array(tmp_path):
    gauss = _series(6000)[0]
    np.save(tmp_path / "x.npy", gauss)
    settings = dict(n_components=3, n_iter=4, random_state=0, tol=1e-12, dtype="float64", memory_budget=SMALL)
    a = GaussianHMM(**settings).fit(gauss)
    b = GaussianHMM(**settings).fit(str(tmp_path / "x.npy"))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.score(gauss) == b.score(str(tmp_path / "x.npy"))


def test_an_impossible_cut_sequence_is_counted_once():
    """A symbol a state never emits, in the middle of a long sequence: the sequence is
    impossible under the fitted parameters, once, whole or cut."""
    _, symbols, _, _ = _series(8000)
    model = CategoricalHMM(3, n_iter=3, random_state=0, dtype="float64").fit(symbols)
    model.emissionprob_ = np.array([[.4, .3, .3, 0.0], [.3, .4, .3, 0.0], [.3, .3, .4, 0.0]])  # never symbol 3
    test = np.concatenate([np.zeros((3000, 1), np.int64), [[3]], np.ones((3000, 1), np.int64), np.zeros((500, 1), np.int64)])
    lengths = [6001, 500]
    for budget in (None, SMALL):
        model.memory_budget = budget
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            score = model.score(test, lengths)
            ll, post = model.score_samples(test, lengths)
        assert score == -np.inf and ll == -np.inf
        found = [w for w in caught if issubclass(w.category, ImpossibleSequenceWarning)]
        assert found and all("1 sequence(s)" in str(w.message) and "sequence 0" in str(w.message) for w in found)
        assert np.isnan(post[:6001]).all() and np.isfinite(post[6001:]).all()


@pytest.mark.parametrize("family", ["gaussian-full", "categorical"])
def test_a_variational_fit_on_pieces_equals_the_fit_on_whole_sequences(family):
    """The variational HMMs' fits held a sequence longer than a batch whole; their E-step
    is the HMM's pass on sub-normalised parameters, which links the same way (the
    links need non-negative matrices, not stochastic rows)."""
    from bigem import VariationalCategoricalHMM

    gauss, symbols, _, _ = _series(6000)
    cls, X, kw = {"gaussian-full": (VariationalGaussianHMM, gauss, {"covariance_type": "full"}),
                  "categorical": (VariationalCategoricalHMM, symbols, {})}[family]
    lengths = [1500, 4000, 500]
    settings = dict(n_components=3, n_iter=4, random_state=0, tol=1e-12, dtype="float64", **kw)
    whole = cls(**settings).fit(X, lengths)
    small = cls(memory_budget=SMALL, **settings)
    assert small._open(X, lengths, small._settings(), fitting=True).pieces is not None  # the budget does cut
    small.fit(X, lengths)
    np.testing.assert_allclose(small.monitor_.history, whole.monitor_.history, rtol=1e-11)  # the bound, each pass
    np.testing.assert_allclose(small.transmat_posterior_, whole.transmat_posterior_, rtol=1e-10)
    np.testing.assert_allclose(small.startprob_posterior_, whole.startprob_posterior_, rtol=1e-10, atol=1e-12)
    for name in ("means_posterior_", "emissionprob_posterior_"):
        if hasattr(whole, name):
            np.testing.assert_allclose(getattr(small, name), getattr(whole, name), rtol=1e-10)
    assert small.score(X, lengths) == pytest.approx(whole.score(X, lengths), rel=1e-11)


def _left_right() -> tuple[GaussianHMM, np.ndarray]:
    """A left-right model (zero transitions back) and rows that walk through its states:
    an entering state that explains a piece's rows thousands of nats worse than another
    must keep its row of the transfer."""
    model = GaussianHMM(3, n_iter=0, init_params="", params="", dtype="float64")
    model.startprob_ = np.array([1.0, 0.0, 0.0])
    model.transmat_ = np.array([[0.999, 0.001, 0.0], [0.0, 0.999, 0.001], [0.0, 0.0, 1.0]])
    model.means_ = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    model.covars_ = np.ones((3, 2))
    model.n_features = 2
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(3000, 2)) + m for m in ([0, 0], [3, 0], [0, 3])])
    return model, X


@pytest.mark.parametrize("compiled", [True, False])
def test_viterbi_and_posteriors_on_pieces_equal_the_whole_sequences(compiled):
    model, X = _left_right()
    gauss = _series(9000)[0]
    fitted = GaussianHMM(3, n_iter=4, random_state=0, dtype="float64").fit(gauss)
    with (jit.off() if not compiled else warnings.catch_warnings()):
        for est, data, lengths in ((model, X, None), (fitted, gauss, [1000, 7500, 500])):
            est.memory_budget = None
            lp_whole, path_whole = est.decode(data, lengths)
            ll_whole, post_whole = est.score_samples(data, lengths)
            est.memory_budget = SMALL
            assert est._open(data, lengths, est._inference_settings()).pieces is not None
            lp_cut, path_cut = est.decode(data, lengths)
            ll_cut, post_cut = est.score_samples(data, lengths)
            np.testing.assert_array_equal(path_cut, path_whole)
            assert lp_cut == pytest.approx(lp_whole, rel=1e-12)
            assert ll_cut == pytest.approx(ll_whole, rel=1e-12)
            np.testing.assert_allclose(post_cut, post_whole, atol=1e-9)


@pytest.mark.parametrize("budget", [None, SMALL])
def test_written_predictions_equal_predict_and_predict_proba(budget, tmp_path):
    import pandas as pd

    gauss = _series(6000)[0]
    model = GaussianHMM(3, n_iter=4, random_state=0, dtype="float64").fit(gauss)
    model.memory_budget = budget
    lengths = [1000, 4500, 500]
    table = pd.DataFrame({"a": gauss[:, 0], "b": gauss[:, 1], "id": np.arange(6000) * 7,
                          "seq": np.repeat([0, 1, 2], lengths)})
    table.to_parquet(tmp_path / "x.parquet", row_group_size=777)
    out = model.write_predictions(str(tmp_path / "x.parquet"), tmp_path / "o.parquet", outputs=("state", "proba"),
                                  id_column="id", sequence_column="seq")
    got = pd.read_parquet(out)
    assert got.columns.tolist() == ["id", "state", "proba_0", "proba_1", "proba_2"]
    np.testing.assert_array_equal(got["id"], table["id"])
    np.testing.assert_array_equal(got["state"], model.predict(gauss, lengths))
    np.testing.assert_allclose(got[["proba_0", "proba_1", "proba_2"]], model.predict_proba(gauss, lengths), atol=1e-12)
    states = np.load(model.write_predictions(gauss, tmp_path / "s.npy", lengths))
    np.testing.assert_array_equal(states, model.predict(gauss, lengths))


def test_written_predictions_refuse_what_they_cannot_write_and_leave_nothing(tmp_path):
    gauss = _series(3000)[0]
    model = GaussianHMM(3, n_iter=2, random_state=0, dtype="float64").fit(gauss)
    with pytest.raises(Exception, match="outputs must be one or more of"):
        model.write_predictions(gauss, tmp_path / "a.npy", outputs=("label",))
    with pytest.raises(Exception, match="a .npy file holds one array"):
        model.write_predictions(gauss, tmp_path / "b.npy", outputs=("state", "proba"))
    assert list(tmp_path.iterdir()) == []


def test_written_predictions_of_an_impossible_sequence_are_nan_and_warned(tmp_path):
    _, symbols, _, _ = _series(4000)
    model = CategoricalHMM(3, n_iter=2, random_state=0, dtype="float64").fit(symbols)
    model.emissionprob_ = np.array([[.4, .3, .3, 0.0], [.3, .4, .3, 0.0], [.3, .3, .4, 0.0]])
    test = np.concatenate([np.zeros((2000, 1), np.int64), [[3]], np.ones((600, 1), np.int64)])
    for budget in (None, SMALL):
        model.memory_budget = budget
        with pytest.warns(ImpossibleSequenceWarning, match="1 sequence"):
            out = model.write_predictions(test, tmp_path / f"p{budget}.npy", [2001, 600], outputs="proba")
        proba = np.load(out)
        assert np.isnan(proba[:2001]).all() and np.isfinite(proba[2001:]).all()


def test_pieces_on_an_accelerators_path_equal_the_whole_fit(monkeypatch):
    """The path a GPU takes (tensor kernels, checks deferred to the device), on the CPU."""
    from bigem._core import numerics

    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    gauss = _series(6000)[0]
    lengths = [1000, 4500, 500]
    settings = dict(n_components=3, n_iter=4, random_state=0, tol=1e-12, dtype="float64")
    with jit.off():
        whole = GaussianHMM(**settings).fit(gauss, lengths)
        cut = GaussianHMM(memory_budget=SMALL, **settings).fit(gauss, lengths)
        np.testing.assert_allclose(cut.transmat_, whole.transmat_, atol=1e-10)
        np.testing.assert_allclose(cut.monitor_.history, whole.monitor_.history, rtol=1e-11)
        assert cut.score(gauss, lengths) == pytest.approx(whole.score(gauss, lengths), rel=1e-11)
        np.testing.assert_array_equal(cut.predict(gauss, lengths), whole.predict(gauss, lengths))


def test_a_chain_forgets_its_start_only_when_some_power_of_it_has_no_zero():
    assert hmm_pieces.forgets(torch.full((3, 3), 1 / 3, dtype=torch.float64))
    assert hmm_pieces.forgets(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], dtype=torch.float64))
    left_right = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert not hmm_pieces.forgets(left_right)  # no way back
    assert not hmm_pieces.forgets(torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))  # periodic
    assert not hmm_pieces.forgets(torch.block_diag(torch.full((2, 2), 0.5), torch.ones(1, 1)).double())  # reducible


@pytest.mark.parametrize("compiled", [True, False])
def test_an_outlier_at_a_pieces_last_row_under_a_chain_that_cannot_come_back(compiled):
    """A left-right chain A -> B (B absorbing), rows of A's N(0, 1) but one outlier that B
    (variance 2) explains ~900 nats better, on the last row of a piece: A's filtered
    probability underflows there, yet the rows after it keep the chain in A. Truth: the
    whole sequence in log space. The pieces once linked through the underflow and put
    the rest in B, and scoring by the forward pass alone did the same on whole
    sequences; both were finite and silent."""
    model = GaussianHMM(2, n_iter=0, init_params="", params="", dtype="float64", covariance_type="diag")
    model.startprob_, model.transmat_ = np.array([1.0, 0.0]), np.array([[1 - 1e-3, 1e-3], [0.0, 1.0]])
    model.means_, model.covars_, model.n_features = np.zeros((2, 1)), np.array([[1.0], [2.0]]), 1
    x = np.random.default_rng(0).normal(size=(20000, 1))
    model.memory_budget = SMALL
    x[model._open(x, None, model._settings()).batches[0][3] - 1] = 60.0
    log_b = torch.from_numpy(-0.5 * x ** 2 / np.array([1.0, 2.0]) - 0.5 * np.log(2 * np.pi * np.array([1.0, 2.0])))
    truth = hmm.forward_backward_log(log_b, np.asarray([20000]), torch.tensor([1.0, 0.0], dtype=torch.float64),
                                     torch.from_numpy(model.transmat_))
    with (jit.off() if not compiled else warnings.catch_warnings()):
        for budget in (None, SMALL):
            model.memory_budget = budget
            ll, post = model.score_samples(x)
            assert model.score(x) == pytest.approx(float(truth.loglik), rel=1e-12)
            assert ll == pytest.approx(float(truth.loglik), rel=1e-12)
            np.testing.assert_allclose(post, truth.gamma.numpy(), atol=1e-9)


def test_a_multinomial_hmm_writes_its_predictions_with_ids(tmp_path):
    import pandas as pd

    trials = _series(2000)[3]
    model = MultinomialHMM(3, n_trials=10, n_iter=2, random_state=0, dtype="float64").fit(trials)
    table = pd.DataFrame(trials, columns=["a", "b", "c"]).assign(rid=np.arange(2000) + 100)
    table.to_parquet(tmp_path / "t.parquet")
    for budget in (None, SMALL):
        model.memory_budget = budget
        out = pd.read_parquet(model.write_predictions(str(tmp_path / "t.parquet"), tmp_path / f"o{budget}.parquet",
                                                      columns=["a", "b", "c"], id_column="rid"))
        np.testing.assert_array_equal(out["rid"], table["rid"])
        np.testing.assert_array_equal(out["state"], model.predict(trials))
