# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
R4_EXAMPLES := .cache/r4/package
R4_EXAMPLES_VERSION := 4.0.1

.PHONY: run test venv bench lint typecheck lock r4-examples r4-tables search-tables clean

$(BIN)/.installed: pyproject.toml requirements.lock requirements-test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/fhir-server serve $(ARGS)

# The official R4 example package (HL7, CC0-1.0) from the npm registry, for the round-trip tests.
$(R4_EXAMPLES)/package.json:
	mkdir -p .cache/r4
	cd .cache && npm pack --silent hl7.fhir.r4.examples@$(R4_EXAMPLES_VERSION) >/dev/null
	tar xzf .cache/hl7.fhir.r4.examples-$(R4_EXAMPLES_VERSION).tgz -C .cache/r4
	rm -f .cache/hl7.fhir.r4.examples-$(R4_EXAMPLES_VERSION).tgz

r4-examples: $(R4_EXAMPLES)/package.json

test: venv r4-examples
	FHIR_R4_EXAMPLES=$(R4_EXAMPLES) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check fhir_server tests scripts bench
	$(BIN)/ruff format --check fhir_server tests scripts bench

typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m bench $(ARGS)

# Regenerate the R4 tables shipped in fhir_server/core/r4/data from the official package.
r4-tables: venv r4-examples
	$(BIN)/python scripts/gen_r4_tables.py $(R4_EXAMPLES)

# Regenerate the search tables shipped in fhir_server/search/data from the official package.
search-tables: venv r4-examples
	$(BIN)/python scripts/gen_search_tables.py $(R4_EXAMPLES)

# Re-lock the dependencies (needs the network to PyPI).
lock: venv
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --extra test -o requirements-test.lock pyproject.toml

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
