# polardb.stack — developer entry points. `make demo` and `make test` are the two
# commands a fresh machine needs (as root); everything else is a building block.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON     ?= python3
VENV       := $(CURDIR)/.venv
BIN        := $(VENV)/bin
COLL_LINK  := $(VENV)/collections/ansible_collections/polardb/stack
CLUSTER    ?= demo
PLAYBOOK   := $(BIN)/ansible-playbook
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1

.PHONY: help venv lab-up lab-down lab-fault demo create status destroy dsn \
        test lint sanity units unit integration molecule bench clean

help:
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(BIN)/ansible-playbook: requirements.txt
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(COLL_LINK): | $(BIN)/ansible-playbook
	mkdir -p $(dir $(COLL_LINK))
	ln -sfn $(CURDIR) $(COLL_LINK)

venv: $(BIN)/ansible-playbook $(COLL_LINK) ## Python virtualenv with pinned tools, collection linked in

lab-up: venv ## Bring the lab up (hosts, bridge, NAT, SAN array, LUNs); writes inventories/lab/hosts.yml
	$(PLAYBOOK) playbooks/lab.yml -e lab_state=present

lab-down: venv ## Remove everything the lab made (containers, loops, array, bridge, NAT)
	$(PLAYBOOK) playbooks/lab.yml -e lab_state=absent

lab-fault: venv ## HOST=<name> ACTION=poweroff|isolate|restore
	$(PLAYBOOK) playbooks/lab.yml -e lab_state=fault -e lab_fault_host=$(HOST) -e lab_fault_action=$(ACTION)

create: venv ## Create (or converge) cluster $(CLUSTER) from the inventory
	$(PLAYBOOK) playbooks/create_cluster.yml -e cluster=$(CLUSTER)

status: venv ## Print the topology of cluster $(CLUSTER), discovered from the engines
	$(PLAYBOOK) playbooks/status.yml -e cluster=$(CLUSTER)

destroy: venv ## Destroy cluster $(CLUSTER) (keeps LUN data)
	$(PLAYBOOK) playbooks/destroy_cluster.yml -e cluster=$(CLUSTER) -e confirm_destroy=$(CLUSTER)

demo: venv lab-up create status ## Fresh machine: tools, lab, cluster "demo" (1 RW + 2 RO), its status

dsn: venv ## Print a multi-host libpq DSN (target_session_attrs=read-write) for the application role
	@$(PLAYBOOK) playbooks/dsn.yml -e cluster=$(CLUSTER) 2>/dev/null | sed -n 's/^.*"msg": "\(postgresql:[^"]*\)".*$$/\1/p; s/^ *msg: \(postgresql:.*\)$$/\1/p'

test: lint sanity units integration ## Everything CI runs

lint: venv ## ansible-lint (production profile) and yamllint
	yamllint -s .
	ansible-lint --profile production

sanity: venv ## ansible-test sanity in a temporary ansible_collections tree
	tests/run-ansible-test sanity

units: venv ## unit tests (pytest, and ansible-test units)
	pytest -q tests/unit
	tests/run-ansible-test units

integration: venv ## lab up, molecule scenario and integration tests, lab down
	tests/run-integration

bench: venv ## benchmarks (results in bench-results/, summary in docs/benchmarks.md)
	@echo "no benchmarks yet"; exit 1

clean: lab-down
	rm -rf $(VENV) build tests/output
