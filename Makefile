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

.PHONY: help venv apt render test lint unit validate image molecule demo demo-down clean

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

test: venv apt lint unit validate molecule ## Run every test (what CI runs)

# The container fabric (molecule/default, see molecule/README.md). Podman's
# settings come from molecule/containers.conf (CONTAINERS_CONF), not /etc.
MOLECULE := . tools/podman-env.sh && $(BIN)/molecule

image: apt ## Build the molecule node image if its recipe changed (tools/image/build.sh)
	tools/image/build.sh

molecule: venv apt image ## The fabric in containers: molecule test (destroy first, real packets in verify)
	. tools/podman-env.sh && time $(BIN)/molecule test

demo: venv apt image ## Bring the container fabric up (converged) and leave it running
	$(MOLECULE) destroy
	$(MOLECULE) converge
	@echo "fabric up: podman exec -it hv-r01-01 bash; ip netns exec vm-r01-01-a ...; make demo-down"

demo-down: ## Remove the demo fabric (containers and networks)
	$(MOLECULE) destroy

.PHONY: bench
bench: venv apt ## Scale benchmark: 10k/100k/500k instances, dense host, dnsmasq (root; ~30 min on 2 cores)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove build/ (the venv stays)
	rm -rf build
