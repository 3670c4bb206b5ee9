"""Missing values (missing_values="fiml"): what the gaps cost, what they buy, StepMix, memory.

One run, four parts, every comparison on the same data and from the same start:

1. cost: the time of one EM iteration with 10% of the entries missing completely at
   random, against the same data complete (N=1e6, D=16, K=8, full covariance, the
   default float32; best and median of ITERS iterations, after a warm-up fit; and the
   minor page faults an iteration adds, pages the C allocator mapped afresh, which made
   the spread of the gaps' cost before their scratch moved to workspaces). Target:
   at most 3x.
2. accuracy: 30% of the entries of columns 1..D-1 missing at random (the chance of a
   gap rises with column 0, always observed: MAR, not MCAR), in each covariance type,
   data drawn from a known mixture of that type (K=3, D=4). The parameter error against
   the truth of three fits started at the truth and run to convergence in float64:
   FIML; complete-case analysis (rows with a gap dropped); mean imputation (each gap
   set to its column's observed mean) then an ordinary fit. Target: FIML best in every
   covariance type.
3. StepMix: its FIML for diagonal Gaussians (measurement "gaussian_diag_nan") against
   bigem's, per iteration, same data (N=1e6, D=16, K=8, 10% MCAR) and start: StepMix's
   E- and M-step run by hand (its fit loop's body), bigem's own per-iteration clock, in
   float64 (like for like) and float32. Target: at least 10x. StepMix's categorical
   FIML ("categorical_nan") has no counterpart: bigem has no categorical mixture.
4. memory: one streamed iteration (cache off) over a Parquet data set with 10% nulls
   and over the same rows without nulls, each in its own process: peak RSS bounded by
   the chunk, with or without gaps.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_missing.py [--quick] [--parts 1,2,3,4]

--quick shrinks every size (N=1e5, 2e4 rows per fit in part 2, 2e5 Parquet rows) to
check that the script runs; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

import _common
from _common import peak_rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")
ITERS = 5


# ------------------------------------------------------------------------ data
def mixture(rng, k: int, d: int, covariance_type: str):
    """Weights, means and full covariance matrices of a mixture of the given type."""
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(0, 2.5, (k, d))

    def full():
        a = rng.normal(size=(d, d))
        return a @ a.T / d + 0.3 * np.eye(d)

    if covariance_type == "full":
        covs = np.stack([full() for _ in range(k)])
    elif covariance_type == "tied":
        covs = np.repeat(full()[None], k, 0)
    elif covariance_type == "diag":
        covs = np.stack([np.diag(rng.uniform(0.5, 2.0, d)) for _ in range(k)])
    else:
        covs = np.stack([rng.uniform(0.5, 2.0) * np.eye(d) for _ in range(k)])
    return weights, means, covs


def draw(rng, n: int, weights, means, covs) -> np.ndarray:
    labels = rng.choice(len(weights), n, p=weights)
    chol = np.linalg.cholesky(covs)
    return means[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, means.shape[1])))


def mcar(rng, X: np.ndarray, rate: float) -> np.ndarray:
    """X with each entry missing with probability ``rate`` (rows left with nothing redrawn)."""
    gappy = X.copy()
    gappy[rng.random(X.shape) < rate] = np.nan
    empty = np.isnan(gappy).all(1)
    gappy[empty, 0] = X[empty, 0]
    return gappy


def mar(rng, X: np.ndarray, rate: float) -> np.ndarray:
    """Columns 1..D-1 missing with probability sigmoid(a + 2 z), z column 0 standardised
    (always observed), a set so that ``rate`` of those entries are missing."""
    z = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()
    lo, hi = -20.0, 20.0
    for _ in range(60):  # bisection on the intercept
        a = (lo + hi) / 2
        lo, hi = (a, hi) if (1 / (1 + np.exp(-(a + 2 * z)))).mean() < rate else (lo, a)
    p = 1 / (1 + np.exp(-(a + 2 * z)))
    gappy = X.copy()
    gappy[:, 1:][rng.random((len(X), X.shape[1] - 1)) < p[:, None]] = np.nan
    return gappy


def start(rng, means, covs, covariance_type: str) -> dict:
    """A rough common start: equal weights, the means moved by noise, unit precisions."""
    k, d = means.shape
    prec = {"full": np.repeat(np.eye(d)[None], k, 0), "tied": np.eye(d), "diag": np.ones((k, d)),
            "spherical": np.ones(k)}[covariance_type]
    return dict(weights_init=np.full(k, 1 / k), means_init=means + rng.normal(0, 0.3, means.shape), precisions_init=prec)


# ------------------------------------------------------------------------ part 1
def cost(quick: bool) -> None:
    from bigem import GaussianMixture

    n, d, k = (100_000 if quick else 1_000_000), 16, 8
    rng = np.random.default_rng(1)
    w, m, c = mixture(rng, k, d, "full")
    X = draw(rng, n, w, m, c).astype(np.float32)
    gappy = mcar(rng, X, 0.10)
    kw = dict(n_components=k, covariance_type="full", tol=0.0, **start(rng, m, c, "full"))

    def faults() -> int:  # minor page faults so far: pages mapped afresh (resource is Unix-only)
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def per_iteration(data, missing):
        GaussianMixture(**kw, max_iter=1, missing_values=missing).fit(data)  # warm-up
        before = faults()
        GaussianMixture(**kw, max_iter=1, missing_values=missing).fit(data)
        one = faults() - before
        before = faults()
        times = GaussianMixture(**kw, max_iter=ITERS, missing_values=missing).fit(data).history_[0]["seconds"]
        extra = (faults() - before - one) / (ITERS - 1)  # a fit's own faults cancel
        return min(times), statistics.median(times), max(extra, 0.0)

    complete = per_iteration(X, "error")
    gaps = per_iteration(gappy, "fiml")
    print(f"\n1. cost of the gaps: N={n:,} D={d} K={k} full, float32, {np.isnan(gappy).mean():.1%} of entries MCAR "
          f"(target <= 3x)")
    print(f"   {'':24s}{'best s/iter':>12s}{'median':>10s}{'faults/iter':>13s}")
    print(f"   {'complete data':24s}{complete[0]:12.4f}{complete[1]:10.4f}{complete[2]:13.0f}")
    print(f"   {'10% missing, fiml':24s}{gaps[0]:12.4f}{gaps[1]:10.4f}{gaps[2]:13.0f}")
    print(f"   ratio (best): {gaps[0] / complete[0]:.2f}x   (median): {gaps[1] / complete[1]:.2f}x")


# ------------------------------------------------------------------------ part 2
def precisions(covs: np.ndarray, covariance_type: str) -> np.ndarray:
    """The precisions_init of full covariance matrices of the given type."""
    return {"full": lambda: np.linalg.inv(covs), "tied": lambda: np.linalg.inv(covs[0]),
            "diag": lambda: 1 / np.diagonal(covs, axis1=1, axis2=2), "spherical": lambda: 1 / covs[:, 0, 0]}[covariance_type]()


def full_covariances(est) -> np.ndarray:
    k, d = est.means_.shape
    c = np.asarray(est.covariances_)
    return {"full": lambda: c, "tied": lambda: np.repeat(c[None], k, 0),
            "diag": lambda: np.stack([np.diag(v) for v in c]),
            "spherical": lambda: c[:, None, None] * np.eye(d)}[est.covariance_type]()


def errors(est, weights, means, covs) -> tuple[float, float, float]:
    """Largest weight error, RMS mean error, mean relative Frobenius covariance error."""
    cov = full_covariances(est)
    rel = np.linalg.norm(cov - covs, axis=(1, 2)) / np.linalg.norm(covs, axis=(1, 2))
    return float(np.abs(est.weights_ - weights).max()), float(np.sqrt(((est.means_ - means) ** 2).mean())), float(rel.mean())


def accuracy(quick: bool) -> None:
    from bigem import GaussianMixture

    n, d, k = (20_000 if quick else 200_000), 4, 3
    print(f"\n2. accuracy at 30% missing (MAR) in columns 1..{d - 1}: N={n:,} D={d} K={k}, float64, started at the truth "
          "(target: fiml best everywhere)")
    print(f"   {'covariance':11s}{'method':16s}{'rows':>9s}{'weights':>10s}{'means':>10s}{'covs':>10s}")
    for ct in ("full", "tied", "diag", "spherical"):
        rng = np.random.default_rng({"full": 11, "tied": 12, "diag": 13, "spherical": 14}[ct])
        w, m, c = mixture(rng, k, d, ct)
        X = mar(rng, draw(rng, n, w, m, c), 0.30)
        truth = dict(weights_init=w, means_init=m, precisions_init=precisions(c, ct))
        kw = dict(n_components=k, covariance_type=ct, dtype="float64", tol=1e-9, max_iter=2000, **truth)
        complete_rows = X[~np.isnan(X).any(1)]
        filled = np.where(np.isnan(X), np.nanmean(X, 0), X)
        fits = {
            "fiml": (GaussianMixture(**kw, missing_values="fiml").fit(X), len(X)),
            "complete-case": (GaussianMixture(**kw).fit(complete_rows), len(complete_rows)),
            "mean-imputed": (GaussianMixture(**kw).fit(filled), len(X)),
        }
        for name, (est, rows) in fits.items():
            ew, em, ec = errors(est, w, m, c)
            print(f"   {ct:11s}{name:16s}{rows:9,d}{ew:10.4f}{em:10.4f}{ec:10.4f}")


# ------------------------------------------------------------------------ part 3
def stepmix_side_by_side(quick: bool) -> None:
    try:
        from stepmix.stepmix import StepMix
    except ImportError:
        print("\n3. StepMix: not installed (pip install stepmix); skipped")
        return
    from bigem import GaussianMixture

    n, d, k = (100_000 if quick else 1_000_000), 16, 8
    rng = np.random.default_rng(3)
    w, m, c = mixture(rng, k, d, "diag")
    X = mcar(rng, draw(rng, n, w, m, c), 0.10)
    s = start(rng, m, c, "diag")
    variances = 1 / s["precisions_init"]

    ref = StepMix(n_components=k, measurement="gaussian_diag_nan", n_init=1, max_iter=1, verbose=0, progress_bar=0,
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X)  # builds its measurement model; then back to the common start
    ref.weights_ = s["weights_init"].copy()
    ref._mm.parameters["means"] = s["means_init"].copy()
    ref._mm.parameters["covariances"] = variances.copy()
    times = []
    for _ in range(ITERS):
        started = time.perf_counter()
        _, log_resp = ref._e_step(X)
        ref._m_step(X, np.exp(log_resp))
        times.append(time.perf_counter() - started)
    theirs = min(times)

    ours = {}
    for dtype in ("float64", "float32"):
        kw = dict(n_components=k, covariance_type="diag", missing_values="fiml", dtype=dtype, tol=0.0, reg_covar=0.0, **s)
        GaussianMixture(**kw, max_iter=1).fit(X)  # warm-up
        ours[dtype] = min(GaussianMixture(**kw, max_iter=ITERS).fit(X).history_[0]["seconds"])
    print(f"\n3. StepMix gaussian_diag_nan vs bigem diag fiml: N={n:,} D={d} K={k}, 10% MCAR, best s/iter of {ITERS} "
          "(target >= 10x)")
    print(f"   StepMix (float64)   {theirs:10.4f}")
    for dtype, t in ours.items():
        print(f"   bigem   ({dtype})   {t:10.4f}   {theirs / t:6.1f}x")


# ------------------------------------------------------------------------ part 4
def parquet(rows: int, with_nulls: bool) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d, k = 16, 8
    path = os.path.join(DATA, f"missing-{rows}x{d}-{'nulls' if with_nulls else 'complete'}.parquet")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    rng = np.random.default_rng(4)
    w, m, c = mixture(rng, k, d, "diag")
    names = [f"x{j}" for j in range(d)]
    with pq.ParquetWriter(path + ".tmp", pa.schema([(n, pa.float32()) for n in names])) as writer:
        for begin in range(0, rows, 1_000_000):
            x = draw(np.random.default_rng(100 + begin), min(1_000_000, rows - begin), w, m, c).astype(np.float32)
            gaps = mcar(np.random.default_rng(200 + begin), x, 0.10) if with_nulls else x
            writer.write_table(pa.table({n: pa.array(gaps[:, j], mask=np.isnan(gaps[:, j])) for j, n in enumerate(names)}))
    os.replace(path + ".tmp", path)
    return path


def worker(spec: dict) -> dict:
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from bigem import GaussianMixture

    d, k = 16, 8
    rng = np.random.default_rng(5)
    init = dict(weights_init=np.full(k, 1 / k), means_init=rng.normal(0, 2.5, (k, d)), precisions_init=np.ones((k, d)))
    gm = GaussianMixture(k, covariance_type="diag", max_iter=1, tol=0.0, cache_budget=0, missing_values=spec["missing"],
                         **init).fit(spec["path"])
    return dict(seconds=gm.history_[0]["seconds"][0], peak_rss_mb=peak_rss_mb())


def memory(quick: bool) -> None:
    rows = 200_000 if quick else 10_000_000
    print(f"\n4. memory: one streamed iteration (cache off), K=8 diag, {rows:,} x 16 float32 Parquet rows")
    for label, nulls, missing in (("without nulls", False, "error"), ("10% nulls, fiml", True, "fiml")):
        r = _common.run_worker(__file__, {"path": parquet(rows, nulls), "missing": missing})
        print(f"   {label:18s} {r['seconds']:8.3f} s   peak RSS {r['peak_rss_mb']:8.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that the script runs")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run (default 1,2,3,4)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import json

        print(json.dumps(worker(json.loads(args.worker))))
        return
    warnings.simplefilter("ignore")  # fixed iteration counts do not converge, by design
    parts = {int(p) for p in args.parts.split(",")}
    for number, part in ((1, cost), (2, accuracy), (3, stepmix_side_by_side), (4, memory)):
        if number in parts:
            part(args.quick)


if __name__ == "__main__":
    main()
