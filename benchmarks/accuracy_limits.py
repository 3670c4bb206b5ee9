"""Accuracy at the limits the README names, beside the references, in one run.

Three cases, each printed with the figures the README quotes:

1. online EM on rows sorted by cluster (three separated blobs of 20,000 rows, 1000-row
   mini-batches): mean log-likelihood after one and five passes, sorted and shuffled,
   against exact EM;
2. float32 rows of two unit clusters 1e7 apart: the far cluster's variances from bigem
   in float32 and float64 and from scikit-learn, and the PrecisionWarning's text;
3. a float32 GaussianHMM on one sequence of 1e5 steps: the total log-likelihood of five
   iterations from the same parameters, beside float64 and hmmlearn's;
4. a tied covariance of two correlated clusters 1e6 to 1e10 standard deviations apart,
   float64, reg_covar=0, started from the true means: the largest relative error of the covariance
   against the pooled within-cluster covariance (closed form, the labels known) and the
   mean log-likelihood, bigem beside scikit-learn.

Run: ``python benchmarks/accuracy_limits.py`` (a minute or two on 2 cores).
"""

from __future__ import annotations

import warnings

import numpy as np

import bigem


def online_sorted() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1, (20000, 2)) for m in (0, 10, 20)])
    print("1. online EM, three blobs sorted by cluster (mean log-likelihood)")
    for name, rows in (("sorted", X), ("shuffled", rng.permutation(X))):
        for passes in (1, 5):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm = bigem.GaussianMixture(3, algorithm="online", batch_size=1000, max_iter=passes,
                                           random_state=0).fit(rows)
            print(f"   {name:<9} {passes} pass(es): {gm.score(X):.4f}")
    print(f"   exact EM:          {bigem.GaussianMixture(3, random_state=0).fit(X).score(X):.4f}")


def far_clusters() -> None:
    from sklearn.mixture import GaussianMixture as Reference

    rng = np.random.default_rng(9)
    X = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(0, 1, (1000, 2)) + 1e7]
    print("2. two unit clusters 1e7 apart: the far cluster's variances")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = {"bigem float32": bigem.GaussianMixture(2, random_state=0).fit(X),
                "bigem float64": bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X),
                "scikit-learn": Reference(2, random_state=0).fit(X)}
    for name, gm in fits.items():
        far = int(np.argmax(gm.means_[:, 0]))
        print(f"   {name:<14} {np.round(np.diag(gm.covariances_[far]), 4).tolist()}")
    for w in caught:
        if w.category.__name__ == "PrecisionWarning":
            print(f"   warning: {w.message}")


def _hmm_histories(X: np.ndarray, start: dict, K: int) -> None:
    from hmmlearn.hmm import GaussianHMM as Reference

    models = {"hmmlearn": Reference(K, "diag", init_params="", n_iter=5, tol=-np.inf),
              "bigem float64": bigem.GaussianHMM(K, "diag", init_params="", n_iter=5, tol=-np.inf, dtype="float64"),
              "bigem float32": bigem.GaussianHMM(K, "diag", init_params="", n_iter=5, tol=-np.inf)}
    for name, model in models.items():
        for attr, value in start.items():
            setattr(model, attr, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        print(f"   {name:<14} {np.round(model.monitor_.history, 3).tolist()}")


def _chain(rng: np.random.Generator, trans: np.ndarray, n: int) -> np.ndarray:
    states = np.zeros(n, dtype=int)
    for t in range(1, n):
        states[t] = rng.choice(len(trans), p=trans[states[t - 1]])
    return states


def float32_hmm() -> None:
    n = 100_000
    print("3. GaussianHMM, one sequence of 1e5 steps: total log-likelihood of 5 iterations")
    print("   a. three states of unit spread, started away from the optimum")
    rng = np.random.default_rng(1)
    means, trans = np.array([[-2.0], [0.0], [2.0]]), np.full((3, 3), 0.05) + np.eye(3) * 0.85
    X = rng.normal(means[_chain(rng, trans, n), 0], 1.0)[:, None]
    _hmm_histories(X, dict(startprob_=np.full(3, 1 / 3), transmat_=trans, means_=means + 0.3,
                           covars_=np.full((3, 1), 1.5)), 3)
    print("   b. spreads of 1e-3, 1 and 5 in two features, started near the optimum")
    rng = np.random.default_rng(4)
    trans = np.array([[0.999, 0.001, 0.0], [0.0, 0.998, 0.002], [1e-12, 0.003, 0.997 - 1e-12]])
    means, sd = np.array([[0, 0], [10, 10], [-10, 10]], float), np.array([1e-3, 1.0, 5.0])
    states = _chain(rng, trans, n)
    X = means[states] + rng.normal(size=(n, 2)) * sd[states, None]
    _hmm_histories(X, dict(startprob_=np.array([1.0, 0.0, 0.0]), transmat_=trans, means_=means + 0.01,
                           covars_=np.ones((3, 2)) * (sd[:, None] * 1.2) ** 2), 3)


def far_tied() -> None:
    from sklearn.mixture import GaussianMixture as Reference

    print("4. tied covariance, two clusters far apart (float64): relative error, mean log-likelihood")
    rng = np.random.default_rng(3)
    mix = np.linalg.cholesky(np.eye(2) + 0.5)
    for far in (1e6, 1e8, 1e10):
        X = np.r_[rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)) @ mix.T + far]
        A, B = X[:1000], X[1000:]
        pooled = (np.cov(A.T, bias=True) + np.cov(B.T, bias=True)) / 2
        start = dict(covariance_type="tied", means_init=[A.mean(0), B.mean(0)], tol=1e-10, reg_covar=0.0)
        row = []
        for name, make in (("bigem", lambda: bigem.GaussianMixture(2, dtype="float64", **start)),
                           ("scikit-learn", lambda: Reference(2, **start))):
            try:
                gm = make().fit(X)
                error = np.abs(gm.covariances_ - pooled).max() / np.abs(pooled).max()
                row.append(f"{name} {error:.1e} {gm.score(X):.4f}")
            except Exception as exc:  # scikit-learn's fit fails where its covariance is not definite
                row.append(f"{name} failed ({type(exc).__name__})")
        print(f"   {far:.0e} apart: " + ";  ".join(row))


if __name__ == "__main__":
    online_sorted()
    far_clusters()
    float32_hmm()
    far_tied()
