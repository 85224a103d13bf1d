# The two commands a user needs: `make test` and `make demo`. Both build .venv themselves.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv test lint fmt demo bench bench-env clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first, pinned: the local CPU wheel (a bare "torch" pulls a CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,ray,onnx]'
	touch $(STAMP)

venv: $(STAMP)

LINTED := src tests benchmarks examples

# pytest exits 5 when it collected no tests: make treats that (like any non-zero) as failure.
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# ruff (pinned in the dev extra): formatting and lint must both be clean. `make fmt` applies them.
lint: $(STAMP)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)

fmt: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

demo: $(STAMP)
	$(BIN)/dnnjpeg demo

# The differentiable-JPEG speed benchmark compares against kornia, which only its own
# environment gets (the library does not depend on it).
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BENCH_VENV)/bin/python || $(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q torch==2.13.0
	$(BENCH_VENV)/bin/pip install -q -c constraints.txt -e . kornia==0.9.0
	touch $(BENCH_VENV)/.installed

bench-env: $(BENCH_VENV)/.installed

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo-out .pytest_cache
