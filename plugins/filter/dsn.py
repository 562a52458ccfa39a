# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: dsn
author: polardb.stack developers (!UNKNOWN)
version_added: 0.1.0
short_description: Build a libpq multi-host connection URI for a cluster
description:
  - Lists every node, so that a client with C(target_session_attrs=read-write)
    finds the RW wherever it is, also after a switchover or a failover.
options:
  _input:
    description: Nodes as C({name, host, port}) dicts (the C(polardb_node) fact of each host).
    type: list
    elements: dict
    required: true
  user:
    description: Role to log in as.
    type: str
    required: true
  password:
    description: Its password (percent-encoded into the URI).
    type: str
    required: true
  dbname:
    description: Database.
    type: str
    required: true
  session_attrs:
    description: libpq C(target_session_attrs), for example C(read-write), C(standby), C(any).
    type: str
    default: read-write
  sslrootcert:
    description:
      - The CA certificate file the client checks the nodes' certificates with
        (C(sslmode=verify-full)), where the client runs, for example the
        cluster's CA on the controller (C(polardb_tls_ca_cert)).
      - Without it the URI says C(sslmode=verify-full) only, and libpq uses
        C(~/.postgresql/root.crt).
    type: str
"""

EXAMPLES = r"""
- name: DSN for the application
  ansible.builtin.debug:
    msg: "{{ nodes | polardb.stack.dsn('app', app_password, 'app', sslrootcert=polardb_tls_ca_cert) }}"
"""

RETURN = r"""
_value:
  description:
    - A URI such as C(postgresql://app:...@10.0.0.1:5432,10.0.0.2:5432/app?target_session_attrs=read-write&connect_timeout=2&sslmode=verify-full)
      followed by C(&sslrootcert=/home/me/.config/polardb-stack/secrets/demo/tls/ca.crt) when O(sslrootcert) is given.
  type: str
"""

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2
    from urllib import quote


def dsn(nodes, user, password, dbname, session_attrs='read-write', sslrootcert=None):
    hosts = ','.join('%s:%s' % (n['host'], n['port']) for n in nodes)
    uri = 'postgresql://%s:%s@%s/%s?target_session_attrs=%s&connect_timeout=2&sslmode=verify-full' % (
        quote(user, safe=''), quote(password, safe=''), hosts, quote(dbname, safe=''), session_attrs)
    if sslrootcert:
        uri += '&sslrootcert=%s' % quote(sslrootcert, safe='/')
    return uri


class FilterModule(object):
    def filters(self):
        return {'dsn': dsn}
