# cloudcircuit: the two commands that do everything are `make demo` and `make test`.
# Each installs what it needs into .venv (Python 3.11+), so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
ADAPTERS := $(wildcard adapters/*/pyproject.toml)
PYTEST_ARGS ?=

.PHONY: help install demo test lint format bench system-deps clean lambda-zip checkov-venv

help:
	@echo "make demo   - end-to-end dry-run scan on generated FOCUS data (no cloud account needed)"
	@echo "make test   - install, lint (ruff, ruff format, mypy) and run the whole test suite"
	@echo "make bench  - side-by-side benchmarks against the predecessor packages"
	@echo "make lint   - ruff check, ruff format --check, mypy"

$(STAMP): pyproject.toml $(ADAPTERS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(PY) -q -e ".[all,dev]" $(foreach a,$(ADAPTERS),-e "$(dir $(a))[dev]")
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the HTML report test (skipped, saying why, when it cannot be had).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report test..."; \
	    (apt-get update -qq >/dev/null 2>&1 || true); \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  fi; }

demo: $(STAMP)
	$(BIN)/cloudcircuit demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) system-deps checkov-venv lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

# AWS Lambda package: core + AWS adapter only (boto3 comes with the Lambda runtime).
# Reports the zip size and the handler's cold import time. POLICY=path bundles a policy.
lambda-zip: $(STAMP)
	$(PY) adapters/aws/build_lambda.py --out dist/cloudcircuit-aws-lambda.zip $(if $(POLICY),--policy $(POLICY))

# checkov in its own venv (it replaces python-hcl2's module with its fork); the Terraform test uses it.
checkov-venv:
	@test -x .venv-checkov/bin/checkov || { $(PYTHON) -m venv .venv-checkov && .venv-checkov/bin/pip install -q "checkov>=3.2,<4"; }

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache out
