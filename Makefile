# adbench: `make demo` and `make test` work on a fresh machine (they create the virtual environment).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.adbench-installed
DEMO_DIR ?= runs/demo
DEMO_METHODS ?= idealized,supervised

.PHONY: install demo test bench clean

# constraints.txt pins the CPU build of torch, so a fresh machine never downloads the CUDA wheels.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/adbench run --methods $(DEMO_METHODS) --dataset synthetic --n-sig 1000,3000 --seeds 0 \
		--device cpu --output $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -o python_files='bench_*.py' tests/benchmarks --benchmark-only

clean:
	rm -rf $(VENV) runs .pytest_cache
