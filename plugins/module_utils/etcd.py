# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small etcd v3 client over etcd's JSON gateway (HTTP POST, keys and values base64).

Why not a library: the PyPI ``etcd3`` client has had no release since 2020 and
pins an old protobuf; the gateway is what Patroni uses too, and needs nothing
but the standard library on the hosts (the cluster manager's agents run there
without Ansible). TLS with a client certificate is the only way in that the
collection configures.

The transport is one function ``post(endpoint, path, body, timeout) -> dict``,
so unit tests hand in a fake. Every call is bounded by ``timeout`` per endpoint
tried; an endpoint that does not answer is skipped and the next one is tried,
the one that answered last is tried first next time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import socket
import ssl

try:
    import http.client as http_client
except ImportError:  # pragma: no cover - Python 2 is not supported on the hosts
    http_client = None

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

# etcd's prefix query: range_end is the key with its last byte incremented
_NO_END = b'\0'


class EtcdError(PolarDBError):
    """etcd refused a request (``unreachable``: no endpoint answered)."""

    def __init__(self, msg, unreachable=False, **details):
        super(EtcdError, self).__init__(msg, **details)
        self.unreachable = unreachable


def _b64(data):
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    return base64.b64encode(data).decode('ascii')


def _unb64(text):
    return base64.b64decode(text or '')


def prefix_end(prefix):
    """etcd's range_end for every key starting with ``prefix`` (bytes)."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xff:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return _NO_END


def _kv(raw):
    """A key-value of a range answer as a dict: key (text), value (text),
    create/mod revision, version and lease (ints; 0 = no lease)."""
    return {
        'key': _unb64(raw.get('key')).decode('utf-8'),
        'value': _unb64(raw.get('value')).decode('utf-8'),
        'create_revision': int(raw.get('create_revision', 0)),
        'mod_revision': int(raw.get('mod_revision', 0)),
        'version': int(raw.get('version', 0)),
        'lease': int(raw.get('lease', 0)),
    }


def _json_value(value):
    return value if isinstance(value, (str, bytes)) else json.dumps(value, sort_keys=True, separators=(',', ':'))


def https_transport(ca_file=None, cert_file=None, key_file=None):
    """The real transport: one kept-alive HTTP(S) connection per endpoint."""
    context = None
    if ca_file or cert_file:
        try:
            context = ssl.create_default_context(cafile=ca_file)
            if cert_file:
                context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as e:
            raise EtcdError('cannot load the etcd TLS files (%s, %s, %s): %s' % (ca_file, cert_file, key_file, e))
    conns = {}

    def post(endpoint, path, body, timeout):
        scheme, dummy, hostport = endpoint.partition('://')
        conn = conns.get(endpoint)
        if conn is None:
            if scheme == 'https':
                conn = http_client.HTTPSConnection(hostport, timeout=timeout, context=context)
            else:
                conn = http_client.HTTPConnection(hostport, timeout=timeout)
            conns[endpoint] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request('POST', path, body=json.dumps(body), headers={'Content-Type': 'application/json'})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, socket.timeout, http_client.HTTPException, ssl.SSLError) as e:
            conn.close()
            conns.pop(endpoint, None)
            raise EtcdError('%s: %s' % (endpoint, e), unreachable=True)
        try:
            doc = json.loads(data.decode('utf-8') or '{}')
        except ValueError:
            raise EtcdError('%s%s: HTTP %d, not JSON: %s' % (endpoint, path, resp.status, data[:200]))
        if resp.status != 200:
            why = doc.get('message') or doc.get('error') or data[:200]
            raise EtcdError('%s%s: HTTP %d: %s' % (endpoint, path, resp.status, why), code=doc.get('code'))
        return doc

    return post


class Etcd(object):
    """etcd v3 through its JSON gateway, on the first of ``endpoints`` that answers."""

    label = 'etcd'

    def __init__(self, endpoints, timeout=2.0, transport=None, ca_file=None, cert_file=None, key_file=None):
        if not endpoints:
            raise EtcdError('no etcd endpoint given')
        self.endpoints = list(endpoints)
        self.timeout = float(timeout)
        self.post = transport or https_transport(ca_file, cert_file, key_file)
        self._first = 0

    def call(self, path, body):
        """POST ``body`` to ``path`` on the endpoints in turn; the answer (dict)."""
        errors = []
        n = len(self.endpoints)
        for i in range(n):
            idx = (self._first + i) % n
            try:
                doc = self.post(self.endpoints[idx], path, body, self.timeout)
            except EtcdError as e:
                if not e.unreachable:
                    raise
                errors.append(e.msg)
                continue
            self._first = idx
            return doc
        raise EtcdError('no etcd endpoint answered within %.1f s: %s' % (self.timeout, '; '.join(errors)),
                        unreachable=True)

    # -- keys ----------------------------------------------------------------

    def get(self, key):
        """The key-value dict of ``key``, or None."""
        kvs = self.call('/v3/kv/range', {'key': _b64(key)}).get('kvs') or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix):
        """(revision, [key-value dicts]) of every key under ``prefix``, sorted by key."""
        p = prefix.encode('utf-8')
        doc = self.call('/v3/kv/range', {'key': _b64(p), 'range_end': _b64(prefix_end(p)),
                                         'sort_order': 'ASCEND', 'sort_target': 'KEY'})
        return int(doc.get('header', {}).get('revision', 0)), [_kv(kv) for kv in doc.get('kvs') or []]

    def put(self, key, value, lease=0):
        body = {'key': _b64(key), 'value': _b64(_json_value(value))}
        if lease:
            body['lease'] = str(lease)
        self.call('/v3/kv/put', body)

    def delete(self, key, prefix=False):
        """Delete ``key`` (every key under it with ``prefix``); how many were deleted."""
        k = key.encode('utf-8')
        body = {'key': _b64(k)}
        if prefix:
            body['range_end'] = _b64(prefix_end(k))
        return int(self.call('/v3/kv/deleterange', body).get('deleted', 0))

    def _txn(self, compare, success, failure=None):
        doc = self.call('/v3/kv/txn', {'compare': compare, 'success': success, 'failure': failure or []})
        return bool(doc.get('succeeded')), doc.get('responses') or []

    def create(self, key, value, lease=0):
        """Put ``key`` only if it does not exist. (created, the key-value now there)."""
        put = {'key': _b64(key), 'value': _b64(_json_value(value))}
        if lease:
            put['lease'] = str(lease)
        ok, responses = self._txn(
            [{'key': _b64(key), 'result': 'EQUAL', 'target': 'CREATE', 'create_revision': '0'}],
            [{'request_put': put}],
            [{'request_range': {'key': _b64(key)}}])
        if ok:
            return True, None
        kvs = (responses[0].get('response_range') or {}).get('kvs') or [] if responses else []
        return False, _kv(kvs[0]) if kvs else None

    def replace(self, key, value, mod_revision, lease=0):
        """Put ``key`` only if it was last changed at ``mod_revision`` (compare-and-swap)."""
        put = {'key': _b64(key), 'value': _b64(_json_value(value))}
        if lease:
            put['lease'] = str(lease)
        ok, dummy = self._txn(
            [{'key': _b64(key), 'result': 'EQUAL', 'target': 'MOD', 'mod_revision': str(mod_revision)}],
            [{'request_put': put}])
        return ok

    def delete_if(self, key, mod_revision):
        """Delete ``key`` only if it was last changed at ``mod_revision``."""
        ok, dummy = self._txn(
            [{'key': _b64(key), 'result': 'EQUAL', 'target': 'MOD', 'mod_revision': str(mod_revision)}],
            [{'request_delete_range': {'key': _b64(key)}}])
        return ok

    # -- leases ---------------------------------------------------------------

    def grant(self, ttl):
        """A new lease of ``ttl`` seconds: its id."""
        doc = self.call('/v3/lease/grant', {'TTL': str(int(ttl)), 'ID': '0'})
        if doc.get('error'):
            raise EtcdError('etcd refused a lease: %s' % doc['error'])
        return int(doc['ID'])

    def keepalive(self, lease):
        """Renew ``lease``: the seconds it has left (0: it had expired and is gone)."""
        doc = self.call('/v3/lease/keepalive', {'ID': str(lease)})
        return int((doc.get('result') or doc).get('TTL', 0))

    def revoke(self, lease):
        """End ``lease`` now (its keys go with it); a lease already gone is no error."""
        try:
            self.call('/v3/lease/revoke', {'ID': str(lease)})
        except EtcdError as e:
            if 'not found' not in e.msg:
                raise

    # -- the cluster --------------------------------------------------------

    def members(self):
        """[{name, id, peer_urls, client_urls}] of the etcd cluster."""
        doc = self.call('/v3/cluster/member/list', {})
        return [{'name': m.get('name', ''), 'id': str(m.get('ID', '')),
                 'peer_urls': m.get('peerURLs') or [], 'client_urls': m.get('clientURLs') or []}
                for m in doc.get('members') or []]

    def status(self, endpoint):
        """{version, leader, member_id, raft_term} as ``endpoint`` alone sees it."""
        doc = self.post(endpoint, '/v3/maintenance/status', {}, self.timeout)
        header = doc.get('header') or {}
        return {'version': doc.get('version'), 'leader': str(doc.get('leader', '')),
                'member_id': str(header.get('member_id', '')), 'raft_term': int(header.get('raft_term', 0))}
