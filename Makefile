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
COLL_VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
COLL_TARBALL := polardb-stack-$(COLL_VERSION).tar.gz
# paths that must never be in the Galaxy tarball (see build_ignore in galaxy.yml)
GALAXY_FORBIDDEN := ^(tests|molecule|build|bench-results|changelogs/fragments|\.venv|\.ci|\.git|\.cache|\.lab|\.secrets|\.pytest_cache)(/|$$)|__pycache__|\.pyc$$|\.tar\.gz$$|^inventories/lab/hosts\.yml$$|^(requirements\.txt|pytest\.ini|Makefile|ansible\.cfg|\.ansible-lint|\.yamllint)$$
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1

.PHONY: help venv lab-up lab-down lab-fault demo create status destroy dsn \
        test lint changelog galaxy ee sanity units unit integration molecule bench clean

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
	@ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 $(PLAYBOOK) playbooks/dsn.yml -e cluster=$(CLUSTER) 2>/dev/null | sed -n 's/^.*"msg": "\(postgresql:[^"]*\)".*$$/\1/p; s/^ *msg: \(postgresql:.*\)$$/\1/p'

test: lint changelog galaxy ee sanity units integration ## Everything CI runs

lint: venv ## yamllint, ansible-lint (production profile), shellcheck of the shell scripts
	# all three run, so one pass shows every problem; any failure fails the target
	status=0
	yamllint -s . || status=1
	ansible-lint --profile production || status=1
	shellcheck -x .ci/run tests/run-* || status=1
	exit $$status

changelog: venv ## Lint changelog fragments; preview the next release notes in build/changelog-preview/
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	rm -rf build/changelog-preview && mkdir -p build/changelog-preview
	cp -r galaxy.yml changelogs build/changelog-preview/
	(cd build/changelog-preview && antsibull-changelog release --version $(COLL_VERSION) >/dev/null)
	echo "release notes preview: build/changelog-preview/CHANGELOG.rst"

galaxy: venv ## Build the collection tarball into build/ and check it as Galaxy would (contents, galaxy-importer)
	mkdir -p build && rm -f build/$(COLL_TARBALL)
	ansible-galaxy collection build --force --output-path build .
	# nothing of the developer tooling, tests, lab state or caches in the tarball
	if tar tzf build/$(COLL_TARBALL) | grep -E '$(GALAXY_FORBIDDEN)'; then
	  echo "build/$(COLL_TARBALL) holds the files above: add them to build_ignore in galaxy.yml" >&2; exit 1
	fi
	# galaxy-importer: what Galaxy runs on upload (ansible-doc of every plugin,
	# metadata, changelog); ansible-test and ansible-lint run in sanity and lint.
	(cd build && GALAXY_IMPORTER_CONFIG=$(CURDIR)/tests/galaxy-importer.cfg \
	  python -m galaxy_importer.main $(COLL_TARBALL) | tee galaxy-importer.log)
	if grep -E '^(WARNING|ERROR)' build/galaxy-importer.log; then
	  echo "galaxy-importer reported the problems above (build/galaxy-importer.log)" >&2; exit 1
	fi

ee: galaxy ## Check what an execution environment with this collection needs (ansible-builder introspect)
	rm -rf build/ee && mkdir -p build/ee/collections build/ee/definition
	# --force: .venv/collections (ansible.cfg) already holds polardb.stack
	ansible-galaxy collection install --force --no-deps -p build/ee/collections build/$(COLL_TARBALL) 2>/dev/null | tail -n1
	ansible-builder introspect build/ee/collections --write-pip build/ee/requirements.txt --write-bindep build/ee/bindep.txt
	grep -q '^psycopg' build/ee/requirements.txt || { echo "no psycopg in the EE python requirements" >&2; exit 1; }
	grep -q '^libpq' build/ee/bindep.txt || { echo "no libpq in the EE system requirements" >&2; exit 1; }
	# the example EE definition (ansible-builder v3) must render a build context
	cp docs/examples/execution-environment.yml build/$(COLL_TARBALL) build/ee/definition/
	ansible-builder create -f build/ee/definition/execution-environment.yml -c build/ee/context >/dev/null
	echo "execution environment: build/ee/requirements.txt, build/ee/bindep.txt, build/ee/context/"

sanity: venv ## ansible-test sanity (all tests that apply) in build/ansible_collections/polardb/stack
	tests/run-ansible-test sanity

units: venv ## Unit tests: pytest on the working tree, then ansible-test units on the collection copy
	if find tests/unit -name 'test_*.py' -type f | grep -q .; then
	  pytest -q tests/unit
	else
	  echo "no unit tests under tests/unit (pytest skipped)"
	fi
	tests/run-ansible-test units

integration: venv ## lab up, molecule scenario and integration tests, lab down
	tests/run-integration

bench: venv ## benchmarks (results in bench-results/, summary in docs/benchmarks.md)
	@echo "no benchmarks yet"; exit 1

clean: lab-down
	rm -rf $(VENV) build tests/output
