# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd

import pytest

from ansible.module_utils import basic

from ansible_collections.polardb.stack.plugins.module_utils.runner import as_user

from ansible_collections.polardb.stack.plugins.modules import instance_info
from ansible_collections.polardb.stack.tests.unit.plugins.modules.harness import module_args

OWNER = pwd.getpwuid(os.getuid()).pw_name
SYSID = '7712462526841396471'


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture
def ansible(monkeypatch):
    """Run the module; return what exit_json / fail_json got; record run_command calls."""
    calls = []
    replies = {}

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    def run_command(self, args, **kwargs):
        calls.append(list(args))
        program = os.path.basename(args[4])  # the owner's prefix (4 words), PROGRAM
        return replies[program]

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)

    def run(args, **reply):
        replies.update(reply)
        with module_args(args):
            with pytest.raises((Exit, Fail)) as e:
                instance_info.main()
        return e.type, e.value.args[0], calls
    return run


def controldata_out(sysid=SYSID):
    return ('Database system identifier:           %s\n'
            'Database cluster state:               in production\n'
            'Latest checkpoint location:           0/4000060\n'
            "Latest checkpoint's TimeLineID:       1\n"
            "Min recovery ending loc's timeline:   0\n" % sysid)


def test_absent(ansible, tmp_path):
    kind, result, calls = ansible({'data_dir': str(tmp_path / 'nothing'), 'owner': OWNER})
    assert kind is Exit
    assert result['changed'] is False
    assert result['instance']['role'] == 'absent'
    assert result['instance']['initialized'] is False
    assert calls == []


def test_running_primary(ansible, tmp_path):
    (tmp_path / 'PG_VERSION').write_text(u'15\n')
    probe = json.dumps({'in_recovery': False, 'server_version': '15.20', 'server_version_num': 150020,
                        'polar_version': None, 'data_directory': str(tmp_path),
                        'system_identifier': SYSID, 'checkpoint_timeline': 1,
                        'wal_file': '000000010000000000000003', 'current_lsn': '0/3000148',
                        'receive_lsn': None, 'replay_lsn': None, 'wal_receiver': None,
                        'replication': []})
    kind, result, calls = ansible(
        {'data_dir': str(tmp_path), 'owner': OWNER, 'port': 5433, 'socket_dir': '/run/pg',
         '_ansible_check_mode': True},
        pg_controldata=(0, controldata_out(), ''), psql=(0, probe + '\n', ''))
    assert kind is Exit
    i = result['instance']
    assert (i['role'], i['running'], i['timeline'], i['major_version']) == ('primary', True, 1, '15')
    assert i['lsn']['current'] == '0/3000148'
    assert i['system_identifier'] == SYSID
    owner = as_user(OWNER, [])[0]
    assert calls[0] == owner + ['/usr/lib/postgresql/15/bin/pg_controldata', '-D', str(tmp_path)]
    assert calls[1][:12] == owner + ['/usr/lib/postgresql/15/bin/psql', '-XAtq',
                                     '-v', 'ON_ERROR_STOP=1', '-h', '/run/pg', '-p', '5433']


def test_stopped(ansible, tmp_path):
    (tmp_path / 'PG_VERSION').write_text(u'15\n')
    kind, result, calls = ansible({'data_dir': str(tmp_path), 'owner': OWNER},
                                  pg_controldata=(0, controldata_out(), ''),
                                  psql=(2, '', 'psql: error: connection refused\n'))
    assert kind is Exit
    assert result['instance']['role'] == 'stopped'
    assert result['instance']['connect_error'] == 'psql: error: connection refused'


def test_domain_error_is_fail_json(ansible, tmp_path):
    (tmp_path / 'PG_VERSION').write_text(u'15\n')
    kind, result, calls = ansible({'data_dir': str(tmp_path), 'owner': OWNER},
                                  pg_controldata=(1, '', 'pg_controldata: fatal: could not open file'))
    assert kind is Fail
    assert result['msg'].startswith('command failed (rc=1): %s ' % ' '.join(as_user(OWNER, [])[0]))
    assert 'could not open file' in result['msg']
    assert result['rc'] == 1
