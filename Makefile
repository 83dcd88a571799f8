# adbench: `make demo` and `make test` work on a fresh machine (they create the virtual environment).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.adbench-installed
DEMO_DIR ?= runs/demo
DEMO_METHODS ?= idealized,supervised,radot
REFERENCE_METHODS ?= sigma-linear,sigma-context,vcr,vdata,cathode,radot,idealized,supervised

.PHONY: install demo test lint bench reference-reports clean

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

# ruff: pycodestyle, pyflakes, import order, pyupgrade, bugbear (settings in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -o python_files='bench_*.py' tests/benchmarks --benchmark-only

# The reference reports in reports/ (CPU, fast profile; see reports/README.md). About an hour on 2 cores.
reference-reports: $(STAMP)
	$(BIN)/adbench run --methods $(REFERENCE_METHODS) --dataset lhco-100k --scan 3.1,3.9,0.4,0.2 \
		--n-sig 300,1000 --seeds 0,1 --device cpu --no-progress --output reports/lhco-100k-cpu
	$(BIN)/adbench run --methods $(REFERENCE_METHODS) --dataset lhcolike --n-sig 1000,3000 --seeds 0,1 \
		--device cpu --no-progress --output reports/lhcolike-cpu
	$(BIN)/adbench run --methods $(REFERENCE_METHODS) --dataset synthetic --n-sig 1000,3000 --seeds 0,1 \
		--device cpu --no-progress --output reports/synthetic-cpu

clean:
	rm -rf $(VENV) runs .pytest_cache
