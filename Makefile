# wfgen developer commands.  `make test` works on a fresh machine with only
# Python 3.11: it makes its own virtual environment (unless one is active)
# and installs what the tests need, including the system tools bash, curl and
# jq that the VM agent's test bed runs for real, and Chromium for the
# dashboard's browser tests.

PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.wfgen-installed

.PHONY: install demo test lint bench clean tools discovery

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# System tools the VM agent's tests run for real (present on most machines),
# and Chromium, the real browser the dashboard's tests drive (Debian's package).
tools:
	@missing=""; for t in bash curl jq chromium; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing" >&2; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; \
	fi

demo: $(STAMP)
	$(BIN)/python -m wfgen run --local --on-host examples/hello.yaml

test: $(STAMP) tools
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check wfgen tests benchmarks scripts

bench: $(STAMP) tools
	$(BIN)/python benchmarks/run_all.py

# serve's API descriptions: a trimmed copy of the Discovery documents that the
# pinned google-api-python-client ships (scripts/trim_discovery.py says which methods)
discovery: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[discovery]'
	$(BIN)/python scripts/trim_discovery.py

clean:
	rm -rf .venv build *.egg-info .pytest_cache .ruff_cache .hypothesis
