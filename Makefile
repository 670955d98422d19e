# Two commands on a fresh machine:  make demo  |  make test
# Everything is installed into .venv from constraints.txt (exact versions).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mtcc-installed
MODELS := examples/models
MODEL_FILES := $(MODELS)/squeezenet.onnx $(MODELS)/inception_v1.onnx $(MODELS)/resnet50.onnx $(MODELS)/transformer.onnx

.PHONY: all setup models demo test test-fast bench lock clean

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

demo: models
	$(BIN)/mtcc inspect $(MODELS)/squeezenet.onnx
	$(BIN)/python examples/demo.py

test: models
	$(BIN)/python -m pytest -q -ra

# Isolated latency against ONNX Runtime / OpenVINO (a benchmark: prints ratios, asserts nothing).
bench: models
	$(BIN)/mtcc bench --single $(MODELS)/squeezenet.onnx --schedules schedules/squeezenet

# Refresh the lock from the current venv (after changing pyproject.toml on purpose).
lock:
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^mtcc' > constraints.txt.body
	(echo "# Exact versions of every dependency (the lock); the Makefile installs with -c constraints.txt. Regenerate: make lock"; cat constraints.txt.body) > constraints.txt && rm constraints.txt.body

clean:
	rm -rf $(VENV) $(MODELS) build *.egg-info
