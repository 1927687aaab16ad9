# A newcomer's entry points: `make demo`, `make test`. Everything else is what those two call.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEPS := pyproject.toml requirements/dev.txt requirements/dev.lock layers/multus_ipam/requirements.txt

.PHONY: help venv demo test lint typecheck cfn-lint pytest bench lock clean

help:
	@echo "make demo   - set up and run a local scale-out of a Multus node group against the local AWS"
	@echo "make test   - set up and run lint, type checks, cfn-lint and the test suite (what CI runs)"
	@echo "make bench  - burst benchmarks (not part of the tests)"

venv: $(STAMP)

$(STAMP): $(DEPS)
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) ($$($(PY) --version))"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/dev.lock 2>&1 | { grep -v '^WARNING: Location' || true; }
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

demo: venv
	@$(PY) -m localaws.demo

test: lint typecheck cfn-lint pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

cfn-lint: venv
	$(VENV)/bin/cfn-lint template.yaml

pytest: venv
	$(VENV)/bin/pytest -n 2 -q

bench: venv
	$(PY) -m benchmarks.burst

# Re-resolve the full pinned set after changing requirements/dev.txt.
lock: venv
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^eks-multus-ipam' > requirements/dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .aws-sam
