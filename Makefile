# ocs-l3: `make render` renders the example fabric into build/ (no hosts
# needed); `make test` runs every check. Both install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INVENTORY ?= inventory/example
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Debian packages the tests need (validators and test hosts).
APT_TEST := iproute2 iptables nftables conntrack dnsmasq-base dnsmasq-utils isc-dhcp-client frr frr-pythontools \
	podman runc mmdebstrap uidmap
APT_VENV := python3-venv

.PHONY: help venv apt render test lint unit validate molecule clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements.txt constraints.txt
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || tools/apt-ensure $(APT_VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	touch $@

venv: $(VENV)/.stamp ## Create .venv with the pinned Python dependencies

apt: ## Install the Debian packages the tests need (idempotent)
	@tools/apt-ensure $(APT_TEST)

render: venv ## Validate the example fabric and render every host's files into build/
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/render.yml

lint: venv ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint

unit: venv ## pytest unit tests (pure Python, no root needed)
	$(BIN)/pytest -q tests/unit

validate: venv apt ## Render the example and check every file with the real tools
	$(BIN)/pytest -q tests/integration

test: venv apt lint unit validate ## Run every test (what CI runs)

clean: ## Remove build/ (the venv stays)
	rm -rf build
