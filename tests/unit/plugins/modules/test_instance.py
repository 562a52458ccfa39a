# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd
import stat

import pytest

from ansible.module_utils import basic

from ansible_collections.polardb.stack.plugins.module_utils.runner import as_user

from ansible_collections.polardb.stack.plugins.modules import instance
from ansible_collections.polardb.stack.tests.unit.plugins.modules.harness import module_args

OWNER = pwd.getpwuid(os.getuid()).pw_name
SYSID = '7712462526841396471'
PASSWORD = 'Sup3r-s3cret'
REPL_PASSWORD = 'R3pl-s3cret'


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def controldata_out():
    return ('Database system identifier:           %s\n'
            'Database cluster state:               shut down\n'
            'Latest checkpoint location:           0/14EEA58\n'
            "Latest checkpoint's TimeLineID:       1\n" % SYSID)


class Host(object):
    """The engine commands, faked at AnsibleModule.run_command."""

    def __init__(self):
        self.calls = []
        self.secrets_seen = []

    def run_command(self, module, args, environ_update=None, **kwargs):
        args = list(args)
        self.calls.append({'argv': args, 'environ': dict(environ_update or {})})
        program = os.path.basename(args[4])  # setpriv --reuid --regid --init-groups PROGRAM ... (or runuser -u OWNER --)
        if program == 'initdb':
            pwfile = [a for a in args if a.startswith('--pwfile=')][0].split('=', 1)[1]
            with open(pwfile) as f:
                self.secrets_seen.append(f.read())
            self._make(args[args.index('-D') + 1])
            return 0, '', ''
        if program == 'pg_basebackup':
            with open(environ_update['PGPASSFILE']) as f:
                self.secrets_seen.append(f.read())
            self._make(args[args.index('-D') + 1])
            return 0, '', ''
        if program == 'pg_controldata':
            return 0, controldata_out(), ''
        if program == 'psql':
            return 2, '', 'psql: error: no server\n'
        raise AssertionError(args)

    @staticmethod
    def _make(path):
        with open(os.path.join(path, 'PG_VERSION'), 'w') as f:
            f.write('15\n')


@pytest.fixture
def ansible(monkeypatch):
    host = Host()

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    def run_command(self, args, **kwargs):
        return host.run_command(self, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)

    def run(args):
        args = dict(args, owner=OWNER)
        with module_args(args):
            with pytest.raises((Exit, Fail)) as e:
                instance.main()
        return e.type, e.value.args[0]
    run.host = host
    return run


def primary_args(data_dir, **kw):
    return dict({'data_dir': str(data_dir), 'role': 'primary', 'superuser_password': PASSWORD}, **kw)


def test_primary_is_created_then_unchanged(ansible, tmp_path):
    data = tmp_path / 'data'
    kind, result = ansible(primary_args(data, _ansible_diff=True))
    assert kind is Exit
    assert result['changed'] is True
    assert result['diff'] == {'before': {'initialized': False, 'system_identifier': None},
                              'after': {'initialized': True, 'system_identifier': SYSID}}
    assert result['instance']['initialized'] is True
    assert result['instance']['role'] == 'stopped'
    assert result['instance']['system_identifier'] == SYSID
    assert result['executed_commands'][0].startswith(
        ' '.join(as_user(OWNER, ['/usr/lib/postgresql/15/bin/initdb', '-D', str(data), '-U', 'postgres',
                                 '--pwfile='])[0]))
    # the report's own status query is not listed
    assert not any('psql' in c for c in result['executed_commands'])
    assert ansible.host.secrets_seen == [PASSWORD + '\n']
    assert PASSWORD not in json.dumps(result)
    assert all(PASSWORD not in ' '.join(c['argv']) for c in ansible.host.calls)
    assert stat.S_IMODE(os.stat(str(data)).st_mode) == 0o700

    kind, result = ansible(primary_args(data))
    assert kind is Exit
    assert result['changed'] is False
    assert result['actions'] == []
    assert 'diff' not in result


def test_check_mode_changes_nothing(ansible, tmp_path):
    data = tmp_path / 'data'
    kind, result = ansible(primary_args(data, _ansible_check_mode=True, _ansible_diff=True))
    assert kind is Exit
    assert result['changed'] is True
    assert result['executed_commands'] == []
    assert result['actions'][0] == 'create %s (0700, %s)' % (data, OWNER)
    assert result['diff']['after'] == {'initialized': True, 'system_identifier': None}
    assert result['instance']['role'] == 'absent'
    assert not data.exists()
    assert ansible.host.calls == []


def test_replica(ansible, tmp_path):
    data = tmp_path / 'data'
    kind, result = ansible({
        'data_dir': str(data), 'role': 'replica', 'expected_system_identifier': SYSID,
        'source': {'host': '10.0.0.1', 'password': REPL_PASSWORD, 'slot': 'pdb2'}})
    assert kind is Exit
    assert result['changed'] is True
    assert result['instance']['signal'] == 'standby'
    bb = ansible.host.calls[0]
    assert bb['argv'][4:] == ['/usr/lib/postgresql/15/bin/pg_basebackup', '-h', '10.0.0.1', '-p', '5432',
                              '-U', 'replicator', '-D', str(data), '-X', 'stream', '-S', 'pdb2',
                              '--checkpoint=fast', '--no-password']
    assert ansible.host.secrets_seen == ['10.0.0.1:5432:*:replicator:%s\n' % REPL_PASSWORD]
    assert not os.path.exists(bb['environ']['PGPASSFILE'])
    assert bb['environ']['PGSSLMODE'] == 'verify-full'  # the default
    assert 'PGSSLROOTCERT' not in bb['environ']
    assert REPL_PASSWORD not in json.dumps(result)


def test_required_options(ansible, tmp_path):
    kind, result = ansible({'data_dir': str(tmp_path), 'role': 'primary'})
    assert kind is Fail
    assert 'superuser_password' in result['msg']
    kind, result = ansible({'data_dir': str(tmp_path), 'role': 'standby'})
    assert kind is Fail
    assert 'source' in result['msg']


def test_domain_error_is_fail_json(ansible, tmp_path):
    (tmp_path / 'stray').write_text(u'x')
    kind, result = ansible(primary_args(tmp_path))
    assert kind is Fail
    assert result['msg'] == ('%s is not empty and is no PostgreSQL data directory (no PG_VERSION; '
                             'found: stray): set allow_overwrite to discard its content' % tmp_path)
    assert result['entries'] == ['stray']
    assert (tmp_path / 'stray').exists()
