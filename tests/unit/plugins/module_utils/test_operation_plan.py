# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.operation_plan import build_plan, render_plan
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

NODES = ['pdb1', 'pdb2', 'pdb3']


def steps(plan):
    return [(s['step'], s['node']) for s in plan['steps']]


def test_switchover_plan_lists_the_critical_section_on_the_old_rw_and_every_follower():
    plan = build_plan('switchover', 'demo', {'from': 'pdb1', 'to': 'pdb2', 'nodes': NODES, 'lag_bytes': 0}, True)
    assert steps(plan) == [('take the lock', 'all'), ('critical section', 'pdb1'), ('configure the new RW', 'pdb2'),
                           ('follow the new RW', 'pdb1'), ('follow the new RW', 'pdb3'),
                           ('wait until every node streams from pdb2', 'all'), ('release the lock', 'all')]
    # nothing of a switchover can be simulated: every step is named as skipped
    assert len(plan['not_simulated']) == len(plan['steps'])
    assert 'promote pdb2' in plan['steps'][1]['does']
    assert plan['notes'] == ['pdb2 lags 0 bytes behind pdb1']
    assert 'pdb1 until pdb2 is promoted' in plan['write_unavailable']


def test_failover_plan_fences_before_it_promotes_and_skips_the_dead_node():
    plan = build_plan('failover', 'demo', {'from': 'pdb1', 'to': 'pdb2', 'nodes': NODES, 'up': ['pdb2', 'pdb3'],
                                           'fence_driver': 'command', 'receive_lsn': '0/3000000'})
    names = [s for s, node in steps(plan)]
    assert names.index('fence the old RW') < names.index('promote')
    assert ('follow the new RW', 'pdb3') in steps(plan)
    assert ('follow the new RW', 'pdb1') not in steps(plan)
    assert any('0/3000000' in n for n in plan['notes'])


def test_failover_plan_without_a_fence_driver_says_it_is_refused_unless_named():
    plan = build_plan('failover', 'demo', {'from': 'pdb1', 'to': 'pdb2', 'nodes': NODES, 'fence_driver': 'none'})
    assert 'refused unless polardb_failover_unfenced=true' in plan['steps'][1]['does']
    plan = build_plan('failover', 'demo', {'from': 'pdb1', 'to': 'pdb2', 'nodes': NODES, 'fence_driver': 'none',
                                           'unfenced': True})
    assert 'promoting unfenced' in plan['steps'][1]['does']


def test_rebuild_plan_after_a_split_brain_fences_the_node_first_and_says_what_is_discarded():
    plan = build_plan('rebuild_node', 'demo', {'node': 'pdb1', 'source': 'pdb2', 'split_brain': True,
                                               'followers': ['pdb3']})
    assert steps(plan)[1] == ('fence the node', 'pdb2')
    assert 'DISCARDED' in plan['notes'][0]
    assert 'pdb3 replicate from pdb1' in plan['notes'][1]
    plain = build_plan('rebuild_node', 'demo', {'node': 'pdb3', 'source': 'pdb2'})
    assert 'fence the node' not in [s for s, node in steps(plain)]
    assert plain['write_unavailable'] == 'none: the RW pdb2 is not touched'


def test_destroy_plan_says_whether_data_is_kept():
    plan = build_plan('destroy_cluster', 'demo', {'nodes': NODES})
    assert [n for step, n in steps(plan)] == ['all'] + NODES
    assert plan['notes'] == ['LUN data is kept']
    assert 'WIPE' in build_plan('destroy_cluster', 'demo', {'nodes': NODES, 'wipe': True})['steps'][1]['does']


def test_remove_node_plan_never_touches_the_rw_and_says_what_happens_to_the_data():
    plan = build_plan('remove_node', 'demo', {'node': 'pdb3', 'rw': 'pdb1', 'remaining': ['pdb1', 'pdb2'],
                                              'slot': 'pdb3'}, True)
    assert steps(plan) == [('take the lock', 'all'), ('remove the node', 'pdb3'),
                           ('the other nodes without it', 'pdb1, pdb2'), ('drop its slot', 'pdb1'),
                           ('wait until every other node streams from pdb1', 'all'), ('release the lock', 'all')]
    assert plan['write_unavailable'] == 'none: the RW is not touched (reload only)'
    assert plan['notes'][0] == 'LUN data of pdb3 is kept'
    wiped = build_plan('remove_node', 'demo', {'node': 'pdb3', 'rw': 'pdb1', 'remaining': ['pdb1', 'pdb2'],
                                               'slot': None, 'wipe': True})
    assert 'WIPE' in wiped['steps'][1]['does'] and 'drop its slot' not in [s for s, n in steps(wiped)]


def test_migrate_node_plan_lists_the_steps_still_to_run():
    rw = build_plan('migrate_node', 'demo', {'node': 'pdb1', 'to': 'pdb4', 'rw': 'pdb1', 'converge': True,
                                             'switchover': True}, True)
    assert steps(rw) == [('join', 'pdb4'), ('switchover', 'pdb1'), ('remove the node', 'pdb1')]
    assert rw['not_simulated'] == ['switchover (pdb1)', 'remove the node (pdb1)']
    assert rw['write_unavailable'] == "one switchover's critical section (pdb1 is the RW)"
    replica = build_plan('migrate_node', 'demo', {'node': 'pdb2', 'to': 'pdb4', 'rw': 'pdb1', 'converge': False,
                                                  'switchover': False, 'wipe': True})
    assert steps(replica) == [('remove the node', 'pdb2')]
    assert 'WIPE' in replica['steps'][0]['does']
    assert replica['write_unavailable'] == 'none: the RW only reloads'


def test_create_plan_of_a_converged_cluster_only_skips_the_wait():
    plan = build_plan('create_cluster', 'demo', {'rw': 'pdb1', 'rw_action': 'running',
                                                 'nodes': {'pdb1': 'rw', 'pdb2': 'keep', 'pdb3': 'keep'}}, True)
    assert plan['not_simulated'] == ['wait until every node streams (all)']
    assert plan['write_unavailable'] == 'none: configuration changes are reloaded'
    new = build_plan('create_cluster', 'demo', {'rw': 'pdb1', 'rw_action': 'init',
                                                'nodes': {'pdb1': 'rw', 'pdb2': 'build', 'pdb3': 'build'}}, True)
    assert ('replica', 'pdb2') in steps(new) and 'base backup' in new['steps'][3]['does']
    assert 'RW (pdb1)' in new['not_simulated']


def test_rendering_marks_skipped_steps_only_in_check_mode():
    d = {'from': 'pdb1', 'to': 'pdb2', 'nodes': NODES}
    checked = render_plan(build_plan('switchover', 'demo', d, True))
    assert checked[0] == 'switchover of cluster demo -- CHECK MODE: nothing is changed'
    assert checked[2].startswith('2. critical section on pdb1: ') and checked[2].endswith('[skipped in check mode]')
    real = render_plan(build_plan('switchover', 'demo', d, False))
    assert real[0] == 'switchover of cluster demo' and 'skipped' not in ' '.join(real)


def test_missing_decisions_and_unknown_operations_are_errors():
    with pytest.raises(PolarDBError, match='needs to'):
        build_plan('switchover', 'demo', {'from': 'pdb1', 'nodes': NODES})
    with pytest.raises(PolarDBError, match="unknown operation 'upgrade'"):
        build_plan('upgrade', 'demo', {})
