# optinode developer entry points. Every target bootstraps first (idempotent, hash-stamped):
# .venv + pip install -e '.[test]', npm ci (solc, anvil), contract build. See docs/toolchain.md.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PYTEST_ARGS ?=

.PHONY: help bootstrap demo spec-demo test test-fast contracts clean

help:
	@echo "make demo        bootstrap, then run the devnet demo (optinode devnet --scenario all, about a minute)"
	@echo "make spec-demo   bootstrap, then run the executable spec's narrated demo (optinode spec demo)"
	@echo "make test        bootstrap, then run the whole test suite"
	@echo "make test-fast   bootstrap, then run the tests that need no anvil (-m 'not l1')"
	@echo "make contracts   (re)build contracts/artifacts if contracts/src changed"
	@echo "make bootstrap   only create/update .venv, node_modules and the contract artifacts"
	@echo "make clean       remove .venv, node_modules and caches"

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(VENV)/bin/optinode devnet --scenario all

spec-demo: bootstrap
	$(VENV)/bin/optinode spec demo

test: bootstrap
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: bootstrap
	$(VENV)/bin/python -m pytest -m "not l1" $(PYTEST_ARGS)

contracts: bootstrap

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
