# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory Kubernetes API server for module_utils.k8s_kv: ConfigMaps and
Leases of namespaces, as the real one answers (resourceVersions, 404/409,
labelSelector, DELETE preconditions, unconditional PUT without a
resourceVersion) and the garbage collector deletes what a deleted Lease owned.
It never expires a Lease (Kubernetes does not either). ``down``: not answering."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.polardb.stack.plugins.module_utils.etcd import EtcdError

from .fake_etcd import FakeClock

SERVER = 'https://kube.example:6443'


class ServerClock(object):
    """k8s_lease.ServerClock's interface on the fake server's clock."""

    resolution = 1.0

    def __init__(self, clock):
        self.clock = clock

    def observe(self, server_time):
        pass

    def known(self):
        return True

    def mono(self):
        return self.clock.now


class FakeKubeApi(object):
    def __init__(self, clock=None):
        self.clock = clock or FakeClock()
        self.server = SERVER
        self.endpoints = [SERVER]
        self.down = set()
        self.rv = 1000
        self.objects = {}  # (resource, namespace, name) -> object
        self.uids = 0
        self.gc = True  # the garbage collector deletes what a deleted Lease owned, at once
        self.calls = []

    def _parse(self, path):
        parts = path.strip('/').split('/')
        if parts[:2] == ['api', 'v1']:
            parts = parts[2:]
        elif parts[:3] == ['apis', 'coordination.k8s.io', 'v1']:
            parts = parts[3:]
        else:
            raise AssertionError('unexpected path %s' % path)
        assert parts[0] == 'namespaces' and parts[2] in ('configmaps', 'leases'), path
        return parts[2], parts[1], (parts[3] if len(parts) > 3 else None)

    def _answer(self, status, doc):
        return status, copy.deepcopy(doc), self.clock.now

    def call(self, method, path, body=None, content_type=None, query=None):
        self.calls.append((method, path))
        if self.down:
            raise EtcdError('%s: connection refused' % SERVER, unreachable=True)
        if path == '/version':
            return self._answer(200, {'gitVersion': 'v1.35.4'})
        resource, ns, name = self._parse(path)
        key = (resource, ns, name or (body or {}).get('metadata', {}).get('name'))
        current = self.objects.get(key)
        if method == 'GET' and name is None:
            selector = dict(q[1].split('=', 1) for q in query or [] if q[0] == 'labelSelector')
            items = [o for (r, n, dummy), o in sorted(self.objects.items())
                     if r == resource and n == ns
                     and all((o['metadata'].get('labels') or {}).get(k) == v for k, v in selector.items())]
            return self._answer(200, {'metadata': {'resourceVersion': str(self.rv)}, 'items': items})
        if method == 'GET':
            return self._answer(200, current) if current else self._answer(404, {'reason': 'NotFound'})
        if method == 'POST':
            if current:
                return self._answer(409, {'reason': 'AlreadyExists'})
            self.uids += 1
            return self._store(key, body, 201, uid='uid-%d' % self.uids)
        if method == 'PUT':
            if not current:
                return self._answer(404, {'reason': 'NotFound'})
            want = body['metadata'].get('resourceVersion')
            if want and want != current['metadata']['resourceVersion']:
                return self._answer(409, {'reason': 'Conflict'})
            return self._store(key, body, 200, uid=current['metadata']['uid'])
        if method == 'DELETE':
            if not current:
                return self._answer(404, {'reason': 'NotFound'})
            want = ((body or {}).get('preconditions') or {}).get('resourceVersion')
            if want and want != current['metadata']['resourceVersion']:
                return self._answer(409, {'reason': 'Conflict'})
            del self.objects[key]
            self.rv += 1
            if resource == 'leases' and self.gc:
                self.collect()
            return self._answer(200, {'status': 'Success'})
        raise AssertionError(method)

    def collect(self):
        """The garbage collector: objects whose owner is gone."""
        uids = set(o['metadata']['uid'] for o in self.objects.values())
        for key, obj in list(self.objects.items()):
            owners = obj['metadata'].get('ownerReferences') or []
            if owners and not any(ref['uid'] in uids for ref in owners):
                del self.objects[key]
                self.rv += 1

    def _store(self, key, body, status, uid):
        self.rv += 1
        obj = copy.deepcopy(body)
        obj['metadata'].update(resourceVersion=str(self.rv), uid=uid, namespace=key[1])
        self.objects[key] = obj
        return self._answer(status, obj)
