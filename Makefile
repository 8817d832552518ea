# The two commands a new user needs: `make report` and `make test`.
# Both build .venv from requirements.lock first if it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PARAMS ?= params/cdnow.yaml
STAMP  := $(VENV)/.installed

export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help setup system-deps report test test-fast bench bench-1m bench-scaling bench-10m bench-peer-env lint lock strip clean-data

help:
	@echo "make report [PARAMS=params/<dataset>.yaml]  run the stages on a data set (default CDNOW)"
	@echo "make test                                   run the whole test suite"
	@echo "make test-fast                              unit tests only (no notebook runs)"
	@echo "make bench [SIZES='10k 100k'] [SPARK=1]     benchmarks -> benchmarks/results.json (a few minutes; SPARK=1: engine: spark too)"
	@echo "make bench-1m                               1M customers, make-report timing, 100M-line out-of-core run (about an hour)"
	@echo "make bench-scaling [SCALING='10k 100k 1m']  the whole run per size: seconds and peak memory per stage"
	@echo "make bench-10m                              the scaling table up to 10M customers (110M lines; about 40 minutes)"
	@echo "make bench-peer-env                         .venv-peer with PyMC-Marketing: the bench then times it too (~2 min)"
	@echo "make lock                                   re-pin requirements.lock from pyproject.toml"
	@echo "make strip                                  strip outputs from notebooks/"

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (customer-identification)" >/dev/null
	touch $(STAMP)

# Debian packages the report needs: Chromium (the browser test) and a CJK font (language: zh); Java for
# engine: spark (PySpark runs a local JVM in tests/test_spark.py).
# Installed when missing and this user may run apt-get; otherwise a note says what to install.
system-deps:
	@if command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "wenquanyi"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; }; \
	else echo "note: install chromium and fonts-wqy-microhei (Debian) for the browser test and Chinese reports"; fi
	@if command -v java >/dev/null || [ -n "$$JAVA_HOME" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null; }; \
	else echo "note: install openjdk-17-jre-headless (Debian) for engine: spark and its tests"; fi

report: $(STAMP)
	$(BIN)/python -m helpers.run -f $(PARAMS)

# --durations: the slowest tests in every log, to keep the suite under its 5 minutes.
# One worker per core (pytest-xdist); a test file runs in one worker (its module fixtures are made once;
# the notebooks run under nbval in one test, tests/test_notebooks.py). WORKERS=0: all in this process.
WORKERS ?= auto
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile -m "not notebooks"

# The benchmarks live outside the package, in benchmarks/ (run from the project root: python -m benchmarks.bench).
SIZES ?= 10k 100k
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench --sizes $(SIZES) $(if $(SPARK),--spark)

bench-1m: $(STAMP)
	$(BIN)/python -m benchmarks.bench --sizes 1m --report --out-of-core 100 --out benchmarks/results-1m.json

# The scaling table (benchmarks/scaling.py): python -m helpers.run per size and engine, all eight stages.
SCALING ?= 10k 100k 1m
ENGINES ?= duckdb
bench-scaling: $(STAMP)
	$(BIN)/python -m benchmarks.scaling --sizes $(SCALING) --engines $(ENGINES)

bench-10m: $(STAMP)
	$(BIN)/python -m benchmarks.scaling --sizes 10k 100k 1m 10m --engines $(ENGINES) --out benchmarks/scaling-10m.json

# The bench's peer, PyMC-Marketing, in its own environment (its pins clash with requirements.lock; Python 3.12+).
# The bench runs benchmarks/peer_pymc.py in it when it exists, and says "skipped" otherwise.
PEER_VENV   := .venv-peer
PEER_PYTHON ?= $(shell for p in python3.13 python3.12 $(wildcard $(HOME)/.pyenv/versions/3.1[23]*/bin/python3); do \
                 $$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
bench-peer-env: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed: benchmarks/peer-requirements.txt
	@test -n "$(PEER_PYTHON)" || { echo "error: PyMC-Marketing 1.x needs Python 3.12+; run make bench-peer-env PEER_PYTHON=/path/to/python3.12"; exit 1; }
	@command -v g++ >/dev/null || echo "note: no g++: pytensor falls back to Python code (slow); install g++ (Debian: g++)"
	test -x $(PEER_VENV)/bin/python || $(PEER_PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/peer-requirements.txt
	touch $@

lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

strip: $(STAMP)
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

clean-data:
	rm -rf data/processed/* reports/*
