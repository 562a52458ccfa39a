# polardb.stack — developer entry points. `make demo` and `make test` are the two
# commands a fresh machine needs (as root); everything else is a building block.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

# Debian's python3 (built with PGO and LTO) runs Ansible's controller about 9 % cheaper than
# an unoptimised build that may come first in PATH (a pyenv shim): the lab shares its cores with it
PYTHON     ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV       := $(CURDIR)/.venv
BIN        := $(VENV)/bin
COLL_LINK  := $(VENV)/collections/ansible_collections/polardb/stack
CLUSTER    ?= demo
# LAB_VARS=file.yml: a second lab's overrides (bridge, subnet, lab_state_dir, lab_machine_prefix)
LAB_VARS   ?=
LAB_EXTRA  := $(if $(LAB_VARS),-e @$(LAB_VARS))
PLAYBOOK   := $(BIN)/ansible-playbook
COLL_VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
COLL_TARBALL := polardb-stack-$(COLL_VERSION).tar.gz
# paths that must never be in the Galaxy tarball (see build_ignore in galaxy.yml)
GALAXY_FORBIDDEN := ^(lab|tests|molecule|build|bench-results|changelogs/fragments|\.venv|\.ci|\.git|\.cache|\.lab|\.secrets|\.pytest_cache)(/|$$)|__pycache__|\.pyc$$|\.tar\.gz$$|^inventories/lab(/|$$)|^(requirements\.txt|pytest\.ini|Makefile|ansible\.cfg|\.ansible-lint|\.yamllint)$$
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1

.PHONY: help venv lab-up lab-down lab-fault demo create status switchover failover destroy dsn param-catalog \
        test static static-low-priority lint changelog galaxy ee sanity units unit integration molecule bench bench-ha bench-ha-auto bench-day2 bench-k8s clean \
        k8s-build k8s-up k8s-down k8s-test

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
	$(PLAYBOOK) lab/lab.yml $(LAB_EXTRA) -e lab_state=present

lab-down: venv ## Remove everything the lab made (containers, loops, array, bridge, NAT)
	$(PLAYBOOK) lab/lab.yml $(LAB_EXTRA) -e lab_state=absent

lab-fault: venv ## HOST=<name> ACTION=poweroff|isolate|restore
	$(PLAYBOOK) lab/lab.yml $(LAB_EXTRA) -e lab_state=fault -e lab_fault_host=$(HOST) -e lab_fault_action=$(ACTION)

K8S_LAB := $(BIN)/python lab/k8s/k8s_lab.py

k8s-build: ## Build kube-apiserver, kube-controller-manager, kubectl and etcd from Go modules (once: cached in /var/cache/polardb-stack/k8s by version)
	lab/k8s/build.sh

k8s-up: venv k8s-build ## Start the lab's Kubernetes control plane on 127.0.0.1:16443; `$(K8S_LAB) env` prints its KUBECONFIG
	$(K8S_LAB) up

k8s-down: venv ## Stop the lab's Kubernetes control plane and remove its state
	$(K8S_LAB) down

k8s-test: k8s-up ## Tests of the Kubernetes API as control plane (CRD, module, Lease lock, inventory plugin, RBAC); stops the control plane after
	status=0
	pytest -v -p no:cacheprovider --durations=5 tests/integration/test_k8s_api.py || status=$$?
	$(K8S_LAB) down
	exit $$status

create: venv ## Create (or converge) cluster $(CLUSTER) from the inventory
	$(PLAYBOOK) playbooks/create_cluster.yml -e cluster=$(CLUSTER)

status: venv ## Print the topology of cluster $(CLUSTER), discovered from the engines
	$(PLAYBOOK) playbooks/status.yml -e cluster=$(CLUSTER)

switchover: venv ## Switch the RW of cluster $(CLUSTER) over to a replica (TARGET=host optional)
	$(PLAYBOOK) playbooks/switchover.yml -e cluster=$(CLUSTER) $(if $(TARGET),-e target=$(TARGET))

failover: venv ## Promote a replica of cluster $(CLUSTER) after its RW died (fences the old RW first)
	$(PLAYBOOK) playbooks/failover.yml -e cluster=$(CLUSTER)

destroy: venv ## Destroy cluster $(CLUSTER) (keeps LUN data)
	$(PLAYBOOK) playbooks/destroy_cluster.yml -e cluster=$(CLUSTER) -e confirm_destroy=$(CLUSTER)

demo: venv lab-up create status ## Fresh machine: tools, lab, cluster "demo" (1 RW + 2 RO), its status

param-catalog: venv ## Regenerate plugins/module_utils/pg_catalog_$(MAJOR).py from the engine on lab host $(HOST) (default pdb1, 15)
	$(PLAYBOOK) tests/tools/param_catalog.yml -e catalog_host=$(or $(HOST),pdb1) -e catalog_major=$(or $(MAJOR),15)

dsn: venv ## Print a multi-host libpq DSN (target_session_attrs=read-write) for the application role
	@ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 $(PLAYBOOK) playbooks/dsn.yml -e cluster=$(CLUSTER) 2>/dev/null | sed -n 's/^.*"msg": "\(postgresql:[^"]*\)".*$$/\1/p; s/^ *msg: \(postgresql:.*\)$$/\1/p'

test: venv ## Everything CI runs: the lab's integration tests, and beside them the static checks one after another
	# Two job slots: the integration tests (the long pole, mostly waiting on the
	# lab's hosts) hold one from the start; the static checks take turns in the
	# other, at the lowest CPU priority, so that they do not slow the lab's
	# hosts and array down. Each target's output is printed whole when it ends.
	$(MAKE) --no-print-directory -j2 --output-sync=target integration static-low-priority

static-low-priority:
	# nice orders processes only within one scheduler autogroup (a session each, with
	# kernel.sched_autogroup_enabled=1), and the lab's hosts run in sessions of their
	# own: with nice alone the static checks slowed the integration tests 1.6 times
	# (2014 s of pytest beside them, 1247 s once they had stopped). In a session of
	# their own, with the lowest autogroup weight, they yield to the lab.
	setsid -w sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 $(MAKE) --no-print-directory static'

# k8s-build first: the lab's Kubernetes tests (test_k8s_reconcile) need its binaries, and a
# first build (about 9 min on 2 cores) fits while the lab boots
static: k8s-build lint changelog docs-site galaxy ee sanity units k8s-test ## The checks that need no lab host (and the Kubernetes API tests)

lint: venv ## yamllint, ansible-lint (production profile), shellcheck of the shell scripts
	# all three run, so one pass shows every problem; any failure fails the target
	status=0
	yamllint -s . || status=1
	ansible-lint --profile production || status=1
	shellcheck -x .ci/run tests/run-* lab/k8s/build.sh || status=1
	exit $$status

changelog: venv ## Lint the changelog and its fragments; check that CHANGELOG.rst is generated from it
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	# CHANGELOG.rst must be what antsibull-changelog generates from changelogs/
	rm -rf build/changelog-check && mkdir -p build/changelog-check
	cp -r galaxy.yml changelogs plugins meta CHANGELOG.rst build/changelog-check/
	(cd build/changelog-check && antsibull-changelog generate)
	diff -u CHANGELOG.rst build/changelog-check/CHANGELOG.rst
	echo "changelog ok; unreleased fragments: $$(ls changelogs/fragments | grep -c yml || true)"

galaxy: venv ## Build the collection tarball into build/ and check it as Galaxy would (contents, galaxy-importer)
	mkdir -p build && rm -f build/$(COLL_TARBALL)
	ansible-galaxy collection build --force --output-path build .
	# nothing of the developer tooling, tests, lab state or caches in the tarball
	if tar tzf build/$(COLL_TARBALL) | grep -E '$(GALAXY_FORBIDDEN)'; then
	  echo "build/$(COLL_TARBALL) holds the files above: add them to build_ignore in galaxy.yml" >&2; exit 1
	fi
	# only the product: no plugin, role, playbook or metadata may know the test lab's array
	rm -rf build/galaxy-contents && mkdir -p build/galaxy-contents
	tar xzf build/$(COLL_TARBALL) -C build/galaxy-contents
	if grep -rniE 'lab[ _-]array|LabDriver|array_url' build/galaxy-contents/{plugins,roles,playbooks,meta}; then
	  echo "build/$(COLL_TARBALL) holds lab code (above): the lab lives in lab/, outside the collection" >&2; exit 1
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

.PHONY: docs-site
DOCS_SITE := build/docs-site
# Warnings an offline build cannot avoid: the intersphinx inventories (Python,
# Jinja, the Ansible docsite) are not reachable, so references into the Ansible
# docsite and into other collections stay unresolved. Any other warning fails.
DOCS_OFFLINE_WARNINGS := failed to reach any of the inventories|^intersphinx inventory '[^']*' not (fetchable|readable)|undefined label: '[^']*' \[ref\.ref\]

docs-site: venv ## HTML documentation of the modules and plugins (antsibull-docs + Sphinx) in build/docs-site/build/html
	rm -rf $(DOCS_SITE) && install -d -m 0755 $(DOCS_SITE)
	# markup of every plugin's documentation (semantic markup, O()/RV() references)
	antsibull-docs lint-collection-docs --plugin-docs .
	# the site skeleton (conf.py, index), then what its build.sh does, minus -W:
	# the warnings are filtered below
	antsibull-docs sphinx-init --use-current --squash-hierarchy --dest-dir $(DOCS_SITE) \
	  --project polardb.stack --copyright 'polardb.stack developers' \
	  --title 'polardb.stack documentation' --html-short-title polardb.stack polardb.stack >/dev/null
	install -d -m 0755 $(DOCS_SITE)/rst
	antsibull-docs --config-file $(DOCS_SITE)/antsibull-docs.cfg collection --use-current --squash-hierarchy \
	  --fail-on-error --cleanup everything --dest-dir $(DOCS_SITE)/rst polardb.stack >/dev/null
	if ! sphinx-build -M html $(DOCS_SITE)/rst $(DOCS_SITE)/build -c $(DOCS_SITE) -q --keep-going 2>$(DOCS_SITE)/warnings.log; then
	  cat $(DOCS_SITE)/warnings.log >&2; echo 'sphinx-build failed' >&2; exit 1
	fi
	# references outside this collection may stay unresolved only when the
	# inventories that resolve them could not be loaded (no network); every
	# label of this collection's own pages starts with ansible_collections.polardb.stack.
	if grep -q 'failed to reach any of the inventories' $(DOCS_SITE)/warnings.log; then
	  unexpected=$$(grep -vE "$(DOCS_OFFLINE_WARNINGS)" $(DOCS_SITE)/warnings.log | grep -vE '^\s*$$' || true)
	  unexpected+=$$(grep -E "undefined label: 'ansible_collections\.polardb\.stack\." $(DOCS_SITE)/warnings.log || true)
	else
	  unexpected=$$(cat $(DOCS_SITE)/warnings.log)
	fi
	if [[ -n $$unexpected ]]; then
	  printf '%s\n' "$$unexpected" >&2; echo "Sphinx warnings above ($(DOCS_SITE)/warnings.log)" >&2; exit 1
	fi
	echo "documentation site: $(DOCS_SITE)/build/html/index.html ($$(grep -c . $(DOCS_SITE)/warnings.log || true) offline warnings in $(DOCS_SITE)/warnings.log)"

# the cluster manager's store in make bench-ha-auto: etcd, or kubernetes (the Kubernetes API in its place)
STORE ?= etcd
bench: bench-ha bench-ha-auto bench-day2 bench-k8s ## all benchmarks (results in docs/benchmarks/, summary in docs/benchmarks.md)

bench-ha: venv ## HA benchmark on the lab: 10 switchovers idle and 10 under pgbench, 3 converges, 5 failovers, a client writing throughout
	$(MAKE) lab-up create
	$(VENV)/bin/python tests/bench/bench_ha.py
	$(VENV)/bin/python tests/bench/benchmarks_doc.py

bench-ha-auto: venv ## automatic failover benchmark on the lab: the manager enabled (STORE=etcd or kubernetes), 10 power-offs and 5 isolations of the RW, the cases that must not fail over, a client writing throughout
	$(MAKE) lab-up create
	$(VENV)/bin/python tests/bench/bench_ha_auto.py --store $(STORE)
	$(VENV)/bin/python tests/bench/ha_auto_doc.py $(if $(filter kubernetes,$(STORE)),--results docs/benchmarks/ha-auto-k8s-results.json)

bench-k8s: venv ## Kubernetes benchmark on the lab: control plane start, a declared cluster to Running, no-op reconciles, switchovers by spec.primary
	$(MAKE) lab-up create
	$(VENV)/bin/python tests/bench/bench_k8s.py
	$(VENV)/bin/python tests/bench/k8s_doc.py

bench-day2: venv ## day-2 benchmark on the lab: refresh_params, restart, minor_upgrade, remove/add/migrate/expand, a client writing throughout; 4 clusters by one fleet run
	# the fleet clusters' LUNs come with the lab: a new lab with them
	$(MAKE) lab-down
	$(MAKE) lab-up create LAB_VARS=tests/bench/fleet-lab.yml
	$(VENV)/bin/python tests/bench/bench_day2.py
	$(VENV)/bin/python tests/bench/day2_doc.py
	$(VENV)/bin/python tests/bench/bench_topology.py
	$(VENV)/bin/python tests/bench/topology_doc.py

clean: lab-down
	rm -rf $(VENV) build tests/output
