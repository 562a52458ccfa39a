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

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandResult, PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import instance as inst_mod
from ansible_collections.polardb.stack.plugins.module_utils.instance import (
    Instance, controldata_facts, parse_controldata, passfile_line)

OWNER = pwd.getpwuid(os.getuid()).pw_name
SYSID = '7712462526841396471'
OTHER_SYSID = '7000000000000000001'


def controldata_text(sysid=SYSID, state='in production', tli=1, min_recovery_tli=0, segment=16777216):
    return """pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           %s
Database cluster state:               %s
pg_control last modified:             Thu Nov 26 12:54:30 2026
Latest checkpoint location:           0/4000060
Latest checkpoint's REDO location:    0/4000028
Latest checkpoint's REDO WAL file:    000000010000000000000004
Latest checkpoint's TimeLineID:       %d
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's oldestCommitTsXid:0
Time of latest checkpoint:            Thu Nov 26 12:54:30 2026
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   %d
Bytes per WAL segment:                %d
Data page checksum version:           1
""" % (sysid, state, tli, min_recovery_tli, segment)


def probe_json(in_recovery=False, data_directory=None, sysid=SYSID, polar_version=None):
    raw = {
        'in_recovery': in_recovery, 'server_version': '15.20 (Debian 15.20-0+deb12u1)',
        'server_version_num': 150020, 'polar_version': polar_version,
        'data_directory': data_directory, 'system_identifier': sysid,
        'checkpoint_timeline': 1,
        'wal_file': None if in_recovery else '000000020000000000000003',
        'current_lsn': None if in_recovery else '0/3000148',
        'receive_lsn': '0/3000100' if in_recovery else None,
        'replay_lsn': '0/30000F0' if in_recovery else None,
        'wal_receiver': {'status': 'streaming', 'received_tli': 2, 'sender_host': '10.0.0.1',
                         'sender_port': 5432, 'slot_name': 'pdb2',
                         'flushed_lsn': '0/3000100'} if in_recovery else None,
        'replication': [],
    }
    return json.dumps(raw) + '\n'


class FakeRunner(object):
    """Replays engine commands; ``handlers[program](argv, environ) -> (rc, out, err)``."""

    def __init__(self, handlers=None):
        self.handlers = dict(handlers or {})
        self.calls = []
        self.executed = []

    def run(self, argv, check=True, data=None, environ=None, cwd=None, become_user=None):
        self.calls.append({'argv': list(argv), 'environ': dict(environ or {}), 'cwd': cwd,
                           'become_user': become_user})
        self.executed.append(' '.join(argv))
        program = os.path.basename(argv[0])
        if program not in self.handlers:
            raise AssertionError('unexpected command: %s' % ' '.join(argv))
        rc, out, err = self.handlers[program](argv, environ or {})
        if check and rc != 0:
            raise PolarDBError('command failed (rc=%d): %s' % (rc, ' '.join(argv)), rc=rc)
        return CommandResult(rc, out, err)

    def programs(self):
        return [os.path.basename(c['argv'][0]) for c in self.calls]


def psql_down(argv, environ):
    return 2, '', 'psql: error: connection to server on socket "/x/.s.PGSQL.5432" failed:\n  No such file\n'


def controldata(sysid=SYSID, **kw):
    return lambda argv, environ: (0, controldata_text(sysid=sysid, **kw), '')


def make_cluster(path, sysid=SYSID):
    """What initdb / pg_basebackup leave behind (enough for the module)."""
    if not os.path.isdir(path):
        os.mkdir(path)
    for d in ('base', 'global'):
        os.mkdir(os.path.join(path, d))
    with open(os.path.join(path, 'PG_VERSION'), 'w') as f:
        f.write('15\n')
    with open(os.path.join(path, 'postgresql.conf'), 'w') as f:
        f.write('# unused\n')


def new_instance(runner, path):
    return Instance(runner, str(path), bin_dir='/usr/lib/postgresql/15/bin', owner=OWNER,
                    port=5433, socket_dir='/run/pg')


# ------------------------------------------------------------- pure helpers

def test_parse_controldata_keeps_colons_in_values():
    cd = parse_controldata(controldata_text())
    assert cd['Database system identifier'] == SYSID
    assert cd['Database cluster state'] == 'in production'
    assert cd["Latest checkpoint's TimeLineID"] == '1'
    assert cd["Latest checkpoint's oldestCommitTsXid"] == '0'
    assert cd['Time of latest checkpoint'] == 'Thu Nov 26 12:54:30 2026'


def test_controldata_facts():
    f = controldata_facts(parse_controldata(controldata_text(tli=2, min_recovery_tli=3)))
    assert f == {'system_identifier': SYSID, 'cluster_state': 'in production',
                 'checkpoint_lsn': '0/4000060', 'checkpoint_timeline': 2, 'offline_timeline': 3,
                 'wal_segment_size_mb': 16}
    f = controldata_facts(parse_controldata(controldata_text(tli=2, min_recovery_tli=0)))
    assert f['offline_timeline'] == 2


def test_passfile_line_escapes():
    assert passfile_line('10.0.0.1', 5432, 'replicator', 'a:b\\c') == \
        '10.0.0.1:5432:*:replicator:a\\:b\\\\c\n'


# ------------------------------------------------------------------ info

def test_info_missing_directory_is_absent(tmp_path):
    runner = FakeRunner()
    info = new_instance(runner, tmp_path / 'data').info()
    assert info['role'] == 'absent'
    assert info['initialized'] is False
    assert info['running'] is False
    assert info['data_dir'] == str(tmp_path / 'data')
    assert runner.calls == []


def test_info_empty_directory_is_absent(tmp_path):
    info = new_instance(FakeRunner(), tmp_path).info()
    assert (info['role'], info['initialized'], info['major_version']) == ('absent', False, None)


def test_info_not_a_directory(tmp_path):
    f = tmp_path / 'file'
    f.write_text(u'x')
    with pytest.raises(PolarDBError) as e:
        new_instance(FakeRunner(), f).info()
    assert 'is not a directory' in e.value.msg


def test_info_stopped(tmp_path):
    make_cluster(str(tmp_path))
    (tmp_path / 'standby.signal').write_text(u'')
    runner = FakeRunner({'pg_controldata': controldata(state='shut down in recovery', tli=1,
                                                       min_recovery_tli=2),
                         'psql': psql_down})
    info = new_instance(runner, tmp_path).info()
    assert info['role'] == 'stopped'
    assert info['running'] is False
    assert info['initialized'] is True
    assert info['major_version'] == '15'
    assert info['system_identifier'] == SYSID
    assert info['cluster_state'] == 'shut down in recovery'
    assert info['checkpoint_lsn'] == '0/4000060'
    assert info['checkpoint_timeline'] == 1
    assert info['timeline'] == 2  # the minimum recovery end timeline is newer
    assert info['signal'] == 'standby'
    assert info['in_recovery'] is None
    assert info['connect_error'] == ('psql: error: connection to server on socket '
                                     '"/x/.s.PGSQL.5432" failed: No such file')
    # engine commands run as the owner, in the C locale, from /
    cd_call, psql_call = runner.calls
    assert cd_call['argv'] == ['/usr/lib/postgresql/15/bin/pg_controldata', '-D', str(tmp_path)]
    assert cd_call['become_user'] == OWNER and cd_call['environ']['LC_ALL'] == 'C'
    assert cd_call['cwd'] == '/'
    assert psql_call['argv'][:9] == ['/usr/lib/postgresql/15/bin/psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
                                     '-h', '/run/pg', '-p', '5433', '-d']
    assert psql_call['become_user'] == OWNER


def test_info_running_primary(tmp_path):
    make_cluster(str(tmp_path))
    runner = FakeRunner({'pg_controldata': controldata(),
                         'psql': lambda a, e: (0, probe_json(data_directory=str(tmp_path)), '')})
    info = new_instance(runner, tmp_path).info()
    assert info['role'] == 'primary'
    assert info['running'] is True
    assert info['in_recovery'] is False
    assert info['timeline'] == 2  # from the WAL file name, not the checkpoint
    assert info['lsn'] == {'current': '0/3000148', 'receive': None, 'replay': None}
    assert info['upstream'] is None
    assert info['server_version_num'] == 150020
    assert info['flavour'] == 'postgresql'
    assert info['connect_error'] is None
    assert info['signal'] is None


def test_info_running_replica_of_polardb(tmp_path):
    make_cluster(str(tmp_path))
    (tmp_path / 'replica.signal').write_text(u'')
    (tmp_path / 'standby.signal').write_text(u'')
    runner = FakeRunner({'pg_controldata': controldata(),
                         'psql': lambda a, e: (0, probe_json(True, str(tmp_path), polar_version='15.8.2.0'), '')})
    info = new_instance(runner, tmp_path).info()
    assert info['role'] == 'replica'
    assert info['in_recovery'] is True
    assert info['signal'] == 'replica'
    assert info['flavour'] == 'polardb'
    assert info['timeline'] == 2
    assert info['lsn'] == {'current': None, 'receive': '0/3000100', 'replay': '0/30000F0'}
    assert info['upstream'] == {'host': '10.0.0.1', 'port': 5432, 'status': 'streaming', 'slot': 'pdb2'}


def test_info_engine_of_another_data_directory_is_not_ours(tmp_path):
    make_cluster(str(tmp_path))
    runner = FakeRunner({'pg_controldata': controldata(),
                         'psql': lambda a, e: (0, probe_json(data_directory='/elsewhere'), '')})
    info = new_instance(runner, tmp_path).info()
    assert info['role'] == 'stopped'
    assert info['running'] is False
    assert info['connect_error'] == 'the engine on /run/pg port 5433 serves /elsewhere, not %s' % tmp_path


def test_info_engine_of_another_cluster_is_not_ours(tmp_path):
    make_cluster(str(tmp_path))
    runner = FakeRunner({'pg_controldata': controldata(),
                         'psql': lambda a, e: (0, probe_json(data_directory=str(tmp_path),
                                                             sysid=OTHER_SYSID), '')})
    info = new_instance(runner, tmp_path).info()
    assert info['role'] == 'stopped'
    assert OTHER_SYSID in info['connect_error']


def test_info_query_error_fails(tmp_path):
    make_cluster(str(tmp_path))
    runner = FakeRunner({'pg_controldata': controldata(),
                         'psql': lambda a, e: (3, '', 'ERROR:  permission denied\n')})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).info()
    assert 'permission denied' in e.value.msg


def test_info_controldata_without_identifier_fails(tmp_path):
    make_cluster(str(tmp_path))
    runner = FakeRunner({'pg_controldata': lambda a, e: (0, 'garbage\n', '')})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).info()
    assert 'no system identifier' in e.value.msg


# ---------------------------------------------------------------- ensure

class Initdb(object):
    """Fake initdb: checks the password file while it exists, then makes a cluster."""

    def __init__(self, rc=0):
        self.rc = rc
        self.pwfile = None
        self.seen = None

    def __call__(self, argv, environ):
        self.pwfile = [a for a in argv if a.startswith('--pwfile=')][0].split('=', 1)[1]
        st = os.stat(self.pwfile)
        with open(self.pwfile) as f:
            self.seen = {'mode': stat.S_IMODE(st.st_mode), 'uid': st.st_uid, 'content': f.read()}
        if self.rc:
            return self.rc, '', 'initdb: error: boom'
        make_cluster(argv[argv.index('-D') + 1])
        return 0, 'ok', ''


class Basebackup(object):
    def __init__(self, rc=0):
        self.rc = rc
        self.passfile = None
        self.seen = None

    def __call__(self, argv, environ):
        self.passfile = environ.get('PGPASSFILE')
        if self.passfile:
            st = os.stat(self.passfile)
            with open(self.passfile) as f:
                self.seen = {'mode': stat.S_IMODE(st.st_mode), 'content': f.read()}
        if self.rc:
            return self.rc, '', 'pg_basebackup: error: connection refused'
        make_cluster(argv[argv.index('-D') + 1])
        return 0, '', ''


def test_primary_on_missing_directory_runs_initdb(tmp_path):
    data = tmp_path / 'mnt' / 'data'
    initdb = Initdb()
    runner = FakeRunner({'initdb': initdb, 'pg_controldata': controldata()})
    r = new_instance(runner, data).ensure('primary', superuser='postgres', superuser_password='S3cret')
    assert r['changed'] is True
    assert r['diff'] == {'before': {'initialized': False, 'system_identifier': None},
                         'after': {'initialized': True, 'system_identifier': SYSID}}
    assert r['actions'][0] == 'create %s (0700, %s)' % (data, OWNER)
    assert r['actions'][1].startswith('initdb -D %s -U postgres' % data)
    call = runner.calls[0]
    assert call['become_user'] == OWNER
    argv = call['argv']
    assert argv[:5] == ['/usr/lib/postgresql/15/bin/initdb', '-D', str(data), '-U', 'postgres']
    assert '--auth-local=peer' in argv and '--auth-host=scram-sha-256' in argv
    assert argv[-3:] == ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8']
    # the password went through a 0600 file of the owner, removed afterwards
    assert initdb.seen == {'mode': 0o600, 'uid': os.getuid(), 'content': 'S3cret\n'}
    assert not os.path.exists(initdb.pwfile)
    assert 'S3cret' not in ' '.join(runner.executed)
    assert stat.S_IMODE(os.stat(str(data)).st_mode) == 0o700
    assert (data / 'PG_VERSION').exists()


def test_initdb_failure_still_removes_the_password_file(tmp_path):
    initdb = Initdb(rc=1)
    runner = FakeRunner({'initdb': initdb})
    with pytest.raises(PolarDBError):
        new_instance(runner, tmp_path / 'data').ensure('primary', superuser_password='S3cret')
    assert initdb.seen['content'] == 'S3cret\n'
    assert not os.path.exists(initdb.pwfile)


def test_custom_initdb_options(tmp_path):
    runner = FakeRunner({'initdb': Initdb(), 'pg_controldata': controldata()})
    i = new_instance(runner, tmp_path / 'd')
    i.ensure('primary', superuser_password='x', initdb_options=['--wal-segsize=64'])
    assert runner.calls[0]['argv'][-1] == '--wal-segsize=64'
    assert '--data-checksums' not in runner.calls[0]['argv']


def test_wal_segment_size_goes_to_initdb(tmp_path):
    runner = FakeRunner({'initdb': Initdb(), 'pg_controldata': controldata(segment=4 * 1024 * 1024)})
    r = new_instance(runner, tmp_path / 'd').ensure('primary', superuser_password='x', wal_segment_size_mb=4)
    argv = runner.calls[0]['argv']
    assert argv[-4:] == ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8', '--wal-segsize=4']
    assert r['wal_segment_size_mb'] == 4 and 'warning' not in r
    assert '--wal-segsize=4' in r['actions'][-1]


def test_wal_segment_size_in_initdb_options_wins(tmp_path):
    runner = FakeRunner({'initdb': Initdb(), 'pg_controldata': controldata()})
    new_instance(runner, tmp_path / 'd').ensure('primary', superuser_password='x', wal_segment_size_mb=4,
                                                initdb_options=['--wal-segsize=64'])
    assert [a for a in runner.calls[0]['argv'] if a.startswith('--wal-segsize')] == ['--wal-segsize=64']


def test_wal_segment_size_not_a_power_of_two_is_refused_before_anything(tmp_path):
    runner = FakeRunner()
    with pytest.raises(PolarDBError, match='power of two'):
        new_instance(runner, tmp_path / 'd').ensure('primary', superuser_password='x', wal_segment_size_mb=3)
    assert runner.calls == [] and not (tmp_path / 'd').exists()


def test_initialised_directory_of_another_segment_size_is_left_with_a_warning(tmp_path):
    make_cluster(str(tmp_path))
    os.chmod(str(tmp_path), 0o700)
    runner = FakeRunner({'pg_controldata': controldata()})
    r = new_instance(runner, tmp_path).ensure('primary', superuser_password='x', wal_segment_size_mb=4)
    assert r['changed'] is False and r['wal_segment_size_mb'] == 16
    assert r['warning'] == ('%s was made with 16 MB WAL segments, not 4: the size is fixed when a cluster '
                            'is created, it stays as it is' % tmp_path)
    assert runner.programs() == ['pg_controldata']


def test_check_mode_changes_nothing(tmp_path):
    data = tmp_path / 'data'
    runner = FakeRunner()
    r = new_instance(runner, data).ensure('primary', superuser_password='x', check_mode=True)
    assert r['changed'] is True
    assert len(r['actions']) == 2
    assert r['diff']['after'] == {'initialized': True, 'system_identifier': None}
    assert runner.calls == []
    assert not data.exists()


def test_initialised_directory_is_no_change(tmp_path):
    make_cluster(str(tmp_path))
    os.chmod(str(tmp_path), 0o700)
    runner = FakeRunner({'pg_controldata': controldata()})
    r = new_instance(runner, tmp_path).ensure('replica', source={'host': 'h'})
    assert r == {'changed': False, 'actions': [], 'wal_segment_size_mb': 16,
                 'diff': {'before': {'initialized': True, 'system_identifier': SYSID},
                          'after': {'initialized': True, 'system_identifier': SYSID}}}
    assert runner.programs() == ['pg_controldata']


def test_initialised_directory_gets_mode_0700(tmp_path):
    make_cluster(str(tmp_path))
    os.chmod(str(tmp_path), 0o755)
    runner = FakeRunner({'pg_controldata': controldata()})
    r = new_instance(runner, tmp_path).ensure('primary', superuser_password='x', check_mode=True)
    assert r['changed'] is True
    assert r['actions'] == ['chmod 0700 %s (was 0755)' % tmp_path]
    assert stat.S_IMODE(os.stat(str(tmp_path)).st_mode) == 0o755
    r = new_instance(runner, tmp_path).ensure('primary', superuser_password='x')
    assert r['changed'] is True
    assert stat.S_IMODE(os.stat(str(tmp_path)).st_mode) == 0o700


def test_non_empty_directory_without_pg_version_is_refused(tmp_path):
    (tmp_path / 'lost+found').mkdir()
    (tmp_path / 'notes.txt').write_text(u'x')
    runner = FakeRunner()
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).ensure('primary', superuser_password='x')
    assert 'found: lost+found, notes.txt' in e.value.msg
    assert 'allow_overwrite' in e.value.msg
    assert (tmp_path / 'notes.txt').exists()
    assert runner.calls == []


def test_allow_overwrite_clears_a_foreign_directory(tmp_path):
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'f').write_text(u'x')
    (tmp_path / 'notes.txt').write_text(u'x')
    os.symlink('/nonexistent', str(tmp_path / 'link'))
    runner = FakeRunner({'initdb': Initdb(), 'pg_controldata': controldata()})
    r = new_instance(runner, tmp_path).ensure('primary', superuser_password='x', allow_overwrite=True)
    assert r['actions'][0] == 'discard the content of %s (3 entries)' % tmp_path
    assert sorted(os.listdir(str(tmp_path))) == ['PG_VERSION', 'base', 'global', 'postgresql.conf']


def test_replica_base_backup(tmp_path):
    data = tmp_path / 'data'
    bb = Basebackup()
    runner = FakeRunner({'pg_basebackup': bb, 'pg_controldata': controldata()})
    source = {'host': '10.0.0.1', 'port': 5433, 'user': 'replicator', 'password': 'R3pl:pw',
              'slot': 'pdb2', 'application_name': 'pdb2', 'ssl_mode': 'verify-full',
              'ca_cert': '/etc/polardb-stack/demo/ca.crt'}
    r = new_instance(runner, data).ensure('replica', source=source, expected_system_identifier=SYSID)
    assert r['changed'] is True
    assert r['diff']['after'] == {'initialized': True, 'system_identifier': SYSID}
    call = runner.calls[0]
    assert call['argv'] == ['/usr/lib/postgresql/15/bin/pg_basebackup', '-h', '10.0.0.1', '-p', '5433',
                            '-U', 'replicator', '-D', str(data), '-X', 'stream', '-S', 'pdb2',
                            '--checkpoint=fast', '--no-password']
    assert call['become_user'] == OWNER
    assert call['environ']['PGAPPNAME'] == 'pdb2'
    # over TLS, the source proving its name with the cluster's CA
    assert call['environ']['PGSSLMODE'] == 'verify-full'
    assert call['environ']['PGSSLROOTCERT'] == '/etc/polardb-stack/demo/ca.crt'
    assert bb.seen == {'mode': 0o600, 'content': '10.0.0.1:5433:*:replicator:R3pl\\:pw\n'}
    assert not os.path.exists(bb.passfile)
    assert 'R3pl' not in ' '.join(runner.executed) + repr(r)
    assert (data / 'standby.signal').exists()
    assert stat.S_IMODE(os.stat(str(data / 'standby.signal')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(data)).st_mode) == 0o700
    assert r['actions'][-1] == 'write %s' % (data / 'standby.signal')


def test_standby_without_slot_or_password(tmp_path):
    bb = Basebackup()
    runner = FakeRunner({'pg_basebackup': bb, 'pg_controldata': controldata()})
    new_instance(runner, tmp_path / 'd').ensure('standby', source={'host': 'h'})
    argv = runner.calls[0]['argv']
    assert '-S' not in argv
    assert argv[argv.index('-U') + 1] == 'replicator'
    assert argv[argv.index('-p') + 1] == '5432'
    assert bb.passfile is None


def test_base_backup_failure_removes_the_passfile(tmp_path):
    bb = Basebackup(rc=1)
    runner = FakeRunner({'pg_basebackup': bb})
    with pytest.raises(PolarDBError):
        new_instance(runner, tmp_path / 'd').ensure('replica', source={'host': 'h', 'password': 'pw'})
    assert bb.seen['content'] == 'h:5432:*:replicator:pw\n'
    assert not os.path.exists(bb.passfile)


def test_foreign_cluster_is_refused_then_rebuilt_with_allow_overwrite(tmp_path):
    make_cluster(str(tmp_path), sysid=OTHER_SYSID)
    ids = {'n': 0}

    def cd(argv, environ):  # first the old cluster, then the new one
        ids['n'] += 1
        return 0, controldata_text(sysid=OTHER_SYSID if ids['n'] == 1 else SYSID), ''
    runner = FakeRunner({'pg_controldata': cd, 'pg_basebackup': Basebackup()})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).ensure('replica', source={'host': 'h'},
                                              expected_system_identifier=SYSID)
    assert e.value.msg == ('%s holds cluster %s, not the expected %s: set allow_overwrite to discard it'
                           % (tmp_path, OTHER_SYSID, SYSID))
    ids['n'] = 0
    r = new_instance(runner, tmp_path).ensure('replica', source={'host': 'h'}, allow_overwrite=True,
                                              expected_system_identifier=SYSID)
    assert r['diff'] == {'before': {'initialized': True, 'system_identifier': OTHER_SYSID},
                         'after': {'initialized': True, 'system_identifier': SYSID}}
    assert r['actions'][0].startswith('discard the content of')


def test_foreign_cluster_is_never_discarded_under_a_running_postmaster(tmp_path):
    make_cluster(str(tmp_path), sysid=OTHER_SYSID)
    (tmp_path / 'postmaster.pid').write_text(u'%d\n%s\n' % (os.getpid(), tmp_path))
    runner = FakeRunner({'pg_controldata': controldata(sysid=OTHER_SYSID)})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).ensure('replica', source={'host': 'h'}, allow_overwrite=True,
                                              expected_system_identifier=SYSID)
    assert 'in use by the running postmaster %d' % os.getpid() in e.value.msg
    assert (tmp_path / 'PG_VERSION').exists()


def test_stale_postmaster_pid_does_not_block(tmp_path):
    (tmp_path / 'postmaster.pid').write_text(u'999999999\n')
    assert new_instance(FakeRunner(), tmp_path).postmaster_pid() is None


def test_primary_of_another_cluster_always_fails(tmp_path):
    make_cluster(str(tmp_path), sysid=OTHER_SYSID)
    runner = FakeRunner({'pg_controldata': controldata(sysid=OTHER_SYSID)})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, tmp_path).ensure('primary', superuser_password='x', allow_overwrite=True,
                                              expected_system_identifier=SYSID)
    assert 'never re-initialised' in e.value.msg
    assert (tmp_path / 'PG_VERSION').exists()


def test_base_backup_of_the_wrong_cluster_is_removed(tmp_path):
    data = tmp_path / 'd'
    runner = FakeRunner({'pg_basebackup': Basebackup(), 'pg_controldata': controldata(sysid=OTHER_SYSID)})
    with pytest.raises(PolarDBError) as e:
        new_instance(runner, data).ensure('replica', source={'host': 'h'}, expected_system_identifier=SYSID)
    assert 'is of cluster %s, not the expected %s' % (OTHER_SYSID, SYSID) in e.value.msg
    assert os.listdir(str(data)) == []


def test_expected_identifier_matching_is_no_change(tmp_path):
    make_cluster(str(tmp_path))
    os.chmod(str(tmp_path), 0o700)
    runner = FakeRunner({'pg_controldata': controldata()})
    r = new_instance(runner, tmp_path).ensure('primary', superuser_password='x',
                                              expected_system_identifier=int(SYSID))
    assert r['changed'] is False


@pytest.mark.parametrize('role, kwargs, message', [
    ('primary', {}, 'superuser_password'),
    ('replica', {}, 'source.host'),
    ('standby', {'source': {}}, 'source.host'),
    ('leader', {}, 'unknown role'),
])
def test_bad_arguments(tmp_path, role, kwargs, message):
    with pytest.raises(PolarDBError) as e:
        new_instance(FakeRunner(), tmp_path).ensure(role, **kwargs)
    assert message in e.value.msg


def test_unknown_owner(tmp_path, monkeypatch):
    runner = FakeRunner({'initdb': Initdb(), 'pg_controldata': controldata()})
    i = Instance(runner, str(tmp_path / 'd'), owner='no-such-user-here')
    with pytest.raises(PolarDBError) as e:
        i.ensure('primary', superuser_password='x')
    assert 'no-such-user-here' in e.value.msg
    assert not (tmp_path / 'd').exists()


def test_defaults():
    assert inst_mod.DEFAULT_INITDB_OPTIONS == ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8']
    assert inst_mod.DEFAULT_BIN_DIR == '/usr/lib/postgresql/15/bin'


# ------------------------------------------------------- pg_control's head

def _pg_control(tmp_path, state, checkpoint, sysid=7714914090835151707):
    (tmp_path / 'global').mkdir(exist_ok=True)
    head = inst_mod.CONTROL_HEAD.pack(sysid, 1300, 202209061, state, 1796268718, checkpoint)
    # the rest of the 8 kB file: what the head is followed by does not matter
    (tmp_path / 'global' / 'pg_control').write_bytes(head + b'\0' * (8192 - len(head)))


def test_control_head_reads_state_and_checkpoint_of_pg_control(tmp_path):
    inst = inst_mod.Instance(None, str(tmp_path))
    assert inst.control_head() is None                      # no pg_control
    _pg_control(tmp_path, inst_mod.DB_SHUTDOWNED, 0xF889430)
    assert inst.control_head() == {'system_identifier': '7714914090835151707', 'version': 1300,
                                   'state': 1, 'checkpoint': 0xF889430}
    (tmp_path / 'global' / 'pg_control').write_bytes(b'\1' * 20)
    assert inst.control_head() is None                      # shorter than the head


def test_control_head_is_none_while_two_reads_differ(tmp_path, monkeypatch):
    _pg_control(tmp_path, 6, 0x4000060)
    inst = inst_mod.Instance(None, str(tmp_path))
    real_open = open
    reads = []

    def writing_open(path, mode='r', *args):
        f = real_open(path, mode, *args)
        reads.append(path)
        if len(reads) == 2:     # the checkpointer rewrote it between the two reads
            _pg_control(tmp_path, inst_mod.DB_SHUTDOWNED, 0x5000028)
            f.close()
            f = real_open(path, mode, *args)
        return f
    monkeypatch.setattr('builtins.open', writing_open)
    assert inst.control_head() is None
    assert len(reads) == 2
    monkeypatch.undo()
    assert inst.control_head()['state'] == inst_mod.DB_SHUTDOWNED


# ------------------------------------------------------------ its unit

class UnitRunner(object):
    def __init__(self, rc, out):
        self.rc, self.out = rc, out
        self.calls = []

    def run(self, argv, check=True, **kw):
        self.calls.append(list(argv))
        return CommandResult(self.rc, self.out, '')


def test_unit_reads_enabled_and_active_in_one_systemctl_call():
    r = UnitRunner(0, 'UnitFileState=enabled\nActiveState=active\n')
    inst = inst_mod.Instance(r, '/srv/polardb/demo/data')
    assert inst.unit('polardb@demo.service') == {'name': 'polardb@demo.service', 'enabled': True, 'active': True}
    assert r.calls == [['systemctl', 'show', '--property=UnitFileState,ActiveState', '--', 'polardb@demo.service']]
    r.out = 'UnitFileState=disabled\nActiveState=failed\n'
    assert inst.unit('polardb@demo.service') == {'name': 'polardb@demo.service', 'enabled': False, 'active': False}
    # a template instance never enabled has no unit file state of its own
    r.out = 'UnitFileState=\nActiveState=inactive\n'
    assert inst.unit('polardb@x.service')['enabled'] is False
    r.rc, r.out = 1, ''
    assert inst.unit('polardb@demo.service') is None


def test_info_has_the_unit_only_when_asked(tmp_path):
    r = UnitRunner(0, 'UnitFileState=enabled\nActiveState=inactive\n')
    inst = inst_mod.Instance(r, str(tmp_path / 'data'))
    assert inst.info()['unit'] is None and r.calls == []
    info = inst.info('polardb@demo.service')
    assert info['unit'] == {'name': 'polardb@demo.service', 'enabled': True, 'active': False}
    assert info['initialized'] is False
