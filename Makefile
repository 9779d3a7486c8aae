# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
PYTEST_ARGS ?=

.PHONY: run test lint test-sqlite test-postgres fuzz bench install clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

## make run: install, migrate the SQLite database under instance/, load the demo data if the
## database is empty, print one demo token per role (the same ones as last time while they are
## valid: instance/demo-tokens.txt), serve on http://$(HOST):$(PORT) (/docs, /redoc).
run: $(VENV)/.installed
	$(BIN)/ecovalue db upgrade
	$(BIN)/ecovalue demo load --if-empty
	$(BIN)/ecovalue catalog regions load
	$(BIN)/ecovalue demo tokens
	@echo "serving on http://$(HOST):$(PORT)  (visit http://$(HOST):$(PORT)/docs for Swagger UI, /redoc for ReDoc)"
	$(BIN)/gunicorn -c ecovalue/gunicorn_config.py --bind $(HOST):$(PORT) 'ecovalue.app:create_app()'

## make test: lint and type checks, then the suite on SQLite, then on a throwaway PostgreSQL 15
## that it starts and stops.
test: lint test-sqlite test-postgres

## make lint: ruff (lint and import order) over the repository, mypy over the packages
## (configured in pyproject.toml).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

## make chromium: Debian's chromium and chromium-driver for the console's browser tests,
## installed only when missing (like scripts/pg.sh does for postgresql).
chromium:
	scripts/chromium.sh

test-sqlite: $(VENV)/.installed-test chromium
	$(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-test chromium
	scripts/with-postgres.sh $(BIN)/pytest $(PYTEST_ARGS)

## make fuzz: schemathesis at depth (tests/api/test_openapi_fuzz_full.py): 100 examples per
## operation, every check, positive and negative data, stateful links, every role's token, on
## SQLite then PostgreSQL. Slow; FUZZ_EXAMPLES=20 make fuzz for a shorter run.
FUZZ_EXAMPLES ?= 100
fuzz: $(VENV)/.installed-test
	ECOVALUE_FUZZ=1 SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/api/test_openapi_fuzz_full.py
	ECOVALUE_FUZZ=1 SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) scripts/with-postgres.sh $(BIN)/pytest -q tests/api/test_openapi_fuzz_full.py

bench: $(VENV)/.installed-test
	scripts/bench.sh

clean:
	rm -rf $(VENV) instance .pytest_cache
