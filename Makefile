# Warden's two commands: `make run` (install, then serve with the Agents Playground)
# and `make test` (install, then the whole test suite). Both install idempotently.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install run test lint typecheck check bench bench-quick clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(PY) app.py serve --playground

# One test process per core (pytest-xdist), each test file whole in one of them (its module
# fixtures start once); every test has its own database and ports.
test: install
	$(PY) -m pytest -n auto --dist loadfile

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: install
	$(PY) -m bench.ingest
	$(PY) -m bench.turns
	$(PY) -m bench.invoke
	$(PY) -m bench.delivery
	$(PY) -m bench.memory
	$(PY) -m bench.evidence_upload
	$(PY) -m bench.graph
	$(PY) -m bench.fanout
	$(PY) -m bench.cmdb
	$(PY) -m bench.exports

bench-quick: install
	$(PY) -m bench.ingest --quick
	$(PY) -m bench.turns --quick
	$(PY) -m bench.invoke --quick
	$(PY) -m bench.delivery --quick
	$(PY) -m bench.memory --quick
	$(PY) -m bench.evidence_upload --quick
	$(PY) -m bench.graph --quick
	$(PY) -m bench.fanout --quick
	$(PY) -m bench.cmdb --quick
	$(PY) -m bench.exports --quick

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
