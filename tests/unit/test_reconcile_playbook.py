"""playbooks/reconcile.yml imports the lifecycle playbooks whose steps its plan may
run: each must run its plays on the cluster's hosts only when told to
(polardb_run_playbook), and the import must say when, so that a converged
cluster's reconcile pays for none of their tasks."""
from __future__ import absolute_import, division, print_function

import os

import yaml

from ansible_collections.polardb.stack.plugins.module_utils import reconcile

PLAYBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'playbooks')


def load(name):
    with open(os.path.join(PLAYBOOKS, name), encoding='utf-8') as f:
        return yaml.safe_load(f)


def imports():
    return dict((play['ansible.builtin.import_playbook'], play) for play in load('reconcile.yml')
                if 'ansible.builtin.import_playbook' in play)


def test_every_operation_reconcile_runs_is_imported_and_told_when_to_run():
    found = imports()
    # scale is refresh_params with the class the spec names; add_node is create_cluster's converge
    playbook = dict(add_node='create_cluster.yml', scale='refresh_params.yml')
    for operation in reconcile.RUN_BY_RECONCILE:
        name = playbook.get(operation, operation + '.yml')
        assert name in found, operation
        told = found[name]['vars']['polardb_run_playbook']
        assert "'%s'" % operation in told and 'ansible_check_mode' in told, (operation, told)


def test_the_imported_playbooks_cluster_plays_match_no_host_unless_told():
    for name in imports():
        plays = [p for p in load(name) if 'hosts' in p and p['hosts'] != 'localhost']
        assert plays, name
        for play in plays:
            assert "polardb_run_playbook | default(true) | bool else ':!all'" in play['hosts'], (name, play['name'])
