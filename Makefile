# make serve   - install the runtime into .venv, put the models in the BentoML store, start the service
# make test    - install the development environment into .venv, run the test suite (CI)
# make test-fast - the unit tier (pytest -m unit): no ../shared, no server, under 30 s
# make container - build the service's OCI image with podman (scripts/container.sh)
# make test-container - build it, run it, test it over HTTP (CI)
# Offline, point REID_MODELS_DIR at a folder of weights (e.g. ../shared/models); the embedder is
# quantised to INT8 on the labelled crops REID_CALIBRATION_CROPS names (unquantised without them).

PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/pip install --disable-pip-version-check -q

export BENTOML_DO_NOT_TRACK := true

# Where ../shared is (our machines), models and calibration crops come from it, not the network,
# and the runtime alone serves them (OpenVINO). Online, the large-person detector is ultralytics'
# yolov8n.pt, which needs the torch extra.
SHARED ?= ../shared
ifneq ($(wildcard $(SHARED)/models),)
export REID_MODELS_DIR ?= $(SHARED)/models
export REID_CALIBRATION_CROPS ?= $(SHARED)/data/cuhk03-pair1
SERVE_LOCK := requirements/runtime.lock
SERVE_EXTRAS :=
else
SERVE_LOCK := requirements/torch.lock
SERVE_EXTRAS := [torch]
endif

.PHONY: install install-dev models serve bento container test test-fast test-container lint

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

$(RUNTIME_STAMP): pyproject.toml $(SERVE_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -c $(SERVE_LOCK) -e '.$(SERVE_EXTRAS)'
	touch $@

# The development environment holds the runtime's: serving needs no second install.
$(DEV_STAMP): pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -c requirements/dev.lock -e '.[torch,dev]'
	touch $@ $(RUNTIME_STAMP)

models: install
	$(BIN)/reid models import

serve: models
	$(BIN)/bentoml serve . --port $(PORT)

bento: models
	$(BIN)/python scripts/build_bento.py

container: models
	BIN=$(BIN) scripts/container.sh

# Three workers (pytest-xdist), whole modules each (a module's servers start once), in the order
# tests/conftest.py sets. A worker spends much of its time waiting on servers and scripts, so
# three beat two on 2 cores: pytest 7:49 against 9:00 with the model cache filled (docs/development.md).
TEST_WORKERS ?= 3
test: install-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: install-dev
	$(BIN)/python -m pytest -m 'unit and not slow' tests/unit

test-container: install-dev container
	$(BIN)/python -m pytest tests/container

lint: install-dev
	$(BIN)/ruff check --output-format concise . && $(BIN)/ruff format --check . && $(BIN)/mypy
