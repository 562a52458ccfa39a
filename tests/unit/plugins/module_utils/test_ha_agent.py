# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Agents of a three-node cluster on one in-memory store: reports, the leader and
manager keys, an automatic failover carried out by the agents, and the cases
where none may happen. Every test runs on etcd and on the Kubernetes API (its
Leases and ConfigMaps, module_utils/k8s_kv.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import ha_agent
from ansible_collections.polardb.stack.plugins.module_utils.etcd import Etcd
from ansible_collections.polardb.stack.plugins.module_utils.ha_manager import keys
from ansible_collections.polardb.stack.plugins.module_utils.k8s_kv import KubeKV
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

from .fake_etcd import FakeEtcd
from .fake_kube import FakeKubeApi, ServerClock

NODES = dict(('pdb%d' % i, {'host': '10.0.0.%d' % i, 'port': 5432, 'slot': 'pdb%d' % i, 'kind': 'replica',
                            'wwid': 'wwid%d' % i}) for i in (1, 2, 3))
K = keys('/polardb-stack', 'demo')


class Mono(object):
    def __init__(self, clock):
        self.clock = clock

    def __call__(self):
        return self.clock.now


class Engine(object):
    """A node's engine: role primary/replica or None (down), LSNs, an upstream."""

    def __init__(self, name, role, lsn='0/5000', timeline=1, upstream=None):
        self.name, self.role, self.lsn, self.timeline, self.upstream = name, role, lsn, timeline, upstream
        self.sql = []

    def probe(self):
        if self.role is None:
            return None, 'connection refused'
        primary = self.role == 'primary'
        return {'role': self.role, 'timeline': self.timeline, 'in_recovery': not primary,
                'lsn': {'current': self.lsn if primary else None, 'receive': None if primary else self.lsn,
                        'replay': None if primary else self.lsn},
                'upstream': None if primary else {'host': NODES[self.upstream]['host'], 'port': 5432,
                                                  'slot': self.name, 'status': 'streaming'}}, None

    def execute(self, sql):
        self.sql.append(sql)
        if 'pg_promote' in sql:
            self.role, self.timeline = 'primary', self.timeline + 1
        return ''


class Lab(object):
    """Three agents, their engines, and what each did."""

    def __init__(self, fence_driver='command', store='etcd'):
        self.store = store
        self.gw = FakeEtcd() if store == 'etcd' else FakeKubeApi()
        # rounds until a silent agent's lease is over: on Kubernetes every reader judges it,
        # a second late (the API server's clock has whole seconds), and alive through that second
        self.lease_over = 8 if store == 'etcd' else 10
        self.engines = {'pdb1': Engine('pdb1', 'primary'), 'pdb2': Engine('pdb2', 'replica', upstream='pdb1'),
                        'pdb3': Engine('pdb3', 'replica', lsn='0/4000', upstream='pdb1')}
        self.dead = set()       # hosts that do not answer a TCP probe
        self.did = []           # (node, what, arg)
        self.logs = []
        self.agents = {}
        for name in sorted(NODES):
            self.agents[name] = self._agent(name, fence_driver)

    def _agent(self, name, fence_driver):
        cfg = {'cluster': 'demo', 'node': name, 'nodes': NODES, 'ttl': 6, 'interval': 1, 'fence_driver': fence_driver,
               'unfenced_ok': False, 'restart_grace': 10, 'failover_timeout': 60}
        engine = self.engines[name]

        def replicate(upstream):
            self.did.append((name, 'replicate', upstream))
            engine.upstream = upstream
            return {'actions': ['write replication.conf'], 'slots_created': [] if upstream else ['x']}

        def fence(victim):
            self.did.append((name, 'fence', victim))
            return ['preempt %s' % victim]

        def stop_engine():
            self.did.append((name, 'stop_engine', None))
            engine.role = None

        return ha_agent.Agent(
            cfg, self.client(name), engine, lambda: False,
            lambda host, port: host not in [NODES[d]['host'] for d in self.dead], fence, replicate, stop_engine,
            clock=self.gw.clock, mono=Mono(self.gw.clock), log=lambda m, n=name: self.logs.append('%s: %s' % (n, m)))

    def rounds(self, n=1, nodes=None, dt=1.0):
        for dummy in range(n):
            for name in sorted(nodes or self.agents):
                self.agents[name].step()
            self.gw.clock.now += dt

    def client(self, holder='test'):
        if self.store == 'etcd':
            return Etcd(self.gw.endpoints, transport=self.gw)
        return KubeKV(self.gw, 'db', holder, clock=ServerClock(self.gw.clock))

    def get(self, key):
        kv = self.client().get(key)
        return json.loads(kv['value']) if kv else None


@pytest.fixture(params=['etcd', 'kubernetes'])
def store(request):
    return request.param


@pytest.fixture
def lab(store):
    lab = Lab(store=store)
    lab.rounds(3)  # the RW on record from the second round, probed from the third
    return lab


def test_agents_report_and_the_rw_holds_the_leader_key(lab):
    assert lab.get(K['leader'])['node'] == 'pdb1'
    assert lab.get(K['manager'])['node'] == 'pdb1'  # the first to ask
    assert lab.get(K['rw'])['node'] == 'pdb1'
    for name in NODES:
        assert lab.get(K['members'] + name)['role'] == ('primary' if name == 'pdb1' else 'replica')
    assert lab.get(K['members'] + 'pdb2')['rw_reachable'] is True
    assert lab.did == []


def test_a_dead_rw_host_is_fenced_and_replaced_by_the_most_advanced_replica(lab):
    lab.dead.add('pdb1')
    lab.engines['pdb1'].role = None
    lab.rounds(lab.lease_over, nodes=['pdb2', 'pdb3'])  # pdb1's lease (6 s) expires, with its keys
    fo = [json.loads(kv['value']) for kv in lab.client().get_prefix(K['history'])[1]]
    assert len(fo) == 1, lab.logs
    fo = fo[0]
    assert (fo['from'], fo['to'], fo['state']) == ('pdb1', 'pdb2', 'done')
    assert fo['following'] == ['pdb3']
    assert ('pdb2', 'fence', 'pdb1') in lab.did
    assert lab.did.index(('pdb2', 'fence', 'pdb1')) < lab.did.index(('pdb2', 'replicate', None))
    assert any('pg_promote' in s for s in lab.engines['pdb2'].sql)
    assert ('pdb3', 'replicate', 'pdb2') in lab.did
    assert lab.get(K['rw']) == {'node': 'pdb2', 'timeline': 2, 'since': fo['promoted_at']}
    assert lab.get(K['leader'])['node'] == 'pdb2'
    assert lab.get(K['failover']) is None
    assert fo['old_lsn_last_seen'] == '0/5000' and fo['to_lsn'] == '0/5000'


def test_the_rw_agent_killed_while_its_engine_answers_is_no_failover(lab):
    del lab.agents['pdb1']  # the agent dies, its engine runs on
    lab.rounds(10)
    assert lab.get(K['leader']) is None
    assert lab.get(K['failover']) is None
    assert lab.did == []
    assert any('not confirmed: reached by pdb2, pdb3' in m for m in lab.logs), lab.logs


def test_no_fence_driver_means_no_automatic_failover(store):
    lab = Lab(fence_driver='none', store=store)
    lab.rounds(2)
    lab.dead.add('pdb1')
    lab.engines['pdb1'].role = None
    lab.rounds(10, nodes=['pdb2', 'pdb3'])
    assert lab.did == []
    assert any('no fence driver' in m for m in lab.logs)


def test_an_rw_cut_off_from_etcd_stops_its_engine_once_per_loss(lab):
    lab.gw.down.update(lab.gw.endpoints)
    lab.engines['pdb1'].role = 'primary'
    lab.rounds(4, nodes=['pdb1'])
    assert ('pdb1', 'stop_engine', None) not in lab.did  # 4 s: its lease (6 s) may still hold
    lab.engines['pdb1'].role = 'primary'  # stop_engine leaves it down: up again for the next rounds
    lab.rounds(3, nodes=['pdb1'])
    assert lab.did.count(('pdb1', 'stop_engine', None)) == 1
    lab.engines['pdb1'].role = 'primary'
    lab.rounds(2, nodes=['pdb1'])
    assert lab.did.count(('pdb1', 'stop_engine', None)) == 1  # once for this loss
    lab.gw.down.clear()
    lab.rounds(2, nodes=['pdb1'])
    lab.gw.down.update(lab.gw.endpoints)
    lab.engines['pdb1'].role = 'primary'
    lab.rounds(7, nodes=['pdb1'])
    assert lab.did.count(('pdb1', 'stop_engine', None)) == 2  # and again for the next one


def test_a_replica_cut_off_from_etcd_keeps_its_engine(lab):
    lab.gw.down.update(lab.gw.endpoints)
    lab.rounds(10, nodes=['pdb2'])
    assert lab.did == []


def test_an_old_rw_back_after_a_failover_stops_its_engine(lab):
    lab.dead.add('pdb1')
    lab.engines['pdb1'].role = None
    lab.rounds(lab.lease_over, nodes=['pdb2', 'pdb3'])
    assert lab.get(K['rw'])['node'] == 'pdb2'
    lab.dead.discard('pdb1')
    lab.engines['pdb1'].role = 'primary'  # its host back, the engine started as it was
    lab.rounds(1)
    assert ('pdb1', 'stop_engine', None) in lab.did
    assert lab.get(K['members'] + 'pdb1')['conflict'].startswith('an old primary')


def test_a_new_rw_of_a_switchover_is_not_stopped(lab):
    # a planned switchover: pdb2 promoted on the next timeline before pdb1's agent gave the key back
    lab.engines['pdb2'].role, lab.engines['pdb2'].timeline = 'primary', 2
    lab.rounds(1, nodes=['pdb2'])
    assert lab.did == []
    lab.engines['pdb1'].role, lab.engines['pdb1'].upstream = 'replica', 'pdb2'
    lab.rounds(2)
    assert lab.get(K['leader'])['node'] == 'pdb2' and lab.get(K['rw'])['node'] == 'pdb2'
    assert lab.did == []


def test_stop_revokes_the_lease_and_the_keys_go(lab):
    lab.agents['pdb3'].stop()
    assert lab.get(K['members'] + 'pdb3') is None
    assert lab.get(K['members'] + 'pdb2') is not None


def test_a_failed_fence_does_not_promote(lab):
    def refuse(victim):
        raise PolarDBError('array refused')
    lab.agents['pdb2'].fence = refuse
    lab.dead.add('pdb1')
    lab.engines['pdb1'].role = None
    lab.rounds(lab.lease_over, nodes=['pdb2', 'pdb3'])
    assert not any('pg_promote' in s for s in lab.engines['pdb2'].sql)
    fo = lab.get(K['failover'])
    assert fo['state'] == 'decided' and 'array refused' in fo['error']


def test_a_playbook_holding_the_lock_keeps_the_manager_from_failing_over(lab):
    lock = {'operation': 'restart', 'expires_in': 20.0}
    for agent in lab.agents.values():
        agent.read_lock = lambda: lock
    lab.engines['pdb1'].role = None  # the playbook stopped the RW on purpose
    lab.rounds(10)
    assert lab.get(K['members'] + 'pdb2')['lock'] == lock
    assert lab.did == [] and lab.get(K['failover']) is None
    assert any('operation lock is held by restart' in m for m in lab.logs), lab.logs
