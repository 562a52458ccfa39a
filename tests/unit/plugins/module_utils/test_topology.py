# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
import time

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import topology as t

SYSID = '7312345678901234567'


# ------------------------------------------------------------------ fixtures

def primary_raw(lsn='0/3000148', wal_file='000000010000000000000003', checkpoint_tli=1,
                replication=None, sysid=SYSID, polar_version=None):
    return {
        'in_recovery': False, 'server_version': '15.14 (Debian 15.14-0+deb12u1)',
        'server_version_num': 150014, 'polar_version': polar_version,
        'data_directory': '/srv/polardb/demo/data', 'system_identifier': sysid,
        'checkpoint_timeline': checkpoint_tli, 'wal_file': wal_file, 'current_lsn': lsn,
        'receive_lsn': None, 'replay_lsn': None, 'wal_receiver': None,
        'replication': replication or [],
    }


def replica_raw(host='10.0.0.1', port=5432, status='streaming', slot='pdb2', tli=1,
                receive='0/3000148', replay='0/3000148', sysid=SYSID, checkpoint_tli=1,
                receiver=True):
    return {
        'in_recovery': True, 'server_version': '15.14 (Debian 15.14-0+deb12u1)',
        'server_version_num': 150014, 'polar_version': None,
        'data_directory': '/srv/polardb/demo/data', 'system_identifier': sysid,
        'checkpoint_timeline': checkpoint_tli, 'wal_file': None, 'current_lsn': None,
        'receive_lsn': receive, 'replay_lsn': replay,
        'wal_receiver': {'status': status, 'received_tli': tli, 'sender_host': host,
                         'sender_port': port, 'slot_name': slot,
                         'flushed_lsn': receive} if receiver else None,
        'replication': [],
    }


def rep_row(name, addr, slot, replay='0/3000148', lag=0, state='streaming'):
    return {'application_name': name, 'client_addr': addr, 'state': state, 'sync_state': 'async',
            'slot_name': slot, 'sent_lsn': replay, 'write_lsn': replay, 'flush_lsn': replay,
            'replay_lsn': replay, 'replay_lag_bytes': lag}


def up(name, host, raw, port=5432):
    return {'name': name, 'host': host, 'port': port, 'reachable': True, 'error': None,
            'state': t.node_state(raw)}


def down(name, host, error='connection refused', port=5432):
    return {'name': name, 'host': host, 'port': port, 'reachable': False, 'error': error,
            'state': None}


def healthy_probes():
    return [
        up('pdb1', '10.0.0.1', primary_raw(replication=[
            rep_row('pdb2', '10.0.0.2', 'pdb2'), rep_row('pdb3', '10.0.0.3', 'pdb3')])),
        up('pdb2', '10.0.0.2', replica_raw(slot='pdb2')),
        up('pdb3', '10.0.0.3', replica_raw(slot='pdb3')),
    ]


# ---------------------------------------------------------------------- LSNs

@pytest.mark.parametrize('text, value', [
    ('0/0', 0),
    ('0/3000148', 0x3000148),
    ('16/B374D848', (0x16 << 32) | 0xB374D848),
    ('FFFFFFFF/FFFFFFFF', 2 ** 64 - 1),
])
def test_lsn_parse_and_format_round_trip(text, value):
    assert t.parse_lsn(text) == value
    assert t.format_lsn(value) == text


def test_lsn_parse_accepts_lower_case_and_none():
    assert t.parse_lsn('16/b374d848') == t.parse_lsn('16/B374D848')
    assert t.parse_lsn(None) is None
    assert t.format_lsn(None) is None


@pytest.mark.parametrize('bad', ['', '3000148', '0/xyz', '1/2/3'])
def test_lsn_parse_rejects_garbage(bad):
    with pytest.raises(ValueError):
        t.parse_lsn(bad)


def test_format_lsn_rejects_negative():
    with pytest.raises(ValueError):
        t.format_lsn(-1)


def test_lsn_diff_crosses_the_32_bit_boundary():
    assert t.lsn_diff('1/0', '0/FFFFFFFF') == 1
    assert t.lsn_diff('0/3000148', '0/3000000') == 0x148
    assert t.lsn_diff('0/3000000', '0/3000148') == -0x148
    assert t.lsn_diff(None, '0/1') is None


def test_timeline_of_walfile():
    assert t.timeline_of_walfile('00000002000000000000000A') == 2
    assert t.timeline_of_walfile('0000001F0000000100000003') == 31
    assert t.timeline_of_walfile(None) is None


# ----------------------------------------------------------------- node_state

def test_primary_timeline_comes_from_the_wal_file_not_the_lagging_checkpoint():
    s = t.node_state(primary_raw(wal_file='000000020000000000000005', checkpoint_tli=1))
    assert s['role'] == 'primary'
    assert s['in_recovery'] is False
    assert s['timeline'] == 2
    assert s['lsn'] == {'current': '0/3000148', 'receive': None, 'replay': None}
    assert s['upstream'] is None
    assert s['flavour'] == 'postgresql'


def test_replica_timeline_comes_from_the_wal_receiver():
    s = t.node_state(replica_raw(tli=3, checkpoint_tli=2))
    assert s['role'] == 'replica'
    assert s['timeline'] == 3
    assert s['lsn'] == {'current': None, 'receive': '0/3000148', 'replay': '0/3000148'}
    assert s['upstream'] == {'host': '10.0.0.1', 'port': 5432, 'status': 'streaming', 'slot': 'pdb2'}


def test_replica_without_wal_receiver_falls_back_to_the_restartpoint_timeline():
    s = t.node_state(replica_raw(receiver=False, checkpoint_tli=2))
    assert s['timeline'] == 2
    assert s['upstream'] is None


def test_polar_version_makes_the_flavour_polardb():
    s = t.node_state(primary_raw(polar_version='15.8.2.0'))
    assert s['flavour'] == 'polardb'
    assert s['polar_version'] == '15.8.2.0'


def test_parse_probe_reads_json_text():
    s = t.parse_probe(json.dumps(primary_raw()))
    assert s['system_identifier'] == SYSID


def test_probe_sql_is_one_json_column_named_probe():
    assert t.PROBE_SQL.lstrip().startswith('SELECT json_build_object(')
    assert t.PROBE_SQL.rstrip().endswith('::text AS probe')
    # pg_current_wal_lsn() fails during recovery: only ever behind a CASE.
    guarded = (t.PROBE_SQL.count('ELSE pg_current_wal_lsn()')
               + t.PROBE_SQL.count('ELSE pg_walfile_name(pg_current_wal_lsn())')
               + t.PROBE_SQL.count('ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)'))
    assert t.PROBE_SQL.count('pg_current_wal_lsn()') == guarded == 4


# ------------------------------------------------------------ build_topology

def test_one_rw_two_streaming_replicas_is_healthy():
    c = t.build_topology(healthy_probes())
    assert c['rw'] == 'pdb1'
    assert c['rw_nodes'] == ['pdb1']
    assert c['problems'] == []
    assert c['healthy'] is True
    assert list(c['nodes']) == ['pdb1', 'pdb2', 'pdb3']
    assert c['nodes']['pdb2']['streaming'] is True
    assert c['nodes']['pdb2']['lag_bytes'] == 0
    assert c['nodes']['pdb2']['upstream_node'] == 'pdb1'
    assert c['nodes']['pdb1']['lag_bytes'] is None
    assert c['nodes']['pdb1']['streaming'] is None
    assert c['nodes']['pdb1']['replication'][0]['application_name'] == 'pdb2'


def test_every_node_has_every_key():
    probes = healthy_probes() + [down('pdb4', '10.0.0.4')]
    c = t.build_topology(probes)
    keys = set(c['nodes']['pdb1'])
    for n in c['nodes'].values():
        assert set(n) == keys
    assert c['nodes']['pdb4']['role'] is None
    assert c['nodes']['pdb4']['lsn'] == {'current': None, 'receive': None, 'replay': None}


def test_two_rw_nodes_is_a_split():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw()),
        up('pdb2', '10.0.0.2', primary_raw(wal_file='000000020000000000000004')),
        up('pdb3', '10.0.0.3', replica_raw(slot='pdb3')),
    ]
    c = t.build_topology(probes)
    assert c['rw'] == 'pdb1'  # the first of several
    assert c['rw_nodes'] == ['pdb1', 'pdb2']
    assert c['healthy'] is False
    assert '2 RW nodes: pdb1, pdb2' in c['problems']


def test_no_rw_node():
    probes = [up('pdb2', '10.0.0.2', replica_raw(status='waiting')),
              up('pdb3', '10.0.0.3', replica_raw(receiver=False))]
    c = t.build_topology(probes)
    assert c['rw'] is None
    assert c['rw_nodes'] == []
    assert c['healthy'] is False
    assert c['problems'][0] == 'no RW node among the reachable nodes (pdb2, pdb3)'
    assert c['nodes']['pdb2']['lag_bytes'] is None


def test_nothing_reachable():
    c = t.build_topology([down('pdb1', '10.0.0.1'), down('pdb2', '10.0.0.2', error='timeout')])
    assert c['rw'] is None
    assert c['problems'] == ['no RW node: no node is reachable',
                             'pdb1 (10.0.0.1:5432) unreachable: connection refused',
                             'pdb2 (10.0.0.2:5432) unreachable: timeout']


def test_unreachable_node_is_reported_not_fatal():
    probes = healthy_probes()
    probes[2] = down('pdb3', '10.0.0.3', error='cannot connect to 10.0.0.3:5432: timeout')
    c = t.build_topology(probes)
    assert c['rw'] == 'pdb1'
    assert c['healthy'] is False
    assert c['problems'] == [
        'pdb3 (10.0.0.3:5432) unreachable: cannot connect to 10.0.0.3:5432: timeout']
    n = c['nodes']['pdb3']
    assert n['reachable'] is False
    assert n['error'] == 'cannot connect to 10.0.0.3:5432: timeout'
    assert n['lag_bytes'] is None


def test_replica_of_a_foreign_system_identifier():
    probes = healthy_probes()
    probes[1] = up('pdb2', '10.0.0.2', replica_raw(slot='pdb2', sysid='7000000000000000001'))
    c = t.build_topology(probes)
    assert c['healthy'] is False
    assert c['problems'] == ['pdb2: system identifier 7000000000000000001 differs from the RW '
                             'pdb1 (%s)' % SYSID]


def test_foreign_identifiers_without_rw():
    probes = [up('pdb2', '10.0.0.2', replica_raw(sysid='1')),
              up('pdb3', '10.0.0.3', replica_raw(sysid='2'))]
    c = t.build_topology(probes)
    assert 'the nodes do not share one system identifier: pdb2=1, pdb3=2' in c['problems']


def test_lag_from_the_rws_point_of_view():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(lsn='0/5000000', replication=[
            rep_row('pdb2', '10.0.0.2', 'pdb2', replay='0/4000000', lag=0x1000000)])),
        up('pdb2', '10.0.0.2', replica_raw(slot='pdb2', receive='0/5000000', replay='0/4800000')),
    ]
    c = t.build_topology(probes)
    # the RW's row wins over the probe difference (0x800000)
    assert c['nodes']['pdb2']['lag_bytes'] == 0x1000000
    assert c['healthy'] is True  # lag alone is no problem without max_lag_bytes


def test_lag_computed_from_probes_without_a_replication_row():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(lsn='1/10')),
        up('pdb2', '10.0.0.2', replica_raw(slot='pdb2', receive='0/FFFFFFF0', replay='0/FFFFFFF0')),
    ]
    c = t.build_topology(probes)
    assert c['nodes']['pdb2']['lag_bytes'] == 0x20


def test_lag_never_negative():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(lsn='0/3000000')),
        up('pdb2', '10.0.0.2', replica_raw(slot='x', replay='0/3000100')),
    ]
    assert t.build_topology(probes)['nodes']['pdb2']['lag_bytes'] == 0


def test_lagging_replica_is_a_problem_over_max_lag_bytes():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(lsn='0/5000000', replication=[
            rep_row('pdb2', '10.0.0.2', 'pdb2', lag=4096), rep_row('pdb3', '10.0.0.3', 'pdb3', lag=10)])),
        up('pdb2', '10.0.0.2', replica_raw(slot='pdb2')),
        up('pdb3', '10.0.0.3', replica_raw(slot='pdb3')),
    ]
    c = t.build_topology(probes, max_lag_bytes=1024)
    assert c['healthy'] is False
    assert c['problems'] == ['pdb2: replica lags 4096 bytes behind the RW pdb1 (more than 1024)']


def test_replication_row_matched_by_slot_then_name_then_address():
    rows = [rep_row('walreceiver', '10.0.0.2', 'slot_b', lag=7),
            rep_row('pdb3', '10.0.0.9', None, lag=8),
            rep_row('walreceiver', '10.0.0.4', None, lag=9)]
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(replication=rows)),
        up('pdb2', '10.0.0.2', replica_raw(slot='slot_b')),
        up('pdb3', '10.0.0.3', replica_raw(slot=None)),
        up('pdb4', '10.0.0.4', replica_raw(slot=None)),
    ]
    c = t.build_topology(probes)
    assert [c['nodes'][n]['lag_bytes'] for n in ('pdb2', 'pdb3', 'pdb4')] == [7, 8, 9]


def test_replica_not_streaming():
    probes = healthy_probes()
    probes[1] = up('pdb2', '10.0.0.2', replica_raw(slot='pdb2', status='waiting'))
    probes[2] = up('pdb3', '10.0.0.3', replica_raw(receiver=False, replay='0/3000000'))
    c = t.build_topology(probes)
    assert c['healthy'] is False
    assert c['problems'] == ['pdb2: replica not streaming (WAL receiver waiting)',
                             'pdb3: replica not streaming (no WAL receiver)']
    assert c['nodes']['pdb2']['streaming'] is False
    assert c['nodes']['pdb3']['streaming'] is False
    assert c['nodes']['pdb3']['upstream'] is None
    assert c['nodes']['pdb3']['lag_bytes'] == 0x148  # from the probes


def test_cascaded_replica():
    probes = [
        up('pdb1', '10.0.0.1', primary_raw(replication=[rep_row('pdb2', '10.0.0.2', 'pdb2')])),
        up('pdb2', '10.0.0.2', replica_raw(slot='pdb2')),
        up('pdb3', '10.0.0.3', replica_raw(host='10.0.0.2', slot='pdb3', replay='0/3000000')),
    ]
    c = t.build_topology(probes)
    assert c['nodes']['pdb3']['upstream_node'] == 'pdb2'
    assert c['nodes']['pdb3']['streaming'] is True
    assert c['nodes']['pdb3']['lag_bytes'] == 0x148  # from the probes: the RW has no row of it
    assert c['problems'] == ['pdb3: streams from pdb2 (cascaded), not from the RW pdb1']
    assert c['healthy'] is False


def test_replica_streaming_from_outside_the_cluster():
    probes = healthy_probes()
    probes[1] = up('pdb2', '10.0.0.2', replica_raw(host='10.9.9.9', slot='pdb2'))
    c = t.build_topology(probes)
    assert c['nodes']['pdb2']['upstream_node'] is None
    assert c['problems'] == ['pdb2: streams from 10.9.9.9:5432, which is not the RW pdb1 (10.0.0.1:5432)']


def test_upstream_on_the_right_host_but_another_port_is_not_the_rw():
    probes = healthy_probes()
    probes[1] = up('pdb2', '10.0.0.2', replica_raw(port=5433, slot='pdb2'))
    c = t.build_topology(probes)
    assert c['problems'] == ['pdb2: streams from 10.0.0.1:5433, which is not the RW pdb1 (10.0.0.1:5432)']


def test_same_host_callback_resolves_names():
    probes = healthy_probes()
    probes[1] = up('pdb2', '10.0.0.2', replica_raw(host='pdb1.example', slot='pdb2'))
    c = t.build_topology(probes)
    assert c['healthy'] is False
    aliases = {'pdb1.example': '10.0.0.1'}

    def same_host(a, b):
        return a is not None and b is not None and aliases.get(a, a) == aliases.get(b, b)
    c = t.build_topology(probes, same_host=same_host)
    assert c['healthy'] is True
    assert c['nodes']['pdb2']['upstream_node'] == 'pdb1'


def test_resolving_same_host():
    same = t.resolving_same_host()
    assert same('127.0.0.1', '127.0.0.1')
    assert same('LOCALHOST', 'localhost')
    assert same('localhost', '127.0.0.1')
    assert not same('/var/run/postgresql', '127.0.0.1')
    assert not same(None, '127.0.0.1')
    assert not same('no-such-host.invalid', '127.0.0.1')


# ------------------------------------------------------------------- probing

class FakeSession(object):
    def __init__(self, answer):
        self.answer = answer
        self.closed = False
        self.queries = []

    def one(self, sql):
        self.queries.append(sql)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def close(self):
        self.closed = True


def test_probe_node_success_passes_connection_options():
    calls = []
    session = FakeSession({'probe': json.dumps(primary_raw())})

    def connect(*args, **kwargs):
        calls.append((args, kwargs))
        return session
    r = t.probe_node({'name': 'pdb1', 'host': '10.0.0.1', 'port': 5433}, connect,
                     'postgres', 'pw', 'postgres', 3)
    assert r['reachable'] is True
    assert r['error'] is None
    assert r['port'] == 5433
    assert r['state']['role'] == 'primary'
    assert calls == [(('10.0.0.1', 5433, 'postgres', 'pw', 'postgres', 3, 'polardb.stack'),
                      {'statement_timeout_ms': 3000})]
    assert session.queries == [t.PROBE_SQL]
    assert session.closed


def test_probe_node_connection_error_is_unreachable():
    def connect(*args, **kwargs):
        raise PolarDBError('cannot connect to 10.0.0.1:5432 as postgres: refused')
    r = t.probe_node({'name': 'pdb1', 'host': '10.0.0.1', 'port': 5432}, connect, 'u', None, 'd', 3)
    assert r['reachable'] is False
    assert r['error'] == 'cannot connect to 10.0.0.1:5432 as postgres: refused'
    assert r['state'] is None


def test_probe_node_query_error_and_garbage_are_unreachable():
    s1 = FakeSession(PolarDBError('query failed: canceling statement due to statement timeout'))
    r = t.probe_node({'name': 'a', 'host': 'h', 'port': 1}, lambda *a, **k: s1, 'u', None, 'd', 3)
    assert (r['reachable'], r['error']) == (False, 'query failed: canceling statement due to statement timeout')
    assert s1.closed
    s2 = FakeSession({'probe': 'not json'})
    r = t.probe_node({'name': 'a', 'host': 'h', 'port': 1}, lambda *a, **k: s2, 'u', None, 'd', 3)
    assert r['reachable'] is False
    assert r['error'].startswith('probe failed:')
    s3 = FakeSession(None)
    r = t.probe_node({'name': 'a', 'host': 'h', 'port': 1}, lambda *a, **k: s3, 'u', None, 'd', 3)
    assert r['error'] == 'the probe query returned nothing'


def test_probe_all_runs_in_parallel_and_keeps_order():
    nodes = [{'name': 'n%d' % i, 'host': 'h', 'port': i} for i in range(4)]
    active = []
    peak = []
    lock = threading.Lock()

    def probe_one(node):
        with lock:
            active.append(node['name'])
            peak.append(len(active))
        time.sleep(0.3)
        with lock:
            active.remove(node['name'])
        return {'name': node['name'], 'reachable': True}
    start = time.time()
    out = t.probe_all(nodes, probe_one, 10)
    assert time.time() - start < 1.0
    assert max(peak) == 4
    assert [r['name'] for r in out] == ['n0', 'n1', 'n2', 'n3']


def test_probe_all_reports_a_hung_probe_unreachable():
    release = threading.Event()

    def probe_one(node):
        if node['name'] == 'stuck':
            release.wait(5)
        return {'name': node['name'], 'host': node['host'], 'port': node['port'],
                'reachable': True, 'error': None, 'state': None}
    nodes = [{'name': 'ok', 'host': 'a', 'port': 1}, {'name': 'stuck', 'host': 'b', 'port': 2}]
    start = time.time()
    out = t.probe_all(nodes, probe_one, 0.3)
    release.set()
    assert time.time() - start < 2
    assert out[0]['name'] == 'ok' and out[0]['reachable'] is True
    assert out[1] == {'name': 'stuck', 'host': 'b', 'port': 2, 'reachable': False,
                      'error': 'no answer within 0.3 s', 'state': None}


# ---------------------------------------------------------- slots and WAL

def slot_row(name, restart='0/3000000', status='reserved', retained=None, safe=None, active=True):
    return {'slot_name': name, 'slot_type': 'physical', 'active': active, 'restart_lsn': restart,
            'wal_status': status, 'safe_wal_size': safe, 'retained_bytes': retained}


def slot_probes(slots, lsn='0/3000148', keep='512MB'):
    rw = primary_raw(lsn=lsn, replication=[rep_row('pdb2', '10.0.0.2', 'pdb2'), rep_row('pdb3', '10.0.0.3', 'pdb3')])
    rw['slots'] = slots
    rw['max_slot_wal_keep_size'] = keep
    return [up('pdb1', '10.0.0.1', rw),
            up('pdb2', '10.0.0.2', replica_raw(slot='pdb2')),
            up('pdb3', '10.0.0.3', replica_raw(slot='pdb3'))]


def test_each_replica_shows_the_wal_its_slot_retains_on_the_rw():
    c = t.build_topology(slot_probes([slot_row('pdb2', '0/3000100', retained=72, safe=536870840),
                                      slot_row('pdb3', '0/2000000', safe=519000000)]))
    assert c['healthy'], c['problems']
    assert c['nodes']['pdb1']['max_slot_wal_keep_size'] == '512MB'
    pdb2, pdb3 = c['nodes']['pdb2']['slot'], c['nodes']['pdb3']['slot']
    assert (pdb2['name'], pdb2['on'], pdb2['retained_bytes'], pdb2['wal_status'], pdb2['safe_wal_size']) == \
        ('pdb2', 'pdb1', 72, 'reserved', 536870840)
    # retained computed from the LSNs when the probe did not (0/3000148 - 0/2000000)
    assert pdb3['retained_bytes'] == 0x1000148
    assert [s['node'] for s in c['nodes']['pdb1']['slots']] == ['pdb2', 'pdb3']
    assert c['nodes']['pdb1']['slot'] is None


def test_a_lost_slot_is_a_problem_naming_the_node():
    c = t.build_topology(slot_probes([slot_row('pdb2'), slot_row('pdb3', None, 'lost', active=False)]))
    assert not c['healthy']
    assert c['problems'] == [
        'pdb3: its replication slot pdb3 on the RW pdb1 is lost (wal_status lost): the WAL it needs was removed '
        '(max_slot_wal_keep_size 512MB); rebuild pdb3 (playbooks/rebuild_node.yml)']
    assert c['nodes']['pdb3']['slot']['wal_status'] == 'lost'


def test_an_unreserved_slot_is_a_problem_and_an_orphan_slot_is_named():
    c = t.build_topology(slot_probes([slot_row('pdb2', status='unreserved', retained=600000000, safe=-1),
                                      slot_row('old_node', status='lost')]))
    assert c['problems'][0].startswith('pdb2: its replication slot pdb2 on the RW pdb1 holds 600000000 bytes, '
                                       'more than max_slot_wal_keep_size 512MB (wal_status unreserved)')
    assert c['problems'][1].startswith('no node of the cluster: its replication slot old_node on the RW pdb1 is lost')


def test_slot_owner_by_the_collections_slot_name():
    assert t.slot_name_of('PDB-2.example') == 'pdb_2_example'
    probes = slot_probes([slot_row('pdb_3', status='lost')])
    probes[2]['name'] = 'pdb-3'
    probes[2]['state']['upstream']['slot'] = None
    c = t.build_topology(probes)
    assert c['problems'][0].startswith('pdb-3: its replication slot pdb_3')


def test_a_probe_without_slots_still_builds():
    c = t.build_topology(healthy_probes())
    assert c['healthy'] and c['nodes']['pdb1']['slots'] == [] and c['nodes']['pdb2']['slot'] is None


# --- waiting inside one module run -------------------------------------------

class FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_polls_until_the_condition_holds():
    clock = FakeClock()
    answers = iter([{'healthy': False}, {'healthy': False}, {'healthy': True}])
    found, waited = t.wait_for(lambda: next(answers), 10, t.arrived,
                               clock=clock.clock, sleep=clock.sleep)
    assert found == {'healthy': True}
    assert waited == {'arrived': True, 'attempts': 3, 'seconds': 0.5}
    assert clock.sleeps == [0.25, 0.25]


def test_wait_for_gives_up_after_its_seconds_and_says_so():
    clock = FakeClock()
    found, waited = t.wait_for(lambda: {'healthy': False}, 1, t.arrived,
                               clock=clock.clock, sleep=clock.sleep)
    assert waited['arrived'] is False and waited['attempts'] == 5 and waited['seconds'] == 1.0
    assert found == {'healthy': False}


def test_wait_for_zero_seconds_probes_once():
    clock = FakeClock()
    calls = []
    t.wait_for(lambda: calls.append(1) or {'healthy': False}, 0, t.arrived,
               clock=clock.clock, sleep=clock.sleep)
    assert calls == [1] and clock.sleeps == []


def test_arrived_with_a_named_rw_needs_it_alone_and_the_named_nodes_streaming_from_it():
    cluster = {'healthy': False, 'rw_nodes': ['pdb2'], 'nodes': {
        'pdb1': {'streaming': True, 'upstream_node': 'pdb2'},
        'pdb3': {'streaming': False, 'upstream_node': None}}}
    assert t.arrived(cluster, 'pdb2', ['pdb1']) is True
    assert t.arrived(cluster, 'pdb2', ['pdb1', 'pdb3']) is False
    assert t.arrived(cluster, 'pdb1', []) is False
    assert t.arrived(dict(cluster, rw_nodes=['pdb1', 'pdb2']), 'pdb2', ['pdb1']) is False
    assert t.arrived(cluster) is False
