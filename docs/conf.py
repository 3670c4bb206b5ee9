"""Sphinx configuration of bigem's documentation site (``make docs``).

Everything that changes with the code is generated at build time, so the site follows
the repository without edits here:

- the API reference: one page per name in the ``__all__`` of each public module
  (:data:`PUBLIC_MODULES`), from its numpydoc docstring;
- README.md, BENCHMARKS.md and CHANGELOG.md, rendered as they are (links into the
  repository rewritten to the site's pages);
- the example gallery: one page per ``examples/*.py``, with the output ``make examples``
  recorded for it (``build/examples/NAME/``).

Generated sources go to ``docs/_generated/`` (not committed).
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
EXAMPLES = ROOT / "examples"
EXAMPLE_OUTPUT = ROOT / "build" / "examples"

sys.path.insert(0, str(ROOT / "src"))  # this tree's bigem, whatever is installed

import bigem  # noqa: E402

# (module, title, what it holds): every name in each module's __all__ gets a page
PUBLIC_MODULES = [
    ("bigem", "Estimators, model selection and files",
     "Import these from ``bigem``. Estimators take NumPy arrays, torch tensors, DataFrames, files or Dask "
     "collections."),
    ("bigem.plot", "Pictures", "PNG or SVG by extension; needs ``pip install 'bigem[plot]'``."),
    ("bigem.datasets", "Data sets", "Small public data sets shipped with bigem."),
    ("bigem.errors", "Errors and warnings", "Every exception and warning bigem raises on purpose."),
    ("bigem.stepmix.bootstrap", "StepMix's bootstrap and BLRT",
     "``stepmix.bootstrap`` by name: change ``stepmix`` to ``bigem.stepmix`` in the imports."),
    ("bigem.stepmix.utils", "StepMix's helpers", "``stepmix.utils`` by name."),
    ("bigem.stepmix.datasets", "StepMix's simulated data sets",
     "``stepmix.datasets`` by name: the same designs, bigem's own random numbers."),
]
# names documented beside the modules' __all__: what a public signature hands to the user
EXTRA_NAMES = [("bigem.em.driver", "IterationInfo", "bigem"), ("bigem.estimators.hmm", "ConvergenceMonitor", "bigem")]

project = "bigem"
author = "the bigem developers"
copyright = "2026, the bigem developers"
release = version = bigem.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "inherited-members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_class_signature = "mixed"
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"bigem {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
suppress_warnings = ["myst.header"]  # README and BENCHMARKS start at level 1 and may skip levels


# ----------------------------------------------------------------------------- generated pages
def _write(path: Path, text: str) -> None:
    """Write only when changed, so Sphinx rebuilds only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# links from the repository's Markdown files to the pages they become on the site
LINKS = {
    "docs/architecture.md": "../architecture.md",
    "BENCHMARKS.md": "benchmarks.md",
    "CHANGELOG.md": "changelog.md",
    "README.md": "readme.md",
    "LICENSE": "license.md",
}


def _site_links(text: str) -> str:
    """Markdown links to repository files, pointed at the site's pages (code paths become
    plain text: the site has no source browser)."""

    def link(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        path, _, anchor = target.partition("#")
        if re.match(r"^[a-z]+://", target) or target.startswith("#"):
            return m.group(0)
        if path in LINKS:
            return f"[{label}]({LINKS[path]}{'#' + anchor if anchor else ''})"
        return label  # a file of the repository (source, script): its name is in the label

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", link, text)


def generate_markdown_pages() -> None:
    for source, page in (("README.md", "readme.md"), ("BENCHMARKS.md", "benchmarks.md"),
                         ("CHANGELOG.md", "changelog.md")):
        _write(GENERATED / page, _site_links((ROOT / source).read_text(encoding="utf-8")))
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    _write(GENERATED / "license.md", f"# License\n\n```text\n{licence}```\n")


def public_names() -> list[tuple[str, str, str, list[tuple[str, str, object]]]]:
    """(module, title, blurb, [(module it is documented under, name, object)]) for every public module."""
    out = []
    for module, title, blurb in PUBLIC_MODULES:
        mod = importlib.import_module(module)
        names = [n for n in getattr(mod, "__all__", []) if not n.startswith("_")]
        objects = [(module, n, getattr(mod, n)) for n in names]
        objects += [(src, n, getattr(importlib.import_module(src), n)) for src, n, shown in EXTRA_NAMES if shown == module]
        out.append((module, title, blurb, objects))
    return out


def _api_page(module: str, name: str, obj: object) -> str:
    target = f"{module}.{name}"
    underline = "=" * len(target)
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            body = f".. autoexception:: {target}\n   :no-members:\n   :no-inherited-members:\n   :show-inheritance:\n"
        else:
            body = f".. autoclass:: {target}\n   :special-members: __call__\n"
    elif callable(obj):
        body = f".. autofunction:: {target}\n"
    else:
        body = f".. autodata:: {target}\n   :no-value:\n"
    return f"{target}\n{underline}\n\n.. currentmodule:: {module}\n\n{body}"


def generate_api() -> None:
    api = GENERATED / "api"
    if api.exists():
        shutil.rmtree(api)  # a name removed from __all__ loses its page
    index = ["API reference", "=============", "",
             "Generated from the docstrings of every public name (the ``__all__`` of each module below).", ""]
    for module, title, blurb, objects in public_names():
        index += [title, "-" * len(title), "", blurb, "", ".. list-table::", "   :widths: 35 65", ""]
        for home, name, obj in objects:
            summary = (inspect.getdoc(obj) or "").strip().split("\n\n")[0].replace("\n", " ")
            summary = summary.split(". ")[0].rstrip(".") + "." if summary else ""
            index += [f"   * - :doc:`{home}.{name} <{home}.{name}>`", f"     - {summary}"]
            _write(api / f"{home}.{name}.rst", _api_page(home, name, obj))
        index += ["", ".. toctree::", "   :hidden:", ""] + [f"   {home}.{n}" for home, n, _ in objects] + [""]
    _write(api / "index.rst", "\n".join(index) + "\n")


def _example_title(source: str, name: str) -> tuple[str, str]:
    """(title, the rest of the docstring) of an example script."""
    doc = re.match(r'\s*(?:#[^\n]*\n)*\s*"""(.*?)"""', source, re.S)
    text = inspect.cleandoc(doc.group(1)) if doc else name
    title, _, rest = text.partition("\n")
    return title.strip().rstrip("."), rest.strip()


def generate_examples() -> None:
    gallery = GENERATED / "examples"
    if gallery.exists():
        shutil.rmtree(gallery)
    scripts = sorted(EXAMPLES.glob("*.py"))
    index = ["# Examples", "",
             "Short scripts on small data, each printing a table or drawing a figure. Run them all with "
             "`make examples`, or one with `python examples/NAME.py` (they write into the current folder).", "",
             "```{toctree}", ":maxdepth: 1", ""]
    for script in scripts:
        name = script.stem
        source = script.read_text(encoding="utf-8")
        title, text = _example_title(source, name)
        out = EXAMPLE_OUTPUT / name
        page = [f"# {title}", "", text, "", f"Source: `examples/{name}.py`", "",
                f"```{{literalinclude}} ../../../examples/{name}.py", ":language: python", "```", ""]
        printed = out / "output.txt"
        if printed.exists():
            page += ["## Output", "", "```text", printed.read_text(encoding="utf-8").rstrip(), "```", ""]
        else:
            page += ["```{note}", "Run `make examples` (or `make docs`) to show this script's output here.", "```", ""]
        for picture in sorted(out.glob("*.png")) if out.exists() else []:
            gallery.mkdir(parents=True, exist_ok=True)
            shutil.copy(picture, gallery / f"{name}-{picture.name}")
            page += [f"![{picture.stem}]({name}-{picture.name})", ""]
        _write(gallery / f"{name}.md", "\n".join(page))
        index.append(name)
    index += ["```", ""]
    _write(gallery / "index.md", "\n".join(index))


generate_markdown_pages()
generate_api()
generate_examples()
