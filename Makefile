# make serve  - install into .venv, put the models in the BentoML store, start the service
# make test   - install into .venv, run the whole test suite (CI)
# make test-fast - the unit tests: no ../shared, no server, under a minute
# Offline, point REID_MODELS_DIR at a folder of weights (e.g. ../shared/models); the embedder is
# quantised to INT8 on the labelled crops REID_CALIBRATION_CROPS names (unquantised without them).

PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export BENTOML_DO_NOT_TRACK := true

# Where ../shared is (our machines), models and calibration crops come from it, not the network.
SHARED ?= ../shared
ifneq ($(wildcard $(SHARED)/models),)
export REID_MODELS_DIR ?= $(SHARED)/models
export REID_CALIBRATION_CROPS ?= $(SHARED)/data/cuhk03-pair1
endif

.PHONY: install models serve test test-fast lint

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -c requirements.lock -e '.[test]'
	touch $@

models: install
	$(BIN)/reid models import

serve: models
	$(BIN)/bentoml serve . --port $(PORT)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check --output-format concise . && $(BIN)/ruff format --check . && $(BIN)/mypy
