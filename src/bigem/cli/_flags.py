"""The library's messages in the command line's words: ``columns=`` becomes ``--columns``.

Errors and warnings are written once, in the library, naming its keyword arguments; the
command line prints them with the flags a shell user types instead.
"""

from __future__ import annotations

import re

# (a keyword as the library's messages write it, the flag that sets it)
_FLAGS = (
    (r"\bdelimiter= and header=", "--delimiter and --no-header"),
    (r"\bheader=False\b", "--no-header"),
    (r"\bcolumns=\[\.\.\.\]", "--columns"),
    (r"\bcolumns=(?=[\[\w'\"])", "--columns "),
    (r"\bcolumns=", "--columns"),
    (r"\bsample_weight=(?=[\w'\"])", "--sample-weight "),
    (r"\bsample_weight=", "--sample-weight"),
    (r"\bsequence_column=(?=[\w'\"])", "--sequence-column "),
    (r"\bsequence_column=", "--sequence-column"),
    (r"\bid_column=(?=[\w'\"])", "--id-column "),
    (r"\bid_column=", "--id-column"),
    (r"\blengths=", "--lengths"),
    (r"\bcategories=", "--categories"),
    (r"^columns lists ", "--columns lists "),
    (r"\bsample_weight column\b", "--sample-weight column"),
    (r"^level must be ", "--level must be "),
    (r"^n_boot must be ", "-n must be "),
    (r"^lengths must be ", "--lengths must be "),
    (r"^out=(['\"])(.+?)\1:", r"-o \2:"),
    (r"\bwhich X does not have; it has\b", "which the data do not have; they have"),
    (r"\bwhich X does not have\b", "which the data do not have"),
    (r"^X has (\d+) (features?), but (\w+) is expecting", r"the data have \1 \2, but the \3 is expecting"),
    (r"; pass the weights as an array( \(one per row\))?", "; write the rows to Parquet or CSV with a weight "
     "column, or drop --sample-weight"),
    (r"^categories (names|lists) ", r"--categories \1 "),
    (r"^families (names|lists) ", r"--column-families \1 "),
    (r"\bdelimiter=(['\"])(.+?)\1 \(bigem\.Files\)", r"--delimiter '\2'"),
    (r"\bdelimiter=", "--delimiter"),
    (r"\baccelerate=(['\"])squarem\1", "--accelerate"),
    (r"\bor accelerate=None\b", "or drop --accelerate"),
    (r"\bstopping=(['\"])(\w+)\1", r"--stopping \2"),
    (r"\bcovariance_type=(['\"])(\w+)\1", r"--covariance \2"),
    (r"\bdtype=(['\"])(float32|float64)\1", r"--dtype \2"),
    (r"\bmissing_values=(['\"])(\w+)\1 \(bigem: --missing \w+\)", r"--missing \2"),
    (r"\bmissing_values=(['\"])(\w+)\1", r"--missing \2"),
    (r"\binit_params=(['\"])([\w+-]+)\1", r"--init \2"),
    (r"\bn_components=(?=\d)", "-k "),
    (r"\bdevice=(['\"])(\w+)\1", r"--device \2"),
    (r"\bchunk_size=", "--chunk-size "),
    (r"\bmemory_budget=", "--memory-budget "),
    (r"\bcache_budget=", "--cache-budget "),
    # scikit-learn's sentence for a bad hyper-parameter, naming the flag that set it
    *((rf"^The '{name}' parameter of (\w+)", rf"{flag} (\1's {name})") for name, flag in (
        ("init_params", "--init"), ("alpha", "--alpha"), ("reg_covar", "--reg-covar"), ("tol", "--tol"),
        ("max_iter", "--max-iter"), ("n_init", "--n-init"), ("covariance_type", "--covariance"),
        ("n_components", "-k"), ("chunk_size", "--chunk-size"), ("memory_budget", "--memory-budget"),
        ("cache_budget", "--cache-budget"))),
    (r"^structural is ", "--family is "),
    # no flag sets it: the model file, in Python
    (r"set n_trials to the number of trials of every row", "set n_trials to the number of trials of every row in "
     "Python (m = bigem.load(MODEL); m.n_trials = N; m.sample(n)): the command line has no flag for it"),
)
_FAMILIES = re.compile(r"\bfamilies=\{([^{}]*)\}")
# a list of names after --columns, as Python prints it: ``--columns ['x', 'y']``
_LISTED = re.compile(r"(--columns )\[((?:\s*(['\"])[^'\"]*\3\s*,?)+)\]")
# a .npy file's column indices after --columns: ``--columns [2, 0]``
_INDICES = re.compile(r"(--columns )\[(\d+(?:\s*,\s*\d+)*)\]")
_NAME = re.compile(r"(['\"])(.*?)\1")
_PAIR = re.compile(r"(['\"])(.*?)\1\s*:\s*(['\"])(.*?)\3")


# the commands that read a model file compute in the model's dtype, which its fit chose
_FITTED_DTYPE = {"predict", "score", "impute", "sample", "bootstrap", "plot", "info"}
_DTYPE = re.compile(r"(?:pass|use) --dtype (float32|float64)")


def in_flags(text: str, command: str | None = None) -> str:
    """``text`` with the library's keyword arguments written as command-line flags (a
    command that reads a model file has no --dtype: the advice is to fit it so)."""
    for pattern, flag in _FLAGS:
        text = re.sub(pattern, flag, text)
    if command in _FITTED_DTYPE:
        text = _DTYPE.sub(r"fit the model with --dtype \1 (bigem fit ... --dtype \1)", text)
    text = _LISTED.sub(lambda m: m.group(1) + ",".join(n for _, n in _NAME.findall(m.group(2))), text)
    text = _INDICES.sub(lambda m: m.group(1) + ",".join(i.strip() for i in m.group(2).split(",")), text)
    return _FAMILIES.sub(lambda m: "--column-families " + ",".join(
        f"{p[1]}={p[3]}" for p in _PAIR.findall(m.group(1))), text)
