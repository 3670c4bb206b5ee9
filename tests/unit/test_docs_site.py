"""The documentation site's sources: the README stands alone (its links stay in the
repository), and every public name gets an API page without editing docs/conf.py."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def conf():
    spec = importlib.util.spec_from_file_location("bigem_docs_conf", ROOT / "docs" / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # generates docs/_generated/ (not committed)
    return module


def test_readme_links_point_inside_the_repository():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"^[a-z]+://", t) and not t.startswith("#")]
    assert local, "the README links to its neighbours (architecture, benchmarks, changelog)"
    for target in local:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"README links to {target}, not a file of the repository"


def test_every_public_name_has_an_api_page(conf):
    api = ROOT / "docs" / "_generated" / "api"
    index = (api / "index.rst").read_text(encoding="utf-8")
    for module, _, _, _ in conf.public_names():
        for name in importlib.import_module(module).__all__:
            if name.startswith("_"):
                continue
            page = api / f"{module}.{name}.rst"
            assert page.exists(), f"{module}.{name} has no API page"
            assert f"{module}.{name}" in page.read_text(encoding="utf-8") and f"<{module}.{name}>" in index
    assert (api / "bigem.em.driver.IterationInfo.rst").exists()  # what fit(callback=) receives


def test_readme_benchmarks_and_changelog_are_rendered_with_site_links(conf):
    generated = ROOT / "docs" / "_generated"
    readme = (generated / "readme.md").read_text(encoding="utf-8")
    assert readme.startswith("# bigem") and "](../architecture.md)" in readme and "](benchmarks.md)" in readme
    assert (generated / "benchmarks.md").read_text(encoding="utf-8").startswith(
        (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines()[0])
    assert "](src/" not in readme  # source paths become text: the site has no source browser
    assert conf._site_links("see [the code](src/bigem/models/hmm.py) and [x](https://a.b/c)") == \
        "see the code and [x](https://a.b/c)"


def test_every_example_has_a_page(conf):
    pages = ROOT / "docs" / "_generated" / "examples"
    scripts = sorted(p.stem for p in (ROOT / "examples").glob("*.py"))
    assert scripts and all((pages / f"{s}.md").exists() for s in scripts)


def test_the_readmes_first_python_snippet_runs(tmp_path, monkeypatch):
    """What a newcomer pastes first, after pip install: it must run as it is."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert (tmp_path / "model.bigem").exists() and namespace["gm"].n_features_in_ == 3
