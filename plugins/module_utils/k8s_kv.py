# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster manager's store on the Kubernetes API, in etcd's place.

``KubeKV`` has the methods of ``etcd.Etcd`` that the agents and the
cluster_manager module use (get, get_prefix, put, create, replace, delete_if,
grant, keepalive, revoke, members, status), so module_utils/ha_agent.py and
ha_manager.py run unchanged on either store. As Patroni's Kubernetes store does:

- a key is a ConfigMap of the namespace (its value in ``data.value``, the key
  itself in an annotation; name ``polardb-ha-<readable key>-<hash>``);
- a lease is a ``coordination.k8s.io/v1`` Lease (``leaseDurationSeconds``,
  ``renewTime``); a key under a lease names it in an annotation and is owned
  by it (ownerReferences), so the garbage collector deletes it with the Lease;
- compare-and-swap is the API server's: a PUT carries the resourceVersion the
  caller read (``mod_revision``), a DELETE a resourceVersion precondition, a
  POST fails when the object exists.

etcd expires a lease itself; here every reader judges it, with one clock, the
API server's (``k8s_lease.ServerClock``): a key whose Lease is gone, or was not
renewed for its duration plus the clock's resolution, is no key. Judged late,
never early: an RW's agent that cannot renew stops its engine one second before
its lease would expire (ha_agent), so the manager never sees its key gone while
it may still accept writes.

The agents run on the hosts with nothing but Python: ``TokenApi`` is a
standard-library HTTPS client with a service account's bearer token (the
controller's modules use kubernetes.core's client, module_utils/k8s_api.py);
both answer ``(status, body, server_time)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import hashlib
import json
import random
import re
import socket
import ssl
import time

try:
    import http.client as http_client
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported on the hosts
    http_client = quote = None

from ansible_collections.polardb.stack.plugins.module_utils import k8s_api
from ansible_collections.polardb.stack.plugins.module_utils.etcd import EtcdError
from ansible_collections.polardb.stack.plugins.module_utils.k8s_lease import ServerClock, micro_time
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

PART_OF = {'app.kubernetes.io/part-of': 'polardb-stack'}
KEY_LABEL = 'stack.polardb.io/ha-key'
LEASE_LABEL = 'stack.polardb.io/ha-lease'
KEY_ANNOTATION = 'stack.polardb.io/key'
LEASE_ANNOTATION = 'stack.polardb.io/lease'


def parse_micro_time(text):
    """Epoch seconds of a Kubernetes MicroTime (``2026-12-05T01:02:03.456789Z``)."""
    stamp, dummy, frac = (text or '').rstrip('Z').partition('.')
    try:
        whole = calendar.timegm(time.strptime(stamp, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None
    return whole + (float('0.' + frac) if frac.isdigit() else 0.0)


def object_name(key):
    """A ConfigMap name for ``key``: readable, unique (a hash of the key), at most 63 characters."""
    slug = re.sub(r'[^a-z0-9]+', '-', key.lower()).strip('-')
    digest = hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]
    return 'polardb-ha-%s-%s' % (slug[-40:].strip('-'), digest)


def _revision(text):
    return int(text) if ('%s' % text).isdigit() else 0


def _json_value(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(',', ':'))


class TokenApi(object):
    """Requests to the API server at ``server`` with a bearer token (read from
    ``token_file`` at every connection: a rotated token is picked up), TLS
    verified against ``ca_file``; one kept-alive connection, every request
    bounded by ``timeout``. Answers ``(status, body, server_time)``."""

    def __init__(self, server, token_file, ca_file=None, timeout=2.0):
        scheme, dummy, rest = server.partition('://')
        if scheme != 'https' or not rest:
            raise EtcdError('the Kubernetes API server must be an https:// URL, got %r' % server)
        self.server = server
        self.hostport = rest.rstrip('/')
        self.token_file = token_file
        self.timeout = float(timeout)
        try:
            self.context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise EtcdError('cannot load the CA of the Kubernetes API (%s): %s' % (ca_file, e))
        self.conn = None
        self.token = None

    def _connect(self):
        try:
            with open(self.token_file) as f:
                self.token = f.read().strip()
        except (IOError, OSError) as e:
            raise EtcdError('cannot read the service account token %s: %s' % (self.token_file, e))
        self.conn = http_client.HTTPSConnection(self.hostport, timeout=self.timeout, context=self.context)

    def call(self, method, path, body=None, content_type=None, query=None):
        if query:
            path += '?' + '&'.join('%s=%s' % (k, quote('%s' % v, safe='')) for k, v in query)
        data = json.dumps(body) if body is not None else None
        # a kept-alive connection the server closed meanwhile: once more on a new one
        for attempt in (1, 2):
            reused = self.conn is not None
            if not reused:
                self._connect()
            headers = {'Authorization': 'Bearer ' + self.token, 'Accept': 'application/json'}
            if data is not None:
                headers['Content-Type'] = content_type or 'application/json'
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (OSError, socket.timeout, http_client.HTTPException, ssl.SSLError) as e:
                self.conn.close()
                self.conn = None
                if not reused or attempt == 2 or isinstance(e, socket.timeout):
                    raise EtcdError('%s: %s' % (self.server, e), unreachable=True)
        if resp.status == 401:
            self.conn.close()
            self.conn = None  # the next request reads the token file again (a rotated token)
        try:
            doc = json.loads(raw.decode('utf-8') or '{}')
        except ValueError:
            doc = {'message': raw[:200].decode('utf-8', 'replace')}
        return resp.status, doc, k8s_api.server_time(dict(resp.getheaders()))


class KubeKV(object):
    """etcd's interface on ConfigMaps and Leases of ``namespace``, through
    ``api`` (``TokenApi`` or ``k8s_api.KubeApi``). ``holder``: who grants the
    leases (the agent's node), shown as their holder."""

    label = 'the Kubernetes API'

    def __init__(self, api, namespace, holder='polardb-stack', clock=None):
        self.api = api
        self.namespace = namespace
        self.holder = holder
        self.server = getattr(api, 'server', 'kubernetes')
        self.clock = clock or ServerClock(self.server)
        self.endpoints = [self.server]  # ha_manager.etcd_view asks each for its status
        self._uids = {}  # lease id -> uid of its Lease (a key's ownerReference)

    # -- requests ------------------------------------------------------------

    def _call(self, method, path, body=None, query=None, ok=None, what=None):
        try:
            status, doc, server_time = self.api.call(method, path, body=body, query=query)
        except EtcdError:
            raise
        except PolarDBError as e:  # k8s_api: the API server did not answer
            raise EtcdError(e.msg, unreachable=True)
        self.clock.observe(server_time)
        if ok is not None and status not in ok:
            raise EtcdError('%s: HTTP %s %s' % (what or '%s %s' % (method, path), status,
                                                (doc or {}).get('message') or (doc or {}).get('reason') or ''),
                            code=status)
        return status, doc

    def _cm_path(self, name=None):
        path = '/api/v1/namespaces/%s/configmaps' % self.namespace
        return path + '/' + name if name else path

    def _lease_path(self, name=None):
        return k8s_api.lease_path(self.namespace, name)

    @staticmethod
    def _lease_name(lease):
        return 'polardb-ha-lease-%x' % int(lease)

    # -- leases ---------------------------------------------------------------

    def _alive(self, lease_obj):
        """Whether a Lease object is alive by the API server's clock (late, never early)."""
        spec = lease_obj.get('spec') or {}
        renewed = parse_micro_time(spec.get('renewTime'))
        if renewed is None:
            return False
        margin = getattr(self.clock, 'resolution', 1.0)
        return self.clock.mono() - renewed <= float(spec.get('leaseDurationSeconds') or 0) + margin

    def _lease_spec(self, ttl):
        return {'holderIdentity': self.holder, 'leaseDurationSeconds': int(ttl),
                'renewTime': micro_time(self.clock.mono())}

    def grant(self, ttl):
        """A new lease of ``ttl`` seconds: its id (a Lease named after it)."""
        # the Lease's renewTime is the server's time: its clock is read first
        if not self.clock.known():
            self._call('GET', '/version', ok=(200,), what='reading the version of the Kubernetes API')
        lease = random.getrandbits(62) | 1
        body = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                'metadata': {'name': self._lease_name(lease), 'namespace': self.namespace,
                             'labels': dict(PART_OF, **{LEASE_LABEL: 'true'})},
                'spec': self._lease_spec(ttl)}
        status, doc = self._call('POST', self._lease_path(), body, ok=(201,), what='granting a lease (Lease)')
        self._uids[lease] = doc['metadata']['uid']
        return lease

    def keepalive(self, lease):
        """Renew ``lease``: the seconds it has left (0: it had expired, or is gone)."""
        name = self._lease_name(lease)
        status, doc = self._call('GET', self._lease_path(name), ok=(200, 404), what='reading Lease %s' % name)
        if status == 404:
            return 0
        if not self._alive(doc):
            self._delete(self._lease_path(name), doc['metadata']['resourceVersion'])
            return 0
        ttl = int(doc['spec'].get('leaseDurationSeconds') or 0)
        doc['spec'].update(self._lease_spec(ttl))
        status, doc = self._call('PUT', self._lease_path(name), doc, ok=(200, 404, 409), what='renewing Lease %s' % name)
        if status == 200:
            self._uids[lease] = doc['metadata']['uid']
            return ttl
        return 0 if status == 404 else ttl  # 409: renewed meanwhile by this holder's other client

    def revoke(self, lease):
        """End ``lease`` now; its keys are no keys from now on (and the garbage collector deletes them)."""
        self._call('DELETE', self._lease_path(self._lease_name(lease)),
                   {'kind': 'DeleteOptions', 'apiVersion': 'v1', 'propagationPolicy': 'Background'},
                   ok=(200, 202, 404), what='revoking a lease')
        self._uids.pop(lease, None)

    def _uid(self, lease):
        if lease not in self._uids:
            name = self._lease_name(lease)
            status, doc = self._call('GET', self._lease_path(name), ok=(200, 404), what='reading Lease %s' % name)
            if status == 404:
                raise EtcdError('lease not found: %x' % int(lease))
            self._uids[lease] = doc['metadata']['uid']
        return self._uids[lease]

    def _leases(self):
        """{lease id: alive?} of the namespace's Leases of this store. An expired
        Lease is deleted (as etcd drops an expired lease): the garbage collector
        then deletes its keys, and a holder that comes back is told it lost it."""
        dummy, doc = self._call('GET', self._lease_path(), query=[('labelSelector', LEASE_LABEL + '=true')],
                                ok=(200,), what='listing the Leases')
        out = {}
        for item in doc.get('items') or []:
            name = item['metadata']['name']
            if name.startswith('polardb-ha-lease-'):
                out[int(name[len('polardb-ha-lease-'):], 16)] = alive = self._alive(item)
                if not alive:
                    self._delete(self._lease_path(name), item['metadata']['resourceVersion'])
        return out

    # -- keys -----------------------------------------------------------------

    def _configmap(self, key, value, lease, resource_version=None):
        metadata = {'name': object_name(key), 'namespace': self.namespace,
                    'labels': dict(PART_OF, **{KEY_LABEL: 'true'}),
                    'annotations': {KEY_ANNOTATION: key, LEASE_ANNOTATION: '%d' % int(lease or 0)}}
        if lease:
            metadata['ownerReferences'] = [{'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                                            'name': self._lease_name(lease), 'uid': self._uid(lease)}]
        if resource_version:
            metadata['resourceVersion'] = resource_version
        return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': metadata, 'data': {'value': _json_value(value)}}

    @staticmethod
    def _kv(obj):
        meta = obj.get('metadata') or {}
        annotations = meta.get('annotations') or {}
        rv = meta.get('resourceVersion')
        return {'key': annotations.get(KEY_ANNOTATION, ''), 'value': (obj.get('data') or {}).get('value', ''),
                'create_revision': 0, 'mod_revision': rv, 'version': _revision(rv),
                'lease': int(annotations.get(LEASE_ANNOTATION) or 0)}

    def _live(self, obj, leases=None):
        """The key-value of a ConfigMap, or None when its lease ended."""
        kv = self._kv(obj)
        if not kv['lease']:
            return kv
        if leases is None:
            name = self._lease_name(kv['lease'])
            status, doc = self._call('GET', self._lease_path(name), ok=(200, 404), what='reading Lease %s' % name)
            alive = status == 200 and self._alive(doc)
        else:
            alive = leases.get(kv['lease'], False)
        return kv if alive else None

    def _read(self, key):
        status, doc = self._call('GET', self._cm_path(object_name(key)), ok=(200, 404), what='reading key %s' % key)
        return doc if status == 200 else None

    def _delete(self, path, resource_version):
        body = {'kind': 'DeleteOptions', 'apiVersion': 'v1', 'preconditions': {'resourceVersion': resource_version}}
        status, dummy = self._call('DELETE', path, body, ok=(200, 202, 404, 409), what='deleting %s' % path)
        return status in (200, 202)

    def get(self, key):
        """The key-value dict of ``key``, or None."""
        obj = self._read(key)
        return self._live(obj) if obj else None

    def get_prefix(self, prefix):
        """(revision, [key-value dicts]) of every live key under ``prefix``, sorted by key."""
        leases = self._leases()
        dummy, doc = self._call('GET', self._cm_path(), query=[('labelSelector', KEY_LABEL + '=true')],
                                ok=(200,), what='listing the keys (ConfigMaps)')
        kvs = [kv for kv in (self._live(item, leases) for item in doc.get('items') or [])
               if kv and kv['key'].startswith(prefix)]
        return _revision((doc.get('metadata') or {}).get('resourceVersion')), sorted(kvs, key=lambda kv: kv['key'])

    def put(self, key, value, lease=0):
        body = self._configmap(key, value, lease)
        # an update without a resourceVersion is unconditional (ConfigMaps allow it); absent: created
        status, dummy = self._call('PUT', self._cm_path(body['metadata']['name']), body, ok=(200, 404),
                                   what='writing key %s' % key)
        if status == 404:
            status, dummy = self._call('POST', self._cm_path(), body, ok=(201, 409), what='writing key %s' % key)
            if status == 409:  # created meanwhile: written over, as etcd's put does
                self._call('PUT', self._cm_path(body['metadata']['name']), body, ok=(200,), what='writing key %s' % key)

    def create(self, key, value, lease=0):
        """Put ``key`` only if it does not exist. (created, the key-value now there)."""
        body = self._configmap(key, value, lease)
        for dummy in range(2):
            status, doc = self._call('POST', self._cm_path(), body, ok=(201, 409), what='creating key %s' % key)
            if status == 201:
                return True, None
            current = self._read(key)
            if current is None:
                continue  # deleted meanwhile: try again
            kv = self._live(current)
            if kv is not None:
                return False, kv
            # its lease ended (the garbage collector has not deleted it yet): no key, as in etcd
            self._delete(self._cm_path(body['metadata']['name']), current['metadata']['resourceVersion'])
        return False, self.get(key)

    def replace(self, key, value, mod_revision, lease=0):
        """Put ``key`` only if it was last changed at ``mod_revision`` (compare-and-swap)."""
        body = self._configmap(key, value, lease, resource_version='%s' % mod_revision)
        status, dummy = self._call('PUT', self._cm_path(body['metadata']['name']), body, ok=(200, 404, 409),
                                   what='replacing key %s' % key)
        return status == 200

    def delete_if(self, key, mod_revision):
        """Delete ``key`` only if it was last changed at ``mod_revision``."""
        return self._delete(self._cm_path(object_name(key)), '%s' % mod_revision)

    def delete(self, key, prefix=False):
        """Delete ``key`` (every key under it with ``prefix``); how many were deleted."""
        if not prefix:
            obj = self._read(key)
            return int(bool(obj) and self._delete(self._cm_path(obj['metadata']['name']),
                                                  obj['metadata']['resourceVersion']))
        dummy, doc = self._call('GET', self._cm_path(), query=[('labelSelector', KEY_LABEL + '=true')],
                                ok=(200,), what='listing the keys (ConfigMaps)')
        return sum(int(self._delete(self._cm_path(o['metadata']['name']), o['metadata']['resourceVersion']))
                   for o in doc.get('items') or []
                   if self._kv(o)['key'].startswith(key))

    # -- the store itself, for status ----------------------------------------------

    def members(self):
        """The one "member": the API server."""
        return [{'name': 'kube-apiserver', 'id': self.server, 'peer_urls': [], 'client_urls': [self.server]}]

    def status(self, endpoint):
        """{version, leader, member_id, raft_term} of the API server, in etcd's form."""
        dummy, doc = self._call('GET', '/version', ok=(200,), what='reading the version of the Kubernetes API')
        return {'version': doc.get('gitVersion'), 'leader': self.server, 'member_id': self.server, 'raft_term': 0}
