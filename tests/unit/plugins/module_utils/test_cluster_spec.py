# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.cluster_spec import node_problems, parameter_problems

W1 = '600140500000000000000000000000a1'
W2 = '600140500000000000000000000000a2'


def node(name, wwid, role='replica'):
    return {'name': name, 'wwid': wwid, 'role': role}


def test_valid_cluster_has_no_problems():
    assert node_problems([node('a', W1), node('b', W2, 'standby')], 'a') == []


def test_duplicate_lun_in_any_form_is_refused():
    problems = node_problems([node('a', W1), node('b', '0x' + W1.upper()), node('c', '3' + W1)], 'a')
    assert problems == ['LUN %s is given to more than one host (a, b, c): each node needs a LUN of its own' % W1]


def test_missing_and_malformed_wwids_and_roles():
    problems = node_problems([node('a', None), node('b', 'not-a-wwid'), node('c', W2, 'leader')], 'x')
    assert 'polardb_initial_primary=x is not a host of the cluster (a, b, c)' in problems
    assert 'a has no polardb_lun_wwid' in problems
    assert any(p.startswith("b: polardb_lun_wwid='not-a-wwid' is not a WWID") for p in problems)
    assert any(p.startswith("c: polardb_node_role='leader'") for p in problems)


def test_reserved_and_invalid_parameters_are_refused():
    problems = parameter_problems({'port': 1, 'ssl_ciphers': 'x', 'work_mem': '4MB', 'bad name': 1},
                                  ['port'], ['ssl'])
    assert problems == ["'bad name' is not a valid parameter name",
                        'parameter port is managed by polardb.stack and cannot be set in polardb_parameters',
                        'parameter ssl_ciphers is managed by polardb.stack and cannot be set in polardb_parameters']
