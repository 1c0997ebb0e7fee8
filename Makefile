# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
R4_EXAMPLES := .cache/r4/package
R4_EXAMPLES_VERSION := 4.0.1

.PHONY: run demo-app test test-mongo mongoeco smart-clients print-python313 venv bench lint typecheck lock r4-examples r4-tables r4-definitions search-tables profiles profiles-sushi profiles-check clean

$(BIN)/.installed: pyproject.toml requirements.lock requirements-test.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/.installed

# mongoeco, the MongoDB wire-protocol imitation the Mongo backend's tests start, needs Python 3.13:
# its own environment, from python3.13 on PATH or pyenv's. Without one the Mongo tests skip
# (outside CI); FHIR_SERVER_TEST_MONGODB_URL points them at a real MongoDB instead.
PYTHON313 ?= $(shell for p in $$(command -v python3.13) $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
MONGOECO_VENV := .venv-mongoeco

$(MONGOECO_VENV)/.installed: tests/mongoeco/requirements.lock
	@test -n "$(PYTHON313)" || { echo "mongoeco needs Python 3.13 (python3.13 on PATH or pyenv)"; exit 1; }
	$(PYTHON313) -m venv $(MONGOECO_VENV)
	$(MONGOECO_VENV)/bin/python -m pip install --quiet --require-hashes -r tests/mongoeco/requirements.lock
	@touch $@

mongoeco: $(MONGOECO_VENV)/.installed

print-python313:
	@echo $(PYTHON313)

# `make test` builds the mongoeco environment too when a Python 3.13 is there.
MONGO_TEST_DEPS := $(if $(PYTHON313),mongoeco,)

# The real SMART clients of the browser tests (tests/smart_clients/README.md): playwright-core
# from the lockfile and client-js's prebuilt bundle (integrity-checked), no browser download;
# the browser is Debian's chromium. Without node and npm the browser tests skip (outside CI).
SMART_CLIENTS := tests/smart_clients
SMART_CLIENTS_INPUTS := $(addprefix $(SMART_CLIENTS)/,package.json package-lock.json install-fhirclient.mjs)

$(SMART_CLIENTS)/node_modules/.installed: $(SMART_CLIENTS_INPUTS)
	cd $(SMART_CLIENTS) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	node $(SMART_CLIENTS)/install-fhirclient.mjs
	@touch $@

smart-clients: $(SMART_CLIENTS)/node_modules/.installed

SMART_TEST_DEPS := $(if $(shell command -v node),$(if $(shell command -v npm),smart-clients,),)

# --demo: on first start with an empty store, demo accounts (printed, and in var/DEMO-CREDENTIALS.txt).
run: venv
	$(BIN)/fhir-server serve --demo $(ARGS)

# The demo SMART app (client-js) on http://127.0.0.1:8000, for the demo-app client of `make run`.
demo-app: venv smart-clients
	$(BIN)/python scripts/serve_demo_app.py

# The official R4 example package (HL7, CC0-1.0) from the npm registry, for the round-trip tests.
$(R4_EXAMPLES)/package.json:
	mkdir -p .cache/r4
	cd .cache && npm pack --silent hl7.fhir.r4.examples@$(R4_EXAMPLES_VERSION) >/dev/null
	tar xzf .cache/hl7.fhir.r4.examples-$(R4_EXAMPLES_VERSION).tgz -C .cache/r4
	rm -f .cache/hl7.fhir.r4.examples-$(R4_EXAMPLES_VERSION).tgz

r4-examples: $(R4_EXAMPLES)/package.json

# The suite runs in one pytest-xdist worker per CPU (much of it waits on sockets, fsync and
# subprocesses); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
test: venv r4-examples $(MONGO_TEST_DEPS) $(SMART_TEST_DEPS)
	FHIR_R4_EXAMPLES=$(R4_EXAMPLES) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Only the suites that run on MongoDB (storage contract, search congruence, Mongo-specific tests).
test-mongo: venv mongoeco
	$(BIN)/python -m pytest -m mongo $(PYTEST_ARGS)

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

# Regenerate the R4 definitions (StructureDefinitions, ValueSets, CodeSystems, ConceptMaps) shipped
# in fhir_server/conformance/data, which the validator and the terminology service read.
r4-definitions: venv r4-examples
	$(BIN)/python scripts/gen_r4_definitions.py $(R4_EXAMPLES)

# Regenerate the search tables shipped in fhir_server/search/data from the official package.
search-tables: venv r4-examples
	$(BIN)/python scripts/gen_search_tables.py $(R4_EXAMPLES)

# The server's FHIR profiles (profiles/README.md): FSH sources built into StructureDefinitions with
# snapshots by SUSHI, pinned in profiles/package-lock.json. SUSHI reads hl7.fhir.r4.core#4.0.1 from
# a FHIR package cache under PROFILES_HOME, filled from the R4 example package (packages.fhir.org is
# not reachable); FPL_REGISTRY points at a closed local port so SUSHI's automatic dependencies
# (hl7.fhir.uv.tools, hl7.terminology, hl7.fhir.uv.extensions) fail at once instead of going online.
PROFILES := profiles
PROFILES_HOME := .cache/fhir-home
SUSHI := $(PROFILES)/node_modules/.bin/sushi
SUSHI_BUILD = HOME=$(abspath $(PROFILES_HOME)) FPL_REGISTRY=http://127.0.0.1:9 $(abspath $(SUSHI)) build --snapshot --log-level warn

$(PROFILES)/node_modules/.installed: $(PROFILES)/package.json $(PROFILES)/package-lock.json
	cd $(PROFILES) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

profiles-sushi: $(PROFILES)/node_modules/.installed r4-examples
	@$(PYTHON) scripts/fhir_core_cache.py $(R4_EXAMPLES) $(PROFILES_HOME)

profiles: profiles-sushi
	rm -rf $(PROFILES)/fsh-generated
	$(SUSHI_BUILD) $(PROFILES)

# Rebuilds from a temporary copy of the sources and compares with the committed output.
profiles-check: profiles-sushi
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp -r $(PROFILES)/sushi-config.yaml $(PROFILES)/input "$$tmp"/ && \
	$(SUSHI_BUILD) "$$tmp" >"$$tmp/sushi.log" 2>&1 || { cat "$$tmp/sushi.log"; echo "profiles-check: SUSHI failed" >&2; exit 1; }; \
	if ! diff -r "$$tmp/fsh-generated" $(PROFILES)/fsh-generated >"$$tmp/diff.txt"; then \
	head -n 40 "$$tmp/diff.txt"; \
	echo "profiles-check: the committed StructureDefinitions in $(PROFILES)/fsh-generated are stale (they differ from what SUSHI builds from $(PROFILES)/input/fsh): run 'make profiles' and commit the result" >&2; \
	exit 1; fi; \
	echo "profiles-check: $(PROFILES)/fsh-generated is up to date"

# Re-lock the dependencies (needs the network to PyPI).
lock: venv
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --extra test -o requirements-test.lock pyproject.toml

clean:
	rm -rf $(VENV) $(MONGOECO_VENV) $(SMART_CLIENTS)/node_modules profiles/node_modules .cache .pytest_cache .mypy_cache .ruff_cache
