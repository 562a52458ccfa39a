# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import sql


class FakeCursor(object):
    def __init__(self, conn, cursor_factory=None):
        self.conn = conn
        self.cursor_factory = cursor_factory
        self.description = None
        self.rows = []
        self.closed = False

    def execute(self, query, params=None):
        self.conn.executed.append((query, params))
        if self.conn.fail_with:
            raise self.conn.fail_with
        self.rows = self.conn.rows
        self.description = [('col',)] if self.rows is not None else None

    def fetchall(self):
        return self.rows

    def close(self):
        self.closed = True


class FakeConn(object):
    def __init__(self, rows=None, fail_with=None):
        self.rows = rows
        self.fail_with = fail_with
        self.executed = []
        self.cursors = []
        self.closed = False
        self.autocommit = False

    def cursor(self, **kwargs):
        c = FakeCursor(self, **kwargs)
        self.cursors.append(c)
        return c

    def close(self):
        self.closed = True


class FakeDriver(object):
    """Stands for the psycopg / psycopg2 module."""

    def __init__(self, conn=None, error=None):
        self.conn = conn or FakeConn()
        self.error = error
        self.calls = []

    def connect(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return self.conn


@pytest.fixture
def psycopg3(monkeypatch):
    driver = FakeDriver()
    monkeypatch.setattr(sql, 'psycopg', driver)
    monkeypatch.setattr(sql, 'DRIVER', 'psycopg')
    monkeypatch.setattr(sql, 'HAS_DRIVER', True)
    monkeypatch.setattr(sql, '_dict_row', 'DICT_ROW')
    return driver


@pytest.fixture
def psycopg2(monkeypatch):
    driver = FakeDriver()
    monkeypatch.setattr(sql, 'psycopg2', driver)
    monkeypatch.setattr(sql, 'DRIVER', 'psycopg2')
    monkeypatch.setattr(sql, 'HAS_DRIVER', True)
    monkeypatch.setattr(sql, '_RealDictCursor', 'REAL_DICT_CURSOR')
    return driver


def test_connection_argument_spec_hides_the_password():
    spec = sql.connection_argument_spec()
    assert sorted(spec) == ['ca_cert', 'connect_params', 'connect_timeout', 'login_db', 'login_password',
                            'login_user', 'ssl_cert', 'ssl_key', 'ssl_mode']
    assert spec['login_password']['no_log'] is True
    assert spec['login_user'] == {'type': 'str', 'default': 'postgres'}
    assert spec['login_db']['default'] == 'postgres'
    assert spec['connect_timeout'] == {'type': 'int', 'default': 3}


def test_connection_argument_spec_reuses_community_postgresql_with_tls_verified():
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
        postgres_common_argument_spec)
    common = postgres_common_argument_spec()
    spec = sql.connection_argument_spec()
    for name in ('login_password', 'ca_cert', 'ssl_cert', 'ssl_key', 'connect_params'):
        assert spec[name] == common[name]
    assert spec['ssl_mode']['choices'] == common['ssl_mode']['choices']
    assert spec['ssl_mode']['default'] == 'verify-full'
    assert common['ssl_mode']['default'] == 'prefer'  # theirs is left alone


def test_libpq_params_map_tls_options_and_let_connect_params_win():
    params = {'ssl_mode': 'verify-full', 'ca_cert': '/etc/polardb-stack/demo/ca.crt',
              'ssl_cert': None, 'ssl_key': '', 'connect_params': {'keepalives_idle': 5, 'sslmode': 'require'}}
    assert sql.libpq_params(params) == {'sslmode': 'require', 'sslrootcert': '/etc/polardb-stack/demo/ca.crt',
                                        'keepalives_idle': 5}
    assert sql.libpq_params({'ssl_mode': 'verify-full'}) == {'sslmode': 'verify-full'}


def test_connect_passes_libpq_keywords(psycopg3):
    sql.connect('10.0.0.1', 5432, 'postgres', 'pw', 'postgres', 3, 'x',
                libpq={'sslmode': 'verify-full', 'sslrootcert': '/ca.crt'})
    assert psycopg3.calls[0]['sslmode'] == 'verify-full'
    assert psycopg3.calls[0]['sslrootcert'] == '/ca.crt'


def test_connect_with_psycopg3(psycopg3):
    s = sql.connect('10.0.0.1', '5433', 'postgres', 'pw', 'postgres', 3, 'polardb.stack',
                    statement_timeout_ms=3000)
    assert psycopg3.calls == [{
        'host': '10.0.0.1', 'port': 5433, 'user': 'postgres', 'password': 'pw',
        'dbname': 'postgres', 'connect_timeout': 3, 'application_name': 'polardb.stack',
        'keepalives': 1, 'keepalives_idle': 1, 'keepalives_interval': 1, 'keepalives_count': 3,
        'tcp_user_timeout': 3000,
        'options': '-c statement_timeout=3000', 'autocommit': True, 'row_factory': 'DICT_ROW'}]
    assert isinstance(s, sql.Session)


def test_a_session_to_a_vanished_host_is_bounded_by_the_connect_timeout():
    # a query to a host cut off the network fails after tcp_user_timeout; an idle
    # session finds out through keepalives: both within about connect_timeout
    assert sql.partition_bounds(2) == {'keepalives': 1, 'keepalives_idle': 1, 'keepalives_interval': 1,
                                       'keepalives_count': 2, 'tcp_user_timeout': 2000}
    assert sql.partition_bounds(0)['tcp_user_timeout'] == 1000


def test_connect_without_password_leaves_it_to_libpq(psycopg3):
    sql.connect('h', 5432, 'postgres', None, 'postgres', 3, 'x')
    assert 'password' not in psycopg3.calls[0]
    assert 'options' not in psycopg3.calls[0]


def test_connect_with_psycopg2_sets_autocommit(psycopg2):
    s = sql.connect('h', 5432, 'postgres', 'pw', 'postgres', 2, 'x')
    assert 'autocommit' not in psycopg2.calls[0]
    assert psycopg2.conn.autocommit is True
    psycopg2.conn.rows = [{'a': 1}]
    assert s.query('select 1 as a') == [{'a': 1}]
    assert psycopg2.conn.cursors[0].cursor_factory == 'REAL_DICT_CURSOR'


def test_connect_failure_is_one_line_and_without_password(psycopg3):
    psycopg3.error = Exception('connection failed: FATAL:  password authentication failed\n'
                               '   for user "postgres"')
    with pytest.raises(PolarDBError) as e:
        sql.connect('10.0.0.1', 5432, 'postgres', 's3cret', 'postgres', 3, 'x')
    assert e.value.msg == ('cannot connect to 10.0.0.1:5432 as postgres: connection failed: '
                           'FATAL: password authentication failed for user "postgres"')
    assert 's3cret' not in repr(e.value.details)
    assert e.value.details == {'host': '10.0.0.1', 'port': 5432}


def test_connect_without_driver(monkeypatch):
    monkeypatch.setattr(sql, 'HAS_DRIVER', False)
    with pytest.raises(PolarDBError) as e:
        sql.connect('h', 5432, 'u', None, 'd', 3, 'x')
    assert 'python3-psycopg' in e.value.msg


def test_session_query_returns_dicts_and_records_queries(psycopg3):
    psycopg3.conn.rows = [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    s = sql.connect('h', 5432, 'u', None, 'd', 3, 'x')
    assert s.query('select a, b from t where a > %s', (0,)) == [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    assert s.one('select a, b from t') == {'a': 1, 'b': 'x'}
    assert s.executed_queries == ['select a, b from t where a > %s', 'select a, b from t']
    assert psycopg3.conn.executed[0] == ('select a, b from t where a > %s', (0,))
    assert all(c.closed for c in psycopg3.conn.cursors)


def test_session_one_without_rows(psycopg3):
    psycopg3.conn.rows = []
    assert sql.connect('h', 5432, 'u', None, 'd', 3, 'x').one('select 1 where false') is None


def test_session_statement_without_result(psycopg3):
    psycopg3.conn.rows = None
    assert sql.connect('h', 5432, 'u', None, 'd', 3, 'x').query('checkpoint') == []


def test_session_query_error_becomes_polardb_error(psycopg3):
    psycopg3.conn.fail_with = Exception('ERROR:  canceling statement due to statement timeout\n')
    s = sql.connect('h', 5432, 'u', None, 'd', 3, 'x')
    with pytest.raises(PolarDBError) as e:
        s.query('select pg_sleep(10)')
    assert e.value.msg == 'query failed: ERROR: canceling statement due to statement timeout'
    assert e.value.details == {'query': 'select pg_sleep(10)'}
    assert psycopg3.conn.cursors[0].closed


def test_session_context_manager_closes(psycopg3):
    with sql.connect('h', 5432, 'u', None, 'd', 3, 'x') as s:
        assert not s.conn.closed
    assert psycopg3.conn.closed


class FakeModule(object):
    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs


def test_ensure_driver(monkeypatch):
    m = FakeModule()
    monkeypatch.setattr(sql, 'HAS_DRIVER', True)
    sql.ensure_driver(m)
    assert m.failed is None
    monkeypatch.setattr(sql, 'HAS_DRIVER', False)
    monkeypatch.setattr(sql, 'DRIVER_IMPORT_ERROR', 'Traceback ...')
    sql.ensure_driver(m)
    assert 'psycopg' in m.failed['msg']
    assert m.failed['exception'] == 'Traceback ...'


def test_one_line():
    assert sql.one_line('a\n   b\tc  ') == 'a b c'
