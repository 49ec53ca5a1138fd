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
	# the official SAM 2 package, the parity reference of omniseg's SAM 2 (pure Python without its CUDA extension;
	# it needs the torch already installed, hence no build isolation)
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --no-build-isolation 'sam2>=1.1'
	# TrackEval, the parity reference of the tracking metrics, without its dependencies: it asks for opencv-python,
	# whose cv2 would overwrite the headless one omniseg uses (its other needs are installed already)
	$(BIN)/python -m pip install --no-deps 'trackeval>=1.3' 'tabulate>=0.9'
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
