"""The command line for count data: ``bigem fit|select DATA --family multinomial``, and
``predict | score | info | sample`` of a multinomial model.

DATA is a ``.npz`` file written by ``scipy.sparse.save_npz``, a Parquet or Arrow file
(or folder, glob) of token lists (``--columns TOKENS[,COUNTS]``, or its one list column),
or files of count columns. Everything streams as it does from Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from .._core.errors import DataError, ParameterError


def add_count_options(p: argparse.ArgumentParser) -> None:
    """The multinomial family's own option (fit and select); --family and --alpha are
    every family's (see commands._fit_options)."""
    from .commands import positive_int

    p.add_argument("--vocabulary-size", type=positive_int, metavar="V",
                   help="multinomial, token lists: the number of words, ids 0..V-1 (default: the largest id + 1)")


def read_vocabulary(path: str) -> list[str]:
    """The words of a text file, one per line (UTF-8; a trailing newline adds no word).
    Lines end at \n (or \r\n) only: a word may hold any other character, U+2028 and
    \x85 among them, which str.splitlines would break it at."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line[:-1] if line.endswith("\r") else line for line in lines]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"--vocabulary {path}: cannot be read as UTF-8 text ({e}); give a text file of the words, "
                        "one per line") from None


@dataclasses.dataclass
class Counts:
    """DATA as the estimator reads it (a path, or a Tokens spec with its vocabulary size)."""

    X: object
    columns: list[str] | None
    n_rows: int
    n_features: int
    path: str
    weight: str | None = None


def read_counts(path: str, columns: list[str] | None = None, weight: str | None = None,
                vocabulary_size: int | None = None, n_features: int | None = None, *,
                delimiter: str | None = None, header: bool = True) -> Counts:
    """Open DATA as count rows to learn its size (token lists: their vocabulary, found once
    and passed on, so the fit does not search it again). ``delimiter`` and ``header`` say
    how to read CSV, as for the other families (refused for other data)."""
    from ..sources.counts import open_counts
    from ..sources.tokens import TokenSource
    from ._io import check_exists, data_spec

    check_exists(path)
    X = data_spec(path, delimiter, header)
    if vocabulary_size is not None:
        X = _tokens_spec(path, columns, vocabulary_size)
        columns = None
    source = open_counts(X, dtype=torch.float64, device=torch.device("cpu"), memory_budget=64 << 20, columns=columns,
                         sample_weight=weight, n_features=n_features)
    inner = getattr(source, "inner", None)
    if isinstance(inner, TokenSource):
        X, columns = dataclasses.replace(inner.spec, vocabulary_size=inner.n_features), None
    return Counts(X, columns, int(source.n_rows), int(source.n_features), path, weight)


def _tokens_spec(path: str, columns: list[str] | None, vocabulary_size: int):
    from ..sources.counts import Tokens
    from ..sources.tokens import list_columns

    lists = list_columns(path)
    if not lists:
        raise DataError(f"{path}: --vocabulary-size applies to token lists (Parquet or Arrow list columns), and this "
                        "data set has none; drop it (a matrix says its own width)")
    if columns is None:
        if len(lists) != 1:
            raise DataError(f"{path}: has list columns {lists}; say which holds the word ids and which their counts "
                            f"with --columns {lists[0]},{lists[1]}")
        columns = lists[:1]
    if len(columns) > 2 or any(c not in lists for c in columns):
        raise DataError(f"--columns {','.join(columns)}: token lists are read from --columns TOKENS[,COUNTS], list "
                        f"columns of {path} (it has {lists})")
    return Tokens(path, columns[0], columns[1] if len(columns) == 2 else None, vocabulary_size)


def _params(args) -> dict:
    from .commands import _estimator_params

    from ..estimators import MultinomialMixture

    return _estimator_params(args, MultinomialMixture)  # --missing fiml is refused with the family (commands._family)


def run_fit(args) -> int:
    from ..estimators import MultinomialMixture
    from ..estimators.selection import criteria
    from ._io import check_output
    from .commands import _check_k, _csv, _emit, _progress

    check_output(args.output, (args.data,), what="model")
    params = _params(args)
    data = read_counts(args.data, args.columns, args.sample_weight, args.vocabulary_size, **_csv(args))
    _check_k([args.k], data)
    started = time.perf_counter()
    est = MultinomialMixture(args.k, **params)
    with _progress(args, "fit") as progress:
        est.fit(data.X, columns=data.columns, sample_weight=data.weight, callback=progress)
    seconds = time.perf_counter() - started
    c = criteria(est, data.X, sample_weight=data.weight, columns=data.columns)
    est.save(args.output)
    payload = dict(
        model=args.output, family="multinomial", n_components=args.k, alpha=est.alpha, n_rows=data.n_rows,
        n_features=data.n_features, converged=bool(est.converged_), n_iter=int(est.n_iter_),
        n_passes=int(est.n_passes_), mean_log_likelihood=c["log_likelihood"] / c["weight"],
        log_likelihood=c["log_likelihood"], n_parameters=c["n_parameters"], bic=c["bic"], aic=c["aic"], icl=c["icl"],
        seconds=seconds, weights=est.weights_.tolist(),
    )
    text = (
        f"fitted K={args.k} multinomial to {data.n_rows:,} documents x {data.n_features:,} words of {args.data} "
        f"in {seconds:.2f}s: {'converged' if est.converged_ else 'NOT converged'} after {est.n_iter_} "
        f"{'passes (SQUAREM)' if args.accelerate else 'iterations'}\n"
        f"mean log-likelihood {payload['mean_log_likelihood']:.6f}   BIC {c['bic']:.6g}   AIC {c['aic']:.6g}   "
        f"(lower is better; {c['n_parameters']} free parameters)\n"
        f"weights {np.array2string(est.weights_, precision=3)}\n"
        f"wrote {args.output}"
    )
    _emit(args, payload, text)
    return 0


def run_select(args) -> int:
    from ..estimators.selection import select
    from ._io import check_output
    from .commands import _check_k, _check_picture, _csv, _emit, _progress, _write_selection

    check_output(args.output, (args.data,), what="model")
    if args.table:
        check_output(args.table, (args.data, args.output), (".csv",), what="table")
    if args.plot:
        _check_picture(args.plot, (args.data, args.output))
    params = _params(args)
    data = read_counts(args.data, args.columns, args.sample_weight, args.vocabulary_size, **_csv(args))
    _check_k(args.k, data)
    with _progress(args, "select") as progress:
        result = select(data.X, args.k, None, args.criterion, family="multinomial", sample_weight=data.weight,
                        columns=data.columns, callback=progress, **params)
        progress.close()
    _write_selection(result, args)
    b = result.best_
    payload = dict(model=args.output, family="multinomial", criterion=args.criterion, best=b, table=result.table,
                   n_rows=data.n_rows)
    text = (
        f"{len(result.table)} candidates on {data.n_rows:,} documents of {args.data} ({args.criterion.upper()}, "
        f"lower is better):\n{result.format_table()}\n"
        f"chosen: K={b['n_components']} ({args.criterion.upper()} {b[args.criterion]:.8g}); wrote {args.output}"
        + (f", {args.table}" if args.table else "") + (f", {args.plot}" if args.plot else "")
    )
    _emit(args, payload, text)
    return 0


def _model_counts(est, args) -> Counts:
    from .commands import _csv

    return read_counts(args.data, args.columns, n_features=int(est.n_features_in_), **_csv(args))


def run_predict(est, args) -> int:
    data = _model_counts(est, args)
    output = "proba" if args.proba else "log_density" if args.score else "label"
    est.write_predictions(data.X, args.output, outputs=(output,), columns=data.columns)
    what = "probabilities" if args.proba else "log-densities" if args.score else "labels"
    print(f"wrote {what} of {data.n_rows:,} rows to {args.output}")
    return 0


def run_score(est, args) -> int:
    from ..estimators.selection import criteria
    from .commands import _emit, score_report

    data = _model_counts(est, args)
    _emit(args, *score_report(criteria(est, data.X, columns=data.columns), data.n_rows, "documents"))
    return 0


def run_info(est, args) -> int:
    K, D = int(est.n_components), int(est.n_features_in_)
    names = getattr(est, "feature_names_in_", None)
    words = [str(n) for n in names] if names is not None else [str(j) for j in range(D)]
    payload = dict(kind="MultinomialMixture", family="multinomial", n_components=K, n_features=D, alpha=est.alpha,
                   converged=bool(est.converged_), n_iter=int(est.n_iter_), lower_bound=float(est.lower_bound_),
                   n_parameters=int(est._n_parameters()), weights=est.weights_.tolist(),
                   mean_lengths=est.mean_lengths_.tolist(), probabilities=est.probabilities_.tolist())
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    lines = [
        f"{args.model}: multinomial mixture, K={K}, vocabulary of {D:,} words, alpha={est.alpha:g}",
        f"fit: {'converged' if est.converged_ else 'NOT converged'} after {est.n_iter_} iterations, "
        f"lower bound {est.lower_bound_:.6f} (the mean log-likelihood entering the last iteration, before its "
        f"M-step; bigem score gives the fitted model's), {payload['n_parameters']} free parameters",
    ]
    for k in range(K):
        top = np.argsort(-est.probabilities_[k], kind="stable")[:6]
        most = ", ".join(f"{words[j]} ({est.probabilities_[k, j]:.3f})" for j in top)
        lines.append(f"  component {k}: weight {est.weights_[k]:.4f}  mean length {est.mean_lengths_[k]:.1f}  "
                     f"most likely words {most}")
    print("\n".join(lines))
    return 0


def run_sample(est, args) -> int:
    """Documents drawn from the model, to a .npz sparse matrix (--labels, a column beside
    dense rows, is refused)."""
    from .._core.optional import require

    sp = require("scipy.sparse", "bigem sample of a multinomial model")

    from ..io.files import write_atomically

    if not args.output.lower().endswith(".npz"):
        raise ParameterError(f"{args.output}: documents drawn from a multinomial mixture are a sparse matrix; write "
                             "them to a .npz file (scipy.sparse.save_npz)")
    if args.labels:
        raise ParameterError("--labels writes a column beside dense rows; a sample of documents is a sparse matrix: "
                             "drop --labels")
    est.set_params(random_state=args.seed)
    X, _ = est.sample(args.n)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            sp.save_npz(f, X, compressed=True)

    write_atomically(args.output, write)
    print(f"wrote {args.n:,} documents x {X.shape[1]:,} words to {args.output}")
    return 0
