# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory etcd v3 JSON gateway: the transport unit tests hand to module_utils.etcd.Etcd.

It answers the calls the collection makes (range, put, deleterange, txn with
CREATE/MOD compares, lease grant/keepalive/revoke, member list, status) the way
etcd 3.4's gateway does (int64 as strings, keys and values base64, fields with
zero values left out). Leases expire by ``clock``; ``down`` lists endpoints
that do not answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible_collections.polardb.stack.plugins.module_utils.etcd import EtcdError


def _d(text):
    return base64.b64decode(text or '')


def _e(data):
    return base64.b64encode(data).decode('ascii')


class FakeClock(object):
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class FakeEtcd(object):
    def __init__(self, clock=None, endpoints=('https://e1:2379', 'https://e2:2379', 'https://e3:2379')):
        self.clock = clock or FakeClock()
        self.endpoints = list(endpoints)
        self.down = set()
        self.revision = 1
        self.kv = {}  # key bytes -> dict(value, create_revision, mod_revision, version, lease)
        self.leases = {}  # id -> [ttl, expires_at]
        self.next_lease = 7000
        self.calls = []

    # -- state ----------------------------------------------------------------
    def _expire(self):
        now = self.clock()
        for lid, (ttl, until) in list(self.leases.items()):
            if until <= now:
                self._drop_lease(lid)

    def _drop_lease(self, lid):
        self.leases.pop(lid, None)
        for k in [k for k, v in self.kv.items() if v['lease'] == lid]:
            del self.kv[k]
            self.revision += 1

    def _range(self, key, end):
        if not end:
            return [key] if key in self.kv else []
        return sorted(k for k in self.kv if k >= key and (end == b'\0' or k < end))

    def _raw(self, k):
        v = self.kv[k]
        out = {'key': _e(k), 'create_revision': str(v['create_revision']), 'mod_revision': str(v['mod_revision']),
               'version': str(v['version']), 'value': _e(v['value'])}
        if v['lease']:
            out['lease'] = str(v['lease'])
        return out

    def _put(self, body):
        k, lid = _d(body['key']), int(body.get('lease', 0))
        if lid and lid not in self.leases:
            raise EtcdError('HTTP 400: etcdserver: requested lease not found', code=5)
        self.revision += 1
        old = self.kv.get(k)
        self.kv[k] = {'value': _d(body.get('value')), 'lease': lid, 'mod_revision': self.revision,
                      'create_revision': old['create_revision'] if old else self.revision,
                      'version': (old['version'] + 1) if old else 1}
        return {}

    def _delete(self, body):
        keys = self._range(_d(body['key']), _d(body.get('range_end')))
        for k in keys:
            del self.kv[k]
        if keys:
            self.revision += 1
        return {'deleted': str(len(keys))} if keys else {}

    def _compare(self, c):
        k = _d(c['key'])
        v = self.kv.get(k)
        if c['target'] == 'CREATE':
            have, want = (v['create_revision'] if v else 0), int(c.get('create_revision', 0))
        else:
            have, want = (v['mod_revision'] if v else 0), int(c.get('mod_revision', 0))
        return have == want

    # -- the transport --------------------------------------------------------
    def __call__(self, endpoint, path, body, timeout):
        self.calls.append((endpoint, path))
        if endpoint in self.down:
            raise EtcdError('%s: timed out' % endpoint, unreachable=True)
        self._expire()
        header = {'revision': str(self.revision)}
        if path == '/v3/kv/range':
            keys = self._range(_d(body['key']), _d(body.get('range_end')))
            out = {'header': header}
            if keys:
                out.update(kvs=[self._raw(k) for k in keys], count=str(len(keys)))
            return out
        if path == '/v3/kv/put':
            return dict(self._put(body), header=header)
        if path == '/v3/kv/deleterange':
            return dict(self._delete(body), header=header)
        if path == '/v3/kv/txn':
            ok = all(self._compare(c) for c in body['compare'])
            responses = []
            for op in body['success'] if ok else body['failure']:
                if 'request_put' in op:
                    self._put(op['request_put'])
                    responses.append({'response_put': {}})
                elif 'request_delete_range' in op:
                    responses.append({'response_delete_range': self._delete(op['request_delete_range'])})
                elif 'request_range' in op:
                    keys = self._range(_d(op['request_range']['key']), _d(op['request_range'].get('range_end')))
                    responses.append({'response_range': {'kvs': [self._raw(k) for k in keys]} if keys else {}})
            out = {'header': header, 'responses': responses}
            if ok:
                out['succeeded'] = True
            return out
        if path == '/v3/lease/grant':
            self.next_lease += 1
            ttl = int(body['TTL'])
            self.leases[self.next_lease] = [ttl, self.clock() + ttl]
            return {'header': header, 'ID': str(self.next_lease), 'TTL': str(ttl)}
        if path == '/v3/lease/keepalive':
            lid = int(body['ID'])
            if lid not in self.leases:
                return {'result': {'header': header, 'ID': str(lid)}}
            ttl = self.leases[lid][0]
            self.leases[lid][1] = self.clock() + ttl
            return {'result': {'header': header, 'ID': str(lid), 'TTL': str(ttl)}}
        if path == '/v3/lease/revoke':
            lid = int(body['ID'])
            if lid not in self.leases:
                raise EtcdError('%s%s: HTTP 404: etcdserver: requested lease not found' % (endpoint, path), code=5)
            self._drop_lease(lid)
            return {'header': header}
        if path == '/v3/cluster/member/list':
            return {'header': header, 'members': [
                {'ID': str(i + 1), 'name': 'm%d' % (i + 1), 'peerURLs': [e.replace('2379', '2380')], 'clientURLs': [e]}
                for i, e in enumerate(self.endpoints)]}
        if path == '/v3/maintenance/status':
            idx = self.endpoints.index(endpoint)
            return {'header': {'member_id': str(idx + 1), 'raft_term': '2'}, 'version': '3.4.23', 'leader': '1'}
        raise AssertionError('unexpected path %s' % path)
