# `make demo` and `make test` create the environment on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test examples docs bench clean

$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[dev]'
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints-cpu.txt -e '.[dev,docs]'
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/bigem demo

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# every script of examples/, each in its own folder of build/examples/ (its output and pictures)
examples: $(STAMP)
	$(PY) docs/run_examples.py

# the documentation site, from the docstrings, the guide and the examples' output; warnings fail it
docs: $(DOCS_STAMP) examples
	$(PY) -m sphinx -W --keep-going -q -b html docs build/docs/html
	@echo "open build/docs/html/index.html"

bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/bench_gmm.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis docs/_generated
