# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.filter.dsn import dsn
from ansible_collections.polardb.stack.plugins.filter.topology_table import topology_table


def test_dsn_lists_every_node_and_encodes_the_password():
    nodes = [{'name': 'a', 'host': '10.0.0.1', 'port': 5432}, {'name': 'b', 'host': '10.0.0.2', 'port': 5433}]
    assert dsn(nodes, 'app', 'p@ss/w:rd', 'app') == (
        'postgresql://app:p%40ss%2Fw%3Ard@10.0.0.1:5432,10.0.0.2:5433/app'
        '?target_session_attrs=read-write&connect_timeout=2&sslmode=verify-full')
    assert dsn(nodes, 'app', 'x', 'app', 'standby').endswith(
        'target_session_attrs=standby&connect_timeout=2&sslmode=verify-full')


def test_dsn_names_the_ca_that_verifies_the_nodes():
    nodes = [{'name': 'a', 'host': '10.0.0.1', 'port': 5432}]
    assert dsn(nodes, 'app', 'x', 'app', sslrootcert='/home/me/my secrets/demo/tls/ca.crt').endswith(
        '&connect_timeout=2&sslmode=verify-full&sslrootcert=/home/me/my%20secrets/demo/tls/ca.crt')


def test_topology_table_shows_roles_states_and_problems():
    cluster = {
        'rw': 'a', 'healthy': False, 'problems': ['c is unreachable'],
        'nodes': {
            'a': {'host': '10.0.0.1', 'port': 5432, 'reachable': True, 'role': 'primary', 'timeline': 1,
                  'lsn': {'current': '0/3000148'}, 'server_version': '15.18 (Debian)'},
            'b': {'host': '10.0.0.2', 'port': 5432, 'reachable': True, 'role': 'replica', 'timeline': 1,
                  'lsn': {'replay': '0/3000148'}, 'lag_bytes': 0, 'pending_restart': ['max_connections', 'shared_buffers'],
                  'upstream': {'host': '10.0.0.1', 'status': 'streaming'}},
            'c': {'host': '10.0.0.3', 'port': 5432, 'reachable': False},
        }}
    lines = topology_table(cluster)
    assert lines[0].split() == ['node', 'address', 'role', 'state', 'tl', 'lsn', 'lag_bytes', 'upstream', 'version',
                                'slot_wal_bytes', 'wal_status', 'pending_restart']
    assert lines[1].split() == ['a', '10.0.0.1:5432', 'RW', 'read-write', '1', '0/3000148', '-', '-', '15.18', '-', '-',
                                '-']
    assert lines[2].split() == ['b', '10.0.0.2:5432', 'replica', 'streaming', '1', '0/3000148', '0', '10.0.0.1', '-',
                                '-', '-', 'max_connections,shared_buffers']
    assert lines[3].split()[:4] == ['c', '10.0.0.3:5432', '-', 'unreachable']
    assert lines[-2:] == ['healthy: no', 'problem: c is unreachable']


def test_topology_table_shows_each_slots_retained_wal_and_a_lost_slot():
    cluster = {
        'rw': 'a', 'healthy': False, 'problems': ['b: its replication slot b on the RW a is lost'],
        'nodes': {
            'a': {'host': '10.0.0.1', 'port': 5432, 'reachable': True, 'role': 'primary', 'timeline': 1,
                  'lsn': {'current': '0/3000148'}, 'max_slot_wal_keep_size': '512MB',
                  'slots': [{'name': 'b', 'node': 'b', 'retained_bytes': None, 'wal_status': 'lost'},
                            {'name': 'c', 'node': 'c', 'retained_bytes': 328, 'wal_status': 'reserved'},
                            {'name': 'gone', 'node': None, 'retained_bytes': 4096, 'wal_status': 'extended'}]},
            'b': {'host': '10.0.0.2', 'port': 5432, 'reachable': True, 'role': 'replica', 'timeline': 1,
                  'slot': {'name': 'b', 'retained_bytes': None, 'wal_status': 'lost'}},
            'c': {'host': '10.0.0.3', 'port': 5432, 'reachable': True, 'role': 'replica', 'timeline': 1,
                  'slot': {'name': 'c', 'retained_bytes': 328, 'wal_status': 'reserved'}},
        }}
    lines = topology_table(cluster)
    assert lines[2].split()[-3:] == ['-', 'lost', '-']
    assert lines[3].split()[-3:] == ['328', 'reserved', '-']
    assert lines[4:] == ['max_slot_wal_keep_size on the RW a: 512MB',
                         'slot gone on the RW a (no node of the cluster): retains 4096 bytes, wal_status extended',
                         'healthy: no', 'problem: b: its replication slot b on the RW a is lost']


def test_port_problems_reads_every_cluster_group_but_not_the_groups_create_cluster_makes():
    from ansible_collections.polardb.stack.plugins.filter.cluster_spec import port_problems
    groups = {'all': ['pdb1', 'o1', 'o2'], 'polardb_demo': ['pdb1'], 'polardb_demo_rw': ['pdb1'],
              'polardb_other': ['o1', 'o2'], 'lab_hosts': ['pdb1']}
    hostvars = {'pdb1': {'ansible_host': '10.0.0.11'},
                'o1': {'ansible_host': '10.0.0.11', 'polardb_port': 5433},
                'o2': {'ansible_host': '10.0.0.11', 'polardb_port': 5432}}
    assert port_problems('demo', groups, hostvars) == [
        "pdb1: port 5432 on 10.0.0.11 is also node o2 of cluster other's: give one of them another polardb_port"]
    hostvars['o2']['polardb_port'] = 5434
    assert port_problems('other', groups, hostvars) == []
