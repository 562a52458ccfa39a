# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.create_plan import plan_create

EMPTY = {'initialized': False, 'signal': None, 'system_identifier': None}


def primary(sysid='7001'):
    return {'initialized': True, 'signal': None, 'system_identifier': sysid}


def replica(sysid='7001'):
    return {'initialized': True, 'signal': 'standby', 'system_identifier': sysid}


def test_new_cluster_initialises_the_initial_primary_and_builds_the_others():
    plan = plan_create({'a': EMPTY, 'b': EMPTY, 'c': EMPTY}, {'rw_nodes': []}, 'b')
    assert plan == {'rw': 'b', 'rw_action': 'init', 'problems': [],
                    'nodes': {'a': 'build', 'b': 'rw', 'c': 'build'}}


def test_running_rw_wins_over_the_inventory():
    local = {'a': replica(), 'b': primary(), 'c': EMPTY}
    plan = plan_create(local, {'rw_nodes': ['b']}, 'a')
    assert plan['rw'] == 'b' and plan['rw_action'] == 'running'
    assert plan['nodes'] == {'a': 'keep', 'b': 'rw', 'c': 'build'}
    assert plan['problems'] == []


def test_stopped_cluster_starts_the_node_that_holds_primary_data():
    local = {'a': replica(), 'b': primary(), 'c': replica()}
    plan = plan_create(local, {'rw_nodes': []}, 'a')
    assert (plan['rw'], plan['rw_action']) == ('b', 'start')
    assert plan['problems'] == []


def test_two_running_rws_are_refused():
    plan = plan_create({'a': primary(), 'b': primary()}, {'rw_nodes': ['b', 'a']}, 'a')
    assert plan['rw'] is None
    assert 'more than one node accepts writes: a, b' in plan['problems'][0]


def test_two_stopped_primaries_are_refused():
    plan = plan_create({'a': primary(), 'b': primary(), 'c': EMPTY}, {'rw_nodes': []}, 'a')
    assert plan['rw'] is None
    assert 'more than one stopped node holds primary data (a, b)' in plan['problems'][0]


def test_replicas_without_a_primary_are_refused():
    plan = plan_create({'a': replica(), 'b': replica()}, None, 'a')
    assert plan['rw'] is None
    assert 'no node holds a primary' in plan['problems'][0]


def test_a_stopped_former_primary_next_to_a_running_rw_is_refused():
    plan = plan_create({'a': primary(), 'b': primary()}, {'rw_nodes': ['b']}, 'a')
    assert plan['rw'] == 'b'
    assert any('a holds primary data but b is the RW' in p for p in plan['problems'])


def test_foreign_data_on_a_replica_is_refused():
    plan = plan_create({'a': primary('1'), 'b': replica('2')}, {'rw_nodes': ['a']}, 'a')
    assert plan['nodes']['b'] == 'refuse'
    assert 'another database system' in plan['problems'][0]
