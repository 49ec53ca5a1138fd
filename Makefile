# Quick start: `make demo` and `make test`. Both create .venv on first use; `make demo` installs omniseg's
# runtime dependencies only, `make test` adds the `dev` extra (pytest, the peer libraries, exporters).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test install install-dev bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/omniseg demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -rs

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/semantic_throughput.py
	$(BIN)/python benchmarks/data_throughput.py
	$(BIN)/python benchmarks/classical_bsds.py

clean:
	rm -rf runs .pytest_cache
