# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.polardb.stack.plugins.modules import parameter_check
from ansible_collections.polardb.stack.tests.unit.plugins.modules.harness import run_module

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'params')


class Commands(object):
    """The host: the engine binary answers --describe-config and --version; nothing else runs."""

    def __init__(self):
        self.calls = []

    def run_command(self, argv, **kwargs):
        self.calls.append(list(argv))
        if argv[-1] == '--describe-config':
            with open(os.path.join(FIXTURES, 'describe_config_15.txt')) as f:
                return 0, f.read(), ''
        if argv[-1] == '--version':
            return 0, 'postgres (PostgreSQL) 15.20\n', ''
        raise AssertionError('unexpected command %r' % (argv,))

    def get_bin_path(self, name):
        return '/usr/bin/' + name


def test_the_issues_parameters_are_refused_from_the_shipped_catalog(monkeypatch, tmp_path):
    commands = Commands()
    out = run_module(monkeypatch, parameter_check.main, {
        'parameters': {'shared_buffers': 'lots', 'max_connections': '-5', 'no_such_param': '1', 'work_mem': '4MB',
                       'port': 5433, 'auto_explain.log_min_duration': '1s'},
        'reserved': ['port'], 'data_dir': str(tmp_path / 'data'), 'bin_dir': str(tmp_path / 'bin'),
        '_ansible_check_mode': True}, commands)
    assert not out.failed and out.result['changed'] is False and out.result['valid'] is False
    assert out.result['catalog']['source'] == 'shipped'
    assert [p.split(' ')[0].split('=')[0] for p in out.result['problems']] == [
        'max_connections', 'no_such_param', 'parameter', 'shared_buffers']
    assert out.result['parameters']['work_mem'] == {
        'value': '4MB', 'normalised': 4096, 'setting': None, 'vartype': 'integer', 'unit': 'kB', 'context': 'user',
        'apply': 'reload', 'change': None}
    assert 'auto_explain.log_min_duration' in out.warnings[0]
    assert commands.calls == []


def test_the_installed_binary_is_used_when_no_engine_runs(monkeypatch, tmp_path):
    os.makedirs(str(tmp_path / 'bin'))
    open(str(tmp_path / 'bin' / 'postgres'), 'w').close()
    commands = Commands()
    out = run_module(monkeypatch, parameter_check.main, {
        'parameters': {'shared_buffers': '1GB', 'wal_level': 'logical'},
        'data_dir': str(tmp_path / 'data'), 'bin_dir': str(tmp_path / 'bin')}, commands)
    assert out.result['valid'] and out.result['problems'] == []
    assert out.result['catalog']['source'] == 'binary' and out.result['catalog']['version'] == 'postgres (PostgreSQL) 15.20'
    assert out.result['parameters']['shared_buffers']['normalised'] == 131072
    assert [c[-1] for c in commands.calls] == ['--describe-config', '--version']


def test_no_catalog_at_all_fails(monkeypatch, tmp_path):
    out = run_module(monkeypatch, parameter_check.main, {
        'parameters': {'work_mem': '4MB'}, 'engine_major': '99', 'data_dir': str(tmp_path / 'data'),
        'bin_dir': str(tmp_path / 'bin')}, Commands())
    assert out.failed and 'no parameter catalog for engine 99' in out.result['msg']
