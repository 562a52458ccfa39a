# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_add, plan_remove

KINDS = {'pdb1': 'replica', 'pdb2': 'replica', 'pdb3': 'replica'}


def topology(rw='pdb1', streaming=('pdb2', 'pdb3')):
    nodes = {n: {'name': n, 'streaming': n in streaming, 'upstream_node': rw if n in streaming else None,
                 'slots': []} for n in KINDS}
    if rw:
        nodes[rw]['slots'] = [{'name': n, 'node': n} for n in streaming]
    return {'rw': rw, 'nodes': nodes}


def test_removing_a_replica_names_its_slot_and_what_remains():
    plan = plan_remove('pdb3', topology(), KINDS, 0, 'demo')
    assert plan == {'node': 'pdb3', 'rw': 'pdb1', 'remaining': ['pdb1', 'pdb2'], 'slot': 'pdb3', 'problems': []}


def test_the_rw_is_never_removed_and_the_message_says_how():
    plan = plan_remove('pdb1', topology(), KINDS, 0, 'demo')
    assert plan['problems'] == ['pdb1 is the RW of cluster demo and is never removed: switch over first '
                                '(playbooks/switchover.yml -e cluster=demo -e target=pdb2), then remove it']


def test_removing_a_replica_that_synchronous_replication_needs_is_refused():
    assert plan_remove('pdb3', topology(), KINDS, 1, 'demo')['problems'] == []
    problems = plan_remove('pdb3', topology(), KINDS, 2, 'demo')['problems']
    assert problems == ['synchronous replication waits for 2 replica(s) (polardb_synchronous_replicas=2); '
                        'without pdb3 only 1 would be left (pdb2): lower polardb_synchronous_replicas '
                        '(create_cluster.yml) or add a node first']


def test_a_standby_does_not_count_for_synchronous_replication():
    kinds = dict(KINDS, pdb2='standby')
    assert plan_remove('pdb3', topology(), kinds, 1, 'demo')['problems'][0].startswith(
        'synchronous replication waits for 1 replica(s)')
    # removing the standby leaves the replica the quorum needs
    assert plan_remove('pdb2', topology(), kinds, 1, 'demo')['problems'] == []


def test_removal_is_refused_without_a_running_rw_and_for_an_unknown_node():
    assert 'has no running RW' in plan_remove('pdb3', topology(rw=None, streaming=()), KINDS, 0, 'demo')['problems'][0]
    assert plan_remove('pdb9', topology(), KINDS, 0, 'demo')['problems'] == [
        'pdb9 is not a node of cluster demo (nodes: pdb1, pdb2, pdb3)']


def test_a_node_whose_slot_is_gone_has_no_slot_to_drop():
    topo = topology()
    topo['nodes']['pdb1']['slots'] = [{'name': 'pdb2', 'node': 'pdb2'}]
    assert plan_remove('pdb3', topo, KINDS, 0, 'demo')['slot'] is None


def test_adding_a_new_node_to_a_running_cluster():
    plan = plan_add('pdb3', topology(streaming=('pdb2',)), sorted(KINDS), 'demo')
    assert plan == {'node': 'pdb3', 'rw': 'pdb1', 'present': False, 'problems': []}


def test_adding_a_node_that_already_streams_only_converges_it():
    assert plan_add('pdb3', topology(), sorted(KINDS), 'demo')['present'] is True


def test_adding_needs_the_node_in_the_inventory_and_a_running_rw():
    assert plan_add('pdb4', topology(), sorted(KINDS), 'demo')['problems'] == [
        'pdb4 is not in the inventory group polardb_demo: add it there (with its polardb_lun_wwid) first']
    assert 'has no running RW' in plan_add('pdb3', topology(rw=None, streaming=()), sorted(KINDS), 'demo')['problems'][0]
    assert plan_add('pdb1', topology(), sorted(KINDS), 'demo')['problems'] == ['pdb1 is the RW of cluster demo already']
