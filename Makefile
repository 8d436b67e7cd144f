# Plakar Control Plane. `make run` starts everything; `make test` runs every check.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
PLAKAR_VERSION := v1.1.4
UV_VERSION := 0.13.9
DATA_DIR ?= data
HTTP_PORT ?= 8470
RUNNERS ?= 2

.PHONY: setup run test lint typecheck unit integration bench bench-scale clean

# Its three parts side by side: pip, the Go build and apt do not wait on one another.
setup:
	@$(MAKE) --no-print-directory -j3 $(STAMPS)/venv $(VENV)/bin/plakar $(STAMPS)/chromium

# uv installs the packages (some 20 s, where pip takes 45 s on two cores), compiled as
# they are installed: where PYTHONDONTWRITEBYTECODE is set, a module left uncompiled
# would be compiled again by every process that imports it.
$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -e '.[dev]'
	@touch $@

# plakar v1.1.4 from the Go module proxy, built without cgo (see deploy/plakar-build).
$(VENV)/bin/plakar: deploy/plakar-build/go.mod deploy/plakar-build/go.sum
	@mkdir -p $(VENV)/bin
	cd deploy/plakar-build && go mod download github.com/PlakarKorp/plakar@$(PLAKAR_VERSION) && \
	  CGO_ENABLED=0 GOFLAGS=-modcacherw go build -trimpath -o $(CURDIR)/$(VENV)/bin/plakar github.com/PlakarKorp/plakar
	$(VENV)/bin/plakar version | grep -q 'plakar/$(PLAKAR_VERSION)'

# Debian's chromium, for the browser tests of the web UI.
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi; }
	@touch $@

run: setup
	$(VENV)/bin/plakar-cp up --data-dir $(DATA_DIR) --http-port $(HTTP_PORT) --runners $(RUNNERS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q tests/unit

# pytest exits 5 when it collects no test; that is a failure here too. The tests start
# hundreds of Python processes: they keep the bytecode they compile (in the ignored
# __pycache__ folders) even where PYTHONDONTWRITEBYTECODE is set.
test: lint typecheck
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -q -rA --durations=20 -n 3 tests

bench: setup
	$(PY) -m bench

# The runner-scaling benchmark: draining 1,000 jobs takes about half an hour.
bench-scale: setup
	$(PY) -m bench runners

clean:
	rm -rf $(VENV) $(STAMPS)
