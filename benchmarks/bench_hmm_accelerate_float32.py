"""Passes of accelerated HMMs in float32 and float64: plain Baum-Welch (hmmlearn's monitor,
which stops at the first fall of the likelihood) against SQUAREM (which stops when the
likelihood moves by less than tol, or at the first fall of a plain step's penalised
objective within the rounding of the dtype), and how far each ends below the optimum.

GaussianHMM (3 states, diag, 4 sequences of 400 rows) and CategoricalHMM under Dirichlet
priors (3 states, 4 symbols, 4 sequences of 500). "gap": the objective (the total
log-likelihood; under the priors, plus their log-density) of float64 SQUAREM at tol=1e-9
less the fit's. Counts, not times: a pass costs the same either way.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_hmm_accelerate_float32.py
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def _chain(rng, A, n):
    states = [0]
    for _ in range(n - 1):
        states.append(rng.choice(len(A), p=A[states[-1]]))
    return np.array(states)


def _cases(rng):
    import bigem

    A = np.array([[.9, .05, .05], [.1, .8, .1], [.05, .15, .8]])
    states = _chain(rng, A, 1600)
    gaussian = np.array([[0, 0], [1, 1], [2, 0]])[states] + rng.normal(size=(1600, 2))
    states = _chain(rng, A, 2000)
    emit = np.array([[.7, .1, .1, .1], [.1, .6, .2, .1], [.25, .25, .25, .25]])
    symbols = np.array([rng.choice(4, p=emit[k]) for k in states])[:, None]
    yield ("GaussianHMM", gaussian, [400] * 4, lambda m: m.score(gaussian, [400] * 4),
           lambda **kw: bigem.GaussianHMM(3, covariance_type="diag", random_state=1, n_iter=5000, **kw))
    yield ("CategoricalHMM, priors", symbols, [500] * 4,  # Dirichlet(2): one more count of each
           lambda m: m.score(symbols, [500] * 4) + np.log(m.transmat_).sum() + np.log(m.emissionprob_).sum(),
           lambda **kw: bigem.CategoricalHMM(3, emissionprob_prior=2.0, transmat_prior=2.0, random_state=1,
                                             n_iter=5000, **kw))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tols", default="1e-2,1e-4,1e-8")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("bigem").setLevel(logging.ERROR)  # hmmlearn's "not converging" lines
    print(f"{'model':>22} {'tol':>6} {'dtype':>8} {'plain passes':>13} {'gap':>9} {'squarem passes':>15} {'gap':>9}")
    for name, X, lengths, objective, make in _cases(np.random.default_rng(0)):
        best = objective(make(dtype="float64", accelerate="squarem", tol=1e-9).fit(X, lengths))

        def gap(m):
            return best - objective(m)

        for tol in (float(t) for t in args.tols.split(",")):
            for dtype in ("float32", "float64"):
                plain = make(dtype=dtype, tol=tol).fit(X, lengths)
                fast = make(dtype=dtype, accelerate="squarem", tol=tol).fit(X, lengths)
                print(f"{name:>22} {tol:>6g} {dtype:>8} {plain.n_passes_:>13} {gap(plain):>9.1e} "
                      f"{fast.n_passes_:>15} {gap(fast):>9.1e}")


if __name__ == "__main__":
    main()
