"""``bigem demo``: the textbook two-cluster example, then a million-row fit checked against the truth."""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

WARM_UP_ROWS = 50_000


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the worked example and a large synthetic fit")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the large example (default 1e6)")
    p.add_argument("--out", default="demo_fit.png",
                   help=".png or .svg of the 1-D fit (written if matplotlib is installed)")
    p.add_argument("--device", default="cpu", help="torch device for the large example")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bigem import GaussianMixture
    from bigem._core.errors import ConvergenceWarning
    from bigem._core.numerics import parse_device

    parse_device(args.device)  # fail before any work on a bad device, or a picture that cannot be written
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        from ..plot._common import FORMATS as PICTURES
        from ._io import check_output

        check_output(args.out, (), PICTURES, what="picture")
    if args.rows < 10:
        raise ValueError(f"--rows must be at least 10, got {args.rows}")

    print("== 1. The classic example: 100 points from N(0, 1.5^2) and 100 from N(5, 0.5^2), K=2 ==")
    rng = np.random.default_rng(42)
    X = np.r_[rng.normal(0.0, 1.5, 100), rng.normal(5.0, 0.5, 100)][:, None]
    gm = GaussianMixture(
        2,
        weights_init=[0.5, 0.5],
        means_init=[[0.0], [5.0]],
        precisions_init=[[[1.0]], [[1.0]]],
        dtype="float64",
        tol=1e-8,
    )
    print("each row: mean log-likelihood of the parameters entering the iteration, then the updated parameters")
    print(f"{'iter':>4} {'log-lik/row':>12} {'mean 1':>8} {'mean 2':>8} {'var 1':>8} {'var 2':>8} {'w 1':>6} {'w 2':>6}")

    def show(info) -> None:
        p = info.params
        m, v, w = p.means[:, 0].tolist(), p.covariances[:, 0, 0].tolist(), p.weights.tolist()
        print(
            f"{info.iteration:>4} {info.log_likelihood:>12.6f} {m[0]:>8.4f} {m[1]:>8.4f} "
            f"{v[0]:>8.4f} {v[1]:>8.4f} {w[0]:>6.3f} {w[1]:>6.3f}"
        )

    gm.fit(X, callback=show)
    print(f"converged={gm.converged_} after {gm.n_iter_} iterations; mean log-likelihood {gm.lower_bound_:.6f}")
    for k, part in enumerate((X[:100, 0], X[100:, 0])):
        print(
            f"  component {k}: weight {gm.weights_[k]:.4f}  mean {gm.means_[k, 0]:.4f}  "
            f"variance {gm.covariances_[k, 0, 0]:.4f}   (generated from mean {[0, 5][k]}, variance "
            f"{[2.25, 0.25][k]}; this sample's cluster: mean {part.mean():.4f}, variance {part.var():.4f})"
        )
    _picture(gm, X, args.out)

    n, d, k = args.rows, 8, 5
    print(f"\n== 2. {n:,} rows, {d} features, K={k} full covariances, generated with seed 0 ==")
    rng = np.random.default_rng(0)
    means = rng.normal(0, 6, (k, d))
    chol = np.tril(rng.normal(0, 0.4, (k, d, d)), -1) + np.eye(d)[None] * rng.uniform(0.5, 1.5, (k, 1, d))
    weights = rng.dirichlet(np.full(k, 4.0))
    labels = rng.choice(k, n, p=weights)
    Xl = (means[labels] + np.einsum("nij,nj->ni", chol[labels], rng.normal(size=(n, d)))).astype(np.float32)
    # the first fit in a process also pays one-off costs (torch's thread pool and kernels
    # starting, the allocator's first large blocks): pay them on a slice, untimed
    # (two iterations only: its "did not converge" is expected and not the user's concern)
    warm = min(n, WARM_UP_ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GaussianMixture(k, random_state=0, device=args.device, max_iter=2).fit(Xl[:warm])
    started = time.perf_counter()
    big = GaussianMixture(k, random_state=0, device=args.device).fit(Xl)
    seconds = time.perf_counter() - started
    order = [int(np.argmin(np.linalg.norm(big.means_ - m, axis=1))) for m in means]
    true_cov = chol @ np.swapaxes(chol, 1, 2)
    mean_err = np.abs(big.means_[order] - means).max()
    cov_err = (np.abs(big.covariances_[order] - true_cov).max()) / np.abs(true_cov).max()
    weight_err = np.abs(big.weights_[order] - weights).max()
    agree = (big.predict(Xl) == np.asarray(order)[labels]).mean()
    print(f"fitted in {seconds:.2f}s ({big.n_iter_} EM iterations, converged={big.converged_}, device={args.device}; "
          f"timed after an untimed warm-up fit on {warm:,} rows, which pays the first fit's one-off start-up: "
          "thread pools, kernels, the allocator's first large blocks)")
    print(f"  largest error: means {mean_err:.4f}, weights {weight_err:.4f}, covariances {cov_err:.2%} (relative)")
    print(f"  rows assigned to their true component: {agree:.2%}")
    return 0


def _picture(gm, X, path: str) -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print("(matplotlib is not installed: no picture; pip install 'bigem[plot]')")
        return
    from bigem.plot import plot_density_1d

    plot_density_1d(gm, X, path, title="bigem: two-component fit of the classic example")
    print(f"wrote {os.path.abspath(path)}")
