# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import sql
from ansible_collections.polardb.stack.plugins.modules import cluster_info
from ansible_collections.polardb.stack.tests.unit.plugins.modules.harness import module_args

SYSID = '7712462526841396471'


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def probe(in_recovery, lsn='0/3000148', sender=None):
    return json.dumps({
        'in_recovery': in_recovery, 'server_version': '15.20', 'server_version_num': 150020,
        'polar_version': None, 'data_directory': '/srv/polardb/demo/data', 'system_identifier': SYSID,
        'checkpoint_timeline': 1, 'wal_file': None if in_recovery else '000000010000000000000003',
        'current_lsn': None if in_recovery else lsn, 'receive_lsn': lsn if in_recovery else None,
        'replay_lsn': lsn if in_recovery else None,
        'wal_receiver': {'status': 'streaming', 'received_tli': 1, 'sender_host': sender[0],
                         'sender_port': sender[1], 'slot_name': 'r', 'flushed_lsn': lsn}
        if sender else None,
        'replication': [] if in_recovery else [
            {'application_name': 'r', 'client_addr': '127.0.0.1', 'state': 'streaming',
             'sync_state': 'async', 'slot_name': 'r', 'sent_lsn': lsn, 'write_lsn': lsn,
             'flush_lsn': lsn, 'replay_lsn': '0/3000100', 'replay_lag_bytes': 0x48}],
    })


class Session(object):
    def __init__(self, text):
        self.text = text

    def one(self, query):
        return {'probe': self.text}

    def close(self):
        pass


@pytest.fixture
def ansible(monkeypatch):
    connects = []
    answers = {
        5433: probe(False),
        5434: probe(True, sender=('127.0.0.1', 5433)),
    }

    def connect(host, port, user, password, dbname, connect_timeout, application_name, **kw):
        connects.append((host, port, user, password, dbname, connect_timeout, kw))
        if port not in answers:
            raise PolarDBError('cannot connect to %s:%s as %s: connection refused' % (host, port, user))
        return Session(answers[port])

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(sql, 'connect', connect)
    monkeypatch.setattr(sql, 'HAS_DRIVER', True)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def run(args):
        with module_args(args):
            with pytest.raises((Exit, Fail)) as e:
                cluster_info.main()
        return e.type, e.value.args[0]
    run.connects = connects
    return run


NODES = [{'name': 'p', 'host': '127.0.0.1', 'port': 5433},
         {'name': 'r', 'host': '127.0.0.1', 'port': 5434},
         {'name': 'bogus', 'host': '127.0.0.1', 'port': 5499}]


def test_topology_with_an_unreachable_node(ansible):
    kind, result = ansible({'nodes': NODES, 'login_password': 'pw', 'connect_timeout': 2,
                            'ca_cert': '/etc/polardb-stack/demo/ca.crt', '_ansible_check_mode': True})
    assert kind is Exit
    assert result['changed'] is False
    c = result['cluster']
    assert c['rw'] == 'p'
    assert c['rw_nodes'] == ['p']
    assert c['healthy'] is False
    assert c['problems'] == ['bogus (127.0.0.1:5499) unreachable: cannot connect to 127.0.0.1:5499 '
                             'as postgres: connection refused']
    assert c['nodes']['r']['upstream_node'] == 'p'
    assert c['nodes']['r']['lag_bytes'] == 0x48
    assert c['nodes']['bogus']['reachable'] is False
    assert sorted(ansible.connects) == sorted(
        ('127.0.0.1', port, 'postgres', 'pw', 'postgres', 2,
         {'statement_timeout_ms': 2000,
          'libpq': {'sslmode': 'verify-full', 'sslrootcert': '/etc/polardb-stack/demo/ca.crt'}})
        for port in (5433, 5434, 5499))


def test_healthy_with_lag_limit(ansible):
    kind, result = ansible({'nodes': NODES[:2], 'max_lag_bytes': 0x100})
    assert kind is Exit
    assert result['cluster']['healthy'] is True
    assert result['cluster']['problems'] == []
    kind, result = ansible({'nodes': NODES[:2], 'max_lag_bytes': 0x10})
    assert result['cluster']['problems'] == ['r: replica lags 72 bytes behind the RW p (more than 16)']


def test_node_port_defaults_to_5432(ansible):
    kind, result = ansible({'nodes': [{'name': 'a', 'host': '10.0.0.1'}]})
    assert kind is Exit
    assert result['cluster']['nodes']['a']['port'] == 5432
    assert result['cluster']['rw'] is None


def test_duplicate_names_fail(ansible):
    kind, result = ansible({'nodes': [NODES[0], dict(NODES[1], name='p')]})
    assert kind is Fail
    assert result['msg'] == 'node names must be unique: p'


def test_missing_driver_fails(ansible, monkeypatch):
    monkeypatch.setattr(sql, 'HAS_DRIVER', False)
    kind, result = ansible({'nodes': NODES})
    assert kind is Fail
    assert 'psycopg' in result['msg']
    assert ansible.connects == []
