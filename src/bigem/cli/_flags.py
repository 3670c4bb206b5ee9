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
    (r"\bdelimiter=", "--delimiter"),
)


def in_flags(text: str) -> str:
    """``text`` with the library's keyword arguments written as command-line flags."""
    for pattern, flag in _FLAGS:
        text = re.sub(pattern, flag, text)
    return text
