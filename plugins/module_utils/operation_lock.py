# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-cluster operation lock: a lease, one lifecycle operation at a time, resumable.

One lease record per node of the cluster, kept in a ``LeaseStore``. The record
names its holder (a run of a playbook), the operation and what it decided
(``params``, what a resumed run needs), the lease duration and the last renewal.

Expiry is judged by the node that keeps the record, with its own clock only:
every write stamps the node's boot id and its boot-time clock, and the lease has
expired when that clock advanced ``lease_seconds`` past the last renewal (after a
reboot of the node the wall clock is used instead). No clock of one host is ever
compared with the clock of another.

Store interface (``read``, ``cas``): ``cas(cluster, expected_version, record)``
writes ``record`` (or deletes when it is None) only if the stored version is
still ``expected_version`` (None: no record); versions are opaque tokens. A
``coordination.k8s.io/v1`` Lease maps onto it (docs/architecture.md):
``read`` = GET, ``cas`` = PUT with ``metadata.resourceVersion`` (POST when none,
DELETE with a resourceVersion precondition), a conflict (409) = False.

The all-or-nothing acquisition over the nodes of a cluster is driven by the
playbook (roles/lock/tasks/take.yml: node by node in a fixed order, stopping at
the first refusal); ``take_outcome`` decides from the per-node results whether
the run holds the lock (a majority of the cluster's nodes granted it) or must
roll back, and ``inspect_decision`` what the per-node records found by
``state=query`` mean (start, resume, or refuse).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import copy
import errno
import fcntl
import json
import os
import re
import socket
import tempfile
import time

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

DEFAULT_LOCK_DIR = '/var/lib/polardb-stack/locks'
DEFAULT_LEASE_SECONDS = 30
STATES = ('query', 'acquired', 'renewed', 'released')
CLUSTER_RE = re.compile(r'^[a-z][a-z0-9_-]{0,30}$')
MODULE = 'polardb.stack.operation_lock'
CAS_ATTEMPTS = 5


# --- the node's clock ----------------------------------------------------------------------------

class NodeClock(object):
    """The clock of the node that keeps the record: wall time for people and
    after a reboot, the boot-time clock (counts suspend, never steps) otherwise."""

    resolution = 0.0  # every module run on the node reads the same clock

    def wall(self):
        return time.time()

    def mono(self):
        clock = getattr(time, 'CLOCK_BOOTTIME', None)
        if clock is not None and hasattr(time, 'clock_gettime'):
            return time.clock_gettime(clock)
        return getattr(time, 'monotonic', time.time)()

    def boot_id(self):
        try:
            with open('/proc/sys/kernel/random/boot_id') as f:
                return f.read().strip()
        except (IOError, OSError):
            return None

    def sleep(self, seconds):
        time.sleep(seconds)


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def new_version():
    return binascii.hexlify(os.urandom(8)).decode('ascii')


# --- the store -----------------------------------------------------------------------------------

class LeaseStore(object):
    """Where lease records live. ``read`` returns the record (a dict with a
    ``version``) or None; ``cas`` replaces it atomically if nobody changed it."""

    def read(self, cluster):
        raise NotImplementedError

    def cas(self, cluster, expected_version, record):
        """Write ``record`` (None: delete) if the stored version is ``expected_version``
        (None: there must be no record). Returns False on a conflict."""
        raise NotImplementedError

    def where(self, cluster):
        return cluster

    def hostname(self):
        return socket.gethostname()


class FileLeaseStore(LeaseStore):
    """``<lock_dir>/<cluster>.json`` on the node; a compare-and-swap holds an
    exclusive flock on ``<lock_dir>/<cluster>.flock`` while it compares and writes.
    Writes are durable (file and directory fsynced) and atomic (rename)."""

    def __init__(self, lock_dir=DEFAULT_LOCK_DIR, hostname=None):
        self.lock_dir = lock_dir
        self._hostname = hostname

    def hostname(self):
        return self._hostname or socket.gethostname()

    def path(self, cluster):
        return os.path.join(self.lock_dir, '%s.json' % cluster)

    where = path

    def _flock_path(self, cluster):
        return os.path.join(self.lock_dir, '%s.flock' % cluster)

    def read(self, cluster):
        path = self.path(cluster)
        try:
            with open(path, 'rb') as f:
                text = f.read().decode('utf-8')
        except (IOError, OSError) as e:
            if e.errno == errno.ENOENT:
                return None
            raise PolarDBError('cannot read lock file %s: %s' % (path, e), lock_file=path)
        return parse(text, path)

    def _fsync_dir(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ensure_dir(self):
        if os.path.isdir(self.lock_dir):
            return
        try:
            os.makedirs(self.lock_dir, 0o700)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        os.chmod(self.lock_dir, 0o700)
        self._fsync_dir(os.path.dirname(os.path.abspath(self.lock_dir)))

    def _write(self, cluster, text):
        fd, tmp = tempfile.mkstemp(dir=self.lock_dir, prefix='.%s.json.' % cluster, suffix='.tmp')  # mode 0600
        try:
            os.write(fd, text.encode('utf-8'))
            os.fsync(fd)
            os.close(fd)
            fd = None
            getattr(os, 'replace', os.rename)(tmp, self.path(cluster))
        except Exception:
            if fd is not None:
                os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def cas(self, cluster, expected_version, record):
        path = self.path(cluster)
        try:
            self._ensure_dir()
            fd = os.open(self._flock_path(cluster), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = self.read(cluster)
                if (current or {}).get('version') != expected_version:
                    return False
                if record is None:
                    if current is not None:
                        os.unlink(path)
                else:
                    self._write(cluster, dump(record))
                self._fsync_dir(self.lock_dir)
                return True
            finally:
                os.close(fd)  # releases the flock
        except (IOError, OSError) as e:
            raise PolarDBError('cannot write lock file %s: %s' % (path, e), lock_file=path)


def dump(record):
    return json.dumps(record, indent=2, sort_keys=True) + '\n'


def parse(text, path):
    """The record as a dict; a corrupt file raises, naming its path."""
    try:
        record = json.loads(text)
    except ValueError as e:
        raise PolarDBError('lock file %s is corrupt (%s): inspect it and remove it by hand' % (path, e),
                           lock_file=path, lock=None, previous=None)
    if not isinstance(record, dict) or not isinstance(record.get('owner'), dict) or not record.get('operation'):
        raise PolarDBError('lock file %s is corrupt (not a lock: no operation or owner): inspect it and remove it by hand'
                           % path, lock_file=path, lock=None, previous=None)
    record.setdefault('version', None)
    return record


# --- one node's lease ----------------------------------------------------------------------------

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


def elapsed(lock, clock):
    """Seconds since the last renewal, measured by this node's clock."""
    stamp = lock.get('clock') or {}
    if stamp.get('boot_id') and stamp.get('boot_id') == clock.boot_id() and stamp.get('mono') is not None:
        return clock.mono() - float(stamp['mono'])
    # the node rebooted since (or an old record): its wall clock
    return clock.wall() - float(stamp.get('wall') or 0)


def lease_left(lock, clock):
    """Seconds until a record's lease expires (negative: expired that long ago)."""
    return float(lock.get('lease_seconds') or 0) - elapsed(lock, clock)


def lease_state(lock, clock):
    """``{expired, expires_in}`` of a record, judged by this node's clock."""
    if lock is None:
        return dict(expired=None, expires_in=None)
    left = lease_left(lock, clock)
    return dict(expired=left <= 0, expires_in=round(max(left, 0.0), 1))


def _stamp(lock, clock, renewal=True):
    now = clock.wall()
    lock['clock'] = dict(boot_id=clock.boot_id(), mono=clock.mono(), wall=now)
    lock['updated'] = iso(now)
    if renewal:
        lock['renewed'] = iso(now)
        lock['renewals'] = int(lock.get('renewals') or 0) + 1
    lock['version'] = new_version()
    return lock


def _check_owner(owner, state):
    if not isinstance(owner, dict) or not owner.get('run_id'):
        raise PolarDBError('owner with a run_id is required with state=%s' % state, lock=None, previous=None)
    return dict(run_id='%s' % owner['run_id'], controller=owner.get('controller'), pid=owner.get('pid'))


def _mine(lock, owner):
    return lock is not None and (lock.get('owner') or {}).get('run_id') == owner['run_id']


def _refusal(cluster, lock, store, node, clock, releasing=False):
    lease = lease_state(lock, clock)
    if releasing:
        consequence = 'only that run can release it'
    elif lease['expired']:
        consequence = ('its lease expired; only that operation may take it (run %s again to resume it), '
                       'or abandon it with polardb_takeover_lock=true' % lock.get('operation'))
    else:
        consequence = ('its lease (%ss, renewed %s) runs %.0f s more: that run is alive or died less than '
                       'a lease ago' % (lock.get('lease_seconds'), lock.get('renewed'), lease['expires_in']))
    msg = 'cluster %s is locked on %s: %s; %s.' % (cluster, node, describe(lock), consequence)
    return PolarDBError(msg, lock=lock, previous=lock, lock_file=store.where(cluster), refused=True, **lease)


def _result(store, cluster, clock, previous, lock, changed):
    out = dict(changed=changed, lock=lock, previous=previous, lock_file=store.where(cluster),
               diff=dict(before=dump(previous) if previous is not None else '',
                         after=dump(lock) if lock is not None else '',
                         before_header=store.where(cluster), after_header=store.where(cluster)))
    out.update(lease_state(lock, clock))
    return out


def _decide(store, cluster, state, previous, clock, operation, params, owner, lease_seconds, takeover,
            expect_version, restore, node):
    """What to write given the current record: (new record, write?) or a refusal."""
    if state == 'acquired':
        if _mine(previous, owner):
            if previous.get('operation') != operation and not takeover:
                raise PolarDBError(
                    'cluster %s is already locked by this run for %s; release it before acquiring it for %s'
                    % (cluster, describe(previous), operation), lock=previous, previous=previous,
                    lock_file=store.where(cluster), refused=True)
            lock = copy.deepcopy(previous)
            merged = dict(previous.get('params') or {}) if previous.get('operation') == operation else {}
            merged.update(params)
            lock.update(operation=operation, params=merged, lease_seconds=lease_seconds, owner=owner)
            return _stamp(lock, clock), True
        if expect_version is not None and (previous or {}).get('version') != (expect_version or None):
            raise PolarDBError(
                'cluster %s: the lock on %s changed since this run read it (now %s); run again'
                % (cluster, node, describe(previous) if previous else 'free'),
                lock=previous, previous=previous, lock_file=store.where(cluster), refused=True, raced=True)
        if previous is None:
            now = iso(clock.wall())
            lock = dict(cluster=cluster, operation=operation, params=params, owner=owner, started=now,
                        acquired=now, lease_seconds=lease_seconds, renewals=0, transitions=0, host=node)
            return _stamp(lock, clock), True
        lease = lease_state(previous, clock)
        same = previous.get('operation') == operation
        if not lease['expired'] or not (same or takeover):
            raise _refusal(cluster, previous, store, node, clock)
        merged = dict(previous.get('params') or {}) if same else {}
        merged.update(params)
        now = iso(clock.wall())
        lock = dict(cluster=cluster, operation=operation, params=merged, owner=owner,
                    started=previous.get('started') if same else now, acquired=now,
                    lease_seconds=lease_seconds, renewals=0,
                    transitions=int(previous.get('transitions') or 0) + 1, host=node,
                    taken_over_from=previous.get('owner'))
        return _stamp(lock, clock), True
    if state == 'renewed':
        if previous is None:
            return None, False  # released: the heartbeat stops
        if not _mine(previous, owner):
            raise PolarDBError('cluster %s: the lease on %s is lost, %s holds it' % (cluster, node, describe(previous)),
                               lock=previous, previous=previous, lock_file=store.where(cluster), lost=True)
        return _stamp(copy.deepcopy(previous), clock), True
    if state == 'released':
        if previous is None:
            return None, False
        if not _mine(previous, owner) and not takeover:
            raise _refusal(cluster, previous, store, node, clock, releasing=True)
        if restore:
            # roll back a takeover: the lock of the dead run comes back as it was (its params are the resume)
            lock = copy.deepcopy(restore)
            lock['version'] = new_version()
            return lock, True
        return None, True
    return previous, False


def ensure_lock(store, cluster, state='query', operation=None, params=None, owner=None, takeover=False,
                lease_seconds=DEFAULT_LEASE_SECONDS, expect_version=None, restore=None, wait=0,
                expect_wait=0, check_mode=False, clock=None, **ignored):
    """Bring this node's lease record of ``cluster`` to ``state``.

    Returns ``{changed, lock, previous, lock_file, diff, expired, expires_in}``; raises
    PolarDBError (with ``lock``, ``previous`` and ``refused``) when another run holds it.
    """
    clock = clock or NodeClock()
    if not cluster or not CLUSTER_RE.match('%s' % cluster):
        raise PolarDBError('invalid cluster name %r: must match %s' % (cluster, CLUSTER_RE.pattern),
                           lock=None, previous=None)
    if state not in STATES:
        raise PolarDBError('invalid state %r: one of %s' % (state, ', '.join(STATES)), lock=None, previous=None)
    if state == 'acquired' and not operation:
        raise PolarDBError('operation is required with state=acquired', lock=None, previous=None)
    if int(lease_seconds) < 3:
        raise PolarDBError('lease_seconds must be at least 3 (got %s)' % lease_seconds, lock=None, previous=None)
    if state != 'query':
        owner = _check_owner(owner, state)
    params = dict(params or {})
    node = store.hostname()

    if state == 'query':
        previous = store.read(cluster)
        out = _result(store, cluster, clock, previous, previous, False)
        out.update(waited=0.0, renewed_while_waiting=False)
        mine = isinstance(owner, dict) and owner.get('run_id') and _mine(previous, owner)
        return _wait(store, cluster, clock, previous, wait, out) if wait and not mine else out

    if state == 'acquired' and expect_version is not None and expect_wait:
        _wait_for_version(store, cluster, clock, expect_version or None, expect_wait)
    for _attempt in range(CAS_ATTEMPTS):
        previous = store.read(cluster)
        lock, write = _decide(store, cluster, state, previous, clock, operation, params, owner, int(lease_seconds),
                              takeover, expect_version, restore, node)
        if not write or check_mode:
            return _result(store, cluster, clock, previous, lock if write else previous, write)
        if store.cas(cluster, (previous or {}).get('version'), lock):
            return _result(store, cluster, clock, previous, lock, True)
        # another writer got in between: decide again from what it wrote
    raise PolarDBError('cluster %s: the lock on %s kept changing while writing it; run again' % (cluster, node),
                       lock=None, previous=None, lock_file=store.where(cluster))


# Who holds a lease: the operation_lock module's owner option, and release_lock's.
OWNER_ARGUMENT_SPEC = dict(type='dict', options=dict(
    run_id=dict(type='str', required=True),
    controller=dict(type='str'),
    pid=dict(type='int'),
))


# The option a module that reads a node anyway takes to read the lock too
# (doc fragment polardb.stack.operation_lock_read).
READ_ARGUMENT_SPEC = dict(type='dict', options=dict(
    cluster=dict(type='str', required=True),
    lock_dir=dict(type='path', default=DEFAULT_LOCK_DIR),
))


# The option a module whose run ends a lifecycle operation on a node takes to
# release the run's record there when its own step succeeded (doc fragment
# polardb.stack.operation_lock_release): the lock role's release needs no
# module run of its own on such a node.
RELEASE_ARGUMENT_SPEC = dict(type='dict', options=dict(
    READ_ARGUMENT_SPEC['options'], owner=dict(OWNER_ARGUMENT_SPEC, required=True)))


def release_record(option, check_mode=False, store=None):
    """``state=released`` of ``option['owner']``'s record, for the ``release_lock``
    option: ``{released, changed, lock, previous, lock_file}`` (``released``: no
    record of this run is left, removed now or there was none); never raises - a
    record this run cannot release (``released`` false, ``error``) is left for the
    lock role's release task, which reports it."""
    try:
        out = ensure_lock(store or FileLeaseStore(option['lock_dir']), option['cluster'], state='released',
                          owner=option['owner'], check_mode=check_mode)
    except PolarDBError as e:
        return dict(released=False, error=e.msg)
    out.pop('diff', None)
    out['released'] = True
    return out


def read_record(option, store=None):
    """What ``state=query`` (no wait) returns for the ``operation_lock`` option."""
    found = ensure_lock(store or FileLeaseStore(option['lock_dir']), option['cluster'], state='query')
    found.pop('diff', None)
    return found


def _wait_for_version(store, cluster, clock, version, wait):
    """Read until the record is ``version`` again (None: no record), at most
    ``wait`` seconds: a run that raced for the lock and lost gives back what it took."""
    deadline = clock.mono() + float(wait)
    while ((store.read(cluster) or {}).get('version') or None) != version and clock.mono() < deadline:
        clock.sleep(0.1)


def _wait(store, cluster, clock, first, wait, out):
    """Wait (read only) until another run's lease expires or is released, at most
    ``wait`` seconds; stop as soon as its holder renews it (it is alive).
    The wait goes on for the clock's resolution past the expiry, so that the
    next module run, reading the clock anew, judges it expired too."""
    start = clock.mono()
    lock = first
    margin = getattr(clock, 'resolution', 0.0)
    while lock is not None and lease_left(lock, clock) > -margin:
        spent = clock.mono() - start
        if spent >= wait:
            break
        clock.sleep(min(1.0, wait - spent))
        current = store.read(cluster)
        if current is not None and current.get('version') != lock.get('version'):
            # renewed by its holder, or taken by another run: alive either way
            lock = current
            out.update(renewed_while_waiting=True)
            break
        lock = current
    out.update(_result(store, cluster, clock, first, lock, False))
    out.update(waited=round(clock.mono() - start, 1))
    return out


# --- the cluster: decisions over the nodes' records -----------------------------------------------

def quorum(cluster_nodes):
    """A strict majority of the cluster's nodes (all of its inventory hosts)."""
    return len(cluster_nodes) // 2 + 1


def read_free(reads, nodes):
    """True when this run's earlier reads (``{node: registered result with
    operation_lock}``) saw every node of ``nodes`` without a record: the lock
    role then need not read again. A node not read, or holding one, is False."""
    for node in nodes:
        found = ((reads or {}).get(node) or {}).get('operation_lock')
        if not isinstance(found, dict) or found.get('lock') is not None:
            return False
    return True


def lock_records(queries, discovered=None):
    """``{node: what the node holds}`` for ``inspect_decision``: each node's
    registered ``state=query`` result, or, where that task was skipped, the
    ``operation_lock`` that an earlier module run of this run read on the node
    (cluster_info in the discovery, node_info in the preflight).
    A node read by neither is an error: never taken for a free lock."""
    out = {}
    for node, query in (queries or {}).items():
        if query and not query.get('skipped'):
            out[node] = query
            continue
        found = ((discovered or {}).get(node) or {}).get('operation_lock')
        if not isinstance(found, dict):
            raise PolarDBError('the operation lock on %s was not read (neither by the lock role nor by the '
                               'discovery): refusing to take it for free' % node)
        out[node] = found
    return out


def inspect_decision(queries, operation, owner_run_id=None, takeover=False):
    """From ``{node: query result}`` of the nodes that answered: what this run does.

    Returns ``{action: start|resume|refuse, lock, reason, holders, alive}``: ``resume``
    with the lock whose params the run goes on with, ``refuse`` with why.
    """
    found = dict((n, q.get('lock')) for n, q in queries.items() if q.get('lock'))
    others = dict((n, lk) for n, lk in found.items() if (lk.get('owner') or {}).get('run_id') != owner_run_id)
    runs = {}
    for n in sorted(others):
        runs.setdefault(others[n]['owner']['run_id'], []).append(n)
    alive = sorted(n for n in others if not queries[n].get('expired'))
    out = dict(action='start', lock=None, reason=None, holders=runs, alive=alive, nodes=sorted(others))
    if not others:
        return out
    # the run most nodes hold (never a comparison of two hosts' clocks)
    run_id = sorted(runs, key=lambda r: (-len(runs[r]), r))[0]
    lock = others[runs[run_id][0]]
    out['lock'] = lock
    if alive:
        out.update(action='refuse', reason='alive')
    elif len(runs) > 1 and not takeover:
        out.update(action='refuse', reason='several')
    elif lock.get('operation') != operation and not takeover:
        out.update(action='refuse', reason='other_operation')
    elif lock.get('operation') == operation:
        out.update(action='resume')
    return out


def take_answers(attempts, check_mode=False):
    """``[[node, registered result of state=acquired]]`` -> the per-node results
    ``take_outcome`` reads; nodes not asked (skipped) are left out."""
    answers = []
    for node, result in attempts:
        result = result or {}
        if result.get('skipped') or not result:
            continue
        unreachable = bool(result.get('unreachable'))
        msg = '' if unreachable else (result.get('msg') or '')
        answers.append(dict(node=node, unreachable=unreachable,
                            granted=not unreachable and not result.get('failed') and not msg,
                            refused=bool(msg), raced=bool(msg) and bool(result.get('raced')), msg=msg,
                            changed=not check_mode,
                            lock=result.get('lock'), previous=result.get('previous')))
    return answers


def take_outcome(results, cluster_nodes, retry_raced=False):
    """From the per-node results of the acquisition, in the nodes' fixed order
    (``[{node, granted, refused, raced, msg, lock, previous, unreachable}]``):
    does this run hold the lock?

    It does when no node refused and a majority of ``cluster_nodes`` granted it.
    Otherwise ``rollback`` lists what this attempt took, in reverse order, with the
    record each node had before (put back: a taken-over lock keeps its params).

    With ``retry_raced`` (every node was asked at once): when the first node that
    answered granted it and every refusal came from a record written after this
    run read it (another run racing for the lock), this run won the race - the
    other one lost that first node and gives back what it took. ``retry`` then
    lists the nodes to ask again, waiting for that, and nothing is rolled back.
    """
    granted = [r for r in results if r.get('granted')]
    refused = [r for r in results if r.get('refused')]
    need = quorum(cluster_nodes)
    ok = not refused and len(granted) >= need
    out = dict(ok=ok, granted=[r['node'] for r in granted], quorum=need,
               refused=dict((r['node'], r.get('msg')) for r in refused),
               unreachable=[r['node'] for r in results if r.get('unreachable')],
               holder=refused[0].get('lock') if refused else None, rollback=[], retry=[])
    answered = [r for r in results if not r.get('unreachable')]
    if retry_raced and refused and answered and answered[0].get('granted') and all(r.get('raced') for r in refused):
        out['retry'] = [r['node'] for r in refused]
        return out
    if not ok:
        out['rollback'] = [dict(node=r['node'], restore=r.get('previous') if _taken_over(r) else None)
                           for r in reversed(granted) if r.get('changed', True) and not _was_ours(r)]
    return out


def _taken_over(result):
    previous = result.get('previous')
    return previous is not None and (previous.get('owner') or {}).get('run_id') != \
        ((result.get('lock') or {}).get('owner') or {}).get('run_id')


def _was_ours(result):
    previous = result.get('previous')
    return previous is not None and not _taken_over(result)
