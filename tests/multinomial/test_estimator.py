"""The estimator's API around the model: model files, selection over K, the torch kernels
the GPU runs (checked here on the CPU against scipy's), and the command line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bigem import MultinomialMixture, load, select
from bigem._core.errors import ComponentReseededWarning, ModelFileError
from bigem._core.sparse import SparseRows
from bigem.models import multinomial as kernels

from .conftest import make_documents

pytestmark = pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning")


def test_a_model_file_gives_back_the_same_model(tmp_path, documents):
    X, _, _, _ = documents
    S = sp.csr_matrix(X)
    est = MultinomialMixture(3, alpha=0.3, random_state=0).fit(S)
    path = tmp_path / "m.bigem"
    est.save(path)
    back = load(path)
    assert isinstance(back, MultinomialMixture) and back.alpha == 0.3
    for name in ("weights_", "probabilities_", "mean_lengths_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(est, name))
    np.testing.assert_array_equal(back.predict_proba(S), est.predict_proba(S))
    assert back.score(S) == est.score(S) and back.bic(S) == est.bic(S) and back.aic(S) == est.aic(S)
    np.testing.assert_array_equal(back.sample(5)[0].toarray(), est.sample(5)[0].toarray())


def test_a_model_file_whose_probabilities_are_not_distributions_is_refused(tmp_path, documents):
    X, _, _, _ = documents
    from bigem._core.errors import ParameterError
    from bigem.io import read_model_file, write_model_file

    est = MultinomialMixture(2, random_state=0).fit(sp.csr_matrix(X))
    est.save(tmp_path / "good.bigem")
    tensors, meta = read_model_file(tmp_path / "good.bigem")
    tensors["probabilities"] = tensors["probabilities"] * 1.5
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="probabilities_.* row 0 sums to 1.5"):
        load(tmp_path / "bad.bigem")
    est.probabilities_ = est.probabilities_ * 1.5  # the attributes are the model: such a model is not saved
    with pytest.raises(ParameterError, match="fitted attributes of this MultinomialMixture .* row 0 sums to 1.5"):
        est.save(tmp_path / "never.bigem")
    assert not (tmp_path / "never.bigem").exists()


def test_bic_counts_the_free_parameters_and_select_finds_k(documents):
    X, _, _, _ = documents
    S = sp.csr_matrix(X)
    est = MultinomialMixture(3, random_state=0).fit(S)
    K, D = 3, X.shape[1]
    assert est._n_parameters() == K * (D - 1) + K - 1
    assert est.bic(S) == pytest.approx(-2 * est.score(S) * X.shape[0] + est._n_parameters() * np.log(X.shape[0]))
    with pytest.warns(ComponentReseededWarning) as caught:  # K=5, two more than the data hold
        result = select(S, n_components=[1, 2, 3, 4, 5], family="multinomial", random_state=0)
    # its spare components lose their support, are re-seeded once, lose it again and are
    # kept at a vanishing weight: the fit converges instead of cycling to max_iter
    assert [r["converged"] for r in result.table] == [True] * 5
    texts = [str(w.message) for w in caught if w.category is ComponentReseededWarning]
    assert sum("lost their support again" in t for t in texts) == 1, texts
    assert len(texts) <= 1 + 5
    assert result.best_["n_components"] == 3
    assert [r["covariance_type"] for r in result.table] == [None] * 5
    assert isinstance(result.best_estimator_, MultinomialMixture)
    with pytest.raises(ValueError, match="covariance types apply to the Gaussian family"):
        select(S, n_components=[2], family="multinomial", covariance_types=["diag"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_torch_kernels_a_gpu_runs_agree_with_scipys(dtype):
    """The GPU path (torch sparse CSR products) checked where it can be: on the CPU."""
    X, _, _, _ = make_documents(seed=9, n=300)
    rows = SparseRows.from_dense(torch.from_numpy(X.astype(np.float64))).to(dtype=dtype)
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_normal((X.shape[1], 4))).to(dtype)
    r = torch.from_numpy(rng.random((300, 4))).to(dtype)
    a = kernels.product(rows, w, torch.empty(300, 4, dtype=dtype), use_scipy=True)
    b = kernels.product(rows, w, torch.empty(300, 4, dtype=dtype), use_scipy=False)
    torch.testing.assert_close(a, b)
    sa, sb = torch.zeros(X.shape[1], 4, dtype=torch.float64), torch.zeros(X.shape[1], 4, dtype=torch.float64)
    kernels.transposed_product(rows, r, sa, use_scipy=True)
    kernels.transposed_product(rows, r, sb, use_scipy=False)
    torch.testing.assert_close(sa, sb)
    torch.testing.assert_close(sa, torch.from_numpy(X.T.astype(np.float64)) @ r.double(), rtol=1e-6, atol=1e-6)


def test_the_torch_path_fits_as_the_scipy_path_does(documents, monkeypatch):
    X, _, _, _ = documents
    kw = dict(random_state=0, dtype="float64", max_iter=5, tol=0.0)
    a = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    monkeypatch.setattr(kernels, "_scipy_kernels", lambda: None)
    b = MultinomialMixture(3, **kw).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(b.probabilities_, a.probabilities_, rtol=1e-10)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)


def test_log_multinomial_coefficients_are_exact_for_large_counts():
    from scipy.special import gammaln

    X = np.array([[0, 1, 2, 5000, 7], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=np.float64)
    rows = SparseRows.from_dense(torch.from_numpy(X))
    expected = gammaln(X.sum(1) + 1) - gammaln(X + 1).sum(1)
    np.testing.assert_allclose(kernels.log_coefficients(rows).numpy(), expected, rtol=1e-13)
    monkey = kernels._log_coefficients_numpy(rows).numpy()
    np.testing.assert_allclose(monkey, expected, rtol=1e-13)


def test_the_command_line_fits_predicts_scores_describes_and_samples(tmp_path, documents, capsys):
    from bigem.cli import main

    X, _, _, _ = documents
    data = str(tmp_path / "docs.npz")
    sp.save_npz(data, sp.csr_matrix(X))
    model = str(tmp_path / "m.bigem")
    assert main(["fit", data, "--family", "multinomial", "-k", "3", "--alpha", "0.5", "-o", model, "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["n_components"] == 3 and fit["family"] == "multinomial" and fit["n_features"] == X.shape[1]
    est = load(model)
    assert isinstance(est, MultinomialMixture) and est.alpha == 0.5
    labels = str(tmp_path / "labels.npy")
    assert main(["predict", model, data, "-o", labels]) == 0
    np.testing.assert_array_equal(np.load(labels), est.predict(data))
    capsys.readouterr()
    assert main(["score", model, data, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["mean_log_likelihood"] == pytest.approx(est.score(data))
    # every criterion the other families report (CAIC and SABIC were missing)
    n, p, ll = X.shape[0], scored["n_parameters"], scored["log_likelihood"]
    assert scored["caic"] == pytest.approx(-2 * ll + p * (np.log(n) + 1))
    assert scored["sabic"] == pytest.approx(-2 * ll + p * np.log((n + 2) / 24))
    assert scored["bic"] == pytest.approx(est.bic(data)) and 0 <= scored["relative_entropy"] <= 1
    assert main(["info", model]) == 0
    out = capsys.readouterr().out  # lower_bound_ under its own name, as the other families print it
    assert "multinomial mixture" in out and f"lower bound {est.lower_bound_:.6f} (the mean log-likelihood entering" in out
    sample = str(tmp_path / "sample.npz")
    assert main(["sample", model, "-n", "10", "-o", sample]) == 0
    assert sp.load_npz(sample).shape == (10, X.shape[1])
    assert main(["select", data, "--family", "multinomial", "-k", "2..4", "-o", str(tmp_path / "best.bigem")]) == 0
    assert "chosen: K=3" in capsys.readouterr().out


def test_the_command_line_reads_token_lists(tmp_path, documents, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from bigem.cli import main

    X, _, _, _ = documents
    S = sp.csr_matrix(X)
    ids = [S.indices[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    cnt = [S.data[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    data = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"ids": ids, "n": cnt}), data)
    model = str(tmp_path / "m.bigem")
    assert main(["fit", data, "--family", "multinomial", "-k", "3", "--columns", "ids,n", "--vocabulary-size",
                 str(X.shape[1] + 5), "-o", model]) == 0
    assert load(model).n_features_in_ == X.shape[1] + 5
    out = str(tmp_path / "labels.csv")
    assert main(["predict", model, data, "--columns", "ids,n", "-o", out]) == 0
    assert "wrote labels of 600 rows" in capsys.readouterr().out


def test_a_fit_that_reseeds_resumes_from_its_checkpoint_to_the_uninterrupted_answer(documents, tmp_path):
    """Five components on three topics: component 0 is re-seeded at iteration 30 and kept
    when it loses its support again. The mark travels in the checkpoint (it failed to
    save: safetensors holds no bool tensor), so a fit resumed between the two keeps the
    component rather than re-seeding it again, as the uninterrupted fit does."""
    from tests.conftest import Interrupted, interrupt_at

    S = sp.csr_matrix(documents[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComponentReseededWarning)
        whole = MultinomialMixture(5, random_state=0).fit(S)
        path = tmp_path / "fit.ckpt"
        est = MultinomialMixture(5, random_state=0)
        with pytest.raises(Interrupted):
            est.fit(S, callback=interrupt_at(32), checkpoint=path, checkpoint_every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(S, checkpoint=path, checkpoint_every=1)
    assert any("components [0] lost their support again" in str(w.message) for w in caught)
    assert est.converged_ and est.n_iter_ == whole.n_iter_
    np.testing.assert_array_equal(est.probabilities_, whole.probabilities_)
    np.testing.assert_array_equal(est.weights_, whole.weights_)
