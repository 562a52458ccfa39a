# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operation lock of a cluster declared in Kubernetes: a coordination.k8s.io/v1 Lease.

``K8sLeaseStore`` implements operation_lock's store interface (``read``, ``cas``)
on one Lease per cluster, ``polardb-lock-<cluster>`` in the resource's namespace.
The lock record is kept whole in an annotation; the Lease's own fields mirror it
(holderIdentity = the run, leaseDurationSeconds, acquireTime, renewTime,
leaseTransitions) so that ``kubectl get lease`` shows who holds it.

Compare-and-swap is the API server's: a PUT carries the resourceVersion of the
read it decided from, a DELETE a resourceVersion precondition, a POST fails if
the Lease exists; 409 Conflict means another run wrote first.

Expiry is judged with one clock, the API server's: every answer carries its
Date, ``ServerClock`` counts from the last one with the local monotonic clock,
and records are stamped with that clock. Two controllers with skewed clocks
judge the same lease the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import json
import time

from ansible_collections.polardb.stack.plugins.module_utils import k8s_api
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import LeaseStore
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

ANNOTATION = 'stack.polardb.io/lock'
CLUSTER_LABEL = 'stack.polardb.io/cluster'


def lease_name(cluster):
    return 'polardb-lock-%s' % cluster.replace('_', '-')


def micro_time(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(epoch)) + '.%06dZ' % int((epoch % 1) * 1e6)


class ServerClock(object):
    """The API server's clock: the local monotonic clock plus the offset its answers' Date headers give.

    Date is the server's time in whole seconds, rounded down, when it answered:
    each answer gives a lower bound of the offset, and the greatest of the last
    ``window`` seconds is the best (a long-lived client's readings come within
    its round trip of the server's clock; the window lets the estimate follow
    the two clocks' drift, and a server clock that was set back)."""

    # a short-lived client (a module run) may read the same instant up to one second apart from another
    resolution = 1.0
    window = 30.0

    def __init__(self, server):
        self.server = server
        self._offset = None
        self._seen = collections.deque()

    def observe(self, server_time):
        if server_time is None:
            return
        now = time.monotonic()
        self._seen.append((now, server_time - now))
        while len(self._seen) > 1 and self._seen[0][0] < now - self.window:
            self._seen.popleft()
        self._offset = max(offset for dummy, offset in self._seen)

    def known(self):
        return self._offset is not None

    def wall(self):
        return time.time()

    def mono(self):
        if self._offset is None:
            raise PolarDBError('no answer from the Kubernetes API yet: its clock is unknown', lock=None, previous=None)
        return time.monotonic() + self._offset

    def boot_id(self):
        # one "boot" for every controller that talks to this API server: mono() is comparable between them
        return 'kube-apiserver %s' % self.server

    def sleep(self, seconds):
        time.sleep(seconds)


class K8sLeaseStore(LeaseStore):
    """Lease records in ``namespace`` through a ``k8s_api.KubeApi``-like ``api``."""

    def __init__(self, api, namespace, server):
        self.api = api
        self.namespace = namespace
        self.clock = ServerClock(server)
        self._seen = {}  # cluster -> (resourceVersion, record version) of the last read

    def hostname(self):
        return 'the Kubernetes API'

    def where(self, cluster):
        return 'lease %s/%s' % (self.namespace, lease_name(cluster))

    def _call(self, method, path, body=None):
        status, answer, server_time = self.api.call(method, path, body=body)
        self.clock.observe(server_time)
        return status, answer

    def read(self, cluster):
        status, lease = self._call('GET', k8s_api.lease_path(self.namespace, lease_name(cluster)))
        if status == 404:
            self._seen[cluster] = (None, None)
            return None
        k8s_api.check((status, lease), 'reading %s' % self.where(cluster), ok=(200,))
        text = ((lease.get('metadata') or {}).get('annotations') or {}).get(ANNOTATION)
        try:
            record = json.loads(text)
            if not isinstance(record, dict) or not record.get('operation'):
                raise ValueError('not a lock record')
        except (TypeError, ValueError) as e:
            raise PolarDBError('%s is not a lock of this collection (annotation %s: %s): inspect it and delete it by hand'
                               % (self.where(cluster), ANNOTATION, e), lock=None, previous=None,
                               lock_file=self.where(cluster))
        record.setdefault('version', None)
        self._seen[cluster] = (lease['metadata'].get('resourceVersion'), record['version'])
        return record

    def _lease(self, cluster, record, resource_version):
        clock = record.get('clock') or {}
        renewed = clock.get('mono') or time.time()
        spec = dict(holderIdentity=(record.get('owner') or {}).get('run_id'),
                    leaseDurationSeconds=int(record.get('lease_seconds') or 0),
                    renewTime=micro_time(float(renewed)),
                    leaseTransitions=int(record.get('transitions') or 0))
        if record.get('acquired'):
            spec['acquireTime'] = record['acquired'].replace('Z', '.000000Z')
        metadata = dict(name=lease_name(cluster), namespace=self.namespace,
                        labels={'app.kubernetes.io/part-of': 'polardb-stack', CLUSTER_LABEL: cluster},
                        annotations={ANNOTATION: json.dumps(record, sort_keys=True)})
        if resource_version:
            metadata['resourceVersion'] = resource_version
        return dict(apiVersion='coordination.k8s.io/v1', kind='Lease', metadata=metadata, spec=spec)

    def cas(self, cluster, expected_version, record):
        if cluster not in self._seen:
            self.read(cluster)
        resource_version, version = self._seen.pop(cluster)
        if version != expected_version:
            return False
        name = lease_name(cluster)
        if record is None:
            if resource_version is None:
                return True
            body = dict(kind='DeleteOptions', apiVersion='v1', preconditions=dict(resourceVersion=resource_version))
            status, answer = self._call('DELETE', k8s_api.lease_path(self.namespace, name), body)
            if status in (404, 409):
                return False
            k8s_api.check((status, answer), 'deleting %s' % self.where(cluster), ok=(200, 202))
            return True
        if resource_version is None:
            status, answer = self._call('POST', k8s_api.lease_path(self.namespace),
                                        self._lease(cluster, record, None))
        else:
            status, answer = self._call('PUT', k8s_api.lease_path(self.namespace, name),
                                        self._lease(cluster, record, resource_version))
        if status in (404, 409):
            return False
        k8s_api.check((status, answer), 'writing %s' % self.where(cluster))
        return True
