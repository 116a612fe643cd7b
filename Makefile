# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: demo test lint chaos
demo: $(STAMP)
	$(BIN)/syndicator demo

test: lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check syndicator connectors tests
	$(BIN)/ruff format --check syndicator connectors tests
	$(BIN)/mypy syndicator connectors

chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.crash --posts 300 --kills 60

bench: $(STAMP)
	$(BIN)/python -m bench
