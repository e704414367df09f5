# The two front-door commands (see README): `make plan` and `make test`. Both set up ./venv first.
PYTHON ?= python3
VENV ?= venv
PY := $(VENV)/bin/python
STACK ?= prod
OUT ?= build/plan-$(STACK)

.PHONY: plan test clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

plan: $(VENV)/.runtime
	$(PY) -m offline.plan $(STACK) --out $(OUT)

test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

clean:
	rm -rf build .pytest_cache
