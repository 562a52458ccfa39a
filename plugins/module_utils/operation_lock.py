# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-cluster operation lock: one lifecycle operation at a time, resumable.

The lock is a JSON file ``<lock_dir>/<cluster>.json`` on every node of the
cluster. ``ensure_lock`` decides and acts through a ``LockFiles`` adapter (the
only code that touches the file system), so unit tests run it in ``tmp_path``.

Content::

    {cluster, operation, params, owner: {run_id, controller, pid},
     started, updated, host[, taken_over_from]}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import errno
import json
import os
import re
import socket
import tempfile
import time

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

DEFAULT_LOCK_DIR = '/var/lib/polardb-stack/locks'
STATES = ('query', 'acquired', 'released')
CLUSTER_RE = re.compile(r'^[a-z][a-z0-9_-]{0,30}$')
MODULE = 'polardb.stack.operation_lock'


def utc_now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


class LockFiles(object):
    """The lock files of one directory. Writes are durable: the file and the
    directory are fsynced, so a lock survives a power cut of the host."""

    def __init__(self, lock_dir=DEFAULT_LOCK_DIR, clock=utc_now, hostname=None):
        self.lock_dir = lock_dir
        self.clock = clock
        self._hostname = hostname

    def hostname(self):
        return self._hostname or socket.gethostname()

    def now(self):
        return self.clock()

    def path(self, cluster):
        return os.path.join(self.lock_dir, '%s.json' % cluster)

    def read(self, cluster):
        """The file's text, or None when there is none."""
        try:
            with open(self.path(cluster), 'rb') as f:
                return f.read().decode('utf-8')
        except (IOError, OSError) as e:
            if e.errno == errno.ENOENT:
                return None
            raise PolarDBError('cannot read lock file %s: %s' % (self.path(cluster), e), lock_file=self.path(cluster))

    def _fsync_dir(self):
        fd = os.open(self.lock_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ensure_dir(self):
        if os.path.isdir(self.lock_dir):
            return
        parent = os.path.dirname(os.path.abspath(self.lock_dir))
        try:
            os.makedirs(self.lock_dir, 0o700)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        os.chmod(self.lock_dir, 0o700)
        fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_temp(self, cluster, text):
        fd, tmp = tempfile.mkstemp(dir=self.lock_dir, prefix='.%s.json.' % cluster, suffix='.tmp')  # mode 0600
        try:
            os.write(fd, text.encode('utf-8'))
            os.fsync(fd)
        except Exception:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _link(self, tmp, path):
        os.link(tmp, path)

    def create(self, cluster, text):
        """Create the lock file atomically; False when it exists (another run won)."""
        path = self.path(cluster)
        try:
            self._ensure_dir()
            tmp = self._write_temp(cluster, text)
            try:
                self._link(tmp, path)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    return False
                raise
            finally:
                os.unlink(tmp)
            self._fsync_dir()
        except (IOError, OSError) as e:
            raise PolarDBError('cannot create lock file %s: %s' % (path, e), lock_file=path)
        return True

    def replace(self, cluster, text):
        path = self.path(cluster)
        try:
            self._ensure_dir()
            tmp = self._write_temp(cluster, text)
            try:
                getattr(os, 'replace', os.rename)(tmp, path)  # atomic; os.rename replaces on POSIX too
            except Exception:
                os.unlink(tmp)
                raise
            self._fsync_dir()
        except (IOError, OSError) as e:
            raise PolarDBError('cannot write lock file %s: %s' % (path, e), lock_file=path)

    def remove(self, cluster):
        path = self.path(cluster)
        try:
            os.unlink(path)
            self._fsync_dir()
        except (IOError, OSError) as e:
            if e.errno != errno.ENOENT:
                raise PolarDBError('cannot remove lock file %s: %s' % (path, e), lock_file=path)


def dump(lock):
    return json.dumps(lock, indent=2, sort_keys=True) + '\n'


def load(files, cluster):
    """The lock as a dict, or None; a corrupt file raises, naming its path."""
    text = files.read(cluster)
    if text is None:
        return None
    path = files.path(cluster)
    try:
        lock = json.loads(text)
    except ValueError as e:
        raise PolarDBError('lock file %s is corrupt (%s): inspect it and remove it by hand' % (path, e),
                           lock_file=path, lock=None, previous=None)
    if not isinstance(lock, dict) or not isinstance(lock.get('owner'), dict) or not lock.get('operation'):
        raise PolarDBError('lock file %s is corrupt (not a lock: no operation or owner): inspect it and remove it by hand'
                           % path, lock_file=path, lock=None, previous=None)
    return lock


def _scalar(value):
    if isinstance(value, (dict, list, bool)) or value is None:
        return json.dumps(value, sort_keys=True)
    return '%s' % value


def describe(lock):
    """``switchover {from: pdb1, to: pdb2} started ... by run R (pid P on C)``."""
    params = lock.get('params') or {}
    what = lock.get('operation')
    if params:
        what += ' {%s}' % ', '.join('%s: %s' % (k, _scalar(params[k])) for k in sorted(params))
    owner = lock.get('owner') or {}
    who = 'run %s' % owner.get('run_id')
    where = []
    if owner.get('pid') is not None:
        where.append('pid %s' % owner['pid'])
    if owner.get('controller'):
        where.append('on %s' % owner['controller'])
    if where:
        who += ' (%s)' % ' '.join(where)
    return '%s started %s by %s' % (what, lock.get('started'), who)


def _locked_error(cluster, lock, files, releasing=False):
    if releasing:
        consequence = 'only that run can release it'
    else:
        consequence = 'another operation cannot start until it ends'
    msg = ('cluster %s is locked: %s; %s. If that run is dead, run the same operation again (it resumes), '
           'or release the lock with %s state=released takeover=true.' % (cluster, describe(lock), consequence, MODULE))
    return PolarDBError(msg, lock=lock, previous=lock, lock_file=files.path(cluster))


def _check_owner(owner, state):
    if not isinstance(owner, dict) or not owner.get('run_id'):
        raise PolarDBError('owner with a run_id is required with state=%s' % state, lock=None, previous=None)
    return dict(run_id='%s' % owner['run_id'], controller=owner.get('controller'), pid=owner.get('pid'))


def ensure_lock(files, cluster, state='query', operation=None, params=None, owner=None, takeover=False,
                check_mode=False, **ignored):
    """Bring the lock of ``cluster`` to ``state``.

    Returns ``{changed, lock, previous, lock_file, diff}``; raises PolarDBError (with
    ``lock`` and ``previous``) when another run holds the lock.
    """
    if not cluster or not CLUSTER_RE.match('%s' % cluster):
        raise PolarDBError('invalid cluster name %r: must match %s' % (cluster, CLUSTER_RE.pattern),
                           lock=None, previous=None)
    if state not in STATES:
        raise PolarDBError('invalid state %r: one of %s' % (state, ', '.join(STATES)), lock=None, previous=None)
    if state == 'acquired' and not operation:
        raise PolarDBError('operation is required with state=acquired', lock=None, previous=None)
    if state != 'query':
        owner = _check_owner(owner, state)
    params = dict(params or {})
    path = files.path(cluster)
    previous = load(files, cluster)
    lock = previous
    write = None  # None, 'create', 'replace', 'remove'

    if state == 'acquired':
        now = files.now()
        if previous is None:
            lock = dict(cluster=cluster, operation=operation, params=params, owner=owner,
                        started=now, updated=now, host=files.hostname())
            write = 'create'
        elif previous['owner'].get('run_id') == owner['run_id'] and previous.get('operation') == operation:
            merged = dict(previous.get('params') or {})
            merged.update(params)
            if merged != (previous.get('params') or {}):
                lock = copy.deepcopy(previous)
                lock.update(params=merged, updated=now)
                write = 'replace'
        elif takeover:
            same_operation = previous.get('operation') == operation
            if same_operation:
                merged = dict(previous.get('params') or {})
                merged.update(params)
            else:
                merged = params
            lock = dict(cluster=cluster, operation=operation, params=merged, owner=owner,
                        started=previous.get('started') if same_operation else now,
                        updated=now, host=files.hostname())
            if previous['owner'].get('run_id') != owner['run_id']:
                lock['taken_over_from'] = previous['owner']
            elif previous.get('taken_over_from'):
                lock['taken_over_from'] = previous['taken_over_from']
            write = 'replace'
        elif previous['owner'].get('run_id') == owner['run_id']:
            raise PolarDBError(
                'cluster %s is already locked by this run for %s; release it before acquiring it for %s '
                '(or pass takeover=true)' % (cluster, describe(previous), operation),
                lock=previous, previous=previous, lock_file=path)
        else:
            raise _locked_error(cluster, previous, files)
    elif state == 'released':
        if previous is not None:
            if previous['owner'].get('run_id') != owner['run_id'] and not takeover:
                raise _locked_error(cluster, previous, files, releasing=True)
            lock = None
            write = 'remove'

    if write and not check_mode:
        if write == 'create':
            if not files.create(cluster, dump(lock)):
                # another run created it between our read and our link: it won
                winner = load(files, cluster)
                if winner is None:
                    raise PolarDBError('lock file %s appeared and vanished while acquiring it; run again' % path,
                                       lock_file=path, lock=None, previous=previous)
                raise _locked_error(cluster, winner, files)
        elif write == 'replace':
            files.replace(cluster, dump(lock))
        else:
            files.remove(cluster)

    return dict(
        changed=write is not None,
        lock=lock,
        previous=previous,
        lock_file=path,
        diff=dict(before=dump(previous) if previous is not None else '',
                  after=dump(lock) if lock is not None else '',
                  before_header=path, after_header=path),
    )
