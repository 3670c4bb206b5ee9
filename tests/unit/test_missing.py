"""Missing values (#17): the exact EM for data missing at random, against brute force.

Every reference here is written in the test, in float64 numpy/scipy: the observed
marginal log-density of each row, one exact EM step by per-row conditional moments,
the forward recursion of an HMM over rows with gaps, the closed-form conditional mean.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm, poisson

from bigem import GMMHMM, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from bigem._core.errors import ConvergenceWarning, DataError, EmptyRowWarning, ParameterError
from bigem._core.types import Chunk
from bigem.models.gaps import distinct, pack, patterns
from bigem.models.gaussian import gaussian_mixture
from tests.conftest import COV_TYPES, make_blobs


def dense(ct, cov, k, d):
    cov = np.asarray(cov)
    if ct == "full":
        return cov
    if ct == "tied":
        return np.stack([cov] * k)
    if ct == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])


def random_model(rng, ct, k, d, gaps=True, dtype=torch.float64):
    model = gaussian_mixture(k, ct, 1e-6, dtype, gaps=gaps)
    a = rng.normal(size=(k, d, d))
    full = a @ a.transpose(0, 2, 1) + np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
           "spherical": full[:, 0, 0].copy()}[ct]
    w, means = rng.dirichlet(np.ones(k)), rng.normal(0, 3, (k, d)) + 5
    return model, model.make_params(torch.tensor(w), torch.tensor(means), torch.tensor(cov)), (w, means, dense(ct, cov, k, d))


def with_gaps(rng, n, d, rate=0.3):
    x = rng.normal(0, 3, (n, d)) + 5
    x[rng.random(x.shape) < rate] = np.nan
    x[0] = np.nan  # a row with nothing observed
    x[1, :-1] = np.nan  # and one that observes a single value
    return x


def observed_log_joint(x, w, means, covs):
    """log w_k + log N(x_O | mu_k,O, Sigma_k,OO) of every row, brute force (0 + log w_k if nothing is observed)."""
    out = np.zeros((len(x), len(w)))
    for i, row in enumerate(x):
        o = ~np.isnan(row)
        for j in range(len(w)):
            dens = multivariate_normal(means[j][o], covs[j][np.ix_(o, o)]).logpdf(row[o]) if o.any() else 0.0
            out[i, j] = np.log(w[j]) + dens
    return out


def exact_em_step(x, w, means, covs, ct, reg):
    """One EM step by per-row conditional moments: E[x_U | x_O, k] and Cov[x_U | x_O, k]."""
    n, d = x.shape
    k = len(w)
    lj = observed_log_joint(x, w, means, covs)
    ll = logsumexp(lj, 1)
    r = np.exp(lj - ll[:, None])
    xh, cc = np.zeros((n, k, d)), np.zeros((n, k, d, d))
    for i, row in enumerate(x):
        o = ~np.isnan(row)
        u = ~o
        for j in range(k):
            S = covs[j]
            reg_uo = S[np.ix_(u, o)] @ np.linalg.inv(S[np.ix_(o, o)]) if o.any() else np.zeros((u.sum(), 0))
            xh[i, j, o] = row[o]
            xh[i, j, u] = means[j][u] + reg_uo @ (row[o] - means[j][o])
            cc[i, j][np.ix_(u, u)] = S[np.ix_(u, u)] - reg_uo @ S[np.ix_(o, u)]
    nk = r.sum(0)
    mu = np.einsum("nk,nkd->kd", r, xh) / nk[:, None]
    S = np.stack([(np.einsum("n,nd,ne->de", r[:, j], xh[:, j] - mu[j], xh[:, j] - mu[j])
                   + np.einsum("n,nde->de", r[:, j], cc[:, j])) / nk[j] for j in range(k)])
    cov = {"full": lambda: S + reg * np.eye(d), "tied": lambda: (S * nk[:, None, None]).sum(0) / n + reg * np.eye(d),
           "diag": lambda: np.diagonal(S, axis1=1, axis2=2) + reg,
           "spherical": lambda: np.diagonal(S, axis1=1, axis2=2).mean(1) + reg}[ct]()
    return ll.sum(), nk / n, mu, cov


def observed_em_step(x, w, means, covs, ct, reg):
    """One EM step over the classes alone, for diagonal and spherical structures: each
    feature's mean and variance from the rows that observed it, weighted by their
    posteriors (StepMix's and pomegranate's diagonal Gaussians with gaps)."""
    lj = observed_log_joint(x, w, means, covs)
    ll = logsumexp(lj, 1)
    r = np.exp(lj - ll[:, None])
    o = ~np.isnan(x)
    xo = np.where(o, x, 0.0)
    counts = r.T @ o  # (K, D): the mass that observed each feature
    mu = (r.T @ xo) / counts
    sq = np.stack([(r[:, [j]] * o * (xo - mu[j]) ** 2).sum(0) for j in range(len(w))])
    cov = sq / counts + reg if ct == "diag" else sq.sum(1) / counts.sum(1) + reg
    return ll.sum(), r.sum(0) / len(x), mu, cov


# ---------------------------------------------------------------------------- the kernels
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [3, 10])  # the expanded form's complete rows (D <= 8), the whitened form's
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_log_density_is_the_marginal_of_the_observed_values(covariance_type, d, dtype):
    rng = np.random.default_rng(0)
    model, p, (w, means, covs) = random_model(rng, covariance_type, 3, d, dtype=dtype)
    x = with_gaps(rng, 120, d)
    got = model.log_joint(p, torch.tensor(x).to(dtype)).double().numpy()
    np.testing.assert_allclose(got, observed_log_joint(x, w, means, covs), rtol=1e-11 if dtype == torch.float64 else 3e-6,
                               atol=1e-11 if dtype == torch.float64 else 1e-4)


@pytest.mark.parametrize("d", [3, 10])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_em_step_equals_the_exact_em_step_by_conditional_moments(covariance_type, d):
    rng = np.random.default_rng(1)
    model, p, (w, means, covs) = random_model(rng, covariance_type, 3, d)
    x = with_gaps(rng, 150, d)
    stats = model.e_step(p, Chunk(torch.tensor(x), None, 0))
    new = model.m_step(stats, p).params
    # diagonal structures: the exact step over the classes alone; the others complete the gaps
    step = observed_em_step if covariance_type in ("diag", "spherical") else exact_em_step
    ll, w2, mu2, cov2 = step(x, w, means, covs, covariance_type, 1e-6)
    assert float(stats.loglik) == pytest.approx(ll, rel=1e-12)
    assert stats.empty == int(np.isnan(x).all(1).sum()) >= 1
    np.testing.assert_allclose(new.weights.numpy(), w2, rtol=1e-10)
    np.testing.assert_allclose(new.means.numpy(), mu2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(new.covariances.numpy(), cov2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "EEI", "VEI"])
def test_diagonal_fits_with_gaps_reach_the_maximum_of_both_steps_and_rise(covariance_type):
    """The observed-values step (diag, spherical) and the completed step (the constrained
    diagonal models) both climb the observed likelihood at every iteration, to one
    maximum: the completed step, run long, ends where the observed-values step ends."""
    rng = np.random.default_rng(4)
    X, _, _ = make_blobs(3, n_per=150, d=4)
    X = X.copy()
    X[rng.random(X.shape) < 0.25] = np.nan
    fit = GaussianMixture(3, covariance_type=covariance_type, missing_values="fiml", dtype="float64", tol=1e-12,
                          max_iter=5000, random_state=0).fit(X)
    assert fit.converged_ and np.all(np.diff(fit.lower_bounds_) >= -1e-12)
    if covariance_type in ("diag", "spherical"):  # the completed step from the same start, by hand, to the end
        model, p, _ = random_model(rng, covariance_type, 3, 4)
        x = torch.tensor(X)
        params = model.m_step(model.e_step(p, Chunk(x, None, 0)), p).params
        filled = params
        for _ in range(3000):
            stats = model.e_step(filled, Chunk(x, None, 0))
            stats = dataclasses.replace(stats, component=stats.component.filled())
            filled = model.m_step(stats, filled).params
        for _ in range(300):
            params = model.m_step(model.e_step(params, Chunk(x, None, 0)), params).params
        np.testing.assert_allclose(filled.means.numpy(), params.means.numpy(), atol=1e-6)
        np.testing.assert_allclose(filled.covariances.numpy(), params.covariances.numpy(), atol=1e-6)


@pytest.mark.parametrize("d", [5, 12, 24, 66])  # a table of codes (chunk counted, sorted), a search, per block
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_many_patterns_over_many_blocks_give_the_exact_em_step(covariance_type, d, monkeypatch):
    """Every row its own pattern, read 16 rows at a time: patterns met in earlier blocks,
    factored for the chunk up front (the E-step) or block by block as they turn up (the
    log-density), give the brute-force answers."""
    rng = np.random.default_rng(d)
    model, p, (w, means, covs) = random_model(rng, covariance_type, 2, d)
    x = with_gaps(rng, 100, d, rate=0.3)
    x[50:60] = x[40:50]  # and some recur
    monkeypatch.setattr(model.component, "block_rows", lambda K, D, device: 16)
    got = model.log_joint(p, torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, observed_log_joint(x, w, means, covs), rtol=1e-10, atol=1e-10)
    stats = model.e_step(p, Chunk(torch.tensor(x), None, 0))
    new = model.m_step(stats, p).params
    ll, w2, mu2, cov2 = exact_em_step(x, w, means, covs, covariance_type, 1e-6)
    assert float(stats.loglik) == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(new.weights.numpy(), w2, rtol=1e-10)
    np.testing.assert_allclose(new.means.numpy(), mu2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(new.covariances.numpy(), cov2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_statistics_of_rows_with_gaps_add_over_any_chunking(covariance_type):
    rng = np.random.default_rng(2)
    model, p, _ = random_model(rng, covariance_type, 2, 9)
    x = torch.tensor(with_gaps(rng, 400, 9, rate=0.2))
    whole = model.e_step(p, Chunk(x, None, 0))
    parts = model.e_step(p, Chunk(x[:137], None, 0)) + model.e_step(p, Chunk(x[137:], None, 137))
    for a, b in ((whole.component.sum_x, parts.component.sum_x), (whole.component.sum_xx, parts.component.sum_xx)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-9)
    assert whole.empty == parts.empty == int(torch.isnan(x).all(1).sum())


def test_patterns_list_the_gaps_flat_and_distinct_finds_the_patterns():
    mask = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 1], [0, 1, 1]], dtype=torch.bool)
    gaps = patterns(mask)
    assert gaps.rows.tolist() == [0, 1, 1, 2, 3, 3, 3, 4, 5, 5] and gaps.coords.tolist() == [0, 1, 2, 0, 0, 1, 2, 2, 1, 2]
    assert gaps.first.tolist() == [0, 1, 3, 4, 7, 8] and gaps.count.tolist() == [1, 2, 1, 3, 1, 2]
    assert gaps.codes.tolist() == [1, 6, 1, 7, 4, 6]
    masks, codes, inverse = distinct(mask)
    assert codes.tolist() == [1, 4, 6, 7] and inverse.tolist() == [0, 2, 0, 3, 1, 2]
    assert torch.equal(masks[inverse], mask)
    wide = torch.zeros(4, 70, dtype=torch.bool)  # beyond the packed codes: patterns by sorting rows
    wide[0, 3] = wide[1, 65] = wide[2, 3] = wide[3, [3, 65]] = True
    gaps = patterns(wide)
    assert gaps.codes is None and gaps.coords.tolist() == [3, 65, 3, 3, 65]
    masks, codes, inverse = distinct(wide)
    assert codes is None and masks.shape[0] == 3 and torch.equal(masks[inverse], wide)


@pytest.mark.parametrize("d, rate", [(5, 0.3), (20, 0.6), (60, 0.1), (70, 0.05)])
def test_patterns_rebuild_any_mask_and_name_equal_masks_alike(d, rate):
    """Any mask (rows with no gap, every row distinct, past the packed width): the flat
    gaps rebuild it, each row's entries are its own, and rows share a pattern exactly when
    their masks agree."""
    rng = np.random.default_rng(d)
    mask = torch.tensor(rng.random((300, d)) < rate)
    mask[:7] = mask[7]  # some patterns recur
    gaps = patterns(mask)
    assert torch.equal(torch.zeros_like(mask).index_put_((gaps.rows, gaps.coords), torch.tensor(True)), mask)
    assert torch.equal(gaps.count, mask.sum(1))
    for r in (0, 9, 150, 299):
        mine = slice(int(gaps.first[r]), int(gaps.first[r] + gaps.count[r]))
        assert bool((gaps.rows[mine] == r).all()) and gaps.coords[mine].tolist() == torch.nonzero(mask[r]).reshape(-1).tolist()
    masks, codes, inverse = distinct(mask)
    same = (mask[:, None, :] == mask[None, :, :]).all(-1)
    assert torch.equal(same, inverse[:, None] == inverse[None, :]) and torch.equal(masks[inverse], mask)
    if d <= 62:
        assert torch.equal(codes[inverse], gaps.codes) and torch.equal(gaps.codes, (mask.long() << torch.arange(d)).sum(1))
        assert torch.equal(pack(mask), gaps.codes)  # the chunk's codes, packed another way
    else:
        assert pack(mask) is None


# ---------------------------------------------------------------------------- the estimators
def blobs_with_gaps(seed=0, rate=0.25, n_per=300):
    X, _, _ = make_blobs(seed, n_per=n_per, k=3, d=4)
    rng = np.random.default_rng(seed)
    Xm = X.copy()
    Xm[rng.random(X.shape) < rate] = np.nan
    return X, Xm


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.cpu_strategy  # a GPU takes the gap kernels whatever the block holds: the same fit to rounding
def test_without_gaps_fiml_is_todays_fit_bit_for_bit(covariance_type):
    X, _ = blobs_with_gaps()
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=20)
    a = GaussianMixture(3, **kw).fit(X)
    b = GaussianMixture(3, missing_values="fiml", **kw).fit(X)
    for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


def test_without_gaps_fiml_hmm_is_todays_fit_bit_for_bit():
    X, _ = blobs_with_gaps()
    a = GaussianHMM(3, covariance_type="full", random_state=0, n_iter=5).fit(X, [600, 300])
    b = GaussianHMM(3, covariance_type="full", random_state=0, n_iter=5, missing_values="fiml").fit(X, [600, 300])
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.transmat_, b.transmat_)
    assert a.monitor_.history == b.monitor_.history


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_log_likelihood_is_the_observed_marginal_and_never_decreases(covariance_type):
    _, Xm = blobs_with_gaps(1)
    seen = []
    gm = GaussianMixture(3, covariance_type=covariance_type, missing_values="fiml", dtype="float64", random_state=0,
                         max_iter=15, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence (tol=0), rows with nothing observed
        gm.fit(Xm, callback=lambda info: seen.append((info.log_likelihood, info.params)))
    # each iteration reports the log-likelihood of the parameters the one before it produced
    for (_, params), (ll, _) in list(zip(seen[:-1], seen[1:]))[-3:]:
        w, means = params.weights.numpy(), params.means.numpy()
        covs = dense(covariance_type, params.covariances.numpy(), 3, 4)
        assert ll == pytest.approx(logsumexp(observed_log_joint(Xm, w, means, covs), 1).mean(), rel=1e-12)
    values = np.array([v for v, _ in seen])
    assert (np.diff(values) >= -1e-12 * np.abs(values[1:])).all()
    assert gm.score(Xm) == pytest.approx(logsumexp(observed_log_joint(
        Xm, gm.weights_, gm.means_, dense(covariance_type, gm.covariances_, 3, 4)), 1).mean(), rel=1e-12)


TRUE_W = np.array([0.4, 0.6])
TRUE_MU = np.array([[0.0, 0.0, 0.0], [5.0, 4.0, -3.0]])
TRUE_COV = np.array([[[1.0, 0.6, 0.3], [0.6, 1.5, -0.4], [0.3, -0.4, 1.0]],
                     [[2.0, -0.5, 0.2], [-0.5, 1.0, 0.3], [0.2, 0.3, 0.8]]])


def _known_mixture(rng, n):
    z = rng.random(n) < TRUE_W[1]
    X = np.where(z[:, None], rng.multivariate_normal(TRUE_MU[1], TRUE_COV[1], n), rng.multivariate_normal(TRUE_MU[0], TRUE_COV[0], n))
    return X


def _gaps(rng, X, rate, mechanism):
    """MCAR: every value of columns 1 and 2 missing with probability ``rate``; MAR: missing
    with a probability that rises with the (always observed) column 0, averaging ``rate``."""
    n = len(X)
    Xm = X.copy()
    if mechanism == "mcar":
        p = np.full(n, rate)
    else:
        score = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
        p = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + 1.5 * score)))
    for j in (1, 2):
        Xm[rng.random(n) < p, j] = np.nan
    return Xm


@pytest.mark.parametrize("mechanism", ["mcar", "mar"])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_estimates_are_unbiased_for_values_missing_at_random(rate, mechanism):
    rng = np.random.default_rng(int(rate * 10) + (mechanism == "mar"))
    n = 20_000
    X = _known_mixture(rng, n)
    Xm = _gaps(rng, X, rate, mechanism)
    kw = dict(covariance_type="full", dtype="float64", tol=1e-8, max_iter=500, weights_init=TRUE_W, means_init=TRUE_MU,
              precisions_init=np.linalg.inv(TRUE_COV))
    gm = GaussianMixture(2, missing_values="fiml", **kw).fit(Xm)
    # sampling error: a few standard errors of n * (1 - rate) rows, per value
    se = 4.0 / np.sqrt(n * (1 - rate))
    np.testing.assert_allclose(gm.weights_, TRUE_W, atol=se)
    np.testing.assert_allclose(gm.means_, TRUE_MU, atol=2 * se * np.sqrt(TRUE_COV.diagonal(0, 1, 2).max()))
    np.testing.assert_allclose(gm.covariances_, TRUE_COV, atol=3 * se * TRUE_COV.diagonal(0, 1, 2).max())
    if mechanism == "mar":  # complete cases are a biased sample there: the test can tell
        complete = Xm[~np.isnan(Xm).any(1)]
        cc = GaussianMixture(2, **kw).fit(complete)
        assert np.abs(cc.means_ - TRUE_MU).max() > 3 * np.abs(gm.means_ - TRUE_MU).max()


def test_rows_with_nothing_observed_count_take_the_weights_and_warn_once():
    _, Xm = blobs_with_gaps(2)
    Xm[[5, 17, 40]] = np.nan
    empty = int(np.isnan(Xm).all(1).sum())
    gm = GaussianMixture(3, missing_values="fiml", random_state=0, max_iter=50, n_init=3)  # once, not a restart
    with pytest.warns(EmptyRowWarning, match=rf"^{empty} row\(s\) have every value missing") as caught:
        gm.fit(Xm)
    assert sum(issubclass(w.category, EmptyRowWarning) for w in caught) == 1
    proba = gm.predict_proba(Xm[[5, 17, 40]])
    np.testing.assert_allclose(proba, np.tile(gm.weights_, (3, 1)), rtol=1e-6)
    assert gm.score_samples(Xm[[5]])[0] == pytest.approx(0.0, abs=1e-6)
    rest = Xm[~np.isnan(Xm).all(1)]
    assert gm.score(Xm) * len(Xm) == pytest.approx(gm.score(rest) * len(rest), rel=1e-6)  # each adds 0


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_the_empty_row_count_says_what_it_counted():
    """An exact fit counts every row at its first iteration; online EM warns at its first
    mini-batch, over that batch's rows alone, and says so; neither speaks of the other."""
    _, Xm = blobs_with_gaps(2)
    Xm[np.arange(0, 300, 10)] = np.nan  # 30 empty rows, 10 in the first 100
    with pytest.warns(EmptyRowWarning,
                      match=r"^30 row\(s\) have every value missing \(counted at iteration 1\):") as caught:
        GaussianMixture(2, missing_values="fiml", random_state=0, max_iter=5).fit(Xm[:300])
    assert not any("online" in str(w.message) or "mini-batch" in str(w.message) for w in caught)
    with pytest.warns(EmptyRowWarning, match=r"^10 row\(s\) have every value missing \(counted at mini-batch 1\):"):
        GaussianMixture(2, missing_values="fiml", random_state=0, algorithm="online", batch_size=100,
                        max_iter=1).fit(Xm[:300])


def test_nan_is_refused_by_default_with_the_option_named():
    _, Xm = blobs_with_gaps(3)
    with pytest.raises(DataError, match=r"contains NaN.*missing_values='fiml'.*--missing fiml"):
        GaussianMixture(3).fit(Xm)
    gm = GaussianMixture(3, random_state=0).fit(np.nan_to_num(Xm))
    with pytest.raises(DataError, match="missing_values='fiml'"):
        gm.predict(Xm)
    gm.set_params(missing_values="fiml")  # a model fitted on complete rows predicts rows with gaps
    assert gm.predict(Xm).shape == (len(Xm),)
    with pytest.raises(DataError, match="missing_values='fiml'"):
        GaussianHMM(2).fit(Xm)
    with pytest.raises(ParameterError, match="missing_values"):
        GaussianMixture(3, missing_values="drop").fit(Xm)


def test_infinity_is_refused_even_with_fiml():
    _, Xm = blobs_with_gaps(3)
    Xm[7, 2] = np.inf
    with pytest.raises(DataError, match=r"contains infinity.*\(1 inf; first at row 7, column \d\).*infinity is not a "
                                        r"missing value"):
        GaussianMixture(3, missing_values="fiml").fit(Xm)


def test_a_column_missing_in_every_row_is_named():
    import pandas as pd

    _, Xm = blobs_with_gaps(4)
    Xm[:, 2] = np.nan
    with pytest.raises(DataError, match=r"column 2 is missing in every row"):
        GaussianMixture(3, missing_values="fiml").fit(Xm)
    frame = pd.DataFrame(Xm, columns=["a", "b", "c", "d"])
    with pytest.raises(DataError, match=r"column 'c' is missing in every row.*drop it"):
        GaussianMixture(3, missing_values="fiml").fit(frame)
    with pytest.raises(DataError, match=r"column 'c' is missing in every row"):
        GaussianHMM(2, missing_values="fiml").fit(frame)
    fitted = GaussianMixture(3, missing_values="fiml", random_state=0).fit(frame[["a", "b", "d"]].assign(c=1.0)[list("abcd")])
    assert fitted.predict(frame).shape == (len(frame),)  # predicting: a column may be all gaps


def test_predict_score_and_bic_read_incomplete_rows_by_their_observed_values():
    X, Xm = blobs_with_gaps(5, rate=0.2)
    gm = GaussianMixture(3, missing_values="fiml", random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyRowWarning)
        gm.fit(Xm)
    lj = observed_log_joint(Xm, gm.weights_, gm.means_, gm.covariances_)
    np.testing.assert_allclose(gm.score_samples(Xm), logsumexp(lj, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(Xm), np.exp(lj - logsumexp(lj, 1)[:, None]), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(Xm), lj.argmax(1))
    assert gm.bic(Xm) == pytest.approx(-2 * logsumexp(lj, 1).sum() + gm._n_parameters() * np.log(len(Xm)), rel=1e-12)
    # the labels of the complete data mostly survive the gaps
    assert (gm.predict(Xm) == gm.predict(X)).mean() > 0.9


# ---------------------------------------------------------------------------- impute
def _two_component_model():
    w = np.array([0.3, 0.7])
    mu = np.array([[0.0, 0.0], [4.0, 2.0]])
    cov = np.array([[[1.0, 0.8], [0.8, 1.0]], [[2.0, -0.5], [-0.5, 1.0]]])
    gm = GaussianMixture(2, weights_init=w, means_init=mu, precisions_init=np.linalg.inv(cov), max_iter=0,
                         dtype="float64")
    gm.fit(np.random.default_rng(0).normal(size=(10, 2)))  # max_iter=0: the given parameters, as they are
    return gm, w, mu, cov


def test_impute_is_the_closed_form_conditional_mean():
    gm, w, mu, cov = _two_component_model()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2)) * 2 + 1
    Xm = X.copy()
    Xm[::2, 1] = np.nan
    Xm[1::4, 0] = np.nan
    Xm[3] = np.nan
    want = X.copy()
    for i in range(len(X)):
        for miss, obs in ((1, 0), (0, 1)):
            if np.isnan(Xm[i, miss]) and not np.isnan(Xm[i, obs]):
                lik = np.array([w[k] * norm(mu[k, obs], np.sqrt(cov[k, obs, obs])).pdf(X[i, obs]) for k in range(2)])
                cond = [mu[k, miss] + cov[k, miss, obs] / cov[k, obs, obs] * (X[i, obs] - mu[k, obs]) for k in range(2)]
                want[i, miss] = lik / lik.sum() @ cond
        if np.isnan(Xm[i]).all():
            want[i] = w @ mu
    got = gm.impute(Xm)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[~np.isnan(Xm)], Xm[~np.isnan(Xm)])  # observed values untouched


def test_sampled_imputations_are_reproducible_and_average_to_the_conditional_mean():
    gm, *_ = _two_component_model()
    Xm = np.array([[1.0, np.nan], [np.nan, 2.5], [np.nan, np.nan], [3.0, 1.0]])
    first = gm.impute(Xm, method="sample", random_state=7)
    assert np.array_equal(first, gm.impute(Xm, method="sample", random_state=7))
    assert not np.array_equal(first, gm.impute(Xm, method="sample", random_state=8))
    assert np.array_equal(first[3], Xm[3]) and not np.isnan(first).any()
    many = gm.impute(np.repeat(Xm, 5000, 0), method="sample", random_state=1).reshape(4, 5000, 2).mean(1)
    np.testing.assert_allclose(many, gm.impute(Xm), atol=0.08)
    with pytest.raises(ParameterError, match="method must be one of"):
        gm.impute(Xm, method="median")


def test_impute_streams_to_a_file_with_an_id_column(tmp_path):
    pd = pytest.importorskip("pandas")
    gm, *_ = _two_component_model()
    rng = np.random.default_rng(3)
    Xm = rng.normal(size=(50, 2))
    Xm[rng.random(Xm.shape) < 0.3] = np.nan
    frame = pd.DataFrame({"id": np.arange(50) * 10, "a": Xm[:, 0], "b": Xm[:, 1]})
    gm.fit(frame[["a", "b"]].fillna(0.0))  # max_iter=0: the same parameters, now with feature names a and b
    path = gm.impute(frame, columns=["a", "b"], out=tmp_path / "filled.parquet", id_column="id")
    written = pd.read_parquet(path)
    assert list(written.columns) == ["id", "a", "b"]
    np.testing.assert_array_equal(written["id"], frame["id"])
    np.testing.assert_allclose(written[["a", "b"]].to_numpy(), gm.impute(frame[["a", "b"]]), rtol=1e-15)
    assert not np.isnan(written[["a", "b"]].to_numpy()).any()


# ---------------------------------------------------------------------------- HMMs
def forward(log_b, pi, A):
    a = np.log(pi) + log_b[0]
    for t in range(1, len(log_b)):
        a = logsumexp(a[:, None] + np.log(A), 0) + log_b[t]
    return logsumexp(a)


def _sequences(rng, n=240, d=3):
    X = rng.normal(size=(n, d)) + np.repeat(rng.normal(0, 3, (3, d)), n // 3, 0)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[[4, 5, 6]] = np.nan  # steps with no observation, the chain goes on through them
    return X, [100, 90, 50]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_gaussian_hmm_log_likelihood_with_gaps_is_the_forward_recursion_over_observed_marginals(covariance_type):
    rng = np.random.default_rng(4)
    X, lengths = _sequences(rng)
    hmm = GaussianHMM(3, covariance_type=covariance_type, dtype="float64", missing_values="fiml", n_iter=8,
                      random_state=0).fit(X, lengths)
    assert (np.diff(hmm.monitor_.history) > -1e-9).all()
    log_b = observed_log_joint(X, np.ones(3), hmm.means_, hmm.covars_)
    starts = np.cumsum([0] + lengths[:-1])
    want = sum(forward(log_b[s : s + n], hmm.startprob_, hmm.transmat_) for s, n in zip(starts, lengths))
    assert hmm.score(X, lengths) == pytest.approx(want, rel=1e-12)
    post = hmm.predict_proba(X, lengths)
    assert np.isfinite(post).all() and np.allclose(post.sum(1), 1)


def test_gmmhmm_with_gaps_marginalises_each_mixture_component():
    rng = np.random.default_rng(5)
    X, lengths = _sequences(rng)
    hmm = GMMHMM(2, n_mix=2, covariance_type="full", dtype="float64", missing_values="fiml", n_iter=6,
                 random_state=0).fit(X, lengths)
    assert (np.diff(hmm.monitor_.history) > -1e-9).all()
    log_b = np.stack([logsumexp(observed_log_joint(X, hmm.weights_[k], hmm.means_[k], hmm.covars_[k]), 1)
                      for k in range(2)], 1)
    starts = np.cumsum([0] + lengths[:-1])
    want = sum(forward(log_b[s : s + n], hmm.startprob_, hmm.transmat_) for s, n in zip(starts, lengths))
    assert hmm.score(X, lengths) == pytest.approx(want, rel=1e-12)


def test_poisson_and_categorical_hmms_leave_a_missing_entry_out():
    rng = np.random.default_rng(6)
    X = rng.poisson([2.0, 7.0], (300, 2)).astype(float)
    X[rng.random(X.shape) < 0.3] = np.nan
    hmm = PoissonHMM(2, dtype="float64", missing_values="fiml", n_iter=15, random_state=0).fit(X)
    assert (np.diff(hmm.monitor_.history) > -1e-9).all()
    log_b = np.array([[np.nansum(np.where(np.isnan(x), 0.0, poisson(hmm.lambdas_[k]).logpmf(np.nan_to_num(x))))
                       for k in range(2)] for x in X])
    assert hmm.score(X) == pytest.approx(forward(log_b, hmm.startprob_, hmm.transmat_), rel=1e-12)
    S = rng.integers(0, 4, (300, 1)).astype(float)
    S[rng.random(300) < 0.3] = np.nan
    cat = CategoricalHMM(2, dtype="float64", missing_values="fiml", n_iter=15, random_state=0).fit(S)
    assert (np.diff(cat.monitor_.history) > -1e-9).all()
    log_b = np.array([[0.0 if np.isnan(s) else np.log(cat.emissionprob_[k, int(s)]) for k in range(2)] for s in S[:, 0]])
    assert cat.score(S) == pytest.approx(forward(log_b, cat.startprob_, cat.transmat_), rel=1e-12)
    with pytest.raises(DataError, match="holds -1"):
        bad = S.copy()
        bad[3] = -1
        CategoricalHMM(2, missing_values="fiml").fit(bad)


def test_poisson_m_step_divides_each_feature_by_the_mass_that_observed_it():
    """One PoissonHMM step from fixed posteriors: rates = sum over observed rows / their mass."""
    from bigem.models.poisson import PoissonComponent
    from bigem.models import components

    comp = PoissonComponent(gaps=True)
    x = torch.tensor([[1.0, np.nan], [3.0, 4.0], [np.nan, 6.0]], dtype=torch.float64)
    resp = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    params = comp.make_params(torch.ones(2, 2, dtype=torch.float64))
    stats = components.statistics(comp, params, x, resp)
    new, _ = comp.m_step(stats, params)
    np.testing.assert_allclose(new.rates.numpy(), [[(1 + 1.5) / 1.5, 2.0 / 0.5], [1.5 / 0.5, (2 + 6) / 1.5]])


@pytest.mark.parametrize("d", [5, 30, 66])  # codes in a table, codes searched, no codes
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_blocks_that_take_the_chunks_gaps_give_the_same_bits(covariance_type, d, monkeypatch):
    """The E-step's blocks take their rows' numbers of gaps, codes and mask from the
    chunk (expect_gaps); deriving them block by block gives the same statistics, bit for
    bit, blocks of 32 rows with runs of every length."""
    from bigem.models.gaussian import GaussianComponent

    rng = np.random.default_rng(d)
    model, p, _ = random_model(rng, covariance_type, 3, d, dtype=torch.float32)
    monkeypatch.setattr(model.component, "block_rows", lambda K, D, device: 32)
    x = torch.tensor(with_gaps(rng, 400, d, rate=0.2)).float()
    x[100:180] = torch.tensor(rng.normal(0, 3, (80, d)) + 5).float()  # blocks with no gap at all
    taken = model.e_step(p, Chunk(x, None, 0))
    derive = GaussianComponent.block
    monkeypatch.setattr(GaussianComponent, "block", lambda self, prep, xb, read=None, mask=None: derive(self, prep, xb))
    derived = model.e_step(p, Chunk(x, None, 0))
    for a, b in ((taken.component.n_k, derived.component.n_k), (taken.component.sum_x, derived.component.sum_x),
                 (taken.component.sum_xx, derived.component.sum_xx), (taken.loglik, derived.loglik)):
        assert torch.equal(a, b)


def test_a_model_fitted_with_gaps_loads_and_continues_as_the_saved_one(tmp_path):
    """Its online state keeps the worst-explained rows, whose gaps are NaN: the file
    was written, then refused as damaged when loaded."""
    import bigem

    rng = np.random.default_rng(0)
    X = rng.normal(rng.integers(0, 3, 600)[:, None] * 3.0, 1.0, (600, 3))
    X[np.random.default_rng(1).random(X.shape) < 0.1] = np.nan
    X = X[~np.isnan(X).all(1)]  # a row with nothing observed only warns
    model = bigem.GaussianMixture(3, missing_values="fiml", random_state=0, dtype="float64").fit(X)
    path = str(tmp_path / "gaps.bigem")
    model.save(path)
    loaded = bigem.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.partial_fit(X[:200]).means_, model.partial_fit(X[:200]).means_)


def _one_gaussian_with_gaps(X: np.ndarray, passes: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-likelihood mean and covariance (n - 1 in the denominator) of one Gaussian
    for rows missing values at random: EM by each row's conditional moments, in numpy."""
    n, d = X.shape
    mu, S = np.nanmean(X, 0), np.diag(np.nanvar(X, 0))
    for _ in range(passes):
        s1, s2 = np.zeros(d), np.zeros((d, d))
        for row in X:
            m = np.isnan(row)
            x, C = row.copy(), np.zeros((d, d))
            if m.any():
                o = ~m
                gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
                x[m] = mu[m] + gain @ (row[o] - mu[o])
                C[np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            s1 += x
            s2 += np.outer(x, x) + C
        new_mu = s1 / n
        new_S = s2 / n - np.outer(new_mu, new_mu)
        if np.abs(new_S - S).max() < 1e-14 and np.abs(new_mu - mu).max() < 1e-14:
            break
        mu, S = new_mu, new_S
    return mu, S * n / (n - 1)


@pytest.mark.parametrize("covariance_type", ["VVV", "EEE", "EII", "VVI"])
def test_a_prior_with_gaps_takes_the_data_moments_of_the_fits_own_assumption(covariance_type):
    """mclust's default prior centres on the data's mean and scales by their covariance:
    with gaps, those of one Gaussian fitted to the observed values (values missing at
    random, as the fit assumes). A NaN had made both NaN, and every fit with a prior fail."""
    rng = np.random.default_rng(4)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], [[2.0, 0.9, 0.3], [0.9, 1.0, -0.4], [0.3, -0.4, 1.5]], 150)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[np.isnan(X).all(1), 0] = 0.0
    mu, S = _one_gaussian_with_gaps(X)
    K, D = 2, 3
    est = GaussianMixture(K, covariance_type=covariance_type, prior="default", missing_values="fiml",
                          dtype="float64", random_state=0).fit(X)
    # (SQUAREM stops where the mean log-likelihood moves by 1e-12, its square root or so from the maximum)
    np.testing.assert_allclose(est.prior_["mean"], mu, rtol=1e-6, atol=1e-7)
    want = S / K ** (2 / D) if covariance_type in ("VVV", "EEE") else np.trace(S) / D / K ** (2 / D)
    np.testing.assert_allclose(est.prior_["scale"], want, rtol=1e-6)
    assert np.isfinite(est.means_).all() and np.isfinite(est.lower_bound_)
    complete = X[~np.isnan(X).any(1)]  # and rows with no gap: mclust's prior, as before
    a = GaussianMixture(K, covariance_type=covariance_type, prior="default", dtype="float64").fit(complete)
    b = GaussianMixture(K, covariance_type=covariance_type, prior="default", missing_values="fiml",
                        dtype="float64").fit(complete)
    np.testing.assert_allclose(b.prior_["mean"], a.prior_["mean"], rtol=1e-13)
    np.testing.assert_allclose(b.prior_["scale"], a.prior_["scale"], rtol=1e-9)  # (the EM's ridge: 1e-10)


def test_a_prior_with_gaps_takes_a_collinear_column():
    """A derived column makes the data's covariance singular; the moments' EM refused it
    (and blamed the user's reg_covar), where complete rows' one pass gives it as it is."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:150] += 3
    X[:, 2] = 2 * X[:, 0] + 1
    gaps = rng.random(X.shape) < 0.2
    gaps[:, 0] = False
    X[gaps] = np.nan
    est = GaussianMixture(2, prior="default", missing_values="fiml", random_state=0, dtype="float64").fit(X)
    assert np.isfinite(est.lower_bound_)
    scale = est.prior_["scale"] * 2 ** (2 / 3)  # the data's covariance
    assert scale[2, 2] == pytest.approx(4 * scale[0, 0], rel=1e-6) and scale[0, 2] == pytest.approx(2 * scale[0, 0],
                                                                                                      rel=1e-6)


def test_a_prior_whose_data_moments_do_not_settle_says_so():
    """A column observed in one row leaves its variance to EM's slowest direction: the
    moments' EM ran to its cap of passes without a word."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[1:, 2] = np.nan
    with pytest.warns(ConvergenceWarning, match=r"the data's mean and covariance under missing values \(the prior's "
                      r"centre and scale\) did not settle in 500 passes"):
        GaussianMixture(2, prior="default", missing_values="fiml", random_state=0, max_iter=1000).fit(X)
