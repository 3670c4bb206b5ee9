"""Multinomial text mixture: streamed EM against its floor and a plain scipy EM, in one run.

Generates (once, with a seed, under bench_data/) D documents of about L tokens each over a
vocabulary of V words, Zipfian, from K topics (half a shared Zipfian background, half
each topic's own Zipfian order of the words), stored twice: an uncompressed ``.npz``
written by ``scipy.sparse.save_npz`` and a Parquet file with a list column of word ids
and one of counts. Then, each in its own process (its peak RSS is its own) and from the
same start (the generating topics, perturbed), K components, a fixed number of
iterations (tol=0):

- floor:    one sparse matrix product over the data, ``X @ W`` with X the CSR counts in
            memory and W a dense (V, K) float32 matrix (scipy's kernel, one thread): the
            least an E-step can cost on one thread, since it must read every entry once
            (bigem's E-step takes two such products, over torch's threads);
- npz:      bigem.MultinomialMixture streamed from the .npz (cache_budget=0: every
            iteration re-reads the file), float32;
- parquet:  the same, streamed from the Parquet token lists (bigem.Tokens);
- memory:   the same on the CSR matrix in memory (float32);
- scipy:    EM written plainly with scipy.sparse and numpy in float64 on the matrix in
            memory (the reference: what one writes without bigem; scikit-learn, StepMix
            and pomegranate have no multinomial mixture), against bigem in float64 on the
            same matrix: seconds per iteration, and the log-likelihood of every iteration,
            whose largest relative gap must stay below 1e-6.

Per iteration: the median over the iterations after the first (the first also warms
the page cache and the kernels). Targets (issue #16): the streamed iteration within 2x
of the floor, and a streamed peak RSS under 2 GB at 1e6 documents x 5e4 words x 100
tokens, K=20.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_multinomial.py [--quick]
        [--docs 1e6] [--vocab 5e4] [--length 100] [--k 20] [--iters 5] [--cases floor,npz,parquet,memory,scipy]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import _common
from _common import peak_rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "bench_data")
BLOCK_DOCS = 50_000
CASES = ("floor", "npz", "parquet", "memory", "scipy")


# ---------------------------------------------------------------------------- data
def topics(V: int, K: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(weights (K,), word probabilities (K, V)): half a Zipfian background shared by
    every topic, half the topic's own Zipfian order of the words (exponent 1.07)."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, V + 1) ** 1.07
    zipf /= zipf.sum()
    theta = np.empty((K, V))
    for k in range(K):
        theta[k] = 0.5 * zipf + 0.5 * zipf[np.argsort(rng.permutation(V))]
    return rng.dirichlet(np.full(K, 5.0)), theta


def draw_block(n: int, theta: np.ndarray, weights: np.ndarray, length: float, rng) -> tuple:
    """n documents as CSR arrays (indptr int64, ids int32 sorted within rows, counts int32)."""
    K, V = theta.shape
    z = rng.choice(K, size=n, p=weights)
    sizes = rng.poisson(length, size=n)
    docs, words = [], []
    for k in range(K):
        members = np.flatnonzero(z == k)
        total = int(sizes[members].sum())
        if total:
            cdf = np.cumsum(theta[k])
            words.append(np.minimum(np.searchsorted(cdf, rng.random(total) * cdf[-1]), V - 1))
            docs.append(np.repeat(members, sizes[members]))
    key, counts = np.unique(np.concatenate(docs).astype(np.int64) * V + np.concatenate(words), return_counts=True)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // V, minlength=n), out=indptr[1:])
    return indptr, (key % V).astype(np.int32), counts.astype(np.int32)


def make_data(docs: int, V: int, length: float, K: int) -> tuple[str, str]:
    """The .npz and Parquet files of the data set (made once; reused when present)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    os.makedirs(DATA, exist_ok=True)
    stem = os.path.join(DATA, f"multinomial-{docs}-{V}-{int(length)}-{K}")
    npz, parquet = stem + ".npz", stem + ".parquet"
    if os.path.exists(npz) and os.path.exists(parquet):
        return npz, parquet
    weights, theta = topics(V, K)
    rng = np.random.default_rng(1)
    ptrs, ids, counts, offset = [np.zeros(1, dtype=np.int64)], [], [], 0
    with pq.ParquetWriter(parquet + ".part", pa.schema([("tokens", pa.list_(pa.int32())),
                                                       ("counts", pa.list_(pa.int32()))])) as writer:
        for start in range(0, docs, BLOCK_DOCS):
            ptr, i, c = draw_block(min(BLOCK_DOCS, docs - start), theta, weights, length, rng)
            offsets = pa.array(ptr.astype(np.int32))
            writer.write_table(pa.table({"tokens": pa.ListArray.from_arrays(offsets, pa.array(i)),
                                         "counts": pa.ListArray.from_arrays(offsets, pa.array(c))}))
            ptrs.append(ptr[1:] + offset)
            ids.append(i)
            counts.append(c)
            offset += len(i)
    X = sp.csr_matrix((np.concatenate(counts), np.concatenate(ids), np.concatenate(ptrs)), shape=(docs, V))
    sp.save_npz(npz + ".part.npz", X, compressed=False)
    os.replace(npz + ".part.npz", npz)
    os.replace(parquet + ".part", parquet)
    return npz, parquet


def start(V: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """The common start: the generating topics, each mixed 1:1 with a random distribution."""
    weights, theta = topics(V, K)
    noise = np.random.default_rng(7).dirichlet(np.ones(V), size=K)
    probs = 0.5 * theta + 0.5 * noise
    return np.full(K, 1.0 / K), probs / probs.sum(1, keepdims=True)


# ---------------------------------------------------------------------------- workers
def per_iteration(seconds: list[float]) -> float:
    return statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]


def run_bigem(spec: dict) -> dict:
    import scipy.sparse as sp

    from bigem import MultinomialMixture, Tokens

    V, K = spec["vocab"], spec["k"]
    w0, p0 = start(V, K)
    case = spec["case"]
    if case == "npz":
        X, cache = spec["npz"], "0"
    elif case == "parquet":
        X, cache = Tokens(spec["parquet"], "tokens", "counts", vocabulary_size=V), "0"
    else:
        X, cache = sp.load_npz(spec["npz"]), "64GB"
    dtype = spec.get("dtype", "float32")
    est = MultinomialMixture(K, tol=0.0, max_iter=spec["iters"], weights_init=w0, probabilities_init=p0,
                             cache_budget=cache, dtype=dtype, device=spec["device"])
    began = time.perf_counter()
    est.fit(X)
    total = time.perf_counter() - began
    seconds = est.history_[0]["seconds"]
    return {"per_iter": per_iteration(seconds), "total": total, "rss_mb": peak_rss_mb(),
            "loglik": est.history_[0]["log_likelihood"]}


def run_floor(spec: dict) -> dict:
    import scipy.sparse as sp

    X = sp.load_npz(spec["npz"])
    X.data = X.data.astype(np.float32)
    W = np.random.default_rng(0).random((X.shape[1], spec["k"]), dtype=np.float32)
    times = []
    for _ in range(spec["iters"]):
        began = time.perf_counter()
        X @ W
        times.append(time.perf_counter() - began)
    return {"per_iter": per_iteration(times), "rss_mb": peak_rss_mb(), "nnz": int(X.nnz)}


def run_scipy(spec: dict) -> dict:
    """EM as one writes it with scipy.sparse and numpy, float64, same start and iterations."""
    import scipy.sparse as sp
    from scipy.special import gammaln, logsumexp

    X = sp.load_npz(spec["npz"]).astype(np.float64)
    weights, theta = start(spec["vocab"], spec["k"])
    alpha = 1.0
    coef = gammaln(np.asarray(X.sum(1)).ravel() + 1) - np.bincount(
        np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)), weights=gammaln(X.data + 1), minlength=X.shape[0])
    loglik, times = [], []
    for _ in range(spec["iters"]):
        began = time.perf_counter()
        joint = X @ np.log(theta).T + np.log(weights) + coef[:, None]
        norm = logsumexp(joint, axis=1)
        loglik.append(float(norm.mean()))
        resp = np.exp(joint - norm[:, None])
        sums = np.asarray(X.T @ resp).T
        theta = (sums + alpha) / (sums.sum(1, keepdims=True) + X.shape[1] * alpha)
        weights = resp.sum(0) / X.shape[0]
        times.append(time.perf_counter() - began)
    return {"per_iter": per_iteration(times), "rss_mb": peak_rss_mb(), "loglik": loglik}


def worker(spec: dict) -> dict:
    if spec["case"] == "floor":
        return run_floor(spec)
    if spec["case"] == "scipy":
        return run_scipy(spec)
    return run_bigem(spec)


# ---------------------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=float, default=1e6)
    ap.add_argument("--vocab", type=float, default=5e4)
    ap.add_argument("--length", type=float, default=100)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--iters", type=int, default=5, help="EM iterations per fit (the first is not timed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--quick", action="store_true", help="1/20 of the documents, 1/5 of the vocabulary (smoke test)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    docs, V = int(args.docs), int(args.vocab)
    if args.quick:
        docs, V = docs // 20, V // 5
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    began = time.perf_counter()
    npz, parquet = make_data(docs, V, args.length, args.k)
    import torch

    print(f"bigem's sparse kernels on {torch.get_num_threads()} thread(s) (torch.set_num_threads / OMP_NUM_THREADS); "
          "the floor on one (scipy)")
    print(f"data: {docs} documents, vocabulary {V}, ~{args.length:g} tokens each, K={args.k}; "
          f"{os.path.getsize(npz) / 1e6:.0f} MB .npz, {os.path.getsize(parquet) / 1e6:.0f} MB Parquet "
          f"(ready in {time.perf_counter() - began:.0f} s)")
    base = {"npz": npz, "parquet": parquet, "vocab": V, "k": args.k, "iters": max(2, args.iters),
            "device": args.device}
    results = {}
    for case in cases:
        results[case] = _common.run_worker(__file__, {**base, "case": case})
        print(f"  {case:8s} {results[case]['per_iter']:8.3f} s/iteration   peak RSS {results[case]['rss_mb']:7.0f} MB",
              flush=True)
    if "scipy" in results:
        results["memory64"] = _common.run_worker(__file__, {**base, "case": "memory", "dtype": "float64"})
        print(f"  {'memory64':8s} {results['memory64']['per_iter']:8.3f} s/iteration   peak RSS "
              f"{results['memory64']['rss_mb']:7.0f} MB  (bigem in float64, against scipy)")
    print("ratios:")
    floor = results.get("floor", {}).get("per_iter")
    for case in ("npz", "parquet", "memory"):
        if case in results and floor:
            print(f"  {case} iteration / floor: {results[case]['per_iter'] / floor:.2f} (target <= 2)")
    for case in ("npz", "parquet"):
        if case in results:
            print(f"  {case} peak RSS: {results[case]['rss_mb']:.0f} MB (target < 2048 MB)")
    if "scipy" in results:
        ours, ref = results["memory64"], results["scipy"]
        gap = max(abs(a - b) / abs(b) for a, b in zip(ours["loglik"], ref["loglik"]))
        print(f"  scipy EM / bigem (float64, in memory): {ref['per_iter'] / ours['per_iter']:.2f}x per iteration; "
              f"log-likelihood per iteration agrees to {gap:.1e} relative (target 1e-6)")


if __name__ == "__main__":
    main()
