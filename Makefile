# The two entry points of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision are pinned in pyproject.toml (2.14.1 / 0.29.1)
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: run test install install-test viz mlflow-ui benchmark results compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: set up and train UG-VAE on the embedded MNIST digits (kedro run --pipeline=train)
run: install
	$(BIN)/kedro run --pipeline=train

## test: set up with test extras and run the whole test suite
test: install-test
	$(BIN)/python -m pytest

viz: install
	$(BIN)/kedro viz run --autoreload

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

benchmark: install
	$(BIN)/python -m ugvae_pipeline.benchmark

## results: every model x 3 seeds on series groups and on MNIST+UCI domain alignment, then compare
results: install
	$(BIN)/python scripts/run_results.py

## compare: the runs of the default MLflow experiment side by side (data/08_reporting/comparison/)
compare: install
	$(BIN)/kedro run --pipeline=compare

clean:
	rm -rf $(VENV) .pytest_cache
