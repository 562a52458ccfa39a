# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError, as_user
from ansible_collections.polardb.stack.plugins.module_utils import runner
from ansible_collections.polardb.stack.plugins.module_utils import sql
from ansible_collections.polardb.stack.plugins.module_utils import switchover as sw
from ansible_collections.polardb.stack.plugins.module_utils.topology import PROBE_SQL
from ansible_collections.polardb.stack.plugins.modules import switchover
from ansible_collections.polardb.stack.tests.unit.plugins.modules.harness import module_args

SYSID = '7712462526841396471'
DATA = '/srv/polardb/demo/data'
PASSWORD = 'S3cret-pw'

# what an engine command run as the owner starts with on this machine
AS_POSTGRES = as_user('postgres', [])[0]


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def controldata(state, ckpt):
    return ('Database system identifier:           %s\n'
            'Database cluster state:               %s\n'
            'Latest checkpoint location:           %s\n'
            "Latest checkpoint's TimeLineID:       1\n" % (SYSID, state, ckpt))


def probe(in_recovery, lsn, replication=None, receiver=None):
    return json.dumps({
        'in_recovery': in_recovery, 'server_version': '15.20', 'server_version_num': 150020,
        'polar_version': None, 'data_directory': DATA, 'system_identifier': SYSID,
        'checkpoint_timeline': 1, 'wal_file': None if in_recovery else '000000010000000000000005',
        'current_lsn': None if in_recovery else lsn, 'receive_lsn': lsn if in_recovery else None,
        'replay_lsn': lsn if in_recovery else None, 'wal_receiver': receiver,
        'replication': replication or []})


class World(object):
    """The RW's host (run_command) and the target (sql.connect)."""

    def __init__(self):
        self.commands = []
        self.connects = []
        self.rw_running = True
        self.target_in_recovery = True
        self.replay = ['0/5000028', '0/50000A0']

    def run_command(self, module, args, data=None, environ_update=None, cwd=None, check_rc=False, **kw):
        self.commands.append(list(args))
        cmd = list(args)
        if cmd[:4] == AS_POSTGRES:
            cmd = cmd[4:]
        prog = cmd[0].rsplit('/', 1)[-1]
        if prog == 'pg_controldata':
            return 0, controldata('in production' if self.rw_running else 'shut down',
                                  '0/4000060' if self.rw_running else '0/5000028'), ''
        if prog == 'psql':
            if not self.rw_running:
                return 2, '', 'psql: error: connection failed'
            q = cmd[cmd.index('-c') + 1]
            if q == PROBE_SQL:
                return 0, probe(False, '0/4FFF000', replication=[
                    {'application_name': 'pdb2', 'slot_name': 'pdb2', 'state': 'streaming'}]) + '\n', ''
            if q == sw.FLUSH_SQL:
                return 0, '0/4FFF000\n', ''
            return 0, q + '\n', ''
        if prog in ('systemctl', 'pg_ctl'):
            if 'stop' in cmd:
                self.rw_running = False
            elif 'start' in cmd:
                self.rw_running = True
            return 0, '', ''
        raise AssertionError('unexpected command %s' % args)

    def connect(self, host, port, user, password, dbname, connect_timeout, application_name, **kw):
        self.connects.append((host, port, user, password, dbname, connect_timeout, application_name, kw))
        return self

    def one(self, query, params=None):
        if query == PROBE_SQL:
            return {'probe': probe(self.target_in_recovery, self.replay[0], receiver={
                'status': 'streaming', 'received_tli': 1, 'sender_host': '10.0.0.1',
                'sender_port': 5432, 'slot_name': 'pdb2', 'flushed_lsn': self.replay[0]})}
        if query == sw.CAN_PROMOTE_SQL:
            return {'can_promote': True}
        if query == sw.REPLAY_SQL:
            lsn = self.replay.pop(0) if len(self.replay) > 1 else self.replay[0]
            return {'in_recovery': self.target_in_recovery, 'replay_lsn': lsn}
        if query == sw.PROMOTE_SQL:
            self.target_in_recovery = False
            return {'promoted': True}
        if query == sw.RECOVERY_SQL:
            return {'in_recovery': self.target_in_recovery}
        if query == sw.NEW_RW_SQL:
            return {'in_recovery': False, 'wal_file': '000000020000000000000005'}
        raise AssertionError('unexpected query %s' % query)

    def close(self):
        pass


@pytest.fixture
def world(monkeypatch):
    w = World()

    def run_command(self, args, **kw):
        return w.run_command(self, args, **kw)

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    def spawn(self, argv):
        # the host's stop, run to its end through run_command: pg_controldata tells the checkpoint
        self.executed.append(' '.join(argv))
        rc, out, err = self.module.run_command(argv)
        done = runner.Spawned(None, argv)
        done.result = runner.CommandResult(rc, out, err)
        return done

    monkeypatch.setattr(sql, 'connect', w.connect)
    monkeypatch.setattr(sql, 'HAS_DRIVER', True)
    monkeypatch.setattr(runner.CommandRunner, 'spawn', spawn)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def run(args):
        with module_args(args):
            with pytest.raises((Exit, Fail)) as e:
                switchover.main()
        return e.type, e.value.args[0]
    w.run = run
    return w


ARGS = {'target': {'name': 'pdb2', 'host': '10.0.0.2'}, 'node_name': 'pdb1', 'data_dir': DATA,
        'service': 'polardb@demo.service', 'login_password': PASSWORD}


def test_switchover_through_the_module(world):
    kind, r = world.run(dict(ARGS))
    assert kind is Exit, r
    assert r['changed'] is True
    assert (r['old_rw'], r['new_rw'], r['timeline']) == ('pdb1', 'pdb2', 2)
    assert r['shutdown_checkpoint_lsn'] == '0/5000028'
    assert r['target_replay_lsn'] == '0/50000A0'
    assert set(['checkpoint_s', 'stop_s', 'catchup_s', 'promote_s', 'write_unavailable_s',
                'total_s']) <= set(r['timings'])
    assert ['systemctl', 'stop', 'polardb@demo.service'] in world.commands
    assert ['systemctl', 'start', 'polardb@demo.service'] not in world.commands
    # engine commands drop to the owner; the target is reached once, with the options
    assert world.commands[0][:5] == AS_POSTGRES + ['/usr/lib/postgresql/15/bin/pg_controldata']
    assert len(world.connects) == 1
    host, port, user, password, dbname, timeout, app, kw = world.connects[0]
    assert (host, port, user, password, dbname, timeout) == ('10.0.0.2', 5432, 'postgres', PASSWORD, 'postgres', 3)
    assert kw['statement_timeout_ms'] == (60 + 3 + 5) * 1000
    # TLS: the target proves its name with a CA (verify-full unless told otherwise)
    assert kw['libpq'] == {'sslmode': 'verify-full'}
    assert PASSWORD not in json.dumps(r)


def test_check_mode_changes_nothing(world):
    kind, r = world.run(dict(ARGS, _ansible_check_mode=True))
    assert kind is Exit
    assert r['changed'] is True and 'planned' in r
    assert not any('stop' in c for c in world.commands)
    assert world.target_in_recovery is True


def test_own_stop_and_start_commands(world):
    stop = ['pg_ctl', '-D', DATA, '-m', 'fast', 'stop']
    args = dict(ARGS, stop_command=stop, start_command=['pg_ctl', '-D', DATA, 'start'])
    del args['service']
    kind, r = world.run(args)
    assert kind is Exit and r['changed'] is True
    assert stop in world.commands
    assert r['executed'][4] == 'stop: ' + ' '.join(stop)


def test_service_or_commands_are_required(world):
    args = dict(ARGS)
    del args['service']
    kind, r = world.run(args)
    assert kind is Fail
    assert 'service' in r['msg'] and 'stop_command' in r['msg']


def test_a_refusal_is_a_failure_with_details(world):
    world.replay = ['0/3000000']
    kind, r = world.run(dict(ARGS))
    assert kind is Fail
    assert 'lags' in r['msg'] and r['lag_bytes'] == 0x4FFF000 - 0x3000000
    assert not any('stop' in c for c in world.commands)
    assert PASSWORD not in json.dumps(r)


def test_already_switched_is_not_a_change(world):
    world.rw_running = False
    world.target_in_recovery = False

    def one(query, params=None):
        if query == sw.HISTORY_SQL:
            return {'history': '1\t0/50000A0\tno recovery target specified\n'}
        if query == PROBE_SQL:
            text = json.loads(World.one(world, query)['probe'])
            text['wal_file'] = '000000020000000000000005'
            return {'probe': json.dumps(text)}
        return World.one(world, query, params)
    world.one = one
    kind, r = world.run(dict(ARGS))
    assert kind is Exit, r
    assert r['changed'] is False
    assert r['msg'].startswith('already switched')
    assert r['timeline'] == 2


def test_unreachable_target(world, monkeypatch):
    def refuse(host, port, *a, **kw):
        raise PolarDBError('cannot connect to %s:%s as postgres: connection refused' % (host, port))
    monkeypatch.setattr(sql, 'connect', refuse)
    kind, r = world.run(dict(ARGS))
    assert kind is Fail
    assert r['msg'].startswith('target pdb2 (10.0.0.2:5432) is unreachable')
