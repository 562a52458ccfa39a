# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/sql.py connection_argument_spec(): the
    # login and TLS options are community.postgresql's own (its
    # postgres_common_argument_spec(), same names and meaning, documented as in
    # its community.postgresql.postgres fragment); that fragment cannot be
    # extended as a whole because it also documents login_host, login_port and
    # login_unix_socket, which a module given its nodes does not take.
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The database user to connect as.
      - Needs to be a superuser (or a member of C(pg_monitor)) to read the control
        functions and C(pg_stat_replication).
    type: str
    default: postgres
  login_password:
    description:
      - The password of O(login_user) (C(scram-sha-256) authentication over TCP).
      - Never logged.
    type: str
    default: ''
  login_db:
    description:
      - The database to connect to.
    type: str
    default: postgres
  ssl_mode:
    description:
      - Whether and how TLS is negotiated with each node (libpq C(sslmode)), as in
        community.postgresql.
      - The default V(verify-full) checks that the node's certificate is signed by
        O(ca_cert) and names the address the module connects to. The engines of a
        cluster created by this collection refuse TCP connections without TLS.
      - See U(https://www.postgresql.org/docs/current/libpq-ssl.html) for the modes.
    type: str
    default: verify-full
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File of the certificate authority (CA) certificate(s) that signed the nodes'
        certificates (libpq C(sslrootcert)), on the host the module runs on.
      - A cluster created by this collection keeps its CA in
        C(/etc/polardb-stack/<cluster>/ca.crt) on every node.
      - Without it, libpq looks for C(~/.postgresql/root.crt).
    type: str
    aliases: [ssl_rootcert]
  ssl_cert:
    description:
      - File of a client certificate (libpq C(sslcert)).
    type: path
  ssl_key:
    description:
      - File of the key of O(ssl_cert) (libpq C(sslkey)).
    type: path
  connect_params:
    description:
      - Further libpq connection parameters (for example C(keepalives_idle)); they
        take precedence over the options above.
    type: dict
    default: {}
  connect_timeout:
    description:
      - Seconds to wait for a connection to one node (libpq C(connect_timeout));
        every statement of the session is bounded by the same time.
    type: int
    default: 3
requirements:
  - psycopg (3.1 or later; Debian package C(python3-psycopg)) or psycopg2 on the host the module runs on.
'''
