# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operation lock on a Kubernetes Lease, against an in-memory API server that
keeps resourceVersions and answers 404/409 as the real one does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import k8s_lease
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import ensure_lock
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

PATH = '/apis/coordination.k8s.io/v1/namespaces/db/leases'


class FakeLeaseApi(object):
    """Leases by name; every write bumps a resourceVersion; ``now`` is the server's clock."""

    def __init__(self):
        self.leases = {}
        self.rv = 100
        self.now = 5000.0
        self.calls = []
        self.before_write = None  # a hook: another writer gets in between a read and a write

    def call(self, method, path, body=None, content_type=None, query=None):
        self.calls.append((method, path))
        if method != 'GET' and self.before_write:
            hook, self.before_write = self.before_write, None
            hook()
        name = path[len(PATH) + 1:] if path.startswith(PATH + '/') else None
        if method == 'GET':
            if name not in self.leases:
                return 404, {'reason': 'NotFound'}, self.now
            return 200, copy.deepcopy(self.leases[name]), self.now
        if method == 'POST':
            name = body['metadata']['name']
            if name in self.leases:
                return 409, {'reason': 'AlreadyExists'}, self.now
            return self._store(name, body, 201)
        if method == 'PUT':
            if name not in self.leases:
                return 404, {'reason': 'NotFound'}, self.now
            if body['metadata'].get('resourceVersion') != self.leases[name]['metadata']['resourceVersion']:
                return 409, {'reason': 'Conflict'}, self.now
            return self._store(name, body, 200)
        if method == 'DELETE':
            if name not in self.leases:
                return 404, {'reason': 'NotFound'}, self.now
            want = ((body or {}).get('preconditions') or {}).get('resourceVersion')
            if want and want != self.leases[name]['metadata']['resourceVersion']:
                return 409, {'reason': 'Conflict'}, self.now
            del self.leases[name]
            return 200, {'status': 'Success'}, self.now
        raise AssertionError(method)

    def _store(self, name, body, status):
        self.rv += 1
        obj = copy.deepcopy(body)
        obj['metadata']['resourceVersion'] = str(self.rv)
        self.leases[name] = obj
        return status, copy.deepcopy(obj), self.now


def owner(run):
    return dict(run_id=run, controller='ctl', pid=1)


@pytest.fixture
def api():
    return FakeLeaseApi()


def store_of(api):
    return k8s_lease.K8sLeaseStore(api, 'db', 'https://127.0.0.1:16443')


def take(api, run, operation='switchover', **kw):
    store = store_of(api)
    return ensure_lock(store, 'demo', state='acquired', operation=operation, owner=owner(run),
                       lease_seconds=30, clock=store.clock, **kw)


def test_acquire_creates_a_lease_that_shows_its_holder(api):
    out = take(api, 'run-1', params={'to': 'pdb2'})
    assert out['changed']
    lease = api.leases['polardb-lock-demo']
    assert lease['spec']['holderIdentity'] == 'run-1'
    assert lease['spec']['leaseDurationSeconds'] == 30
    assert lease['metadata']['labels']['stack.polardb.io/cluster'] == 'demo'
    record = json.loads(lease['metadata']['annotations'][k8s_lease.ANNOTATION])
    assert record['operation'] == 'switchover' and record['params'] == {'to': 'pdb2'}
    # stamped with the API server's clock, not the controller's
    assert record['clock']['boot_id'] == 'kube-apiserver https://127.0.0.1:16443'
    assert abs(record['clock']['mono'] - 5000.0) < 1
    assert out['lock_file'] == 'lease db/polardb-lock-demo'


def test_second_run_is_refused_naming_the_holder(api):
    take(api, 'run-1')
    with pytest.raises(PolarDBError) as e:
        take(api, 'run-2', operation='failover')
    assert 'run run-1' in str(e.value) and 'locked on the Kubernetes API' in str(e.value)
    assert json.loads(api.leases['polardb-lock-demo']['metadata']['annotations'][k8s_lease.ANNOTATION])['owner']['run_id'] == 'run-1'


def test_expiry_is_judged_by_the_server_clock(api):
    take(api, 'run-1')
    api.now += 10  # the server says 10 s passed: still held
    with pytest.raises(PolarDBError):
        take(api, 'run-2')
    api.now += 25  # 35 s > 30 s lease: the same operation may resume it
    out = take(api, 'run-2')
    assert out['changed'] and out['lock']['owner']['run_id'] == 'run-2'
    assert out['lock']['transitions'] == 1
    assert api.leases['polardb-lock-demo']['spec']['leaseTransitions'] == 1


def test_a_write_between_read_and_put_is_a_conflict_then_decided_again(api):
    take(api, 'run-1')
    store = store_of(api)
    rival = store_of(api)

    def rival_renews():
        ensure_lock(rival, 'demo', state='renewed', owner=owner('run-1'), lease_seconds=30, clock=rival.clock)
    api.before_write = rival_renews
    api.now += 40
    # run-2 read an expired lease, but run-1 renewed it before run-2's PUT: 409, read again, refused
    with pytest.raises(PolarDBError) as e:
        ensure_lock(store, 'demo', state='acquired', operation='switchover', owner=owner('run-2'),
                    lease_seconds=30, clock=store.clock)
    assert 'run run-1' in str(e.value)
    assert [call[0] for call in api.calls].count('PUT') == 2  # the rival's renewal and run-2's refused write


def test_release_deletes_with_a_precondition(api):
    take(api, 'run-1')
    store = store_of(api)
    out = ensure_lock(store, 'demo', state='released', owner=owner('run-1'), clock=store.clock)
    assert out['changed'] and 'polardb-lock-demo' not in api.leases
    assert ('DELETE', PATH + '/polardb-lock-demo') in api.calls


def test_check_mode_writes_nothing(api):
    store = store_of(api)
    out = ensure_lock(store, 'demo', state='acquired', operation='switchover', owner=owner('run-1'),
                      clock=store.clock, check_mode=True)
    assert out['changed'] and api.leases == {}
    assert [call[0] for call in api.calls] == ['GET']


def test_a_lease_that_is_not_ours_is_named(api):
    api.leases['polardb-lock-demo'] = dict(metadata=dict(name='polardb-lock-demo', resourceVersion='7'), spec={})
    store = store_of(api)
    with pytest.raises(PolarDBError) as e:
        ensure_lock(store, 'demo', state='query', clock=store.clock)
    assert 'lease db/polardb-lock-demo is not a lock of this collection' in str(e.value)


def test_an_api_error_is_reported(api):
    store = store_of(api)
    api.call = lambda *a, **k: (403, {'message': 'leases is forbidden'}, None)
    with pytest.raises(Exception) as e:
        store.read('demo')
    assert 'HTTP 403 leases is forbidden' in str(e.value)


def test_the_server_clock_says_how_coarse_it_is():
    # the operation lock's wait goes on for it past an expiry (see test_operation_lock)
    assert k8s_lease.ServerClock('https://127.0.0.1:16443').resolution == 1.0


def test_the_server_clock_comes_within_a_round_trip_of_the_servers_from_whole_second_dates(monkeypatch):
    now = [10.2]
    monkeypatch.setattr(k8s_lease.time, 'monotonic', lambda: now[0])
    clock = k8s_lease.ServerClock('https://127.0.0.1:16443')
    assert not clock.known()
    true_offset = 990.0  # the server's time is the local monotonic clock + 990
    for mono in (10.2, 10.95, 11.01, 11.6):
        now[0] = mono
        clock.observe(float(int(mono + true_offset)))  # Date: whole seconds, rounded down
    assert abs(clock.mono() - (now[0] + true_offset)) < 0.02
    # the server's clock set back 5 s: followed once the window passed the earlier answers
    for mono in range(12, 50):
        now[0] = float(mono) + 0.5
        clock.observe(float(int(now[0] + true_offset - 5)))
    assert abs(clock.mono() - (now[0] + true_offset - 5)) <= 0.5
