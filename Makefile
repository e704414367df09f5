# The two front-door commands (see README): `make plan` and `make test`. Both set up ./venv first.
PYTHON ?= python3
VENV ?= venv
PY := $(VENV)/bin/python
STACK ?= prod
OUT ?= build/plan-$(STACK)
# DEPLOYED=<file of `pulumi stack output --json`>: plan against what runs (the summary of what changes).
DEPLOYED ?=
# ALERTS=1: also count the alerts a healthy cluster of the stack would fire (promtool; a few seconds more).
ALERTS ?=

.PHONY: plan test clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

plan: $(VENV)/.runtime
	$(PY) -m offline.plan $(STACK) --county-stacks --out $(OUT) $(if $(DEPLOYED),--deployed $(DEPLOYED)) $(if $(ALERTS),--healthy-alerts)

test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

clean:
	rm -rf build .pytest_cache
