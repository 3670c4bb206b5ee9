"""bigem's mixtures against pomegranate 1.x's ``GeneralMixtureModel`` of the matching
distributions: from the same start (weights and each component's parameters), the same
EM iterations give the same parameters, posteriors and log-densities, to 1e-12 in
float64. (pomegranate's DenseHMM learns end probabilities, a model hmmlearn's and
bigem's HMMs do not have, so it is not compared.)"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import bigem
import bigem.errors

pomegranate = pytest.importorskip("pomegranate")
torch = pytest.importorskip("torch")

W0 = np.array([0.4, 0.6])
ITERATIONS = 6


pytestmark = pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")  # a fixed number of iterations


@pytest.fixture()
def float64_default():
    """pomegranate builds some of its buffers in torch's default dtype: float64 here, so
    that both sides compute in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def tensor(values, dtype=torch.float64):
    return torch.tensor(np.asarray(values), dtype=dtype)


def theirs(distributions, X, dtype=torch.float64):
    from pomegranate.gmm import GeneralMixtureModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GeneralMixtureModel(distributions, priors=tensor(W0), max_iter=ITERATIONS, tol=0.0,
                                   verbose=False).fit(tensor(X, dtype))


def same_answers(ref, ours, X, dtype=torch.float64) -> None:
    np.testing.assert_allclose(ours.weights_, ref.priors.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(tensor(X, dtype)).numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.log_probability(tensor(X, dtype)).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(tensor(X, dtype)).numpy())


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_gaussian_mixture_is_pomegranates_normal_mixture(float64_default, covariance_type):
    from pomegranate.distributions import Normal

    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 1000)
    X = rng.normal(np.array([[0.0, 0.0, 1.0], [3.0, 1.0, -1.0]])[z], 1.0) @ np.array([[1, .3, 0], [0, 1, .2],
                                                                                       [0, 0, 1.]])
    M0 = np.array([[0.5, 0.0, 0.0], [2.0, 2.0, 0.0]])
    cov0 = np.eye(3) if covariance_type == "full" else np.ones(3)
    ref = theirs([Normal(means=tensor(M0[k]), covs=tensor(cov0), covariance_type=covariance_type) for k in range(2)],
                 X)
    precisions = np.array([np.eye(3)] * 2) if covariance_type == "full" else np.ones((2, 3))
    ours = bigem.GaussianMixture(2, covariance_type=covariance_type, weights_init=W0, means_init=M0,
                                 precisions_init=precisions, max_iter=ITERATIONS, tol=0.0, reg_covar=0.0,
                                 dtype="float64").fit(X)
    np.testing.assert_allclose(ours.means_, np.stack([d.means.detach().numpy() for d in ref.distributions]),
                               atol=1e-12)
    np.testing.assert_allclose(ours.covariances_, np.stack([d.covs.detach().numpy() for d in ref.distributions]),
                               atol=1e-12)
    same_answers(ref, ours, X)


def _counts(rng, z):
    return rng.poisson(np.array([[1.0, 3.0], [5.0, 2.0]])[z]).astype(float), np.array([[2.0, 2.0], [4.0, 3.0]])


def _flags(rng, z):
    X = (rng.random((len(z), 4)) < np.array([[.9, .8, .2, .1], [.2, .3, .7, .9]])[z]).astype(float)
    return X, np.array([[.6, .6, .4, .4], [.4, .4, .6, .6]])


# family: (its data and start, pomegranate's distribution and parameter, bigem's estimator, start and attribute)
FAMILIES = {"poisson": (_counts, "Poisson", "lambdas", bigem.PoissonMixture, "lambdas_init", "lambdas_"),
            "bernoulli": (_flags, "Bernoulli", "probs", bigem.BernoulliMixture, "probabilities_init",
                          "probabilities_")}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_count_or_binary_mixture_is_pomegranates(float64_default, family):
    import pomegranate.distributions as dist

    data, theirs_name, param, estimator, init, attribute = FAMILIES[family]
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 1000)
    X, start = data(rng, z)
    ref = theirs([getattr(dist, theirs_name)(**{param: tensor(start[k])}) for k in range(2)], X)
    ours = estimator(2, weights_init=W0, max_iter=ITERATIONS, tol=0.0, alpha=0.0, dtype="float64",
                     **{init: start}).fit(X)
    np.testing.assert_allclose(getattr(ours, attribute),
                               np.stack([getattr(d, param).detach().numpy() for d in ref.distributions]), atol=1e-12)
    same_answers(ref, ours, X)


def test_a_categorical_mixture_is_pomegranates(float64_default):
    from pomegranate.distributions import Categorical

    rng = np.random.default_rng(3)
    z = rng.integers(0, 2, 1000)
    X = np.c_[np.where(z == 0, rng.integers(0, 3, 1000), np.minimum(rng.integers(0, 3, 1000) + 1, 2)),
              rng.integers(0, 3, 1000)]
    C0 = np.array([[[.5, .3, .2], [.3, .3, .4]], [[.2, .3, .5], [.4, .3, .3]]])  # (class, column, category)
    ref = theirs([Categorical(probs=tensor(C0[k])) for k in range(2)], X, torch.int64)
    ours = bigem.CategoricalMixture(2, weights_init=W0, probabilities_init=[C0[:, 0], C0[:, 1]], max_iter=ITERATIONS,
                                    tol=0.0, alpha=0.0, dtype="float64").fit(X)
    probs = np.stack([d.probs.detach().numpy() for d in ref.distributions])
    for j in range(2):
        np.testing.assert_allclose(ours.probabilities_[j], probs[:, j], atol=1e-12)
    same_answers(ref, ours, X, torch.int64)


@pytest.mark.parametrize("family", ["GaussianMixture", "BernoulliMixture", "PoissonMixture", "CategoricalMixture",
                                    "MixedMixture"])
def test_a_masked_tensor_is_read_as_gaps(family):
    """pomegranate's missing values, a torch MaskedTensor: its hidden entries are NaN to
    bigem, so the fit equals the fit of the array with NaN there (missing_values='fiml'),
    and without 'fiml' the NaN check names the option. The families with a column
    schema surveyed the raw MaskedTensor first ("numpy() is not supported for tensor
    subclasses")."""
    from torch.masked import masked_tensor

    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 4]
    if family in ("BernoulliMixture", "PoissonMixture", "CategoricalMixture"):
        values = (values > 2).astype(float) + (family != "BernoulliMixture") * (values > 5)
    data = torch.tensor(values)
    hidden = rng.random((300, 2)) < 0.15
    hidden[:, 1] &= ~hidden[:, 0]  # every row keeps a value
    mask = torch.tensor(~hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "MaskedTensor is in prototype stage"
        masked = masked_tensor(data, mask)
    gaps = np.where(mask.numpy(), data.numpy(), np.nan)
    kw = dict(missing_values="fiml", dtype="float64", random_state=0)
    if family == "MixedMixture":
        kw["families"] = ["gaussian", "gaussian"]
    cls = getattr(bigem, family)
    a = cls(2, **kw).fit(masked)
    b = cls(2, **kw).fit(gaps)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.score_samples(masked), b.score_samples(gaps))
    with pytest.raises(bigem.errors.DataError, match="missing_values='fiml'"):
        cls(2, **{k: v for k, v in kw.items() if k != "missing_values"}).fit(masked)


@pytest.mark.parametrize("name, hint", [("log_probability", "score_samples"), ("priors", "weights_"),
                                        ("summarize", "partial_fit"), ("cuda", "device='cuda'"),
                                        ("distributions", "means_, covariances_")])
def test_pomegranate_calls_name_bigems(name, hint):
    """pomegranate's methods and attributes on a bigem mixture: Python's AttributeError
    (hasattr stays False), which says what bigem calls it."""
    gm = bigem.GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))
    assert not hasattr(gm, name)
    with pytest.raises(AttributeError, match=rf"'GaussianMixture' object has no attribute '{name}'; .*{re.escape(hint)}"):
        getattr(gm, name)


@pytest.mark.parametrize("name, hint", [("edges", "transmat_"), ("starts", "startprob_"), ("ends", "without end"),
                                        ("log_probability", "score(seq)"), ("cuda", "device='cuda'"),
                                        ("distributions", "means_ and covars_ (Gaussian)")])
def test_pomegranate_hmm_calls_name_bigems(name, hint):
    """DenseHMM's attributes on a bigem HMM say what bigem (hmmlearn) calls them, as the
    mixtures' do; a stack of sequences, DenseHMM's (n, length, d), says how it goes."""
    X = np.random.default_rng(0).normal(size=(60, 2))
    hmm = bigem.GaussianHMM(2, random_state=0).fit(X)
    assert not hasattr(hmm, name)
    with pytest.raises(AttributeError, match=rf"'GaussianHMM' object has no attribute '{name}'; .*{re.escape(hint)}"):
        getattr(hmm, name)
    with pytest.raises(bigem.errors.DataError, match=r"dim 3.*reshape\(-1, X\.shape\[-1\]\), with an HMM's lengths"):
        bigem.GaussianHMM(2).fit(X.reshape(3, 20, 2))


def test_a_mixed_mixture_is_pomegranates_independent_components(float64_default):
    """The page's mapping of GeneralMixtureModel([IndependentComponents([...])] * K) and its
    recipe for a start (fit once, set the attributes, warm_start), to the tolerance the page
    states: pomegranate computes IndependentComponents' responsibilities in float32."""
    import pandas as pd
    from pomegranate.distributions import Bernoulli, Categorical, IndependentComponents, Normal, Poisson

    class CategoricalOfFloats(Categorical):  # the page's cast: mixed data are one float tensor
        def log_probability(self, X):
            return super().log_probability(X.long())

        def summarize(self, X, sample_weight=None):
            return super().summarize(X.long(), sample_weight=sample_weight)

    rng = np.random.default_rng(3)
    z = rng.integers(0, 2, 800)
    df = pd.DataFrame({"g": rng.normal(np.array([-2.0, 3.0])[z], 1.0),
                       "c": np.array([rng.choice(3, p=p) for p in np.array([[.7, .2, .1], [.1, .3, .6]])[z]]),
                       "b": (rng.random(800) < np.array([.2, .8])[z]).astype(int),
                       "p": rng.poisson(np.array([1.0, 6.0])[z])})
    M0, V0, P0, B0, L0 = [[-1.0], [2.0]], [[1.5], [1.0]], [[.5, .3, .2], [.2, .3, .5]], [[.4], [.6]], [[2.0], [4.0]]
    ref = theirs([IndependentComponents([Normal(means=tensor(M0[k]), covs=tensor(V0[k]), covariance_type="diag"),
                                         CategoricalOfFloats(probs=tensor([P0[k]])), Bernoulli(probs=tensor(B0[k])),
                                         Poisson(lambdas=tensor(L0[k]))]) for k in range(2)], df.to_numpy(float))
    families = {"c": "categorical", "b": "bernoulli", "p": "poisson"}
    ours = bigem.MixedMixture(2, families=families, alpha=0.0, reg_covar=0.0, dtype="float64", max_iter=1,
                              random_state=0).fit(df)
    ours.weights_, ours.means_, ours.covariances_ = W0.copy(), np.array(M0), np.array(V0)
    ours.probabilities_, ours.bernoulli_probabilities_, ours.lambdas_ = [np.array(P0)], np.array(B0), np.array(L0)
    ours.set_params(warm_start=True, max_iter=ITERATIONS, tol=0.0).fit(df)
    parts = [d.distributions for d in ref.distributions]
    assert np.abs(ours.means_ - np.array(M0)).max() > 0.1  # the fits moved from their start
    np.testing.assert_allclose(ours.weights_, ref.priors.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.means_[:, 0], [p[0].means.numpy()[0] for p in parts], atol=1e-6)
    np.testing.assert_allclose(ours.covariances_[:, 0], [p[0].covs.numpy()[0] for p in parts], atol=1e-6)
    np.testing.assert_allclose(ours.probabilities_[0], [p[1].probs.numpy()[0] for p in parts], atol=1e-6)
    np.testing.assert_allclose(ours.bernoulli_probabilities_[:, 0], [p[2].probs.numpy()[0] for p in parts], atol=1e-6)
    np.testing.assert_allclose(ours.lambdas_[:, 0], [p[3].lambdas.numpy()[0] for p in parts], atol=1e-6)
    X = tensor(df.to_numpy(float))
    np.testing.assert_allclose(ours.score_samples(df), ref.log_probability(X).numpy(), atol=5e-6)
    np.testing.assert_allclose(ours.predict_proba(df), ref.predict_proba(X).numpy(), atol=1e-6)
