# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one way to the Kubernetes API: kubernetes.core's client.

The connection (kubeconfig, context, token, certificates: kubernetes.core's
``k8s_auth_options``) is made by kubernetes.core's ``get_api_client``; this
adapter only sends requests on known paths through it (no discovery round trip)
and answers ``(status, body, server_time)``, so the logic above it (the lease
lock, the cluster resource) is tested with a fake of this one class.

Every request is bounded (``REQUEST_TIMEOUT``): a vanished API server fails a
run, it never blocks it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from email.utils import parsedate_tz, mktime_tz

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

GROUP = 'stack.polardb.io'
VERSION = 'v1alpha1'
API_VERSION = GROUP + '/' + VERSION
KIND = 'PolarDBCluster'
PLURAL = 'polardbclusters'
REQUEST_TIMEOUT = (5, 15)  # connect, read (seconds)

MERGE_PATCH = 'application/merge-patch+json'


def cluster_path(namespace, name=None, status=False):
    path = '/apis/%s/namespaces/%s/%s' % (API_VERSION, namespace, PLURAL)
    if name:
        path += '/' + name
        if status:
            path += '/status'
    return path


def lease_path(namespace, name=None):
    path = '/apis/coordination.k8s.io/v1/namespaces/%s/leases' % namespace
    return path + '/' + name if name else path


def server_time(headers):
    """The API server's clock, from a response's Date header (whole seconds), or None."""
    value = (headers or {}).get('Date') or (headers or {}).get('date')
    parsed = parsedate_tz(value) if value else None
    return float(mktime_tz(parsed)) if parsed else None


def _body(data):
    if data in (None, b'', ''):
        return {}
    if isinstance(data, bytes):
        data = data.decode('utf-8')
    try:
        return json.loads(data)
    except ValueError:
        return {'message': data}


class KubeApi(object):
    """Requests on paths through kubernetes.core's client (``K8SClient`` of
    ``get_api_client``). Answers ``(status, body, server_time)``; an HTTP error
    is an answer too (its status and the API's Status object), not an exception."""

    def __init__(self, k8s_client):
        self._client = k8s_client.client
        self.server = k8s_client.configuration.host

    def call(self, method, path, body=None, content_type=None, query=None):
        from kubernetes.dynamic.exceptions import DynamicApiError  # pylint: disable=import-error

        params = dict(serialize=False, _request_timeout=REQUEST_TIMEOUT, query_params=list(query or []))
        if content_type:
            params['content_type'] = content_type
        try:
            resp = self._client.request(method, path, body=body, **params)
        except DynamicApiError as e:
            if e.status:
                return e.status, _body(e.body), server_time(e.headers)
            raise PolarDBError('cannot reach the Kubernetes API at %s: %s' % (self.server, e.reason), status=None)
        except Exception as e:  # urllib3's connect and read timeouts, refused connections, TLS errors
            raise PolarDBError('cannot reach the Kubernetes API at %s: %s' % (self.server, e), status=None)
        return resp.status, _body(resp.data), server_time(resp.headers)


class ApiError(PolarDBError):
    def __init__(self, status, body, what):
        self.status = status
        self.body = body or {}
        msg = '%s: HTTP %s %s' % (what, status, self.body.get('message') or self.body.get('reason') or '')
        super(ApiError, self).__init__(msg.strip(), status=status)


def check(answer, what, ok=(200, 201)):
    """The body of a successful answer; raises ApiError naming ``what`` otherwise."""
    status, body = answer[0], answer[1]
    if status not in ok:
        raise ApiError(status, body, what)
    return body
