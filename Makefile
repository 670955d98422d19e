# Two commands on a fresh machine:  make demo  |  make test
# Everything is installed into .venv from constraints.txt (exact versions).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mtcc-installed
MODELS := examples/models
MODEL_FILES := $(MODELS)/squeezenet.onnx $(MODELS)/inception_v1.onnx $(MODELS)/resnet50.onnx $(MODELS)/transformer.onnx

.PHONY: all setup models demo test test-quick pack bench lock clean

all: demo

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "mtcc needs Python 3.11, got " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade -c constraints.txt pip setuptools
	$(BIN)/python -m pip install -q --no-build-isolation -c constraints.txt -e '.[dev,openvino]'
	@touch $@

models: $(MODEL_FILES)

$(MODEL_FILES) &: $(STAMP) examples/make_models.py
	$(BIN)/python examples/make_models.py --out $(MODELS)

# Ends with a short multi-tenant bench (two policies and ONNX Runtime on the light mix;
# `mtcc bench --mix light` alone runs every policy and baseline, longer).
demo: models
	$(BIN)/mtcc inspect $(MODELS)/squeezenet.onnx
	$(BIN)/python examples/demo.py
	$(BIN)/mtcc bench --mix light --policy block-adaptive --policy model-fcfs --baseline onnxruntime \
	  --qos 2 --qos 4@1 --duration 2 --min-requests 40 --max-trials 3 --simulate 16 --plots build/demo-bench

# The slowest tests listed at the end: the suite's budget is 20 minutes on 2 cores.
test: models
	$(BIN)/python -m pytest -q -ra --durations=12

# The quick part of the suite (no test marked slow): a few minutes on 2 cores.
test-quick: models
	$(BIN)/python -m pytest -q -ra -m "not slow"

# The CI build step: a bundle per committed schedules folder, for the level it was tuned for
# (no tuning): build/<model>.mtcc from llvm-x86-64-v4, build/<model>-<level>.mtcc from
# another level's folder (the names mtcc.bench.qos.example_bundle_path gives them).
# Fails (non-zero) on a bad model or a missing or stale schedules folder.  Packing runs no
# compiled code, so it also works on a CPU without AVX-512 (running the bundles does not).
FOLDERS := $(patsubst %/database_tuning_record.json,%,$(wildcard schedules/*/llvm-*/database_tuning_record.json))
pack: models
	@test -n "$(filter %/llvm-x86-64-v4,$(FOLDERS))" || { echo "no committed schedules under schedules/*/llvm-x86-64-v4" >&2; exit 2; }
	@mkdir -p build
	@for d in $(FOLDERS); do m=$$(basename $$(dirname $$d)); level=$${d##*/llvm-}; \
	  b=build/$$m.mtcc; [ "$$level" = x86-64-v4 ] || b=build/$$m-$$level.mtcc; \
	  $(BIN)/mtcc pack $(MODELS)/$$m.onnx --schedules $$d -o $$b --json || exit $$?; \
	done

# Isolated latency against ONNX Runtime / OpenVINO (a benchmark: prints ratios, asserts nothing).
bench: models
	$(BIN)/mtcc bench --single $(MODELS)/squeezenet.onnx $(MODELS)/resnet50.onnx $(MODELS)/transformer.onnx

# Refresh the lock from the current venv (after changing pyproject.toml on purpose).
lock:
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^mtcc' > constraints.txt.body
	(echo "# Exact versions of every dependency (the lock); the Makefile installs with -c constraints.txt. Regenerate: make lock"; cat constraints.txt.body) > constraints.txt && rm constraints.txt.body

clean:
	rm -rf $(VENV) $(MODELS) build *.egg-info
