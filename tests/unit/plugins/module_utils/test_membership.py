# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_add, plan_migrate, plan_remove

KINDS = {'pdb1': 'replica', 'pdb2': 'replica', 'pdb3': 'replica'}


def topology(rw='pdb1', streaming=('pdb2', 'pdb3')):
    nodes = {n: {'name': n, 'streaming': n in streaming, 'upstream_node': rw if n in streaming else None,
                 'slots': []} for n in set(KINDS) | set(streaming) | {rw} if n}
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


KINDS4 = dict(KINDS, pdb4='replica', s1='standby')


def test_migrating_a_replica_converges_then_removes():
    plan = plan_migrate('pdb2', 'pdb4', topology(), KINDS4, 'demo')
    assert plan == {'node': 'pdb2', 'to': 'pdb4', 'rw': 'pdb1', 'converge': True, 'switchover': False,
                    'problems': []}


def test_migrating_the_rw_switches_over_to_the_new_host():
    plan = plan_migrate('pdb1', 'pdb4', topology(), KINDS4, 'demo')
    assert (plan['converge'], plan['switchover'], plan['problems']) == (True, True, [])


def test_an_interrupted_migration_skips_the_steps_already_done():
    # pdb4 joined: no second converge; the switchover still to do
    joined = topology(streaming=('pdb2', 'pdb3', 'pdb4'))
    plan = plan_migrate('pdb1', 'pdb4', joined, KINDS4, 'demo')
    assert (plan['converge'], plan['switchover']) == (False, True)
    # pdb4 took over: only the removal of pdb1 is left
    handed = topology(rw='pdb4', streaming=('pdb1', 'pdb2', 'pdb3'))
    plan = plan_migrate('pdb1', 'pdb4', handed, KINDS4, 'demo')
    assert (plan['converge'], plan['switchover'], plan['problems']) == (False, False, [])
    # pdb1 removed already (stopped): still accepted, the removal is finished again
    removed = topology(rw='pdb4', streaming=('pdb2', 'pdb3'))
    assert plan_migrate('pdb1', 'pdb4', removed, KINDS4, 'demo')['problems'] == []


def test_migration_input_is_refused_with_a_message_naming_it():
    assert plan_migrate('pdb2', 'pdb9', topology(), KINDS4, 'demo')['problems'] == [
        'pdb9 (to_host) is not in the inventory group polardb_demo: add it there with its host and '
        'polardb_lun_wwid first']
    assert plan_migrate('pdb7', 'pdb4', topology(), KINDS4, 'demo')['problems'] == [
        'pdb7 (the node to move) is not in the inventory group polardb_demo']
    assert plan_migrate('pdb2', 'pdb2', topology(), KINDS4, 'demo')['problems'] == [
        'node and to_host are both pdb2: to_host is the inventory host (another host, its own LUN) that takes '
        'pdb2 over']
    assert plan_migrate('pdb2', 's1', topology(), KINDS4, 'demo')['problems'] == [
        'pdb2 is a replica and s1 is declared a standby: to_host takes over its role, declare it with '
        'polardb_node_role: replica']
    assert plan_migrate('', 'pdb4', topology(), KINDS4, 'demo')['problems'][0].startswith('name the node to move')
    assert plan_migrate('pdb2', 'pdb4', topology(rw=None, streaming=()), KINDS4, 'demo')['problems'] == [
        'cluster demo has no running RW: a migration needs one (playbooks/failover.yml first)']


def test_a_lost_node_is_not_migrated_but_replaced():
    lost = topology(streaming=('pdb3',))
    assert plan_migrate('pdb2', 'pdb4', lost, KINDS4, 'demo')['problems'] == [
        'pdb2 does not run in cluster demo and pdb4 does not stream from its RW: a migration moves a running '
        'node. To replace a lost node: add_node.yml -e node=pdb4, then remove_node.yml -e node=pdb2']
