# A newcomer's entry points: `make demo`, `make test`. Everything else is what those two call.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEPS := pyproject.toml requirements/dev.txt requirements/dev.lock layers/multus_ipam/requirements.in

.PHONY: help venv demo test lint typecheck cfn-lint pytest bench lock layer-lock clean sam-venv validate build checkov-venv checkov-lock mutation

# SAM CLI lives in its own virtualenv (its pins conflict with ours). `sam build` for python3.13 needs a
# python3.13 on PATH: the one scripts/find-python finds (pyenv installs included).
SAM_VENV ?= .sam-venv
SAM_STAMP := $(SAM_VENV)/.installed-stamp
SAM := SAM_CLI_TELEMETRY=0 PATH="$$(dirname "$$(scripts/find-python)"):$$PATH" $(SAM_VENV)/bin/sam

# checkov (the Kubernetes security scanner of the pod IP manager's manifests) in its own virtualenv too: its
# dependencies conflict with our pins. tests/pod/test_deploy_scan.py runs it; `make test` installs it first.
CHECKOV_VENV ?= .checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp

help:
	@echo "make demo   - set up and run a local scale-out of a Multus node group against the local AWS"
	@echo "make test   - set up and run lint, type checks, cfn-lint, sam validate + build and the tests (what CI runs)"
	@echo "make bench  - burst and cold-start benchmarks (not part of the tests)"
	@echo "make mutation - mutation testing: scores per module and every surviving mutant (not part of the tests)"
	@echo "make build  - sam build (the deployable stack, into .aws-sam/); then: sam deploy --guided"

venv: $(STAMP)

$(STAMP): $(DEPS)
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	@echo "first run: installing the pinned dependencies into $(VENV) ($$($(PY) --version)); about a minute on 2 cores, once"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/dev.lock 2>&1 | { grep -v '^WARNING: Location' || true; }
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

demo: venv
	@$(PY) -m demo

test: lint typecheck cfn-lint validate build checkov-venv pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

cfn-lint: venv
	$(VENV)/bin/cfn-lint template.yaml

sam-venv: $(SAM_STAMP)

$(SAM_STAMP): requirements/sam.txt
	@test -x $(SAM_VENV)/bin/python || "$$(scripts/find-python)" -m venv $(SAM_VENV)
	@echo "first run: installing SAM CLI into $(SAM_VENV); about a minute, once"
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/sam.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements/checkov.txt requirements/checkov.lock
	@test -x $(CHECKOV_VENV)/bin/python || "$$(scripts/find-python)" -m venv $(CHECKOV_VENV)
	@echo "first run: installing checkov into $(CHECKOV_VENV); under a minute, once"
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt -c requirements/checkov.lock 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

# Re-resolve checkov's pinned set after changing requirements/checkov.txt.
checkov-lock: checkov-venv
	{ echo "# Fully resolved set of requirements/checkov.txt (pip freeze of .checkov-venv on Python 3.13): \`make checkov-lock\`."; \
	  $(CHECKOV_VENV)/bin/python -m pip freeze --disable-pip-version-check; } > requirements/checkov.lock

validate: sam-venv
	$(SAM) validate --lint

# samconfig.toml makes this a cached, parallel build: layer dependencies (arm64 wheels from PyPI) are
# downloaded again only when layers/multus_ipam/requirements.txt changes.
build: sam-venv
	$(SAM) build

pytest: venv
	$(VENV)/bin/pytest -n 2 -q

bench: venv
	$(PY) -m benchmarks.burst
	$(PY) -m benchmarks.cold_start

# Mutation testing (docs/testing.md): each pure module against the tests that own it, and the engine's flows against
# its handler tests; a score per module and every survivor. Not part of `make test` (it takes a while). Pass
# MUTATION="addressing plan" to run some targets only, MUTATION_JOBS to change the parallel mutants (default 2).
MUTATION ?=
MUTATION_JOBS ?= 2
mutation: venv
	$(PY) -m mutation --jobs $(MUTATION_JOBS) $(MUTATION)

# Re-resolve the full pinned set after changing requirements/dev.txt.
lock: venv
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^eks-multus-ipam' > requirements/dev.lock

# Regenerate what SAM installs into the layer (layers/multus_ipam/requirements.txt) from its top-level pins
# (requirements.in): every transitive package at its requirements/dev.lock version, resolved for Lambda's
# python3.13 on arm64, with the sha256 of every file PyPI has for it. Run after `make lock`;
# tests/test_supply_chain.py fails while the three disagree.
layer-lock: venv
	$(VENV)/bin/uv pip compile --quiet layers/multus_ipam/requirements.in --constraint requirements/dev.lock \
		--python-platform aarch64-manylinux_2_28 --python-version 3.13 --generate-hashes \
		--custom-compile-command 'make layer-lock' --output-file layers/multus_ipam/requirements.txt

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .aws-sam mutants
