# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec
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


# ------------------------------------------------------------- settings

from ansible_collections.polardb.stack.plugins.module_utils.cluster_spec import (  # noqa: E402
    eligible_sync_replicas, setting_problems)

NODES = [{'name': 'pdb1', 'kind': 'replica', 'slot': 'pdb1', 'address': '10.0.0.1'},
         {'name': 'pdb2', 'kind': 'replica', 'slot': 'pdb2', 'address': '10.0.0.2'},
         {'name': 'pdb3', 'kind': 'replica', 'slot': 'pdb3', 'address': '10.0.0.3'}]
GOOD = {'polardb_cluster': 'demo', 'polardb_synchronous_replicas': 0, 'polardb_port': 5432, 'polardb_fstype': 'xfs',
        'polardb_fence_driver': 'command', 'polardb_fence_command': ['/usr/local/sbin/lab-fence', '{action}'], 'polardb_wait_timeout': 300,
        'polardb_wait_interval': 2, 'polardb_probe_timeout': 3, 'polardb_switchover_max_lag_bytes': 16777216,
        'polardb_storage_force': False, 'polardb_failover_unfenced': 'false', 'polardb_lun_multipath': 'auto',
        'polardb_engine_major': '15', 'polardb_mount_root': '/srv/polardb', 'polardb_superuser': 'postgres',
        'polardb_replication_user': 'replicator', 'polardb_app_user': 'app', 'polardb_app_db': 'app',
        'polardb_client_networks': ['10.0.0.0/24', '::1'], 'polardb_max_slot_wal_keep_size': 'auto',
        'polardb_max_slot_wal_keep_fraction': 0.25, 'polardb_wal_segment_size_mb': 16}


def bad(**changes):
    return setting_problems(dict(GOOD, **changes), NODES, 'pdb1')


def test_the_defaults_pass():
    assert setting_problems(GOOD, NODES, 'pdb1') == []
    assert bad(polardb_synchronous_replicas='2', polardb_max_slot_wal_keep_size='8GB') == []
    assert bad(polardb_wal_segment_size_mb='4') == [] and bad(polardb_wal_segment_size_mb=1024) == []


def test_synchronous_replicas_count_only_replicas_never_the_rw_or_standbys():
    assert eligible_sync_replicas(NODES, 'pdb1') == ['pdb2', 'pdb3']
    nodes = NODES[:2] + [dict(NODES[2], kind='standby')]
    assert eligible_sync_replicas(nodes, 'pdb2') == ['pdb1']
    assert bad(polardb_synchronous_replicas='7') == [
        "polardb_synchronous_replicas='7' must be an integer from 0 to 2 "
        "(the replicas that can acknowledge a commit of the RW pdb1: pdb2, pdb3)"]
    assert setting_problems({'polardb_synchronous_replicas': 2}, nodes, 'pdb1')[0].startswith(
        'polardb_synchronous_replicas=2 must be an integer from 0 to 1')
    assert 'from 0 to 2' in bad(polardb_synchronous_replicas=-1)[0]
    assert 'from 0 to 2' in bad(polardb_synchronous_replicas='two')[0]
    assert 'from 0 to 2' in bad(polardb_synchronous_replicas=True)[0]


def test_each_refusal_names_the_variable_and_the_allowed_values():
    cases = {
        'polardb_port': (70000, 'polardb_port=70000 must be an integer from 1 to 65535'),
        'polardb_fstype': ('btrfs', "polardb_fstype='btrfs' must be one of xfs, ext4"),
        'polardb_fence_driver': ('stonith', "polardb_fence_driver='stonith' must be one of none, scsi3_pr, nvme, command"),
        'polardb_wait_timeout': (0, 'polardb_wait_timeout=0 must be an integer >= 1'),
        'polardb_wait_interval': ('soon', "polardb_wait_interval='soon' must be an integer >= 1"),
        'polardb_switchover_max_lag_bytes': (-1, 'polardb_switchover_max_lag_bytes=-1 must be an integer >= 0'),
        'polardb_storage_force': ('perhaps', "polardb_storage_force='perhaps' must be a boolean"),
        'polardb_lun_multipath': ('maybe', "polardb_lun_multipath='maybe' must be one of auto, yes, no"),
        'polardb_engine_major': ('fifteen', "polardb_engine_major='fifteen' must be a major version number"),
        'polardb_mount_root': ('srv', "polardb_mount_root='srv' must be an absolute path"),
        'polardb_app_user': ('App User', "polardb_app_user='App User' must be 1 to 63 lower-case letters"),
        'polardb_client_networks': (['10.0.0.0/33'], "polardb_client_networks: '10.0.0.0/33' is not a network"),
        'polardb_max_slot_wal_keep_size': ('lots', "polardb_max_slot_wal_keep_size='lots' must be auto, -1"),
        'polardb_max_slot_wal_keep_fraction': (2, 'polardb_max_slot_wal_keep_fraction=2 must be a number above 0'),
        'polardb_cluster': ('Demo!', "cluster='Demo!' must be 1 to 31 lower-case letters"),
        'polardb_wal_segment_size_mb': (3, 'polardb_wal_segment_size_mb=3 must be one of 1, 2, 4, 8, 16, 32, 64'),
    }
    for var, (value, message) in cases.items():
        problems = bad(**{var: value})
        assert len(problems) == 1 and problems[0].startswith(message), (var, problems)


def test_combinations():
    assert bad(polardb_wait_interval=600) == ['polardb_wait_interval=600 must not exceed polardb_wait_timeout=300']
    assert bad(polardb_fence_command=[])[0].startswith('polardb_fence_driver=command needs polardb_fence_command')
    assert bad(polardb_fence_command='lab-fence {action}')[0].startswith('polardb_fence_driver=command needs')
    assert bad(polardb_client_networks='10.0.0.0/24') == [
        "polardb_client_networks='10.0.0.0/24' must be a list of networks such as 10.0.0.0/24"]


def test_slot_names_must_be_valid_and_distinct():
    nodes = [dict(NODES[0], slot='pdb_1'), dict(NODES[1], name='pdb-1', slot='pdb_1'),
             dict(NODES[2], slot='x' * 64)]
    problems = setting_problems({}, nodes, 'pdb1')
    assert problems == [
        "pdb3: polardb_slot_name='%s' must be 1 to 63 lower-case letters, digits or _" % ('x' * 64),
        'nodes pdb1, pdb-1 share the replication slot name pdb_1 (polardb_slot_name, from the host name): '
        'rename a host or set polardb_slot_name']


# --- several clusters on the same hosts -------------------------------------

def _node(cluster, name, address, port=5432):
    return {'cluster': cluster, 'name': name, 'address': address, 'port': port}


def test_nodes_of_two_clusters_on_one_host_need_their_own_ports():
    nodes = [_node('demo', 'pdb1', '10.0.0.11'), _node('demo', 'pdb2', '10.0.0.12'),
             _node('other', 'o1', '10.0.0.11'), _node('other', 'o2', '10.0.0.12', 5433)]
    assert cluster_spec.port_problems('other', nodes) == [
        "o1: port 5432 on 10.0.0.11 is also node pdb1 of cluster demo's: give one of them another polardb_port"]
    assert cluster_spec.port_problems('demo', nodes) == [
        "pdb1: port 5432 on 10.0.0.11 is also node o1 of cluster other's: give one of them another polardb_port"]
    nodes[2]['port'] = 5433
    assert cluster_spec.port_problems('other', nodes) == []


def test_one_inventory_host_in_two_clusters_is_told_how_to_describe_them():
    nodes = [_node('demo', 'pdb1', '10.0.0.11'), _node('other', 'pdb1', '10.0.0.11')]
    assert cluster_spec.port_problems('other', nodes) == [
        "pdb1: port 5432 on 10.0.0.11 is also node pdb1 of cluster demo's: describe each cluster's node as an "
        "inventory host of its own (the same ansible_host, its own polardb_lun_wwid and polardb_port)"]
