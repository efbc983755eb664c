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
APT_TEST := iproute2 iputils-ping iptables nftables conntrack dnsmasq-base dnsmasq-utils isc-dhcp-client frr frr-pythontools \
	podman runc mmdebstrap uidmap graphviz sudo
APT_VENV := python3-venv

.PHONY: help venv link apt render plan topology ee collection collection-install sanity test lint unit validate image molecule demo demo-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.stamp: requirements.txt constraints.txt
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || tools/apt-ensure $(APT_VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(MAKE) --no-print-directory link
	touch $@

# A clone is the collection ocs.l3: link it into the venv's ansible_collections
# (what an editable install does), so the roles, plugins and library resolve by
# their full names (ocs.l3.*) from a clone too, and Python imports
# ansible_collections.ocs.l3 with no path hacks. Nothing is copied.
link: ## Link this checkout into .venv as the collection ocs.l3
	@site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	mkdir -p "$$site/ansible_collections/ocs" && ln -sfn "$(CURDIR)" "$$site/ansible_collections/ocs/l3"

venv: $(VENV)/.stamp ## Create .venv with the pinned Python dependencies

apt: ## Install the Debian packages the tests need (idempotent)
	@tools/apt-ensure $(APT_TEST)

render: venv ## Validate the example fabric and render every host's files into build/
	$(BIN)/ansible-playbook -i $(INVENTORY) playbooks/render.yml

# The offline plan (tools/ocs-plan over plugins/plugin_utils/plan.py): what the
# working copy of INVENTORY changes against PLAN_OLD; no host needed. Exit 2
# (changes) is not a failure here.
PLAN_OLD ?= HEAD:$(INVENTORY)
plan: venv ## Plan INVENTORY's change against PLAN_OLD (default HEAD:INVENTORY), offline
	$(BIN)/python tools/ocs-plan $(PLAN_OLD) $(INVENTORY) || test $$? -eq 2

# The topology picture (tools/ocs-topology over plugins/plugin_utils/topology.py,
# Graphviz's dot): the example into docs/ (committed, shown in README.md); the
# molecule fabric and a generated 100-rack fabric (drawn one node per rack) into build/.
TOPOLOGY_OUT := build/topology
topology: venv ## Draw the example fabric into docs/topology.svg/.png, molecule's and 100 racks into build/topology/
	@tools/apt-ensure graphviz
	$(BIN)/python tools/ocs-topology -i inventory/example -o docs/topology.svg -o docs/topology.png
	mkdir -p $(TOPOLOGY_OUT)
	$(BIN)/python tools/ocs-topology -i molecule/default/inventory -o $(TOPOLOGY_OUT)/molecule.svg -o $(TOPOLOGY_OUT)/molecule.png
	$(BIN)/python tools/gen_fabric.py --force $(TOPOLOGY_OUT)/fabric-100 --racks 100 --hypervisors 20 --instances 10 >/dev/null
	$(BIN)/python tools/ocs-topology -i $(TOPOLOGY_OUT)/fabric-100 -o $(TOPOLOGY_OUT)/fabric-100.svg -o $(TOPOLOGY_OUT)/fabric-100.png

lint: venv ## yamllint and ansible-lint (production profile)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint

unit: venv ## pytest unit tests (pure Python, no root needed)
	$(BIN)/pytest -q tests/unit

validate: venv apt ## Render the example and check every file with the real tools
	time $(BIN)/pytest -q -n 2 --dist loadfile tests/integration

# Set-up, lint and the unit tests first (the quick failures), then the three
# long phases side by side, each printing its output (and its time) when it
# ends: the netns labs, ansible-test sanity (niced: CPU only, nothing timed)
# and the container fabric, which spends half its time waiting on its hosts
# (two cores: run in a row they took 40 min, side by side they fit in 35).
test: venv apt lint unit ## Run every test (what CI runs)
	$(MAKE) --no-print-directory -j3 --output-sync=target validate sanity molecule

# The container fabric (molecule/default, see molecule/README.md). Podman's
# settings come from molecule/containers.conf (CONTAINERS_CONF), not /etc.
MOLECULE := . tools/podman-env.sh && $(BIN)/molecule

# The collection artifact (what an operator installs) and an offline install of
# it for the container fabric: molecule converges the installed ocs.l3.
COLLECTION_OUT := build/collection
collection: venv ## Build the collection artifact into build/collection/
	rm -rf $(COLLECTION_OUT) && mkdir -p $(COLLECTION_OUT)
	$(BIN)/ansible-galaxy collection build --force --output-path $(COLLECTION_OUT) .

# --force: the venv's link already provides ocs.l3 (a clone); dependencies
# (ansible.posix) resolve offline from the ansible pip bundle.
collection-install: collection
	rm -rf molecule/build/collections && mkdir -p molecule/build/collections
	$(BIN)/ansible-galaxy collection install --offline --force -p molecule/build/collections $(COLLECTION_OUT)/ocs-l3-*.tar.gz

# The AWX/AAP execution environment: its build context (Containerfile, the
# artifact, requirements) from execution-environment.yml. The image is built
# where a container registry is reachable (README: "Execution environment and AWX").
EE_CONTEXT := build/ee
ee: collection ## ansible-builder build context of the execution environment into build/ee/
	cp $(COLLECTION_OUT)/ocs-l3-*.tar.gz $(COLLECTION_OUT)/ocs-l3.tar.gz
	rm -rf $(EE_CONTEXT)
	$(BIN)/ansible-builder create -f execution-environment.yml --context $(EE_CONTEXT)

sanity: collection ## ansible-test sanity on the built collection (tools/sanity/run)
	time nice -n 10 tools/sanity/run $(COLLECTION_OUT)/ocs-l3-*.tar.gz

image: apt ## Build the molecule node image if its recipe changed (tools/image/build.sh)
	tools/image/build.sh

molecule: venv apt image collection-install ## The fabric in containers: molecule test (destroy first, real packets in verify)
	. tools/podman-env.sh && time $(BIN)/molecule test

demo: venv apt image collection-install ## Bring the container fabric up (converged) and leave it running
	$(MOLECULE) destroy
	$(MOLECULE) converge
	@echo "fabric up: podman exec -it hv-r01-01 bash; ip netns exec vm-r01-01-a ...; make demo-down"

demo-down: ## Remove the demo fabric (containers and networks)
	$(MOLECULE) destroy

.PHONY: bench
bench: venv apt ## Scale benchmark: 10k/100k/500k instances, dense host, dnsmasq (root; ~30 min on 2 cores)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

.PHONY: bench-frr
bench-frr: venv apt ## FRR load of a dense rack's ToR and hypervisor through ocs_frr_reload, real FRR (root; ~10 min)
	$(BIN)/python bench/frr_load.py $(BENCH_FRR_ARGS)

clean: ## Remove build/ (the venv stays)
	rm -rf build
