# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.filter.switchover_target import FilterModule, switchover_target


def _cluster():
    def rep(name, lag, up='pdb1'):
        return {'name': name, 'host': '10.0.0.%s' % name[-1], 'port': 5432, 'reachable': True,
                'role': 'replica', 'system_identifier': '1', 'lag_bytes': lag,
                'upstream': {'status': 'streaming'}, 'upstream_node': up}
    return {'rw': 'pdb1', 'rw_nodes': ['pdb1'], 'problems': [], 'nodes': {
        'pdb1': {'name': 'pdb1', 'host': '10.0.0.1', 'port': 5432, 'reachable': True,
                 'role': 'primary', 'system_identifier': '1', 'lag_bytes': None},
        'pdb2': rep('pdb2', 300), 'pdb3': rep('pdb3', 20), 'pdb4': rep('pdb4', 0)}}


def test_filter_is_registered_and_chooses():
    assert FilterModule().filters()['switchover_target'] is switchover_target
    r = switchover_target(_cluster(), standbys=['pdb4'])
    assert r['target'] == 'pdb3'
    assert r['node'] == {'name': 'pdb3', 'host': '10.0.0.3', 'port': 5432}
    assert r['refused']['pdb4'] == 'a standby (taken only when named explicitly)'


def test_filter_named_and_refused():
    assert switchover_target(_cluster(), 'pdb2')['target'] == 'pdb2'
    assert switchover_target(_cluster(), '')['target'] == 'pdb4'   # empty string: let it choose
    r = switchover_target(_cluster(), 'pdb2', max_lag_bytes=100)
    assert r['error'] == 'cannot switch over to pdb2: lags 300 bytes > bound 100'


def test_default_lag_bound_is_the_domain_default():
    import inspect
    from ansible_collections.polardb.stack.plugins.module_utils.switchover import DEFAULT_MAX_LAG_BYTES
    assert inspect.signature(switchover_target).parameters['max_lag_bytes'].default == DEFAULT_MAX_LAG_BYTES
