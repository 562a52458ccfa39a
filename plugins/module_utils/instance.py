# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One engine instance on one host: its data directory and its local status.

``Instance.info()`` reports the facts of the data directory (PG_VERSION,
pg_controldata, signal files) and, when the engine accepts connections on the
local socket, what it says about itself (the probe of ``topology``).
``Instance.ensure()`` makes the data directory exist: initdb for a primary, a
base backup for a replica or standby. Engine commands run as the owner of the
data directory (``setpriv``; ``runuser`` without it); secrets go through 0600 temporary files, never
through argv.

Configuration lives outside the data directory (``config_file=``), so nothing
here reads or writes the postgresql.conf that initdb leaves in it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import pwd
import shutil
import stat
import struct
import tempfile

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils.topology import (
    PROBE_SQL, parse_probe)

DEFAULT_BIN_DIR = '/usr/lib/postgresql/15/bin'
DEFAULT_INITDB_OPTIONS = ['--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8']
# initdb --wal-segsize: a power of two from 1 to 1024 MB.
WAL_SEGMENT_SIZES_MB = [2 ** n for n in range(11)]
# Checked in this order: PolarDB's replica.signal, then PostgreSQL's (standby
# wins over recovery when both exist, as in the engine).
SIGNAL_FILES = (('replica.signal', 'replica'), ('standby.signal', 'standby'),
                ('recovery.signal', 'recovery'))
DATA_DIR_MODE = 0o700
# The head of global/pg_control (ControlFileData), the same layout since
# PostgreSQL 9.x: system_identifier, pg_control_version, catalog_version_no,
# state, time, checkPoint. Native byte order: read on the engine's own host.
CONTROL_HEAD = struct.Struct('=QIIi4xqQ')
DB_SHUTDOWNED = 1
PSQL_CONNECT_TIMEOUT = 5
BASEBACKUP_CONNECT_TIMEOUT = 10


# ----------------------------------------------------------- pure helpers

def parse_controldata(text):
    """pg_controldata output (LC_ALL=C) -> {label: value}."""
    data = {}
    for line in (text or '').splitlines():
        if ':' not in line:
            continue
        key, value = line.split(':', 1)
        data[key.strip()] = value.strip()
    return data


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def segment_size_mb(cd):
    """The WAL segment size in MB from pg_controldata; None when not said."""
    size = _int_or_none(cd.get('Bytes per WAL segment'))
    return size // (1024 * 1024) if size else None


def controldata_facts(cd):
    """The part of pg_controldata the collection reports."""
    checkpoint_tli = _int_or_none(cd.get("Latest checkpoint's TimeLineID"))
    min_recovery_tli = _int_or_none(cd.get("Min recovery ending loc's timeline"))
    return {
        'system_identifier': cd.get('Database system identifier'),
        'cluster_state': cd.get('Database cluster state'),
        'checkpoint_lsn': cd.get('Latest checkpoint location'),
        'checkpoint_timeline': checkpoint_tli,
        # A stopped replica may have replayed beyond its last restartpoint.
        'offline_timeline': max([t for t in (checkpoint_tli, min_recovery_tli) if t] or [None]),
        'wal_segment_size_mb': segment_size_mb(cd),
    }


def passfile_line(host, port, user, password):
    """One ~/.pgpass line; ':' and '\\' escaped as libpq wants."""
    def esc(v):
        return str(v).replace('\\', '\\\\').replace(':', '\\:')
    return '%s:%s:*:%s:%s\n' % (esc(host), esc(port), esc(user), esc(password))


# --------------------------------------------------------------- instance

def local_argument_spec():
    """The module options that name the local instance (see ``from_params``)."""
    return dict(
        data_dir=dict(type='path', required=True),
        bin_dir=dict(type='path', default=DEFAULT_BIN_DIR),
        owner=dict(type='str', default='postgres'),
        port=dict(type='int', default=5432),
        socket_dir=dict(type='path', default='/var/run/postgresql'),
    )


def from_params(runner, params):
    """The Instance named by a module's ``local_argument_spec`` options."""
    return Instance(runner, params['data_dir'], bin_dir=params['bin_dir'], owner=params['owner'],
                    port=params['port'], socket_dir=params['socket_dir'])


class Instance(object):
    """The data directory ``data_dir`` served (maybe) on ``socket_dir``/``port``."""

    def __init__(self, runner, data_dir, bin_dir=DEFAULT_BIN_DIR, owner='postgres',
                 port=5432, socket_dir='/var/run/postgresql'):
        self.runner = runner
        self.data_dir = os.path.abspath(data_dir)
        self.bin_dir = bin_dir
        self.owner = owner
        self.port = int(port)
        self.socket_dir = socket_dir

    # -- paths and files ---------------------------------------------------

    def _bin(self, name):
        return os.path.join(self.bin_dir, name)

    def _path(self, *parts):
        return os.path.join(self.data_dir, *parts)

    def _owner_ids(self):
        try:
            pw = pwd.getpwnam(self.owner)
        except KeyError:
            raise PolarDBError('OS user %s (owner of the data directory) does not exist' % self.owner,
                               data_dir=self.data_dir)
        return pw.pw_uid, pw.pw_gid

    def dir_state(self):
        """{exists, initialized, entries, major_version, mode} of the data directory."""
        state = {'exists': False, 'initialized': False, 'entries': [], 'major_version': None,
                 'mode': None}
        try:
            st = os.stat(self.data_dir)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return state
            raise PolarDBError('cannot stat %s: %s' % (self.data_dir, e), data_dir=self.data_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise PolarDBError('%s exists and is not a directory' % self.data_dir,
                               data_dir=self.data_dir)
        state['exists'] = True
        state['mode'] = '%04o' % stat.S_IMODE(st.st_mode)
        state['entries'] = sorted(os.listdir(self.data_dir))
        version_file = self._path('PG_VERSION')
        if os.path.isfile(version_file):
            state['initialized'] = True
            with open(version_file) as f:
                state['major_version'] = f.read().strip()
        return state

    def signal(self):
        for filename, name in SIGNAL_FILES:
            if os.path.exists(self._path(filename)):
                return name
        return None

    def postmaster_pid(self):
        """PID of a live postmaster on this data directory, else None."""
        try:
            with open(self._path('postmaster.pid')) as f:
                pid = int(f.readline().strip())
        except (IOError, OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError as e:
            if e.errno != errno.EPERM:
                return None
        return pid

    def control_head(self):
        """The head of global/pg_control, read directly (no pg_controldata run, so
        it can be polled while the engine stops): {system_identifier (text),
        version, state (DBState number; DB_SHUTDOWNED once the shutdown checkpoint
        is written), checkpoint (LSN as int)}. None when it cannot be read, or two
        reads in a row differ (the checkpointer is writing it)."""
        heads = []
        for dummy in range(2):
            try:
                with open(self._path('global', 'pg_control'), 'rb') as f:
                    heads.append(f.read(CONTROL_HEAD.size))
            except (IOError, OSError):
                return None
        if len(heads[0]) != CONTROL_HEAD.size or heads[0] != heads[1]:
            return None
        sysid, version, dummy, state, dummy, checkpoint = CONTROL_HEAD.unpack(heads[0])
        return {'system_identifier': str(sysid), 'version': version, 'state': state,
                'checkpoint': checkpoint}

    # -- engine commands ---------------------------------------------------

    def controldata(self):
        res = self.runner.run([self._bin('pg_controldata'), '-D', self.data_dir],
                              environ={'LC_ALL': 'C'}, cwd='/', become_user=self.owner)
        cd = parse_controldata(res.stdout)
        if not cd.get('Database system identifier'):
            raise PolarDBError('pg_controldata -D %s printed no system identifier' % self.data_dir,
                               data_dir=self.data_dir, stdout=res.stdout)
        return cd

    def _psql(self, sql):
        """Run ``sql`` with psql on the local socket as the owner (peer authentication)."""
        return self.runner.run(
            [self._bin('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', self.socket_dir,
             '-p', str(self.port), '-d', 'postgres', '-c', sql],
            check=False, cwd='/', become_user=self.owner,
            environ={'LC_ALL': 'C', 'PGCONNECT_TIMEOUT': str(PSQL_CONNECT_TIMEOUT),
                     'PGAPPNAME': 'polardb.stack'})

    def execute(self, sql):
        """Run one statement on the local engine (psql as the owner); its output.

        PolarDBError when psql cannot connect or the statement fails."""
        res = self._psql(sql)
        if res.rc != 0:
            raise PolarDBError('%s on %s port %d failed (rc=%d): %s'
                               % (sql, self.socket_dir, self.port, res.rc,
                                  ' '.join((res.stderr or res.stdout or '').split())),
                               data_dir=self.data_dir, rc=res.rc, stderr=res.stderr)
        return res.stdout

    def probe(self):
        """(state, error): what the engine on the local socket says, if it answers
        and serves this data directory."""
        res = self._psql(PROBE_SQL)
        if res.rc == 2:  # psql: the connection failed (server down, starting up, ...)
            return None, ' '.join((res.stderr or res.stdout).split()) or 'psql could not connect'
        if res.rc != 0:
            raise PolarDBError('status query on %s port %d failed (rc=%d): %s'
                               % (self.socket_dir, self.port, res.rc, (res.stderr or res.stdout).strip()),
                               data_dir=self.data_dir, rc=res.rc, stderr=res.stderr)
        try:
            state = parse_probe(res.stdout.strip())
        except ValueError as e:
            raise PolarDBError('status query on port %d returned no JSON: %s' % (self.port, e),
                               data_dir=self.data_dir, stdout=res.stdout)
        served = state.get('data_directory')
        if served and os.path.realpath(served) != os.path.realpath(self.data_dir):
            return None, ('the engine on %s port %d serves %s, not %s'
                          % (self.socket_dir, self.port, served, self.data_dir))
        return state, None

    # -- facts -------------------------------------------------------------

    def unit(self, service):
        """{name, enabled, active} of the systemd unit ``service``; None when
        systemctl cannot tell."""
        res = self.runner.run(['systemctl', 'show', '--property=UnitFileState,ActiveState', '--', service],
                              check=False)
        props = dict(line.split('=', 1) for line in (res.stdout or '').splitlines() if '=' in line)
        if res.rc != 0 or 'ActiveState' not in props:
            return None
        return {'name': service, 'enabled': props.get('UnitFileState') == 'enabled',
                'active': props['ActiveState'] == 'active'}

    def info(self, service=None):
        """The ``instance`` result of instance_info (works with the engine down);
        with ``service``, also its systemd unit's state (``unit``)."""
        d = self.dir_state()
        info = {
            'unit': self.unit(service) if service else None,
            'data_dir': self.data_dir,
            'initialized': d['initialized'],
            'major_version': d['major_version'],
            'system_identifier': None,
            'cluster_state': None,
            'checkpoint_lsn': None,
            'checkpoint_timeline': None,
            'wal_segment_size_mb': None,
            'signal': None,
            'running': False,
            'in_recovery': None,
            'role': 'absent',
            'timeline': None,
            'lsn': {'current': None, 'receive': None, 'replay': None},
            'upstream': None,
            'server_version': None,
            'server_version_num': None,
            'flavour': None,
            'connect_error': None,
        }
        if not d['initialized']:
            return info
        facts = controldata_facts(self.controldata())
        for key in ('system_identifier', 'cluster_state', 'checkpoint_lsn', 'checkpoint_timeline',
                    'wal_segment_size_mb'):
            info[key] = facts[key]
        info['signal'] = self.signal()
        state, error = self.probe()
        if state is not None and state.get('system_identifier') not in (None, info['system_identifier']):
            state, error = None, ('the engine on port %d is cluster %s, the data directory holds %s'
                                  % (self.port, state['system_identifier'], info['system_identifier']))
        if state is None:
            info['role'] = 'stopped'
            info['timeline'] = facts['offline_timeline']
            info['connect_error'] = error
            return info
        info.update({
            'running': True,
            'in_recovery': state['in_recovery'],
            'role': state['role'],
            'timeline': state['timeline'],
            'lsn': state['lsn'],
            'upstream': state['upstream'],
            'server_version': state['server_version'],
            'server_version_num': state['server_version_num'],
            'flavour': state['flavour'],
        })
        return info

    # -- making the data directory ----------------------------------------

    def ensure(self, role, superuser='postgres', superuser_password=None, source=None,
               initdb_options=None, allow_overwrite=False, expected_system_identifier=None,
               wal_segment_size_mb=None, check_mode=False):
        """Make ``data_dir`` an initialised data directory. Returns
        {changed, actions, diff, wal_segment_size_mb}; ``actions`` says what was
        (check mode: would be) done. ``wal_segment_size_mb`` is given to initdb;
        a data directory made with another size is left as it is, with a
        ``warning`` (the size is fixed at initdb)."""
        if role not in ('primary', 'replica', 'standby'):
            raise PolarDBError('unknown role %r' % (role,))
        if role == 'primary' and not superuser_password:
            raise PolarDBError('a primary needs superuser_password for initdb', data_dir=self.data_dir)
        if role != 'primary' and not (source and source.get('host')):
            raise PolarDBError('a %s needs source.host for the base backup' % role,
                               data_dir=self.data_dir)
        initdb_options = DEFAULT_INITDB_OPTIONS if initdb_options is None else list(initdb_options)
        if wal_segment_size_mb is not None:
            if int(wal_segment_size_mb) not in WAL_SEGMENT_SIZES_MB:
                raise PolarDBError('wal_segment_size_mb %s is not a power of two from 1 to 1024'
                                   % wal_segment_size_mb)
            if not any(o.startswith('--wal-segsize') for o in initdb_options):
                initdb_options = initdb_options + ['--wal-segsize=%d' % int(wal_segment_size_mb)]
        expected = str(expected_system_identifier) if expected_system_identifier else None

        d = self.dir_state()
        before_id = None
        segment_mb = None
        if d['initialized']:
            cd = self.controldata()
            before_id = cd['Database system identifier']
            segment_mb = segment_size_mb(cd)
        before = {'initialized': d['initialized'], 'system_identifier': before_id}
        actions = []
        clear = False

        if d['initialized']:
            if expected is None or before_id == expected:
                if d['mode'] != '%04o' % DATA_DIR_MODE:
                    actions.append('chmod %04o %s (was %s)' % (DATA_DIR_MODE, self.data_dir, d['mode']))
                    if not check_mode:
                        os.chmod(self.data_dir, DATA_DIR_MODE)
                result = {'changed': bool(actions), 'actions': actions, 'wal_segment_size_mb': segment_mb,
                          'diff': {'before': before, 'after': dict(before)}}
                if wal_segment_size_mb is not None and segment_mb is not None \
                        and segment_mb != int(wal_segment_size_mb):
                    result['warning'] = ('%s was made with %s MB WAL segments, not %s: the size is fixed '
                                         'when a cluster is created, it stays as it is'
                                         % (self.data_dir, segment_mb, wal_segment_size_mb))
                return result
            if role == 'primary':
                raise PolarDBError(
                    '%s holds cluster %s, not the expected %s; initdb cannot make that cluster, '
                    'so a primary is never re-initialised to match' % (self.data_dir, before_id, expected),
                    data_dir=self.data_dir, system_identifier=before_id)
            if not allow_overwrite:
                raise PolarDBError(
                    '%s holds cluster %s, not the expected %s: set allow_overwrite to discard it'
                    % (self.data_dir, before_id, expected),
                    data_dir=self.data_dir, system_identifier=before_id)
            clear = True
        elif d['exists'] and d['entries']:
            if not allow_overwrite:
                shown = ', '.join(d['entries'][:8]) + (', ...' if len(d['entries']) > 8 else '')
                raise PolarDBError(
                    '%s is not empty and is no PostgreSQL data directory (no PG_VERSION; found: %s): '
                    'set allow_overwrite to discard its content' % (self.data_dir, shown),
                    data_dir=self.data_dir, entries=d['entries'])
            clear = True

        if clear:
            pid = self.postmaster_pid()
            if pid:
                raise PolarDBError('%s is in use by the running postmaster %d: stop it before '
                                   'the data directory is discarded' % (self.data_dir, pid),
                                   data_dir=self.data_dir, pid=pid)
            actions.append('discard the content of %s (%d entries)' % (self.data_dir, len(d['entries'])))
        if not d['exists']:
            actions.append('create %s (%04o, %s)' % (self.data_dir, DATA_DIR_MODE, self.owner))
        if role == 'primary':
            actions.append('initdb -D %s -U %s (%s)' % (self.data_dir, superuser, ' '.join(initdb_options)))
        else:
            actions.append('pg_basebackup -D %s from %s:%s as %s%s' % (
                self.data_dir, source['host'], source.get('port') or 5432,
                source.get('user') or 'replicator',
                ' (slot %s)' % source['slot'] if source.get('slot') else ''))
            actions.append('write %s' % self._path('standby.signal'))

        after = {'initialized': True, 'system_identifier': None}
        if check_mode:
            return {'changed': True, 'actions': actions, 'wal_segment_size_mb': None,
                    'diff': {'before': before, 'after': after}}

        uid, gid = self._owner_ids()
        if clear:
            self._clear()
        if not d['exists']:
            parent = os.path.dirname(self.data_dir)
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            os.mkdir(self.data_dir, DATA_DIR_MODE)
        os.chown(self.data_dir, uid, gid)
        os.chmod(self.data_dir, DATA_DIR_MODE)

        if role == 'primary':
            self._initdb(superuser, superuser_password, initdb_options, uid, gid)
        else:
            self._basebackup(source, uid, gid)
            self._write_owned(self._path('standby.signal'), '', uid, gid)
        os.chmod(self.data_dir, DATA_DIR_MODE)

        cd = self.controldata()
        after['system_identifier'] = cd['Database system identifier']
        if role != 'primary' and expected and after['system_identifier'] != expected:
            self._clear()
            raise PolarDBError(
                'the base backup from %s:%s is of cluster %s, not the expected %s; its files were removed'
                % (source['host'], source.get('port') or 5432, after['system_identifier'], expected),
                data_dir=self.data_dir, system_identifier=after['system_identifier'])
        return {'changed': True, 'actions': actions, 'wal_segment_size_mb': segment_size_mb(cd),
                'diff': {'before': before, 'after': after}}

    def _clear(self):
        for name in os.listdir(self.data_dir):
            path = self._path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)

    @staticmethod
    def _write_owned(path, content, uid, gid):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchown(fd, uid, gid)
            os.write(fd, content.encode('utf-8'))
        finally:
            os.close(fd)

    @staticmethod
    def _secret_file(prefix, content, uid, gid):
        """A 0600 temporary file owned by the engine user; the caller removes it."""
        fd, path = tempfile.mkstemp(prefix=prefix)
        try:
            os.fchmod(fd, 0o600)
            os.fchown(fd, uid, gid)
            os.write(fd, content.encode('utf-8'))
        except Exception:
            os.close(fd)
            os.remove(path)
            raise
        os.close(fd)
        return path

    def _initdb(self, superuser, password, options, uid, gid):
        pwfile = self._secret_file('polardb-initdb-', password + '\n', uid, gid)
        try:
            self.runner.run([self._bin('initdb'), '-D', self.data_dir, '-U', superuser,
                             '--pwfile=%s' % pwfile, '--auth-local=peer',
                             '--auth-host=scram-sha-256'] + list(options),
                            cwd='/', become_user=self.owner)
        finally:
            os.remove(pwfile)

    def _basebackup(self, source, uid, gid):
        host = source['host']
        port = int(source.get('port') or 5432)
        user = source.get('user') or 'replicator'
        argv = [self._bin('pg_basebackup'), '-h', host, '-p', str(port), '-U', user,
                '-D', self.data_dir, '-X', 'stream']
        if source.get('slot'):
            argv += ['-S', source['slot']]
        argv += ['--checkpoint=fast', '--no-password']
        environ = {'PGCONNECT_TIMEOUT': str(BASEBACKUP_CONNECT_TIMEOUT)}
        if source.get('application_name'):
            environ['PGAPPNAME'] = source['application_name']
        if source.get('ssl_mode'):
            environ['PGSSLMODE'] = source['ssl_mode']
        if source.get('ca_cert'):
            environ['PGSSLROOTCERT'] = source['ca_cert']
        passfile = None
        if source.get('password'):
            passfile = self._secret_file('polardb-pgpass-',
                                         passfile_line(host, port, user, source['password']), uid, gid)
            environ['PGPASSFILE'] = passfile
        try:
            self.runner.run(argv, environ=environ, cwd='/', become_user=self.owner)
        finally:
            if passfile:
                os.remove(passfile)
