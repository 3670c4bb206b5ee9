"""bigem's CategoricalMixture vs StepMix and pomegranate (latent class analysis), and
semi-supervised accuracy against the labelled rows alone, in one run.

Latent class: 1e6 rows x 20 categorical columns of 5 categories, K=8 (``--quick``:
2e4 rows). Every library starts from the same weights and probabilities (not the
truth), maximum likelihood (no pseudo-counts), float64, and runs ITERS iterations;
each runs in its own subprocess so that its peak RSS (VmHWM) is its own. Time per
iteration is the best after the first (median printed too):

- bigem: its driver's per-iteration clock (``history_[0]["seconds"]``);
- StepMix: its ``_e_step`` + ``_m_step`` run by hand from the start (its fit loop's body);
- pomegranate: ``summarize`` + ``from_summaries`` run by hand (its fit loop's body).

The mean log-likelihood of every iteration is compared with bigem's (relative
difference printed; the target is 1e-6).

With ``--gaps RATE`` that fraction of the answers is missing (completely at random):
bigem fits with ``missing_values='fiml'``, StepMix with its ``categorical_nan`` model
(the same EM), from the same start; pomegranate is left out (its missing values go
through torch's masked tensors, a prototype API).

Semi-supervised: scikit-learn's digits, binarised (pixel > 7), BernoulliMixture with
10 components, 1%, 5% and 20% of the rows labelled: accuracy on the unlabelled rows
of EM over every row (unlabeled_weight=0.1) and of the labelled rows alone
(unlabeled_weight=0: naive Bayes), mean over 5 draws of the labelled rows.

    .venv/bin/python benchmarks/bench_families.py [--quick] [--libs bigem,stepmix,pomegranate] [--device cuda]
    .venv/bin/python benchmarks/bench_families.py --gaps 0.1 --libs bigem,stepmix --no-semi
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import peak_rss_mb, run_worker  # noqa: E402

ITERS = 5
K, D, M = 8, 20, 5
LIBS = ("bigem", "stepmix", "pomegranate")


def make_data(n: int, seed: int = 0, gaps: float = 0.0):
    """Rows drawn from a random latent class model (a fraction ``gaps`` of the entries
    NaN: missing completely at random); the shared start (not the truth)."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.ones(M) * 0.5, size=(K, D))  # (K, D, M)
    z = rng.integers(0, K, n)
    X = np.empty((n, D), dtype=np.int64)
    for j in range(D):
        X[:, j] = (rng.random(n)[:, None] > truth[z, j].cumsum(1)).sum(1)
    if gaps:
        X = np.where(rng.random(X.shape) < gaps, np.nan, X)
    start = np.random.default_rng(seed + 1)
    weights = start.dirichlet(np.ones(K) * 5)
    probs = start.dirichlet(np.ones(M) * 2, size=(K, D))  # (K, D, M)
    return X, weights, probs


def run_bigem(X, weights, probs, device):
    from bigem import CategoricalMixture

    est = CategoricalMixture(K, alpha=0.0, weights_init=weights, probabilities_init=[probs[:, j] for j in range(D)],
                             tol=0.0, max_iter=ITERS, dtype="float64", device=device,
                             missing_values="fiml" if np.isnan(X).any() else "error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    return list(est.lower_bounds_), list(est.history_[0]["seconds"])


def run_stepmix(X, weights, probs, device):
    from stepmix import StepMix

    model = "categorical_nan" if np.isnan(X).any() else "categorical"
    sm = StepMix(n_components=K, measurement=model, verbose=0, progress_bar=0)
    sm.set_parameters(dict(weights=weights.copy(), measurement=dict(pis=probs.reshape(K, D * M).copy(),
                                                                    max_n_outcomes=M, total_outcomes=D * M),
                           measurement_in=D))
    Xf = X.astype(float)
    lls, secs = [], []
    for _ in range(ITERS):
        started = time.perf_counter()
        ll, log_resp = sm._e_step(Xf)
        sm._m_step(Xf, np.exp(log_resp))
        secs.append(time.perf_counter() - started)
        lls.append(float(ll))
    return lls, secs


def run_pomegranate(X, weights, probs, device):
    import torch
    from pomegranate.distributions import Categorical
    from pomegranate.gmm import GeneralMixtureModel

    torch.set_default_dtype(torch.float64)
    dists = [Categorical(torch.tensor(probs[k])) for k in range(K)]
    model = GeneralMixtureModel(dists, priors=torch.tensor(weights), max_iter=ITERS, tol=0.0)
    Xt = torch.tensor(X)
    if device != "cpu":
        model, Xt = model.to(device), Xt.to(device)
    lls, secs = [], []
    for _ in range(ITERS):
        started = time.perf_counter()
        logp = model.summarize(Xt)
        model.from_summaries()
        if device != "cpu":
            torch.cuda.synchronize()
        secs.append(time.perf_counter() - started)
        lls.append(float(logp) / len(X))
    return lls, secs


def worker(spec: dict) -> dict:
    X, weights, probs = make_data(spec["n"], gaps=spec.get("gaps", 0.0))
    fn = {"bigem": run_bigem, "stepmix": run_stepmix, "pomegranate": run_pomegranate}[spec["lib"]]
    lls, secs = fn(X, weights, probs, spec["device"])
    return dict(lib=spec["lib"], lls=lls, seconds=secs, peak_rss_mb=peak_rss_mb())


def latent_class(n: int, libs: list[str], device: str, gaps: float = 0.0) -> None:
    missing = f", {gaps:.0%} of the answers missing (bigem fiml, StepMix categorical_nan)" if gaps else ""
    print(f"latent class: {n:,} rows x {D} columns x {M} categories, K={K}, {ITERS} iterations, float64, same "
          f"start{missing}")
    results = {}
    for lib in libs:
        if gaps and lib == "pomegranate":
            print("  pomegranate: left out (missing values through torch's masked tensors)")
            continue
        try:
            results[lib] = run_worker(__file__, dict(lib=lib, n=n, device=device, gaps=gaps))
        except RuntimeError as exc:
            print(f"  {lib}: failed ({str(exc).strip().splitlines()[-1]})")
    ref = results.get("bigem")
    print(f"  {'library':<12} {'best s/iter':>12} {'median':>10} {'peak RSS MB':>12} {'vs bigem':>9} {'max rel. diff of log-lik':>25}")
    for lib, r in results.items():
        later = r["seconds"][1:] or r["seconds"]
        best, median = min(later), statistics.median(later)
        ratio = "" if ref is None else f"{best / min(ref['seconds'][1:] or ref['seconds']):.1f}x"
        diff = "" if ref is None or lib == "bigem" else \
            f"{max(abs(a - b) / abs(b) for a, b in zip(r['lls'], ref['lls'])):.2e}"
        print(f"  {lib:<12} {best:>12.4f} {median:>10.4f} {r['peak_rss_mb']:>12.0f} {ratio:>9} {diff:>25}")


def semi_supervised(draws: int) -> None:
    from sklearn.datasets import load_digits

    from bigem import BernoulliMixture

    X, z = load_digits(return_X_y=True)
    X = (X > 7).astype(float)
    print(f"semi-supervised: digits binarised ({len(X)} rows, 64 pixels), BernoulliMixture K=10, accuracy on the "
          f"unlabelled rows, mean of {draws} draws")
    print(f"  {'labelled':>9} {'labelled rows alone':>20} {'EM, all rows':>13}")
    for fraction in (0.01, 0.05, 0.2):
        alone, semi = [], []
        for seed in range(draws):
            rng = np.random.default_rng(seed)
            y = np.full(len(z), -1)
            for c in range(10):  # at least one label per class
                rows = np.flatnonzero(z == c)
                y[rng.choice(rows, max(1, round(fraction * len(rows))), replace=False)] = c
            test = y < 0
            for weight, out in ((0.0, alone), (0.1, semi)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = BernoulliMixture(10, unlabeled_weight=weight, random_state=seed, max_iter=100).fit(X, y)
                out.append((est.predict(X[test]) == z[test]).mean())
        print(f"  {fraction:>9.0%} {np.mean(alone):>20.3f} {np.mean(semi):>13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2e4 rows and 2 draws: proves the script runs")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--device", default="cpu", help="bigem's (and pomegranate's) device")
    parser.add_argument("--gaps", type=float, default=0.0, help="fraction of the answers missing (default 0)")
    parser.add_argument("--no-semi", action="store_true", help="leave out the semi-supervised part")
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    latent_class(20_000 if args.quick else 1_000_000, args.libs.split(","), args.device, args.gaps)
    if not args.no_semi:
        semi_supervised(2 if args.quick else 5)


if __name__ == "__main__":
    main()
