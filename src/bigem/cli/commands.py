"""``bigem fit | predict | score | impute | sample | select | info | plot``.

Each command checks its arguments and output paths before any work, reads data through
:mod:`bigem.cli._io`, and writes every file atomically. Human-readable results go to
stdout (``--json`` for machines), progress to stderr.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from .._core.errors import DataError, ParameterError
from ..estimators import _npy_columns as npy_columns
from ..estimators.families import FAMILIES, family_estimator
from ._io import (
    Data,
    check_distinct_outputs,
    check_exists,
    check_output,
    data_spec,
    read_data,
    sample_rows,
    write_array,
    write_columns,
    write_rows,
)
from . import multinomial as counts_cli
from ._flags import in_flags
from ._progress import Progress

COVARIANCES = ("full", "diag", "spherical", "tied")
# --family: the names of bigem.estimators.families (select's family=); 'mixed' takes a family per column
COLUMN_FAMILIES = ("gaussian", "categorical", "bernoulli", "poisson")
INITS = ("kmeans", "k-means++", "random", "random_from_data", "hc")
# mclust's models (scikit-learn's four are VII, VVI, EEE, VVV): fit and select take them too
MCLUST_COVARIANCES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
                      "E", "V")
PICTURES = (".png", ".svg")


# ----------------------------------------------------------------------------- argument types
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number in numpy's (and scikit-learn's) range [0, 2^32)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 4294967295, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def component_range(text: str) -> list[int]:
    """'3', '1..10' or '2,4,8' -> the numbers of components to try."""
    try:
        if ".." in text:
            lo, hi = (int(p) for p in text.split("..", 1))
            if lo > hi:
                raise argparse.ArgumentTypeError(f"empty range {text!r}: the start is above the end; write e.g. {hi}..{lo}")
            ks = list(range(lo, hi + 1))
        else:
            ks = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K, LO..HI or K1,K2,... (e.g. 1..10), got {text!r}") from None
    if min(ks) < 1:
        raise argparse.ArgumentTypeError(f"numbers of components must be >= 1, got {text!r}")
    return ks


def covariance_list(text: str) -> list[str] | str:
    if text == "mclust":  # mclust's 14 models (E and V for one feature)
        return "mclust"
    types = list(COVARIANCES) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in COVARIANCES + MCLUST_COVARIANCES]
    if bad or not types:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type(s) {bad or text!r}; choose from {', '.join(COVARIANCES + MCLUST_COVARIANCES)}, "
            "all or mclust")
    return types


def column_families(text: str) -> dict[str, str]:
    """NAME=FAMILY,NAME=FAMILY,...: the family of each named column (a mixed-type model)."""
    out = {}
    for item in (t.strip() for t in text.split(",")):
        name, eq, family = item.partition("=")
        if not eq or not name.strip() or family.strip() not in COLUMN_FAMILIES:
            raise argparse.ArgumentTypeError(f"expected NAME=FAMILY,... with FAMILY one of {', '.join(COLUMN_FAMILIES)}; "
                                             f"got {item!r}")
        out[name.strip()] = family.strip()
    return out


def declared_categories(text: str) -> tuple[str, list]:
    """NAME=A,B,C: one column's categories, typed as a CSV's values are (integers when
    every one is, else booleans, else numbers, else text)."""
    from ..sources.schema import text_categories

    name, eq, listed = text.partition("=")
    values = [v.strip() for v in listed.split(",")]
    if not eq or not name.strip() or not all(values):
        raise argparse.ArgumentTypeError(f"expected NAME=CATEGORY,CATEGORY,... (one column; repeat the flag for "
                                         f"another), got {text!r}")
    return name.strip(), sorted(text_categories(set(values), f"--categories {name.strip()}"))


def _declared(pairs: list[tuple[str, list]] | None) -> dict | str:
    """The --categories flags as a dict by column ('auto' for none); a column named twice
    is refused, as its one list cannot be both."""
    if not pairs:
        return "auto"
    names = [name for name, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ParameterError(f"--categories names {', '.join(twice)} more than once; give each column's whole list "
                             "in one flag")
    return dict(pairs)


def delimiter(text: str) -> str:
    """One character; '\\t' (as typed in a shell) or 'tab' is a tab."""
    text = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(text, text)
    if len(text) != 1 or text in "\n\r\"":
        raise argparse.ArgumentTypeError(f"expected one character such as ';' or '\\t' (tab), got {text!r}")
    return text


def column_list(text: str) -> list[str]:
    cols = [c.strip() for c in text.split(",")]
    if not all(cols):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names or indices, got {text!r}")
    return cols


# ----------------------------------------------------------------------------- parsers
def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delimiter", type=delimiter, metavar="CHAR",
                   help="CSV field separator (default: a tab for .tsv files, else a comma); '\\t' or tab for a tab")
    p.add_argument("--no-header", action="store_true",
                   help="the CSV's first line is data, not names: its columns are called f0, f1, ...")


def _weight_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--sample-weight", metavar="COLUMN",
                   help=f"column of non-negative row weights (not a feature); {what} (a model fitted with "
                   "--sample-weight: pass the same column)")


def _csv(args) -> dict:
    return dict(delimiter=args.delimiter, header=not args.no_header)


def _memory_options(p: argparse.ArgumentParser) -> None:
    """How much of DATA is held at once: the estimators' chunk_size, memory_budget and
    cache_budget (defaults: chunks from 256MB in flight, and data decoded to at most 1GB
    kept in memory between passes)."""
    p.add_argument("--chunk-size", type=positive_int, metavar="ROWS",
                   help="rows per chunk read from DATA (default: from --memory-budget)")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="memory for the chunks in flight, such as 64MB (default 256MB; an HMM's batch of sequences: "
                   "128MB on the CPU)")
    p.add_argument("--cache-budget", metavar="SIZE",
                   help="DATA whose decoded size fits is kept in memory between passes (default 1GB); 0 reads the "
                   "files at every pass, for the least memory")


_MEMORY_FLAGS = {"chunk_size": "--chunk-size", "memory_budget": "--memory-budget", "cache_budget": "--cache-budget"}


def _memory_given(args) -> dict:
    """The memory flags given, as estimator parameters (sizes as typed: the estimator reads them)."""
    return {name: getattr(args, name) for name in _MEMORY_FLAGS if getattr(args, name, None) is not None}


def _fit_options(p: argparse.ArgumentParser, init: str | None = "kmeans") -> None:
    _data_options(p)
    p.add_argument("--columns", type=column_list, help="comma-separated column names to use (0-based indices for a .npy file)")
    p.add_argument("--sample-weight", metavar="COLUMN",
                   help="column of non-negative row weights (not a feature); a row of weight 2 counts twice")
    p.add_argument("--init", choices=INITS, default=init,
                   help="initialisation; hc: mclust's hierarchical start, Gaussian mixtures only (default "
                   + (f"{init})" if init else "hc for Gaussian mixtures, kmeans for the other families)"))
    p.add_argument("--n-init", type=positive_int, default=1, help="initialisations; the best is kept (default 1)")
    p.add_argument("--max-iter", type=positive_int, default=100, help="EM iterations per initialisation (default 100)")
    p.add_argument("--tol", type=non_negative_float, default=1e-3, help="convergence threshold on the mean log-likelihood (default 1e-3)")
    p.add_argument("--reg-covar", type=non_negative_float, default=None,
                   help="added to every variance (default 1e-6); the gaussian and mixed families only")
    p.add_argument("--family", choices=tuple(FAMILIES), default=None,
                   help="the columns' distribution: gaussian (default), bernoulli (0/1), categorical (latent class "
                   "analysis), poisson (counts), multinomial (documents as word counts: a .npz sparse matrix, "
                   "Parquet token lists or count columns), or mixed (a family per column; see --column-families)")
    p.add_argument("--column-families", type=column_families, metavar="NAME=FAMILY,...",
                   help="a mixed-type model's family per column (gaussian, categorical, bernoulli, poisson); the "
                   "others by type: floats gaussian, strings and booleans categorical (implies --family mixed)")
    p.add_argument("--categories", type=declared_categories, action="append", metavar="NAME=A,B,...",
                   help="a categorical column's whole list of categories, when the data may not hold them all "
                   "(repeat for each column; the others are learnt from the data)")
    p.add_argument("--alpha", type=non_negative_float, default=None,
                   help="pseudo-counts of the bernoulli, categorical, mixed and multinomial families (default 1; "
                   "0: maximum likelihood, except multinomial, which needs > 0); poisson rates take maximum likelihood")
    p.add_argument("--accelerate", action="store_const", const="squarem", default=None,
                   help="SQUAREM: the same optimum in fewer passes over the data when EM is slow "
                   "(overlapping components); --max-iter then counts passes")
    p.add_argument("--stopping", choices=("gain", "aitken", "mclust"), default="gain",
                   help="gain: stop when the mean log-likelihood rose by less than --tol (default); "
                   "aitken: when its extrapolated limit is within --tol; mclust: mclust's relative rule")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="arithmetic precision (default: the model's own, float32; float64 for the variational models)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress on stderr (default: when stderr is a terminal)")
    _memory_options(p)
    _missing_option(p, "error")


MISSING_HELP = ("fiml: empty cells (nulls, NaN) are missing values, fitted exactly as missing at random; "
                "error: refuse them")


def _missing_option(p: argparse.ArgumentParser, default: str | None) -> None:
    tail = " (default error)" if default else " (default: as the model was fitted)"
    p.add_argument("--missing", choices=("error", "fiml"), default=default, help=MISSING_HELP + tail)


def _sequence_options(p: argparse.ArgumentParser) -> None:
    seq = p.add_mutually_exclusive_group()
    seq.add_argument("--lengths", metavar="FILE.npy",
                     help="HMM models: a .npy file of sequence lengths, in row order (default: one sequence)")
    seq.add_argument("--sequence-column", metavar="NAME",
                     help="HMM models: the column of sequence ids; each run of equal ids is one sequence")


def add_parsers(sub) -> None:
    p = sub.add_parser("fit", help="fit a mixture (Gaussian by default) to a data file and save the model",
                       description="Fit a Gaussian mixture to DATA (Parquet, CSV, Arrow or .npy: a file, folder or glob) "
                       "and save it to MODEL; with --family multinomial, a mixture of multinomials to documents "
                       "(a .npz sparse matrix, Parquet token lists or count columns).")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-k", "--n-components", dest="k", type=positive_int, required=True, help="number of components")
    p.add_argument("--covariance", choices=COVARIANCES + MCLUST_COVARIANCES, default=None,
                   help="covariance type: scikit-learn's or one of mclust's models (default full; a mixed model's "
                   "Gaussian block: diag or full, default diag)")
    _fit_options(p)
    counts_cli.add_count_options(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (e.g. model.bigem)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run_fit)

    p = sub.add_parser("predict", help="labels, probabilities or log-densities of the rows of a data file",
                       description="A mixture's component (or HMM's state) of each row of DATA, its posterior "
                       "probabilities (--proba), or a mixture's log-density of each row (--score).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file: .npy, .csv or .parquet")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--proba", action="store_true",
                      help="write each component's (state's) posterior probability instead of the label "
                      "(not with --score: one output per run)")
    what.add_argument("--score", action="store_true",
                      help="write each row's log-density log p(x) instead of the label (mixtures; not with --proba)")
    p.add_argument("--columns", type=column_list, help="columns to use (default: the model's, by name when it has them)")
    p.add_argument("--id-column", metavar="NAME",
                   help="a column of DATA copied to OUT first, to join the results back (.csv or .parquet output)")
    _sequence_options(p)
    _data_options(p)
    _memory_options(p)
    _missing_option(p, None)
    p.set_defaults(run=run_predict)

    p = sub.add_parser("score", help="mean log-likelihood, BIC and AIC of a model on a data file",
                       description="A mixture's mean log-likelihood, BIC and AIC on DATA; an HMM's log-likelihood "
                       "of the sequences of DATA.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("--columns", type=column_list, help="columns to use (default: the model's)")
    _weight_option(p, "each row's log-likelihood counts that many times")
    _sequence_options(p)
    _data_options(p)
    _memory_options(p)
    _missing_option(p, None)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run_score)

    p = sub.add_parser("bootstrap", help="standard errors and intervals of a mixture's parameters",
                       description="Refit MODEL (a mixture) on N resampled versions of the rows of DATA, each started "
                       "from MODEL, and print each parameter's estimate, standard error and percentile interval.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-n", "--n-boot", dest="n_boot", type=positive_int, default=100, help="replicates (default 100)")
    p.add_argument("--method", choices=("nonparametric", "weighted", "parametric"), default="nonparametric",
                   help="rows drawn with replacement, Exp(1) weights (the weighted likelihood bootstrap), or rows "
                   "drawn from MODEL")
    p.add_argument("--level", type=float, default=0.95, help="of the percentile intervals (default 0.95)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--columns", type=column_list, help="columns to use (default: the model's)")
    _weight_option(p, "give the fit's own weights: each replicate's draws multiply them")
    _data_options(p)
    _memory_options(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run_bootstrap)

    p = sub.add_parser("structural", help="relate a latent class model's classes to outcomes or covariates",
                       description="Estimate how the classes of MODEL (a fitted mixture) relate to the COLUMNS of "
                       "DATA (read alone; MODEL reads its own columns): an outcome's mean, variance or probabilities "
                       "per class, or a covariate's log odds of each class against class 0, in one, two or three "
                       "steps (StepMix's n_steps, correction and assignment), with bootstrap standard errors.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("outcomes", metavar="COLUMNS", type=column_list,
                   help="comma-separated names of the outcome or covariate columns")
    p.add_argument("--family", default="gaussian",
                   help="the columns' family: gaussian, gaussian_unit, bernoulli, categorical (codes 0, 1, ...), "
                   "poisson or covariate; or one per column, comma-separated (default gaussian)")
    p.add_argument("--steps", type=int, choices=(1, 2, 3), default=3, help="one, two or three steps (default 3)")
    p.add_argument("--correction", choices=("none", "BCH", "ML"), default=None,
                   help="three steps: none (naive), BCH or ML (default ML)")
    p.add_argument("--assignment", choices=("modal", "soft"), default=None,
                   help="three steps: each row's most likely class, or its posterior (default modal)")
    p.add_argument("-n", "--n-boot", dest="n_boot", type=int, default=0,
                   help="bootstrap replicates for standard errors (default 0: none)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the bootstrap (default 0)")
    p.add_argument("--sample-weight", metavar="COLUMN",
                   help="column of DATA of non-negative row weights; a row of weight 2 counts twice")
    p.add_argument("-o", "--output", help="write the fitted structural model there (a .bigem model file)")
    _data_options(p)
    _memory_options(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run_structural)

    p = sub.add_parser("impute", help="write the model's columns of a data file with their missing values filled",
                       description="Write the columns of DATA that MODEL reads (its columns, or --columns), every row, "
                       "with every missing value (a null, an empty CSV field, NaN) replaced by its conditional "
                       "expectation given the row's observed values under MODEL (a mixture of Gaussian, 0/1, "
                       "categorical, count or mixed columns; a category column takes its most probable category), or "
                       "with --sample by a draw from its conditional distribution (multiple imputation: one file per "
                       "--seed). Observed values are written as they are. DATA's other columns are not written: "
                       "--id-column copies one of them first, to join the rows back.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file: .npy, .csv or .parquet, with the model's columns (named as at fit)")
    p.add_argument("--sample", action="store_true", help="draw each row's gaps from their conditional distribution")
    p.add_argument("--seed", type=seed, default=0, help="random seed of --sample (default 0)")
    p.add_argument("--columns", type=column_list, help="columns to use (default: the model's, by name when it has them)")
    p.add_argument("--id-column", metavar="NAME", help="a column of DATA copied to the output first (to join back)")
    _data_options(p)
    _memory_options(p)
    p.set_defaults(run=run_impute)

    p = sub.add_parser("sample", help="draw rows from a fitted model")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", "--n-samples", dest="n", type=positive_int, required=True, help="rows to draw")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file: .npy, .csv or .parquet (a multinomial model's documents: .npz only, a scipy "
                   "sparse matrix)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--labels", action="store_true",
                   help="also write each row's component (an HMM's state) as a last column, 'component' ('state'); "
                   ".csv or .parquet. An HMM draws one sequence of N rows")
    p.set_defaults(run=run_sample)

    p = sub.add_parser("select", help="choose K and the covariance type by BIC/AIC/ICL",
                       description="Fit every K x covariance type, print the table, save the best model.")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-k", "--n-components", dest="k", type=component_range, default=list(range(1, 11)),
                   help="numbers of components: K, LO..HI or K1,K2,... (default 1..10)")
    p.add_argument("--covariance", type=covariance_list, default=None,
                   help="comma-separated covariance types (scikit-learn's or mclust's names), all "
                   "(scikit-learn's four) or mclust (its 14 models); default all the family has")
    # selection.CRITERIA, spelled out: the parser must not import the estimators (tested equal)
    p.add_argument("--criterion", choices=("bic", "aic", "icl", "caic", "sabic"), default="bic",
                   help="lower is better (default bic)")
    p.add_argument("--keep-degenerate", action="store_true", help="let degenerate fits be chosen")
    p.add_argument("--variational", action="store_true",
                   help="also fit a BayesianGaussianMixture per covariance type (truncated at the largest K) and "
                   "report how many components it uses (never the chosen model)")
    _fit_options(p, init=None)  # hc for Gaussian mixtures (mclust's start), kmeans for the other families
    counts_cli.add_count_options(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="file for the chosen model")
    p.add_argument("--table", metavar="CSV", help="also write the table as CSV")
    p.add_argument("--plot", metavar="PICTURE", help="also draw the criterion against K (.png or .svg)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run_select)

    p = sub.add_parser("info", help="describe a model file")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(run=run_info)

    p = sub.add_parser("plot", help="draw a model over its data, its convergence, or its word profiles",
                       description="--kind fit (default): histogram and component densities for 1 feature, "
                       "scatter with 1 and 2 sigma ellipses for more. --kind convergence: log-likelihood per iteration. "
                       "--kind profile: a heatmap of each component's probability of each category (latent class "
                       "models) or of its most probable words (multinomial models).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA", nargs="?", help="data file (needed for --kind fit)")
    p.add_argument("-o", "--output", required=True, metavar="PICTURE", help=".png or .svg")
    p.add_argument("--kind", choices=("fit", "convergence", "profile"), default="fit",
                   help="fit (default), convergence, or profile: per component, the probability of each category "
                   "(latent class models) or of its most probable words (multinomial models)")
    p.add_argument("--top", type=positive_int, help="--kind profile of a multinomial model: words per component "
                   "(default: what fits 60 rows)")
    p.add_argument("--vocabulary", metavar="FILE", help="--kind profile of a multinomial model: a text file of the "
                   "words, one per line, in the columns' order (default: word ids)")
    p.add_argument("--columns", type=column_list, help="columns of DATA to use (default: the model's)")
    _data_options(p)
    p.add_argument("--pair", type=column_list, help="two model features to show (default: both, or the first two principal axes)")
    p.add_argument("--max-points", type=positive_int, default=20_000, help="rows drawn at most (a uniform sample; default 20000)")
    p.add_argument("--title", help="picture title")
    p.set_defaults(run=run_plot)


# ----------------------------------------------------------------------------- helpers
def _estimator_params(args, cls=None) -> dict:
    """The estimator's parameters from the flags; those its family does not take are left
    out (a flag given for another family is refused by ``_family``)."""
    from .._core.numerics import parse_device

    parse_device(args.device)  # a typo fails before any reading
    params = dict(
        init_params=args.init, n_init=args.n_init, max_iter=args.max_iter, tol=args.tol,
        reg_covar=1e-6 if args.reg_covar is None else args.reg_covar, random_state=args.seed, device=args.device,
        accelerate=args.accelerate,
        stopping=args.stopping, missing_values=args.missing, families=args.column_families,
        categories=_declared(args.categories),
    )
    for name in ("alpha", "dtype"):  # given, or else the model's own default
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    params.update(_memory_given(args))
    names = set(cls._param_names()) if cls is not None else set(params) - {"alpha", "families", "categories"}
    return {k: v for k, v in params.items() if k in names}


def _family(args) -> str:
    """The family that --family (and --column-families) name (a key of
    ``estimators.families.FAMILIES``); a flag that the family does not take is refused,
    naming it."""
    family = args.family or ("mixed" if args.column_families else "gaussian")
    if args.column_families and family != "mixed":
        raise ParameterError(f"--column-families gives a family per column, which --family {family} does not take; "
                             "use --family mixed (or drop --family)")
    covariance = args.covariance if isinstance(args.covariance, list) else [args.covariance]
    allowed = ({*COVARIANCES, *MCLUST_COVARIANCES, "mclust"} if family == "gaussian" else
               {"diag", "full"} if family == "mixed" else set())
    bad = [c for c in covariance if c is not None and c not in allowed]
    if bad:
        raise ParameterError(f"--covariance {','.join(bad)}: the {family} family "
                             + (f"takes {' or '.join(sorted(allowed))}" if family == "mixed" else "has no covariance type")
                             + "; drop it or pick another")
    if family == "gaussian" and args.alpha is not None:
        raise ParameterError("--alpha sets the pseudo-counts of the bernoulli, categorical, mixed and multinomial "
                             "families; a Gaussian mixture has none (its regulariser is --reg-covar)")
    if family not in ("gaussian", "mixed") and args.reg_covar is not None:
        raise ParameterError(f"--reg-covar is added to the variances of Gaussian columns, which the {family} family "
                             "does not have; drop it" + ("" if family == "poisson" else
                                                         " (its regulariser is --alpha, the pseudo-counts)"))
    if family == "poisson" and args.alpha:  # 0 is maximum likelihood, the family's own
        raise ParameterError("--alpha: the poisson family fits its rates by maximum likelihood here (pseudo-events "
                             "need pseudo-rows, PoissonMixture's beta in Python, or the prior is improper); drop it")
    if args.categories and family not in ("categorical", "mixed"):
        raise ParameterError(f"--categories lists a categorical column's categories, which --family {family} does not "
                             "have; use --family categorical or mixed, or drop it")
    if family != "multinomial" and args.vocabulary_size is not None:
        raise ParameterError("--vocabulary-size applies to --family multinomial (token lists); drop it or add the family")
    if family == "multinomial" and args.missing == "fiml":
        raise ParameterError("--missing fiml: the multinomial family reads counts, where an empty cell is a 0, not a "
                             "missing value; drop it")
    if family != "gaussian" and getattr(args, "variational", False):
        raise ParameterError("--variational adds BayesianGaussianMixture rows: --family gaussian only; drop it")
    return family


def _load(path: str, missing: str | None = None, described: bool = False, args=None):
    """MODEL, read from its file; ``missing`` (--missing) overrides how it reads gaps,
    and the memory flags of ``args`` (--chunk-size, ...) how much of DATA it holds.
    A MixtureClassifier's or StructuralModel's file is read by ``info`` only
    (``described``): the other commands take a mixture or an HMM."""
    from ..estimators import MixtureClassifier, StructuralModel, load

    est = load(path)
    if isinstance(est, MixtureClassifier) and not described:
        raise ParameterError(f"{path} holds a MixtureClassifier: on the command line bigem info describes it; "
                             "to classify rows, load it in Python (bigem.load(path).predict(X))")
    if isinstance(est, StructuralModel) and not described:
        raise ParameterError(f"{path} holds a StructuralModel: on the command line bigem info describes it; to "
                             "score rows with their outcomes, load it in Python (bigem.load(path).predict_proba(X, "
                             "Y)), and its measurement model is bigem.load(path).measurement_")
    if missing is not None:
        if "missing_values" not in est.get_params(deep=False):
            raise ParameterError(f"--missing applies to the mixtures of columns and the HMMs, and {path} holds a "
                                 f"{type(est).__name__}; drop it")
        est.set_params(missing_values=missing)
    given = {} if args is None else _memory_given(args)
    unused = [_MEMORY_FLAGS[name] for name in given if name not in est._param_names()]
    if unused:  # an HMM: its memory_budget alone
        raise ParameterError(f"{' and '.join(unused)}: {path} holds a {type(est).__name__}, which reads whole "
                             f"sequences in batches of --memory-budget; drop {'them' if len(unused) > 1 else 'it'}")
    est.set_params(**given)
    return est


def _model_data(est, args) -> Data:
    """DATA's columns for MODEL: as asked, else the model's names for a file with names
    (and the weight column, where the command has --sample-weight)."""
    path, columns = args.data, args.columns
    names = getattr(est, "feature_names_in_", None)
    indices = getattr(est, "feature_indices_", None)  # a fit on a .npy file's columns picked by index
    if columns is None and names is not None and not path.lower().endswith(".npy"):
        columns = [str(n) for n in names]
    elif columns is None and indices is not None and path.lower().endswith(".npy"):
        columns = [str(int(i)) for i in indices]
    elif indices is not None:  # other indices of the file: refused as the estimator refuses them
        npy_columns.to_read(est, path, columns)
    data = read_data(path, columns, getattr(args, "sample_weight", None), **_csv(args),
                     numeric=not getattr(est, "_has_schema", False))
    _check_width(est, path, data.n_features)
    return data


def _indices_payload(est) -> dict:
    """``info --json``'s feature_indices: a .npy file's columns the fit read by index."""
    indices = getattr(est, "feature_indices_", None)
    return {} if indices is None else {"feature_indices": [int(i) for i in indices]}


def _unnamed_columns(est) -> list[str]:
    """How ``info`` names the features of a model fitted without names: the .npy file's
    columns it read (``feature_indices_``), else x0, x1, ..."""
    indices = getattr(est, "feature_indices_", None)
    if indices is not None:
        return [f"column {int(i)}" for i in indices]
    return [f"x{j}" for j in range(est.n_features_in_)]


def _width(est) -> int:
    """The columns of data MODEL reads (an HMM of symbols counts them in n_features: 1 column)."""
    if not _is_hmm(est):
        return int(est.n_features_in_)
    return 1 if _reads_symbols(est) else int(est.n_features)


def _reads_symbols(est) -> bool:
    """Whether an HMM reads one column of symbol codes (its n_features counts the symbols)."""
    from ..estimators import CategoricalHMM

    return isinstance(est, CategoricalHMM)


def _check_width(est, path: str, n_columns: int) -> None:
    if n_columns != _width(est):
        raise DataError(
            f"{path}: has {n_columns} columns but the model was fitted on {_width(est)}; "
            "pick the model's columns with --columns"
        )


def _is_hmm(est) -> bool:
    from ..estimators.hmm import _BaseHMM

    return isinstance(est, _BaseHMM)


def _is_multinomial(est) -> bool:
    from ..estimators import MultinomialMixture

    return isinstance(est, MultinomialMixture)


KINDS = {"GaussianMixture": "Gaussian mixture", "GaussianHMM": "Gaussian HMM", "GMMHMM": "Gaussian-mixture HMM",
         "CategoricalHMM": "categorical HMM", "PoissonHMM": "Poisson HMM", "MultinomialHMM": "multinomial HMM",
         "VariationalGaussianHMM": "variational Gaussian HMM", "VariationalCategoricalHMM": "variational categorical HMM",
         "BernoulliMixture": "Bernoulli mixture",
         "CategoricalMixture": "latent class model (categorical mixture)", "PoissonMixture": "Poisson mixture",
         "MixedMixture": "mixed-type mixture"}


def _no_sequences(args, est) -> None:
    """--lengths and --sequence-column are for HMMs only."""
    given = "--lengths" if args.lengths else "--sequence-column" if args.sequence_column else None
    if given:
        raise ParameterError(f"{given} applies to HMM models, but {args.model} holds a {type(est).__name__}; drop it")


def _sequences(est, args) -> tuple[object, object, list[str] | None, int]:
    """DATA for an HMM: (X, lengths, columns, rows); the sequences from --lengths or
    --sequence-column (default: all rows are one sequence)."""
    from ..sources import sequence_lengths
    from ..sources.sequences import check_lengths

    if args.sequence_column is not None:
        check_exists(args.data)
        if args.data.lower().endswith(".npy"):
            raise DataError(f"{args.data}: a .npy file has no column names, so it has no sequence id column; "
                            "pass --lengths FILE.npy instead")
        X = data_spec(args.data, **_csv(args))
        lengths, others = sequence_lengths(X, args.sequence_column)
        fitted = getattr(est, "feature_names_in_", None)
        columns = args.columns or (None if fitted is None else [str(n) for n in fitted]) or others
        _check_width(est, args.data, len(columns))
        return X, lengths, columns, int(lengths.sum())
    data = _model_data(est, args)
    lengths = None if args.lengths is None else check_lengths(args.lengths, data.n_rows, args.data)
    return data.X, lengths, data.columns, data.n_rows


def _check_id_column(args, written: list[str], what: str) -> None:
    """--id-column needs named columns, an output with columns, and a name that is not one
    of the columns written beside it (``written``, the command's ``what``): the output
    would hold that name once, and the ids would be lost."""
    if args.id_column is None:
        return
    if args.id_column in written:
        raise ParameterError(
            f"--id-column {args.id_column}: {args.output} gets a column {args.id_column!r} of its own ({what}), so "
            "the ids would be lost; pass an id column of another name (rename it in DATA), or drop --id-column")
    if args.data.lower().endswith(".npy"):
        raise ParameterError(f"--id-column {args.id_column}: {args.data} is a .npy file, which has no column names; "
                             "drop --id-column, or read the data from Parquet or CSV")
    if args.output.lower().endswith(".npy"):
        raise ParameterError(f"--id-column adds a column, and a .npy file holds one array: write {args.output} as "
                             ".csv or .parquet, or drop --id-column")


def _predicted_columns(args, n: int, label: str = "label", classes=None) -> list[str]:
    """The columns bigem predict writes: the labels, ``n`` probabilities (one per class,
    named by its label, after a semi-supervised fit) or the log-densities."""
    from ..estimators._mixture import proba_columns

    return proba_columns(n, classes) if args.proba else ["log_density"] if args.score else [label]


def _for(est, data: Data):
    """The estimator to call on ``data``: itself, or for data without column names (a
    .npy file) a copy without the names, which it would otherwise look for; it reads the
    columns by position then, and says so, as scikit-learn warns of an array given to a
    model fitted on named columns."""
    if data.names is not None or data.columns is not None or not hasattr(est, "feature_names_in_"):
        return est
    names = [str(n) for n in est.feature_names_in_]
    names = names if len(names) <= 8 else names[:8] + ["..."]
    warnings.warn(f"{data.path} has no column names, but the model was fitted on named columns {names}: they are "
                  "read by position, so the file's columns must come in that order", UserWarning, stacklevel=2)
    bare = copy.copy(est)
    del bare.feature_names_in_
    return bare


def _check_k(ks: list[int], data: Data) -> None:
    if data.n_rows == 0:
        raise DataError(f"{data.path}: no rows; the data set is empty")
    if max(ks) > data.n_rows:
        raise DataError(
            f"-k {max(ks)} is larger than the {data.n_rows} rows of {data.path}; "
            f"use at most {data.n_rows} components"
        )


def _progress(args, label: str) -> Progress:
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    return Progress(label, args.n_init, args.max_iter, enabled=enabled)


def _emit(args, payload: dict, text: str) -> None:
    print(json.dumps(payload, indent=2) if args.json else text)


# ----------------------------------------------------------------------------- commands
def run_fit(args) -> int:
    from ..estimators.selection import criteria, degenerate_components

    family = _family(args)
    if family == "multinomial":
        return counts_cli.run_fit(args)
    check_output(args.output, (args.data,), what="model")
    cls = family_estimator(family)
    params = _estimator_params(args, cls)
    covariance = args.covariance or {"GaussianMixture": "full", "MixedMixture": "diag"}.get(cls.__name__)
    if covariance is not None:
        params["covariance_type"] = covariance
    data = read_data(args.data, args.columns, args.sample_weight, **_csv(args), numeric=cls.__name__ == "GaussianMixture")
    _check_k([args.k], data)
    started = time.perf_counter()
    est = cls(args.k, **params)
    with _progress(args, "fit") as progress:
        est.fit(data.X, columns=data.columns, sample_weight=data.weight, callback=progress)
    seconds = time.perf_counter() - started
    c = criteria(est, data.X, sample_weight=data.weight, columns=data.columns)
    collapsed = degenerate_components(est)
    est.save(args.output)
    payload = dict(
        model=args.output, kind=cls.__name__, n_components=args.k, covariance_type=covariance, n_rows=data.n_rows,
        n_features=data.n_features, converged=bool(est.converged_), n_iter=int(est.n_iter_),
        n_passes=int(est.n_passes_), mean_log_likelihood=c["log_likelihood"] / c["weight"], log_likelihood=c["log_likelihood"],
        n_parameters=c["n_parameters"], bic=c["bic"], aic=c["aic"], icl=c["icl"],
        degenerate_components=collapsed, seconds=seconds, weights=est.weights_.tolist(),
    )
    text = (
        f"fitted {'' if cls.__name__ == 'GaussianMixture' else KINDS[cls.__name__] + ' '}"
        f"K={args.k}{'' if covariance is None else ' ' + covariance} "
        f"to {data.n_rows:,} rows x {data.n_features} columns of {args.data} "
        f"in {seconds:.2f}s: {'converged' if est.converged_ else 'NOT converged'} after {est.n_iter_} "
        f"{'passes (SQUAREM)' if args.accelerate else 'iterations'}\n"
        f"mean log-likelihood {payload['mean_log_likelihood']:.6f} (of the fitted model, as bigem score reports)   "
        f"BIC {c['bic']:.6g}   AIC {c['aic']:.6g}   (lower is better; {c['n_parameters']} free parameters)\n"
        f"weights {np.array2string(est.weights_, precision=3)}\n"
        + (f"warning: components {collapsed} collapsed onto repeated values (variance at the reg_covar floor)\n"
           if collapsed else "")
        + f"wrote {args.output}"
    )
    _emit(args, payload, text)
    return 0


def run_predict(args) -> int:
    check_output(args.output, (args.data, args.model), (".npy", ".csv", ".parquet"))
    est = _load(args.model, args.missing, args=args)
    if _is_hmm(est):
        return _predict_hmm(est, args)
    _no_sequences(args, est)
    if _is_multinomial(est):
        if args.id_column is not None:  # its count sources carry no other column: refused, not dropped
            raise ParameterError(f"--id-column applies to the mixtures of columns and the HMMs, and {args.model} holds "
                                 "a MultinomialMixture, whose predictions come without ids; drop it (row i of the "
                                 "output is document i of DATA)")
        return counts_cli.run_predict(est, args)
    _check_id_column(args, _predicted_columns(args, int(est.n_components), classes=getattr(est, "classes_", None)),
                     "the predictions")
    data = _model_data(est, args)
    output = "proba" if args.proba else "log_density" if args.score else "label"
    _for(est, data).write_predictions(data.X, args.output, outputs=(output,), columns=data.columns,
                                      id_column=args.id_column)
    what = "probabilities" if args.proba else "log-densities" if args.score else "labels"
    print(f"wrote {what} of {data.n_rows:,} rows to {args.output}")
    return 0


def _predict_hmm(est, args) -> int:
    if args.score:
        raise ParameterError(
            "--score writes each row's log-density, which an HMM's rows do not have on their own (each depends on "
            "its sequence); use --proba for each state's posterior, or bigem score MODEL DATA for the log-likelihood"
        )
    _check_id_column(args, _predicted_columns(args, int(est.n_components), "state"), "the predictions")
    X, lengths, columns, n_rows = _sequences(est, args)
    # streamed a batch (or a piece of a long sequence) at a time: memory stays bounded
    est.write_predictions(X, args.output, lengths, outputs=("proba" if args.proba else "state",),
                          id_column=args.id_column, columns=columns)
    what = "state probabilities" if args.proba else "states"
    print(f"wrote {what} of {n_rows:,} rows to {args.output}")
    return 0


def _score_hmm(est, args) -> int:
    X, lengths, columns, n_rows = _sequences(est, args)
    ll = est.score(X, lengths, columns=columns)
    n_sequences = 1 if lengths is None else len(lengths)
    payload = dict(n_rows=n_rows, n_sequences=n_sequences, log_likelihood=ll, mean_log_likelihood=ll / n_rows)
    text = (f"{n_rows:,} rows in {n_sequences:,} sequence(s): log-likelihood {ll:.8g} "
            f"(mean per row {ll / n_rows:.6f}; higher is better)")
    _emit(args, payload, text)
    return 0


def run_score(args) -> int:
    from ..estimators.selection import criteria

    est = _load(args.model, args.missing, args=args)
    if args.sample_weight is not None and (_is_hmm(est) or _is_multinomial(est)):
        raise ParameterError(f"--sample-weight: {args.model} holds a {type(est).__name__}, whose score takes no row "
                             "weights; drop --sample-weight")
    if _is_hmm(est):
        return _score_hmm(est, args)
    _no_sequences(args, est)
    if _is_multinomial(est):
        return counts_cli.run_score(est, args)
    data = _model_data(est, args)
    c = criteria(_for(est, data), data.X, sample_weight=data.weight, columns=data.columns)
    _emit(args, *score_report(c, data.n_rows, "rows", _variational(est)))
    return 0


def score_report(c: dict, n_rows: int, noun: str, variational: bool = False) -> tuple[dict, str]:
    """``bigem score``'s JSON payload and text from a model's criteria on the data (every
    mixture's, the multinomial's included)."""
    payload = dict(
        # the mean per unit of weight, as fit reports it and score(X, sample_weight=) returns it
        n_rows=n_rows, mean_log_likelihood=c["log_likelihood"] / c["weight"], log_likelihood=c["log_likelihood"],
        n_parameters=c["n_parameters"], bic=c["bic"], aic=c["aic"], caic=c["caic"], sabic=c["sabic"],
        relative_entropy=None if math.isnan(c["relative_entropy"]) else c["relative_entropy"],
    )
    text = f"{n_rows:,} {noun}: mean log-likelihood {payload['mean_log_likelihood']:.6f}"
    if variational:  # scikit-learn's score; no likelihood to penalise, so no BIC or AIC (as scikit-learn)
        payload.update(n_parameters=None, bic=None, aic=None, caic=None, sabic=None)
        text += " (the variational posterior's, scikit-learn's score)"
    else:
        text += (f"\nBIC {c['bic']:.8g}   AIC {c['aic']:.8g}   CAIC {c['caic']:.8g}   SABIC {c['sabic']:.8g}   "
                 f"(lower is better; {c['n_parameters']} free parameters)")
        if payload["relative_entropy"] is not None:
            text += f"\nrelative entropy {c['relative_entropy']:.4f} (1: every row certain of its component)"
    return payload, text


def run_bootstrap(args) -> int:
    est = _load(args.model, args=args)
    if _is_hmm(est) or not hasattr(est, "bootstrap") or _variational(est):
        raise ParameterError(f"{args.model} holds a {type(est).__name__}: bigem bootstrap refits a mixture fitted by "
                             "maximum likelihood (bigem fit)")
    data = _model_data(est, args)
    weights = None if data.weight is None else _column_array(data.X, data.weight)
    result = _for(est, data).bootstrap(data.X, n_boot=args.n_boot, method=args.method, random_state=args.seed,
                                       columns=data.columns, sample_weight=weights)
    se, ci = result.se(), result.ci(args.level)
    payload = dict(n_rows=data.n_rows, n_boot=result.n_boot, method=result.method, level=args.level,
                   converged=int(result.converged.sum()), lost=int(result.lost.sum()),  # (left out of se and ci)
                   parameters={name: dict(estimate=value.tolist(), se=se[name].tolist(), lower=ci[name][0].tolist(),
                                          upper=ci[name][1].tolist()) for name, value in result.estimate.items()})
    _emit(args, payload, result.summary(args.level))
    return 0


def _column_array(X, name: str) -> np.ndarray:
    """One column of DATA, whole (a weight column: a float per row)."""
    from ..sources.inputs import named_column_blocks

    return np.concatenate([values for values, _ in named_column_blocks(X, name)])


def run_structural(args) -> int:
    from ..estimators import StructuralModel

    if args.output is not None:
        check_output(args.output, (args.data, args.model), what="model")
    if args.n_boot == 1 or args.n_boot < 0:
        raise ParameterError(f"--n-boot {args.n_boot}: give 0 (no standard errors) or at least 2 replicates")
    est = _load(args.model, args=args)
    if _is_hmm(est) or not hasattr(est, "_log_joint_rows") or _variational(est):
        raise ParameterError(f"{args.model} holds a {type(est).__name__}: bigem structural takes the classes of a "
                             "mixture fitted by maximum likelihood (bigem fit)")
    families = [f.strip() for f in args.family.split(",")]
    if len(families) not in (1, len(args.outcomes)):
        raise ParameterError(f"--family lists {len(families)} families for {len(args.outcomes)} columns; give one "
                             "for all, or one per column")
    structural = families[0] if len(families) == 1 else families
    given = [f for f, v in (("--correction", args.correction), ("--assignment", args.assignment)) if v is not None]
    if args.steps != 3 and given:
        raise ParameterError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the three-step "
                             f"estimator, and this is --steps {args.steps}; drop {'them' if len(given) > 1 else 'it'}")
    args.correction, args.assignment = args.correction or "ML", args.assignment or "modal"
    X = data_spec(args.data, args.delimiter, not args.no_header)
    correction = None if args.steps != 3 or args.correction == "none" else args.correction
    model = StructuralModel(est, structural, n_steps=args.steps, correction=correction, assignment=args.assignment)
    model.fit(X, args.outcomes, sample_weight=args.sample_weight)
    boot = None
    if args.n_boot:  # each replicate multiplies the rows' weights by its draws: the weights in memory
        weights = None if args.sample_weight is None else _column_array(X, args.sample_weight)
        boot = model.bootstrap(X, args.outcomes, n_boot=args.n_boot, random_state=args.seed, sample_weight=weights)
    if args.output is not None:
        model.save(args.output)
    rows = _structural_rows(model, args.outcomes, boot)
    payload = dict(model=args.model, data=args.data, columns=args.outcomes, families=model.families_,
                   n_steps=args.steps, correction=correction, assignment=args.assignment,
                   weights=model.weights_.tolist(), n_boot=args.n_boot, parameters=rows,
                   lower_bound=None if math.isnan(model.lower_bound_) else model.lower_bound_, output=args.output)
    how = {1: "one step", 2: "two steps"}.get(args.steps, f"three steps, {correction or 'naive'}, {args.assignment}")
    lines = [f"{', '.join(args.outcomes)} on the {len(model.weights_)} classes of {args.model} ({how})"
             + ("" if boot is None else f"; standard errors from {args.n_boot} bootstrap replicates"),
             "class weights " + "  ".join(f"{w:.4f}" for w in model.weights_)]
    for row in rows:
        values = "  ".join(f"{v:.4f}" + ("" if se is None else f" ({se:.4f})")
                           for v, se in zip(row["values"], row["se"] or [None] * len(row["values"])))
        lines.append(f"{row['column']:<12} {row['parameter']:<20} {values}")
    if args.output is not None:
        lines.append(f"wrote {args.output}")
    _emit(args, payload, "\n".join(lines))
    return 0


def _structural_rows(model, columns: list[str], boot) -> list[dict]:
    """One row per column and parameter: its value in each class, and its bootstrap
    standard error (``boot``: a BootstrapResult, or None)."""
    rows = []
    se = None if boot is None else boot.se()

    def add(column, parameter, values, errors):
        rows.append(dict(column=column, parameter=parameter, values=[float(v) for v in values],
                         se=None if errors is None else [float(e) for e in errors]))

    def pick(name, index):
        return None if se is None or name not in se else se[name][index]

    gaussian = [j for j, f in enumerate(model.families_) if f in ("gaussian", "gaussian_unit")]
    for i, j in enumerate(gaussian):
        add(columns[j], "mean", model.means_[:, i], pick("means_", (slice(None), i)))
        if model.families_[j] == "gaussian":
            add(columns[j], "variance", model.covariances_[:, i], pick("covariances_", (slice(None), i)))
    for i, j in enumerate(j for j, f in enumerate(model.families_) if f == "bernoulli"):
        add(columns[j], "P(1)", model.bernoulli_probabilities_[:, i], pick("bernoulli_probabilities_", (slice(None), i)))
    for i, j in enumerate(j for j, f in enumerate(model.families_) if f == "poisson"):
        add(columns[j], "rate", model.lambdas_[:, i], pick("lambdas_", (slice(None), i)))
    for i, j in enumerate(j for j, f in enumerate(model.families_) if f == "categorical"):
        for m in range(model.probabilities_[i].shape[1]):
            add(columns[j], f"P({m})", model.probabilities_[i][:, m], pick(f"probabilities_[{i}]", (slice(None), m)))
    def odds(values, draws):  # against class 0, whose log odds are 0; their spread over the replicates
        spread = None if draws is None else (draws - draws[:, :1]).std(axis=0, ddof=1)
        return values - values[0], spread

    draws = {} if boot is None else boot.replicates
    if model.intercept and "covariate" in model.families_:
        add("(intercept)", "log odds vs class 0", *odds(model.intercept_, draws.get("intercept_")))
    for i, j in enumerate(j for j, f in enumerate(model.families_) if f == "covariate"):
        add(columns[j], "log odds vs class 0", *odds(model.coef_[:, i], None if boot is None else draws["coef_"][:, :, i]))
    return rows


def _info_structural(est, args) -> int:
    s = est.get_params(deep=False)
    names = est.structural_names_ or [f"y{j}" for j in range(len(est.families_))]
    rows = _structural_rows(est, names, None)
    how = {1: "one step", 2: "two steps"}.get(s["n_steps"],
                                              f"three steps, {s['correction'] or 'naive'}, {s['assignment']}")
    payload = dict(kind="StructuralModel", n_steps=s["n_steps"], correction=s["correction"],
                   assignment=s["assignment"], measurement=type(est.measurement_).__name__, columns=names,
                   families=est.families_, weights=est.weights_.tolist(), parameters=rows,
                   lower_bound=None if math.isnan(est.lower_bound_) else est.lower_bound_)
    lines = [f"StructuralModel ({how}) of {', '.join(f'{n} ({f})' for n, f in zip(names, est.families_))} on the "
             f"{len(est.weights_)} classes of a {payload['measurement']}",
             "class weights " + "  ".join(f"{w:.4f}" for w in est.weights_)]
    lines += [f"{r['column']:<12} {r['parameter']:<20} " + "  ".join(f"{v:.4f}" for v in r["values"]) for r in rows]
    _emit(args, payload, "\n".join(lines))
    return 0


def run_impute(args) -> int:
    check_output(args.output, (args.data, args.model), (".npy", ".csv", ".parquet"))
    if args.id_column is not None and args.output.lower().endswith(".npy"):
        raise ParameterError(f"{args.output}: --id-column adds a column of ids, and a .npy file holds one array of "
                             "numbers; write .csv or .parquet, or drop --id-column")
    est = _load(args.model, args=args)
    if not hasattr(est, "impute"):
        raise ParameterError(f"{args.model} holds a {type(est).__name__}: bigem impute fills gaps under a mixture of "
                             "columns (Gaussian, 0/1, categorical, count or mixed: bigem fit --missing fiml)")
    names = getattr(est, "feature_names_in_", None)
    written = [str(n) for n in names] if names is not None else [f"x{j}" for j in range(_width(est))]
    _check_id_column(args, written, "one of the model's columns, with its gaps filled")
    data = _model_data(est, args)
    method = "sample" if args.sample else "mean"
    _for(est, data).impute(data.X, method=method, random_state=args.seed, columns=data.columns, out=args.output,
                           id_column=args.id_column)
    kinds = getattr(getattr(est, "_schema_", None), "kinds", ())
    what = ("draws from their conditional distributions" if args.sample else
            "their most probable categories" if kinds and set(kinds) == {"category"} else
            "conditional means (in a category column, its most probable category)" if "category" in kinds else
            "conditional means")
    print(f"wrote {data.n_rows:,} rows with their missing values replaced by {what} to {args.output}")
    return 0


def run_sample(args) -> int:
    if args.output.lower().endswith(".npz"):  # sparse documents: a multinomial model's
        check_output(args.output, (args.model,), (".npz",))
        est = _load(args.model)
        if not _is_multinomial(est):
            raise ParameterError(f"{args.output}: a .npz file holds a sparse matrix, which a multinomial model "
                                 f"samples; {args.model} holds a {type(est).__name__}: write .npy, .csv or .parquet")
        return counts_cli.run_sample(est, args)
    check_output(args.output, (args.model,), (".npy", ".csv", ".parquet"))
    if args.labels and args.output.lower().endswith(".npy"):
        raise ParameterError(f"{args.output}: --labels adds an integer column, and a .npy file holds one dtype; "
                             "write .csv or .parquet, or drop --labels")
    est = _load(args.model)
    if _is_multinomial(est):
        return counts_cli.run_sample(est, args)  # which says why a .npz is needed
    names = getattr(est, "feature_names_in_", None)
    header = [str(n) for n in names] if names is not None else [f"x{j}" for j in range(_width(est))]
    label = "state" if _is_hmm(est) else "component"
    if args.labels and label in header:
        raise ParameterError(f"--labels writes a column named {label!r}, which is already a feature's name")
    est.set_params(random_state=args.seed)
    X, labels = est.sample(args.n)  # an HMM: one sequence of n rows
    if X.dtype == object:  # categories beside numbers: one typed column each
        if args.output.lower().endswith(".npy"):
            raise ParameterError(f"{args.output}: the model draws categories (text), which a .npy file cannot hold; "
                                 "write .csv or .parquet")
        table = {h: _typed(X[:, j]) for j, h in enumerate(header)}
        write_columns(args.output, {**table, label: labels} if args.labels else table)
    elif args.labels:
        write_columns(args.output, {**{h: X[:, j] for j, h in enumerate(header)}, label: labels})
    else:
        write_array(args.output, X, header)
    print(f"wrote {args.n:,} rows x {X.shape[1] + args.labels} columns to {args.output}")
    return 0


def _typed(column: np.ndarray) -> np.ndarray:
    """An object column of sampled values as numbers where every value is one (integers,
    as integer categories and counts are drawn, as int64), else text."""
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in column):
        return column.astype(np.int64)
    try:
        return column.astype(np.float64)
    except (TypeError, ValueError):
        return column.astype(str)


def run_select(args) -> int:
    from ..estimators.selection import select

    check_distinct_outputs({"-o": args.output, "--table": args.table, "--plot": args.plot})
    family = _family(args)
    if family == "multinomial":
        args.init = args.init or "kmeans"
        return counts_cli.run_select(args)
    args.init = args.init or ("hc" if family == "gaussian" else "kmeans")
    check_output(args.output, (args.data,), what="model")
    if args.table:
        check_output(args.table, (args.data, args.output), (".csv",), what="table")
    if args.plot:
        _check_picture(args.plot, (args.data, args.output))
    cls = family_estimator(family)
    params = _estimator_params(args, cls)
    data = read_data(args.data, args.columns, args.sample_weight, **_csv(args), numeric=cls.__name__ == "GaussianMixture")
    _check_k(args.k, data)
    with _progress(args, "select") as progress:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = select(
                data.X, args.k, args.covariance, args.criterion, family=family, keep_degenerate=args.keep_degenerate,
                variational=args.variational, sample_weight=data.weight, columns=data.columns, callback=progress, **params,
            )
        progress.close()
    for message in dict.fromkeys(str(w.message) for w in caught):  # the selection's warnings, once each
        print(f"bigem select: warning: {in_flags(message)}", file=sys.stderr)
    _write_selection(result, args)
    b = result.best_
    payload = dict(
        model=args.output, criterion=args.criterion, best=b, dropped=[list(d) for d in result.dropped],
        table=[{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in result.table],
        n_rows=data.n_rows,
    )
    text = (
        f"{len(result.table)} candidates on {data.n_rows:,} rows of {args.data} ({args.criterion.upper()}, lower is better):\n"
        f"{result.format_table()}\n"
        f"chosen: K={b['n_components']}{'' if b['covariance_type'] is None else ' ' + b['covariance_type']} "
        f"({args.criterion.upper()} {b[args.criterion]:.8g}); "
        f"wrote {args.output}"
        + (f", {args.table}" if args.table else "") + (f", {args.plot}" if args.plot else "")
    )
    _emit(args, payload, text)
    return 0


def _write_selection(result, args) -> None:
    """select's model (-o), table (--table) and picture (--plot): all of them or none."""
    from ..estimators.selection import COLUMNS
    from ..io.files import written_together

    with written_together():
        result.best_estimator_.save(args.output)
        if args.table:
            write_rows(args.table, result.table, list(COLUMNS))
        if args.plot:
            from ..plot import plot_selection

            plot_selection(result, args.plot)


def run_info(args) -> int:
    est = _load(args.model, described=True)
    if type(est).__name__ == "MixtureClassifier":
        return _info_classifier(est, args)
    if type(est).__name__ == "StructuralModel":
        return _info_structural(est, args)
    if _is_hmm(est):
        return _info_hmm(est, args)
    if _is_multinomial(est):
        return counts_cli.run_info(est, args)
    if type(est).__name__ not in ("GaussianMixture", "BayesianGaussianMixture"):
        return _info_family(est, args)
    names = getattr(est, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    hyper = {k: (str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v)
             for k, v in est.get_params(deep=False).items() if k not in ("weights_init", "means_init", "precisions_init")}
    payload = dict(
        kind=type(est).__name__, n_components=int(est.n_components), covariance_type=est.covariance_type,
        n_features=int(est.n_features_in_), feature_names=names, converged=bool(est.converged_),
        n_iter=int(est.n_iter_), lower_bound=float(est.lower_bound_), n_parameters=int(est._n_parameters()),
        hyper_parameters=hyper, weights=est.weights_.tolist(), means=est.means_.tolist(),
        covariances=np.asarray(est.covariances_).tolist(),
        **({"classes": np.asarray(est.classes_).tolist()} if hasattr(est, "classes_") else {}),
        **_indices_payload(est),
    )
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
        return 0
    cols = names or _unnamed_columns(est)
    variational = _variational(est)
    kind = (f"Bayesian Gaussian mixture ({est.weight_concentration_prior_type.replace('_', ' ')} prior)"
            if variational else "Gaussian mixture")
    bound = (f"lower bound {est.lower_bound_:.6f} (the variational bound, a total over rows)" if variational
             else f"lower bound {est.lower_bound_:.6f} (the mean log-likelihood entering the last iteration, "
             f"before its M-step; bigem score gives the fitted model's), {payload['n_parameters']} free parameters")
    lines = [
        f"{args.model}: {kind}, K={est.n_components}, covariance {est.covariance_type}, "
        f"{est.n_features_in_} features ({', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''})",
        f"fit: {'converged' if est.converged_ else 'NOT converged'} after {est.n_iter_} iterations, {bound}",
        "settings: " + ", ".join(f"{k}={hyper[k]}" for k in ("n_init", "init_params", "tol", "reg_covar", "max_iter", "dtype"))
        + "".join(f", {k}={hyper[k]}" for k in ("accelerate", "stopping", "missing_values")
                  if hyper.get(k) not in (None, "gain", "error")),
    ]
    if hasattr(est, "classes_"):
        lines.append("classes: " + ", ".join(str(c) for c in est.classes_))
    sd = _component_sd(est)
    show = min(est.n_features_in_, 6)
    for k in range(est.n_components):
        mean = ", ".join(f"{v:.4g}" for v in est.means_[k, :show])
        spread = ", ".join(f"{v:.4g}" for v in sd[k, :show])
        more = ", ..." if est.n_features_in_ > show else ""
        lines.append(f"  component {k}: weight {est.weights_[k]:.4f}  mean [{mean}{more}]  sd [{spread}{more}]")
    print("\n".join(lines))
    return 0


def _info_family(est, args) -> int:
    """``bigem info`` of a Bernoulli, categorical, Poisson or mixed-type mixture: its fit,
    weights and every fitted parameter array (the categories of each categorical column)."""
    names = getattr(est, "feature_names_in_", None)
    cols = [str(n) for n in names] if names is not None else _unnamed_columns(est)
    arrays = {a: getattr(est, a) for a in est._fitted_arrays if not a.startswith("_") and a != "weights_"}
    if hasattr(est, "probabilities_") and isinstance(est.probabilities_, list):
        arrays["probabilities_"] = est.probabilities_
    hyper = {k: (str(v) if not isinstance(v, (int, float, str, bool, type(None))) else v)
             for k, v in est.get_params(deep=False).items() if not k.endswith("_init")}
    payload = dict(
        kind=type(est).__name__, n_components=int(est.n_components), n_features=int(est.n_features_in_),
        feature_names=cols if names is not None else None, converged=bool(est.converged_), n_iter=int(est.n_iter_),
        lower_bound=float(est.lower_bound_), n_parameters=int(est._n_parameters()), hyper_parameters=hyper,
        weights=est.weights_.tolist(),
        **({"families": list(est.families_)} if hasattr(est, "families_") else {}),
        **({"categories": [np.asarray(c).tolist() for c in est.categories_]} if hasattr(est, "categories_") else {}),
        **({"classes": np.asarray(est.classes_).tolist()} if hasattr(est, "classes_") else {}),
        **_indices_payload(est),
        **{a.rstrip("_"): (v.tolist() if isinstance(v, np.ndarray) else [np.asarray(b).tolist() for b in v])
           for a, v in arrays.items()},
    )
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
        return 0
    lines = [
        f"{args.model}: {KINDS.get(type(est).__name__, type(est).__name__)}, K={est.n_components}, "
        f"{est.n_features_in_} columns ({', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''})",
        f"fit: {'converged' if est.converged_ else 'NOT converged'} after {est.n_iter_} iterations, "
        f"lower bound {est.lower_bound_:.6f} (the mean log-likelihood entering the last iteration, before its "
        f"M-step; bigem score gives the fitted model's), {payload['n_parameters']} free parameters",
    ]
    if hasattr(est, "families_"):
        lines.append("families: " + ", ".join(f"{c}={f}" for c, f in zip(cols, est.families_)))
    if hasattr(est, "classes_"):
        lines.append("classes: " + ", ".join(str(c) for c in est.classes_))
    categorical = [c for c, f in zip(cols, getattr(est, "families_", ["categorical"] * len(cols))) if f == "categorical"]
    for name, cats in zip(categorical, getattr(est, "categories_", [])):
        lines.append(f"categories of {name}: " + ", ".join(str(c) for c in cats))
    for k in range(est.n_components):
        parts = []
        for attr, value in arrays.items():
            if isinstance(value, list):  # a list per column of a family (empty: no such column)
                row = np.concatenate([np.asarray(b)[k].ravel() for b in value] or [np.empty(0)])
            else:
                row = value[k].ravel()
            if row.size:
                shown = ", ".join(f"{v:.4g}" for v in row[:6])
                parts.append(f"{attr.rstrip('_')} [{shown}{', ...' if row.size > 6 else ''}]")
        lines.append(f"  component {k}: weight {est.weights_[k]:.4f}  " + "  ".join(parts))
    print("\n".join(lines))
    return 0


def _variational(est) -> bool:
    """Whether a loaded mixture is a BayesianGaussianMixture (its bound is a total; it has no BIC)."""
    from ..estimators import BayesianGaussianMixture

    return isinstance(est, BayesianGaussianMixture)


def _info_hmm(est, args) -> int:
    """An HMM's kind, states, features, fit and parameters (all of them with --json)."""
    kind, K, D = type(est).__name__, int(est.n_components), int(est.n_features)
    monitor = getattr(est, "monitor_", None)
    history = list(monitor.history) if monitor is not None else []
    hyper = {k: (v.tolist() if isinstance(v, np.ndarray) else v if isinstance(v, (int, float, str, bool, type(None)))
                 else str(v)) for k, v in est.get_params(deep=False).items()}
    public = [name.lstrip("_") for name in est._fitted_arrays]  # GaussianHMM's covars_: full matrices, as hmmlearn's
    arrays = {name.rstrip("_"): np.asarray(getattr(est, name)).tolist() for name in public}
    structure = {k: hyper[k] for k in ("covariance_type", "n_mix") if k in hyper}
    names = getattr(est, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    payload = dict(kind=kind, n_components=K, n_features=D, feature_names=names, **structure,
                   converged=bool(monitor.converged) if monitor else False, n_iter=int(monitor.iter) if monitor else 0,
                   log_likelihood=history[-1] if history else None, hyper_parameters=hyper, **arrays)
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    what = (f"{D} symbols" if _reads_symbols(est) else f"counts of {D} categories" if kind == "MultinomialHMM"
            else f"{D} features")
    shape = "".join({"covariance_type": f", covariance {v}", "n_mix": f", {v} Gaussians per state"}[k]
                    for k, v in structure.items())
    fit = (f"fit: {'converged' if payload['converged'] else 'NOT converged'} after {payload['n_iter']} iterations"
           + (f", {'lower bound' if kind.startswith('Variational') else 'log-likelihood'} {history[-1]:.8g} (the "
              "training sequences, entering the last iteration)" if history else ""))
    named = "" if names is None else f" ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
    lines = [f"{args.model}: {KINDS.get(kind, kind)}, {K} states{shape}, {what}{named}", fit,
             "settings: " + ", ".join(f"{k}={hyper[k]}" for k in ("n_iter", "tol", "params", "init_params", "algorithm",
                                                                   "dtype"))
             + (", missing_values=fiml" if hyper.get("missing_values") == "fiml" else "")]
    show = min(K, 8)
    for k in range(K):
        row = ", ".join(f"{v:.3f}" for v in est.transmat_[k, :show]) + (", ..." if K > show else "")
        lines.append(f"  state {k}: start {est.startprob_[k]:.4f}  transitions [{row}]  {_emission_line(est, k)}")
    print("\n".join(lines))
    return 0


def _emission_line(est, k: int) -> str:
    """What state k emits, in a few numbers."""
    def vec(values) -> str:
        values = np.asarray(values).reshape(-1)
        return "[" + ", ".join(f"{v:.4g}" for v in values[:6]) + (", ...]" if len(values) > 6 else "]")

    kind = type(est).__name__
    if kind in ("CategoricalHMM", "VariationalCategoricalHMM", "MultinomialHMM"):
        p = est.emissionprob_[k]
        top = np.argsort(-p, kind="stable")[:3]
        what = "categories" if kind == "MultinomialHMM" else "symbols"
        return f"most likely {what} " + ", ".join(f"{s} ({p[s]:.3f})" for s in top)
    if kind == "PoissonHMM":
        return f"rates {vec(est.lambdas_[k])}"
    if kind == "GMMHMM":
        return f"mixture weights {vec(est.weights_[k])}  means {vec(est.means_[k, 0])}{' ...' if est.n_mix > 1 else ''}"
    return f"mean {vec(est.means_[k])}  sd {vec(np.sqrt(np.diagonal(est.covars_[k])))}"


def _component_sd(est) -> np.ndarray:
    from ..estimators.selection import full_covariances

    return np.sqrt(np.diagonal(full_covariances(est), axis1=1, axis2=2))


def _check_picture(path: str, inputs: tuple[str, ...]) -> None:
    from .._core.optional import require

    check_output(path, inputs, PICTURES, what="picture")
    require("matplotlib", "pictures")


def _info_classifier(est, args) -> int:
    """A MixtureClassifier: mclust's summary, or its choices as JSON."""
    if args.json:
        payload = dict(kind="MixtureClassifier", model=est.model,
                       classes=[c.item() if isinstance(c, np.generic) else c for c in est.classes_],
                       class_counts=est.class_counts_.tolist(), covariance_types=est.covariance_types_,
                       n_components=est.n_components_, n_features=int(est.n_features_in_),
                       log_likelihood=est.log_likelihood_, n_parameters=est.n_parameters_, bic=est.bic_)
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{args.model}: MixtureClassifier, {len(est.classes_)} classes, {est.n_features_in_} features")
    print(est.summary())
    return 0


def run_plot(args) -> int:
    from .. import plot

    _check_picture(args.output, tuple(p for p in (args.model, args.data) if p))
    est = _load(args.model)
    if _is_hmm(est):
        raise ParameterError(f"{args.model} holds a {type(est).__name__}: bigem plot draws mixtures only; "
                             "bigem info MODEL --json gives its parameters")
    if args.kind != "profile" and (args.top is not None or args.vocabulary is not None):
        raise ParameterError("--top and --vocabulary apply to --kind profile; drop them")
    if args.kind in ("convergence", "profile"):
        if args.data is not None:
            drawn = "history" if args.kind == "convergence" else "probabilities"
            raise ParameterError(f"--kind {args.kind} draws the model's {drawn} and takes no DATA; drop it")
        if args.kind == "convergence":
            plot.plot_convergence(est, args.output, title=args.title or f"EM convergence of {os.path.basename(args.model)}")
        else:
            vocabulary = None if args.vocabulary is None else counts_cli.read_vocabulary(args.vocabulary)
            plot.plot_profile(est, args.output, top=args.top, vocabulary=vocabulary,
                              title=args.title or f"Profile of {os.path.basename(args.model)}")
    elif type(est).__name__ not in ("GaussianMixture", "BayesianGaussianMixture"):
        from ..plot.profile import has_profile

        raise ParameterError(f"--kind fit draws Gaussian mixtures; {args.model} holds a {type(est).__name__}: use "
                             + ("--kind profile or --kind convergence" if has_profile(est) else "--kind convergence"))
    else:
        if args.data is None:
            raise ParameterError("--kind fit needs DATA: bigem plot MODEL DATA -o PICTURE")
        data = _model_data(est, args)
        kwargs = dict(max_points=args.max_points)
        if args.pair is not None:
            if est.n_features_in_ == 1:
                raise ParameterError("--pair needs a model with at least 2 features")
            kwargs["columns"] = args.pair
        plot.plot_fit(est, sample_rows(data, args.max_points), args.output, title=args.title, **kwargs)
    print(f"wrote {args.output}")
    return 0
