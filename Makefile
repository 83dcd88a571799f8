# adbench: `make demo` and `make test` work on a fresh machine (they create the virtual environment).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.adbench-installed
DEMO_DIR ?= runs/demo
DEMO_METHODS ?= idealized,supervised,radot
# The flow-matching family at its cpu profile (the others have fast and paper only).
REFERENCE_METHODS ?= sigma-linear:cpu,sigma-context:cpu,vcr:cpu,vdata:cpu,cathode,anode,curtains4f4,ranode,radot,idealized,supervised
REFERENCE_SEEDS ?= 0-4

# The Python that runs adbench in reference-gpu: the virtual environment's by default. A GPU node
# without internet whose python3 already holds torch, numpy, scipy, scikit-learn, h5py and matplotlib
# needs only the wheels of `make offline-wheels` (the versions tested here, for its Python
# OFFLINE_PYTHON_VERSION), carried there:
#   python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD make reference-gpu RUN_PYTHON=python3
RUN_PYTHON ?= $(BIN)/python
ADBENCH = $(RUN_PYTHON) -m adbench
NEEDS_VENV = $(if $(filter $(BIN)/python,$(RUN_PYTHON)),$(STAMP))
OFFLINE_PYTHON_VERSION ?= 3.12
OFFLINE_PACKAGES ?= zuko pot

.PHONY: install demo test lint bench reference-reports clean offline-wheels

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

# The reference reports in reports/ (CPU; see reports/README.md), one per dataset of
# REFERENCE_DATASETS (e.g. `make reference-reports REFERENCE_DATASETS=lhco-100k`): about an hour per
# seed and N_sig at LHCO size on 2 cores (the cpu profile's shared fit and v_CR's per-SR training are
# 16 minutes each), minutes on lhco-100k; resumable, so it can be run in pieces (`--max-time` through
# REFERENCE_ARGS, e.g. REFERENCE_ARGS="--max-time 2h"). lhco-100k and lhcolike need ../shared/data.
REFERENCE_DATASETS ?= lhco-100k lhcolike synthetic
REFERENCE_ARGS_lhco-100k ?= --scan 3.1,3.9,0.4,0.2 --n-sig 300,1000
REFERENCE_ARGS_lhcolike ?= --n-sig 1000,3000
REFERENCE_ARGS_synthetic ?= --n-sig 1000,3000

reference-reports: $(STAMP)
	$(foreach dataset,$(REFERENCE_DATASETS),$(BIN)/adbench run --methods $(REFERENCE_METHODS) --dataset $(dataset) \
		$(REFERENCE_ARGS_$(dataset)) --seeds $(REFERENCE_SEEDS) --device cpu --no-progress $(REFERENCE_ARGS) \
		--output reports/$(dataset)-cpu &&) true

clean:
	rm -rf $(VENV) runs .pytest_cache

# The `paper` profiles of every registered method on a GPU (synthetic, and lhcolike when ../shared/data
# holds it), in chunks of --max-time $(REFERENCE_GPU_CHUNK): each chunk resumes the last and stops
# starting tasks that would not finish in time. With a GPU lease shorter than the whole run, call it
# again until it no longer prints "tasks left" (REFERENCE_GPU_CHUNKS=1: one chunk per call). A chunk
# that makes no progress (the same task failing again) stops the loop. Reports in reports/<dataset>-gpu/.
# A task longer than the lease is cut off with it and continues from its last saved epoch on the next
# call, as long as <output>/resume/ (ignored by git) is still there.
REFERENCE_GPU_DATASETS ?= synthetic $(if $(wildcard ../shared/data/lhcolike/events_lhcolike.features.h5),lhcolike)
REFERENCE_GPU_METHODS ?= all
REFERENCE_GPU_ARGS ?= --profile paper --device cuda --n-sig 1000,3000 --seeds 0,1
REFERENCE_GPU_CHUNK ?= 9m
REFERENCE_GPU_CHUNKS ?= 1000
REFERENCE_GPU_DIR ?= reports

.PHONY: reference-gpu
reference-gpu: $(NEEDS_VENV)
	@methods='$(REFERENCE_GPU_METHODS)'; \
	if [ "$$methods" = all ]; then \
		methods=$$($(RUN_PYTHON) -c "from adbench.methods.registry import method_names as m; print(','.join(m()))"); \
	fi; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for dataset in $(REFERENCE_GPU_DATASETS); do \
		out=$(REFERENCE_GPU_DIR)/$$(basename $$dataset .h5)-gpu; last=; chunk=0; \
		while [ $$chunk -lt $(REFERENCE_GPU_CHUNKS) ]; do \
			chunk=$$((chunk + 1)); \
			$(ADBENCH) run --methods $$methods --dataset $$dataset $(REFERENCE_GPU_ARGS) \
				--max-time $(REFERENCE_GPU_CHUNK) --no-progress --no-report --output $$out 2> $$log; \
			status=$$?; cat $$log >&2; [ $$status -eq 0 ] || exit $$status; \
			left=$$(sed -n 's/^adbench: \([0-9]*\) of [0-9]* tasks left.*/\1/p' $$log); \
			[ -n "$$left" ] || break; \
			if [ "$$left" = "$$last" ]; then echo "reference-gpu: chunk $$chunk made no progress" >&2; exit 1; fi; \
			last=$$left; \
		done; \
		$(ADBENCH) report $$out || exit $$?; \
	done

# One chunk of a run on a lent device machine whose commands are cut off after 10 minutes and whose
# files come back from $OUT only, each at most 16 MiB and 64 MiB together (docs/gpu-session.md): the
# carried wheels of `make offline-wheels` installed where DEVICE_PYTHON lacks zuko, the run in
# DEVICE_RUN continued (from carried resume.tgz.part-* files where there are any: they are always the
# newest state), interrupted as by Ctrl-C after DEVICE_SECONDS (finished records and saved epochs kept;
# killed 60 s later if it has not stopped), and results.jsonl, run-status.json, chunk.log and resume/
# in 15 MB parts copied to DEVICE_OUT. Put those files into DEVICE_RUN here, carry DEVICE_RUN to the
# next call, and call again until run-status.json says "complete"; `adbench report DEVICE_RUN` then
# writes the report on any machine.
DEVICE_RUN ?= runs/gpu-synthetic
DEVICE_ARGS ?= --methods sigma-context,sigma-linear,vdata,idealized --dataset synthetic --profile paper \
	--device cuda --n-sig 1000 --seeds 0
DEVICE_SECONDS ?= 510
DEVICE_OUT ?= $(OUT)
# The virtual environment's python where there is one (here), else the machine's own python3 (there).
DEVICE_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
# At most this many 15 MB parts come back (the 64 MiB of a call's files, less the records).
DEVICE_MAX_PARTS = 4

.PHONY: device-chunk
device-chunk:
	@[ -n "$(DEVICE_OUT)" ] || { echo "device-chunk: set DEVICE_OUT (or OUT) to the folder that comes back" >&2; exit 2; }; \
	mkdir -p "$(DEVICE_RUN)" "$(DEVICE_OUT)" || exit 1; \
	export PYTHONPATH=$$PWD$${PYTHONPATH:+:$$PYTHONPATH}; \
	if [ -d .whl ] && ! $(DEVICE_PYTHON) -c "import zuko" 2>/dev/null; then \
		$(DEVICE_PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
			--target /tmp/site .whl/*.whl || exit 1; \
		export PYTHONPATH=/tmp/site:$$PYTHONPATH; \
	fi; \
	if ls "$(DEVICE_RUN)"/resume.tgz.part-* >/dev/null 2>&1; then \
		rm -rf "$(DEVICE_RUN)/resume" && cat "$(DEVICE_RUN)"/resume.tgz.part-* | tar xzf - -C "$(DEVICE_RUN)" \
			&& rm -f "$(DEVICE_RUN)"/resume.tgz.part-* || { echo "device-chunk: cannot unpack resume.tgz.part-*" >&2; exit 1; }; \
	fi; \
	timeout --foreground -k 60 -s INT $(DEVICE_SECONDS) $(DEVICE_PYTHON) -m adbench run $(DEVICE_ARGS) \
		--no-progress --no-report --output "$(DEVICE_RUN)" > "$(DEVICE_OUT)/chunk.log" 2>&1; \
	status=$$?; cat "$(DEVICE_OUT)/chunk.log"; \
	rm -f "$(DEVICE_OUT)"/resume.tgz.part-* "$(DEVICE_RUN)/.resume.tgz"; \
	if [ -d "$(DEVICE_RUN)/resume" ]; then \
		tar czf "$(DEVICE_RUN)/.resume.tgz" --exclude='*.partial' -C "$(DEVICE_RUN)" resume \
			&& split -b 15M -d "$(DEVICE_RUN)/.resume.tgz" "$(DEVICE_OUT)/resume.tgz.part-" \
			&& rm -f "$(DEVICE_RUN)/.resume.tgz" || { echo "device-chunk: cannot pack resume/" >&2; exit 1; }; \
		parts=$$(ls "$(DEVICE_OUT)"/resume.tgz.part-* | wc -l); \
		if [ $$parts -gt $(DEVICE_MAX_PARTS) ]; then \
			echo "device-chunk: resume/ packs into $$parts parts, more than the $(DEVICE_MAX_PARTS) that come back" >&2; exit 3; \
		fi; \
	fi; \
	for f in results.jsonl run-status.json; do \
		[ ! -f "$(DEVICE_RUN)/$$f" ] || cp "$(DEVICE_RUN)/$$f" "$(DEVICE_OUT)/" || exit 1; \
	done; \
	case $$status in 0|124|130|137) ;; *) exit $$status;; esac

# Wheels of the packages a GPU node's own Python lacks (OFFLINE_PACKAGES, at the versions installed
# here) for Python OFFLINE_PYTHON_VERSION on x86-64 Linux, into .whl/ (ignored by git); see RUN_PYTHON.
offline-wheels: $(STAMP)
	@pins=$$($(BIN)/python -m pip list --format=freeze | grep -i -E '^($(shell echo $(OFFLINE_PACKAGES) | tr ' ' '|'))=='); \
	[ -n "$$pins" ] || { echo "offline-wheels: none of $(OFFLINE_PACKAGES) is installed in $(VENV)" >&2; exit 1; }; \
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version $(OFFLINE_PYTHON_VERSION) \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 --platform any -d .whl $$pins && ls .whl
