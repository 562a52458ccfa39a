# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import params as P
from ansible_collections.polardb.stack.plugins.module_utils import pg_catalog_15
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandResult, PolarDBError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'params')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


@pytest.fixture(scope='module')
def live():
    """Catalog of a running engine (pg_settings of the lab, PostgreSQL 15.20)."""
    return P.parse_catalog_query(fixture('pg_settings_15.json'))[0]


@pytest.fixture(scope='module')
def shipped():
    return P.catalog_from_shipped(pg_catalog_15)


def check(catalog, **params):
    return P.check_parameters(params, catalog)


# ------------------------------------------------------------ the issue's inputs

def test_the_issues_bad_parameters_are_refused_with_the_name(live, shipped):
    for catalog in (live, shipped):
        problems = check(catalog, shared_buffers='lots', max_connections='-5', no_such_param='1')['problems']
        assert len(problems) == 3, problems
        assert problems[0].startswith('max_connections=') and 'outside the valid range 1 .. 262143' in problems[0]
        assert problems[1] == 'no_such_param is not a parameter of this engine'
        assert problems[2].startswith("shared_buffers='lots': not an integer")
        assert '"MB"' in problems[2]


def test_the_defaults_of_the_collection_pass(live, shipped):
    defaults = {'max_connections': 100, 'shared_buffers': '128MB', 'wal_level': 'replica', 'max_wal_senders': 10,
                'max_replication_slots': 10, 'wal_keep_size': '256MB', 'hot_standby': 'on',
                'hot_standby_feedback': 'on', 'wal_log_hints': 'on', 'password_encryption': 'scram-sha-256',
                'log_line_prefix': '%m [%p] %q%u@%d ', 'log_destination': 'stderr'}
    result = P.check_parameters(defaults, shipped)
    assert result['problems'] == []
    assert result['parameters']['shared_buffers']['normalised'] == 16384   # 128MB in 8kB blocks
    assert result['parameters']['wal_keep_size']['normalised'] == 256
    assert result['parameters']['shared_buffers']['apply'] == 'restart'
    assert result['parameters']['log_line_prefix']['apply'] == 'reload'
    assert result['parameters']['shared_buffers']['change'] is None   # no current values in a shipped catalog


# ------------------------------------------------------------------ units

@pytest.mark.parametrize('value, expected', [
    ('128MB', 16384), ('1GB', 131072), ('128kB', 16), ('16384', 16384), (16384, 16384), ('  256 MB ', 32768),
    ('0x4000', 16384), ('1.5GB', 196608), ('16385.4', 16385),
])
def test_memory_values_convert_to_the_parameters_unit(live, value, expected):
    result = check(live, shared_buffers=value)
    assert result['problems'] == []
    assert result['parameters']['shared_buffers']['normalised'] == expected


@pytest.mark.parametrize('value, fragment', [
    ('128mb', "invalid unit 'mb'"), ('128 MiB', "invalid unit 'MiB'"), ('5min', "invalid unit 'min'"),
    ('64kB', 'outside the valid range 16 .. 1073741823 8kB'), ('10TB', 'outside the valid range'),
    ('lots', 'not an integer'), ('', 'not an integer'), ('12 MB extra', 'not an integer'),
])
def test_bad_memory_values_are_refused(live, value, fragment):
    problems = check(live, shared_buffers=value)['problems']
    assert len(problems) == 1 and fragment in problems[0], problems
    assert problems[0].startswith('shared_buffers=')


@pytest.mark.parametrize('value, expected', [('5min', 300), ('300', 300), ('1h', 3600), ('30s', 30), ('1d', 86400),
                                             ('90000ms', 90)])
def test_time_values_convert_to_seconds(live, value, expected):
    result = check(live, checkpoint_timeout=value)
    assert result['problems'] == []
    assert result['parameters']['checkpoint_timeout']['normalised'] == expected


def test_time_out_of_range_and_wrong_unit(live):
    problems = check(live, checkpoint_timeout='2d')['problems']
    assert 'outside the valid range 30 .. 86400 s' in problems[0]
    assert "invalid unit 'MB'" in check(live, checkpoint_timeout='1MB')['problems'][0]
    assert 'takes no unit' in check(live, max_connections='100MB')['problems'][0]


def test_reals_with_and_without_units(live):
    assert check(live, random_page_cost='1.1')['problems'] == []
    assert check(live, random_page_cost=4)['parameters']['random_page_cost']['normalised'] == 4
    assert 'outside the valid range 0 ..' in check(live, random_page_cost='-1')['problems'][0]
    assert check(live, vacuum_cost_delay='2ms')['parameters']['vacuum_cost_delay']['normalised'] == 2
    assert 'outside the valid range 0 .. 100 ms' in check(live, vacuum_cost_delay='1s')['problems'][0]
    assert 'not a finite number' in check(live, random_page_cost='inf')['problems'][0] or \
        'not a number' in check(live, random_page_cost='inf')['problems'][0]


# ------------------------------------------------------------ bool, enum, string

@pytest.mark.parametrize('value, expected', [('on', 'on'), ('OFF', 'off'), (True, 'on'), (False, 'off'),
                                             ('t', 'on'), ('fal', 'off'), ('yes', 'on'), ('n', 'off'),
                                             ('1', 'on'), ('0', 'off')])
def test_booleans_as_postgres_reads_them(live, value, expected):
    assert check(live, hot_standby=value)['parameters']['hot_standby']['normalised'] == expected


@pytest.mark.parametrize('value', ['o', 'maybe', '2', 'onn'])
def test_bad_booleans(live, value):
    assert 'not a boolean' in check(live, hot_standby=value)['problems'][0]


def test_enums(live):
    assert check(live, wal_level='LOGICAL')['parameters']['wal_level']['normalised'] == 'logical'
    problems = check(live, wal_level='archive')['problems']
    assert problems == ["wal_level='archive': allowed values are minimal, replica, logical"]
    # an enum with on/off also takes the engine's hidden boolean spellings
    assert check(live, synchronous_commit=True)['parameters']['synchronous_commit']['normalised'] == 'on'
    assert check(live, synchronous_commit='no')['parameters']['synchronous_commit']['normalised'] == 'off'
    assert check(live, synchronous_commit='remote_apply')['problems'] == []


def test_strings_and_line_breaks(live):
    assert check(live, log_line_prefix="%m 'x' ")['problems'] == []
    assert 'line break' in check(live, log_line_prefix='a\nb')['problems'][0]


def test_internal_parameters_cannot_be_set(live):
    assert check(live, wal_segment_size='16MB')['problems'][0].endswith(
        'cannot be set: it is fixed when the engine is built or initialised '
        '(set polardb_wal_segment_size_mb before the cluster is created)')
    assert check(live, server_version='16')['problems'][0].endswith(
        'cannot be set: it is fixed when the engine is built or initialised')


def test_names_are_case_insensitive_and_near_misses_suggested(live, shipped):
    assert check(live, timezone='UTC')['problems'] == []
    assert check(live, TimeZone='UTC')['problems'] == []
    assert check(shipped, shared_bufers='1GB')['problems'] == [
        'shared_bufers is not a parameter of this engine (did you mean shared_buffers?)']


def test_extension_parameters_are_warnings(live):
    result = check(live, **{'auto_explain.log_min_duration': '250ms'})
    assert result['problems'] == [] and 'auto_explain.log_min_duration' in result['warnings'][0]


def test_reserved_names_and_null_values(live):
    result = P.check_parameters({'port': 5433, 'ssl_ciphers': 'x', 'work_mem': None}, live, ['port'], ['ssl'])
    assert result['problems'] == [
        'parameter port is managed by polardb.stack and cannot be set in polardb_parameters',
        'parameter ssl_ciphers is managed by polardb.stack and cannot be set in polardb_parameters',
        'work_mem: no value (null); remove it to keep the default']


# --------------------------------------------------------- reload or restart

def test_changes_are_classified_against_the_running_engine(live):
    result = check(live, shared_buffers='128MB', work_mem='8MB', max_connections=200, wal_level='replica')
    changes = dict((n, p['change']) for n, p in result['parameters'].items())
    assert changes == {'shared_buffers': 'none', 'work_mem': 'reload', 'max_connections': 'restart',
                       'wal_level': 'none'}
    assert result['restart_required'] is True
    assert check(live, work_mem='8MB')['restart_required'] is False


# ------------------------------------------------------------------ catalogs

def test_describe_config_gives_types_ranges_and_contexts():
    catalog = P.catalog_from_describe_config(fixture('describe_config_15.txt'))
    sb = catalog['shared_buffers']
    assert (sb.vartype, sb.context, sb.min_val, sb.max_val, sb.unit) == ('integer', 'postmaster', 16, 1073741823, None)
    assert catalog['timezone'].vartype == 'string' and catalog['wal_level'].enumvals is None
    assert catalog['random_page_cost'].max_val > 1e300


def test_the_binary_catalog_takes_units_and_enums_from_the_shipped_one(shipped):
    catalog = P.merge_catalogs(P.catalog_from_describe_config(fixture('describe_config_15.txt')), shipped)
    assert catalog['shared_buffers'].unit == '8kB'
    assert catalog['wal_level'].enumvals == ['minimal', 'replica', 'logical']
    assert 'allow_system_table_mods' in catalog   # not printed by --describe-config
    assert check(catalog, shared_buffers='128MB', wal_level='logical')['problems'] == []


def test_the_shipped_catalog_is_a_full_postgresql_15():
    catalog = P.catalog_from_shipped(pg_catalog_15)
    assert len(catalog) > 300
    assert catalog['max_slot_wal_keep_size'].unit == 'MB' and catalog['max_slot_wal_keep_size'].context == 'sighup'
    assert all(e.vartype in P.VARTYPES for e in catalog.values())


class FakeInstance(object):
    """What load_catalog asks of an instance.Instance."""

    def __init__(self, tmp_path, initialized=True, running=True, served=None, binary=True):
        self.data_dir = str(tmp_path / 'data')
        self.bin_dir = str(tmp_path / 'bin')
        self.port = 5432
        self.initialized, self.running = initialized, running
        self.served = served or self.data_dir
        os.makedirs(self.bin_dir)
        if binary:
            open(os.path.join(self.bin_dir, 'postgres'), 'w').close()
        self.runner = self
        self.commands = []

    def dir_state(self):
        return {'initialized': self.initialized}

    def execute(self, sql):
        if not self.running:
            raise PolarDBError('psql: could not connect')
        doc = json.loads(fixture('pg_settings_15.json'))
        doc['data_directory'] = self.served
        return json.dumps(doc)

    def run(self, argv, **kwargs):
        self.commands.append(argv)
        if argv[-1] == '--describe-config':
            return CommandResult(0, fixture('describe_config_15.txt'), '')
        return CommandResult(0, 'postgres (PostgreSQL) 15.20\n', '')


def test_load_catalog_prefers_the_running_engine(tmp_path):
    catalog, info = P.load_catalog(FakeInstance(tmp_path), '15')
    assert info['source'] == 'engine' and info['version'].startswith('15.20')
    assert catalog['shared_buffers'].setting == '16384'


def test_load_catalog_falls_back_to_the_binary_then_the_shipped_catalog(tmp_path):
    inst = FakeInstance(tmp_path / 'a', running=False)
    catalog, info = P.load_catalog(inst, '15')
    assert info['source'] == 'binary' and 'no running engine' in info['notes'][0]
    assert inst.commands[0][-1] == '--describe-config'
    catalog, info = P.load_catalog(FakeInstance(tmp_path / 'b', initialized=False, binary=False), '15')
    assert info['source'] == 'shipped' and catalog['shared_buffers'].unit == '8kB'
    assert any('is not installed' in n for n in info['notes'])


def test_an_engine_of_another_data_directory_does_not_count(tmp_path):
    catalog, info = P.load_catalog(FakeInstance(tmp_path, served='/elsewhere'), '15')
    assert info['source'] == 'binary' and 'serves /elsewhere' in info['notes'][0]


def test_load_catalog_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(PolarDBError, match='no running engine'):
        P.load_catalog(FakeInstance(tmp_path / 'a', running=False), '15', 'engine')
    with pytest.raises(PolarDBError, match='ships catalogs for 15 only'):
        P.load_catalog(FakeInstance(tmp_path / 'b', initialized=False, binary=False), '99')


def test_derived_wal_keep_size():
    assert P.size_to_megabytes(2 * 1024 ** 3, 0.25) == 512
    assert P.size_to_megabytes(1000, 0.25) == 1
