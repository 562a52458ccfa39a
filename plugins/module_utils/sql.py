# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL adapter: the one way the collection connects to an engine over TCP.

``connect()`` uses psycopg 3 when it is importable, else psycopg2; the session
is in autocommit and returns rows as dicts. ``connection_argument_spec()`` is
the one spec of the connection options (documented by the
``polardb.stack.connection`` doc fragment): community.postgresql's common
options that fit a module given its nodes (login and TLS), plus our own.
``libpq_params()`` maps the TLS options onto libpq keywords for ``connect()``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
    postgres_common_argument_spec)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

DRIVER = None
DRIVER_IMPORT_ERROR = None
psycopg = None  # replaced by tests
psycopg2 = None  # replaced by tests
_dict_row = None
_RealDictCursor = None

try:
    import psycopg
    from psycopg.rows import dict_row as _dict_row
    DRIVER = 'psycopg'
except ImportError:
    _psycopg3_error = traceback.format_exc()
    try:
        import psycopg2
        from psycopg2.extras import RealDictCursor as _RealDictCursor
        DRIVER = 'psycopg2'
    except ImportError:
        DRIVER_IMPORT_ERROR = _psycopg3_error + '\n' + traceback.format_exc()

HAS_DRIVER = DRIVER is not None


def one_line(text):
    """libpq messages span lines; results read better on one."""
    return ' '.join(str(text).split())


# community.postgresql's connection options our modules take as they are.
# Not login_host/login_port/login_unix_socket: our modules are given their
# nodes (cluster_info's nodes, switchover's target), always over TCP.
COMMUNITY_OPTIONS = ('login_user', 'login_password', 'ssl_mode', 'ca_cert', 'ssl_cert', 'ssl_key',
                     'connect_params')
# libpq keyword of each TLS option (as community.postgresql maps them).
LIBPQ_TLS_KEYWORDS = (('ssl_mode', 'sslmode'), ('ca_cert', 'sslrootcert'),
                      ('ssl_cert', 'sslcert'), ('ssl_key', 'sslkey'))
DEFAULT_SSL_MODE = 'verify-full'


def connection_argument_spec():
    """Options shared by every module that connects over TCP."""
    common = postgres_common_argument_spec()
    spec = dict((name, dict(common[name])) for name in COMMUNITY_OPTIONS)
    # its deprecated alias "login" is community.postgresql's to retire, not ours to start
    spec['login_user'] = dict(type='str', default='postgres')
    # the engines of a cluster serve TLS only; a node proves its name with the cluster's CA
    spec['ssl_mode']['default'] = DEFAULT_SSL_MODE
    spec.update(
        login_db=dict(type='str', default='postgres'),
        connect_timeout=dict(type='int', default=3),
    )
    return spec


def libpq_params(params):
    """libpq keywords from a module's TLS options and connect_params (those win)."""
    out = dict((keyword, params[option]) for option, keyword in LIBPQ_TLS_KEYWORDS
               if params.get(option) not in (None, ''))
    out.update(params.get('connect_params') or {})
    return out


def partition_bounds(connect_timeout):
    """libpq options that bound a session to a host that vanished mid-session.

    ``connect_timeout`` bounds only the connect: a query sent to a host cut off
    the network would wait for TCP's own retries (about 15 minutes). Unacked
    data then fails the session after ``tcp_user_timeout``, and an idle session
    notices the loss through keepalives, both within about ``connect_timeout``.
    """
    seconds = max(1, int(connect_timeout))
    return dict(keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=seconds,
                tcp_user_timeout=seconds * 1000)


def ensure_driver(module):
    """fail_json with the usual missing-library message when no driver imports."""
    if not HAS_DRIVER:
        module.fail_json(
            msg=missing_required_lib('psycopg (Debian: python3-psycopg) or psycopg2'),
            exception=DRIVER_IMPORT_ERROR)


class Session(object):
    """An autocommit connection; ``query`` returns a list of dicts."""

    def __init__(self, conn, driver):
        self.conn = conn
        self.driver = driver
        self.executed_queries = []

    def query(self, sql, params=None):
        self.executed_queries.append(sql)
        try:
            if self.driver == 'psycopg2':
                cur = self.conn.cursor(cursor_factory=_RealDictCursor)
            else:
                cur = self.conn.cursor()
            try:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
            finally:
                cur.close()
        except Exception as e:  # driver errors: one domain error for callers
            raise PolarDBError('query failed: %s' % one_line(to_native(e)), query=sql)
        return [dict(r) for r in rows]

    def one(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self):
        try:
            self.conn.close()
        except Exception:  # closing a broken connection is not an error
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def connect(host, port, user, password, dbname, connect_timeout, application_name,
            statement_timeout_ms=None, libpq=None):
    """Open an autocommit session returning dict rows; PolarDBError on failure.

    ``password`` goes to the driver only (never into a message). With
    ``statement_timeout_ms`` every statement of the session is bounded too.
    ``libpq``: further libpq keywords (``libpq_params()``: sslmode, sslrootcert, ...).
    """
    if not HAS_DRIVER:
        raise PolarDBError('no PostgreSQL driver: install psycopg (python3-psycopg) or psycopg2',
                           exception=DRIVER_IMPORT_ERROR)
    params = dict(host=host, port=int(port), user=user, dbname=dbname,
                  connect_timeout=int(connect_timeout), application_name=application_name)
    params.update(partition_bounds(connect_timeout))
    if password:
        params['password'] = password
    if statement_timeout_ms:
        params['options'] = '-c statement_timeout=%d' % int(statement_timeout_ms)
    params.update(libpq or {})
    try:
        if DRIVER == 'psycopg':
            conn = psycopg.connect(autocommit=True, row_factory=_dict_row, **params)
        else:
            conn = psycopg2.connect(**params)
            conn.autocommit = True
    except Exception as e:
        raise PolarDBError('cannot connect to %s:%s as %s: %s'
                           % (host, port, user, one_line(to_native(e))),
                           host=host, port=int(port))
    return Session(conn, DRIVER)
