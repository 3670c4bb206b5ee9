# `make demo` and `make test` create the environment on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test test-deferred examples docs bench clean

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

# two processes (pytest-xdist): the suite takes about 9 minutes on 2 cores, against 13 in one
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2

# the suite with the GPU's strategy forced on the CPU, in every process (tests/deferred):
# the code paths a GPU takes, tested without one; not part of CI
test-deferred: $(STAMP)
	PYTHONPATH=$(CURDIR)/tests/deferred BIGEM_TEST_DEFERRED=1 $(PY) -m pytest -q -p no:cacheprovider

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
