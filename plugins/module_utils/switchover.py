# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Switchover: move the RW role from this host's engine to a streaming replica.

``Switchover.run()`` runs ON THE CURRENT RW's host, in one process, so that the
write-unavailability window holds only what it must:

1. checks, before any change: the local engine runs and is not in recovery; the
   target is reachable, in recovery, of the same system identifier, streams
   from this RW (a streaming walsender of this RW serves its slot or its
   application_name) and lags at most ``max_lag_bytes``;
2. ``CHECKPOINT`` locally, again while the last one took more than 0.1 s (at
   most 3 times; outside the window: the shutdown checkpoint is then quick); wait until the target replayed up to this RW's flush position of that
   moment (outside the window too: under load the replay may lag, and after
   the stop only the last moments are left to replay; a target that cannot
   keep up is refused, nothing changed);
3. t0; stop the local engine (fast shutdown: backends end, the shutdown
   checkpoint is written, the walsenders send all WAL including that record to
   the connected standbys, the postmaster exits). The stop runs in the
   background while ``global/pg_control`` is read every 2 ms: once it says
   "shut down" the shutdown checkpoint's location is known and no write can
   happen any more, so the wait for the target starts then instead of after
   the postmaster's exit and a ``pg_controldata`` run (when the runner cannot
   spawn, or the stop ends first, ``pg_controldata`` says it); poll the target
   (one connection opened before t0) until it has replayed past that record -
   then everything the old RW ever acknowledged is on the target;
   ``pg_promote(false)`` and poll ``pg_is_in_recovery()`` every 10 ms (at most
   ``promote_timeout``); t1. After t1: wait for the stop to end, and check
   with ``pg_controldata`` that the engine is shut down at that checkpoint.

Failures: before the promote is sent, the old RW is always restarted (the target
was not promoted, nothing was lost). After it, the target's
``pg_is_in_recovery()`` decides: still in recovery -> restart the old RW; RW ->
the switchover happened; unknown -> leave the old RW stopped and say so.

``choose_target()`` is pure: from the ``cluster`` result of cluster_info it picks
the replica to switch to (or explains why a named one is refused); the
``switchover_target`` filter exposes it to playbooks.

Adapters: ``instance`` (instance.Instance: pg_controldata, local probe, local
SQL through psql), ``runner`` (stop/start commands), ``connect`` (a function
returning an sql.Session to the target), ``clock``/``sleep`` (injectable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.polardb.stack.plugins.module_utils.instance import DB_SHUTDOWNED
from ansible_collections.polardb.stack.plugins.module_utils.replication import SLOTS_SQL, in_place
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils.topology import (
    PROBE_SQL, format_lsn, lsn_diff, parse_lsn, parse_probe, timeline_of_walfile)

DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024
DEFAULT_CATCHUP_TIMEOUT = 30.0
DEFAULT_PROMOTE_TIMEOUT = 60
# How often the target is asked (replay position, recovery state). Every 3 ms
# made the window longer on the lab, not shorter: the polls took CPU from the
# promoting target on busy hosts (2026-12-05, 10 runs: promote 0.07 s against 0.05).
POLL_INTERVAL = 0.01
# How often pg_control is read while the engine stops.
STOP_POLL_INTERVAL = 0.002
# A promote request that reaches the target's startup process just as it goes
# to sleep for wal_retrieve_retry_interval (its stream from the stopped RW
# ended) is acted on only when it wakes up; a second request wakes it. Asked
# again this long after the last request while the target is still in recovery.
PROMOTE_NUDGE_S = 0.03
# Under load a CHECKPOINT takes a while, and what is dirtied meanwhile is left
# for the shutdown checkpoint, inside the window: checkpoint again until one is
# quick (each round has less to write than the one before), at most this often.
QUICK_CHECKPOINT_S = 0.1
MAX_CHECKPOINTS = 3

FLUSH_SQL = 'SELECT pg_current_wal_flush_lsn()'
CAN_PROMOTE_SQL = ("SELECT has_function_privilege('pg_catalog.pg_promote(boolean, integer)', "
                   "'EXECUTE') AS can_promote")
REPLAY_SQL = ('SELECT pg_is_in_recovery() AS in_recovery, '
              'pg_last_wal_replay_lsn()::text AS replay_lsn')
RECOVERY_SQL = 'SELECT pg_is_in_recovery() AS in_recovery'
# wait => false, then our own 10 ms polls: pg_promote(true) looks only every 100 ms.
PROMOTE_SQL = 'SELECT pg_promote(false) AS promoted'
NEW_RW_SQL = ('SELECT pg_is_in_recovery() AS in_recovery, '
              'CASE WHEN pg_is_in_recovery() THEN NULL '
              'ELSE pg_walfile_name(pg_current_wal_lsn()) END AS wal_file')
HISTORY_SQL = 'SELECT pg_read_file(%s) AS history'
CREATE_SLOT_SQL = 'SELECT pg_create_physical_replication_slot(%s, true)'


# ------------------------------------------------------------ pure helpers
def _warn(result, text):
    """Add ``text`` to the result's warning (one string, parts joined by '; ')."""
    result['warning'] = '%s; %s' % (result['warning'], text) if result.get('warning') else text


def rejoin_report(results, old_rw, new_rw):
    """After a handover, from each node's registered polardb.stack.replication
    result (``{node: result}``): ``{problems, lines}``. A problem is a node that
    did not answer, a follower whose WAL receiver does not stream from the new
    RW, or a new RW that is not the RW; ``lines`` say per node what it is now and
    what its step did."""
    problems, lines = [], []
    for node in sorted(results):
        r = results[node] or {}
        was = ' (was the RW)' if node == old_rw and node != new_rw else ''
        if r.get('failed') or r.get('unreachable') or r.get('skipped') or 'role' not in r:
            problems.append('%s: no answer (%s)' % (node, r.get('msg') or 'did not run'))
            continue
        # the node's own step said where it is (what its release of the lock went by, too)
        if node == new_rw:
            now = 'RW'
            if r.get('role') != 'rw':
                problems.append('%s: is %s, not the RW' % (node, r.get('role')))
        else:
            receiver = r.get('receiver') or 'none'
            now = 'replica of %s, %s' % (new_rw, receiver)
            if not in_place(r):
                problems.append('%s: its WAL receiver towards %s is %s' % (node, new_rw, receiver))
        lines.append('%s: %s%s; %s' % (node, now, was, ', '.join(r.get('actions') or []) or 'nothing to change'))
    return dict(problems=problems, lines=lines)


def parse_timeline_history(text):
    """A timeline history file -> [(parent_tli, switchpoint_lsn_text, reason)]."""
    entries = []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        try:
            tli = int(parts[0])
            parse_lsn(parts[1])
        except ValueError:
            continue
        entries.append((tli, parts[1], parts[2] if len(parts) > 2 else ''))
    return entries


def switchpoint(history, timeline):
    """The LSN (text) where ``timeline`` ended according to ``history``; None if absent."""
    for tli, lsn, dummy in history:
        if tli == timeline:
            return lsn
    return None


def _replication_row(rows, name, slot):
    """This RW's pg_stat_replication row of the target: by its slot, then its name."""
    if slot:
        for r in rows:
            if r.get('slot_name') == slot:
                return r
    for r in rows:
        if r.get('application_name') == name:
            return r
    return None


def _refusal(rw, node, standbys, named, max_lag_bytes):
    """Why ``node`` cannot take over from ``rw`` (None: it can)."""
    if node['name'] == rw['name']:
        return 'it is the RW'
    if not node.get('reachable'):
        return 'unreachable: %s' % (node.get('error') or 'no answer')
    if node.get('role') != 'replica':
        return 'not a replica (role %s)' % node.get('role')
    if node.get('system_identifier') != rw.get('system_identifier'):
        return 'foreign: system identifier %s differs from the RW %s (%s)' % (
            node.get('system_identifier'), rw['name'], rw.get('system_identifier'))
    up = node.get('upstream') or {}
    if not up:
        return 'not streaming (no WAL receiver)'
    if up.get('status') != 'streaming':
        return 'not streaming (WAL receiver %s)' % up.get('status')
    if node.get('upstream_node') != rw['name']:
        if node.get('upstream_node'):
            return 'streams from %s (cascaded), not from the RW %s' % (node['upstream_node'], rw['name'])
        return 'streams from %s:%s, not from the RW %s (%s:%s)' % (
            up.get('host'), up.get('port'), rw['name'], rw.get('host'), rw.get('port'))
    lag = node.get('lag_bytes')
    if lag is None:
        return 'lag unknown'
    if max_lag_bytes is not None and lag > max_lag_bytes:
        return 'lags %d bytes > bound %d' % (lag, max_lag_bytes)
    if node['name'] in standbys and not named:
        return 'a standby (taken only when named explicitly)'
    return None


def choose_target(cluster, target=None, standbys=None, max_lag_bytes=DEFAULT_MAX_LAG_BYTES):
    """Pick the node to switch over to, from the ``cluster`` result of cluster_info.

    Candidates are the reachable replicas of the RW's system identifier whose
    WAL receiver streams from the RW, lagging at most ``max_lag_bytes`` (None:
    no bound), least lag first, ties by name. Nodes named in ``standbys`` are
    taken only when named as ``target``. With ``target`` given, that node is
    checked and either chosen or refused with the reason.

    Returns {target, node ({name, host, port}: the module's ``target``),
    lag_bytes, rw, candidates ([{name, lag_bytes}], best first), refused
    ({name: reason}), error (None, or why no target can be chosen)}.
    """
    standbys = set(standbys or [])
    nodes = (cluster or {}).get('nodes') or {}
    result = {'target': None, 'node': None, 'lag_bytes': None, 'rw': (cluster or {}).get('rw'),
              'candidates': [], 'refused': {}, 'error': None}
    rw_nodes = list((cluster or {}).get('rw_nodes') or [])
    if len(rw_nodes) != 1 or result['rw'] not in nodes:
        result['error'] = ('no switchover without exactly one RW (RW nodes: %s)%s' % (
            ', '.join(rw_nodes) or 'none',
            ': ' + '; '.join(cluster.get('problems') or []) if (cluster or {}).get('problems') else ''))
        return result
    rw = nodes[result['rw']]
    if target is not None and target not in nodes:
        result['error'] = 'cannot switch over to %s: unknown node (nodes: %s)' % (
            target, ', '.join(sorted(nodes)))
        return result
    for name in sorted(nodes):
        node = nodes[name]
        reason = _refusal(rw, node, standbys, name == target, max_lag_bytes)
        if reason:
            result['refused'][name] = reason
        else:
            result['candidates'].append({'name': name, 'lag_bytes': int(node['lag_bytes'])})
    result['candidates'].sort(key=lambda c: (c['lag_bytes'], c['name']))
    if target is not None:
        if target in result['refused']:
            result['error'] = 'cannot switch over to %s: %s' % (target, result['refused'][target])
            return result
        chosen = target
    elif result['candidates']:
        chosen = result['candidates'][0]['name']
    else:
        result['error'] = 'no replica can take over from %s: %s' % (rw['name'], '; '.join(
            '%s: %s' % (n, r) for n, r in sorted(result['refused'].items()) if n != rw['name'])
            or 'the cluster has no other node')
        return result
    node = nodes[chosen]
    result.update(target=chosen, lag_bytes=int(node['lag_bytes']),
                  node={'name': chosen, 'host': node['host'], 'port': int(node['port'])})
    return result


# -------------------------------------------------------------- switchover

class Switchover(object):
    """One switchover from the local engine (``instance``) to ``target``.

    ``target``: {name, host, port}. ``connect()``: a new sql.Session to the
    target. ``stop_command`` / ``start_command``: argv lists run through
    ``runner`` (``systemctl stop|start <unit>`` in modules).
    """

    def __init__(self, instance, runner, connect, target, stop_command, start_command,
                 node_name=None, max_lag_bytes=DEFAULT_MAX_LAG_BYTES, target_slots=(),
                 catchup_timeout=DEFAULT_CATCHUP_TIMEOUT, promote_timeout=DEFAULT_PROMOTE_TIMEOUT,
                 check_mode=False, clock=time.monotonic, sleep=time.sleep,
                 poll_interval=POLL_INTERVAL):
        self.instance = instance
        self.runner = runner
        self.connect = connect
        self.target = dict(target)
        self.target['port'] = int(self.target.get('port') or 5432)
        self.stop_command = list(stop_command)
        self.start_command = list(start_command)
        self.node_name = node_name or 'the local node'
        self.target_slots = [str(n) for n in target_slots or ()]
        self.max_lag_bytes = max_lag_bytes
        self.catchup_timeout = float(catchup_timeout)
        self.promote_timeout = int(promote_timeout)
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.executed = []
        self.timings = {}
        self.session = None
        self.started = None
        # the stop command while it runs in the background (runner.spawn)
        self.stopping = None
        # whether the old RW takes writes when the run fails (returned as old_rw_writable):
        # True once checked to run as RW, False from the stop on, None before the check
        self.writable = None

    # -- small helpers ------------------------------------------------------

    @property
    def tname(self):
        return self.target['name']

    @property
    def taddr(self):
        return '%s (%s:%s)' % (self.target['name'], self.target['host'], self.target['port'])

    def _step(self, text):
        self.executed.append(text)

    def _result(self, **kw):
        out = {'changed': False, 'old_rw': self.node_name, 'new_rw': None,
               'shutdown_checkpoint_lsn': None, 'target_replay_lsn': None, 'timeline': None,
               'lag_bytes': None, 'timings': self.timings, 'executed': self.executed}
        out.update(kw)
        self.timings['total_s'] = round(self.clock() - self.started, 6)
        return out

    def _error(self, msg, **details):
        if self.started is not None:
            self.timings['total_s'] = round(self.clock() - self.started, 6)
        details.setdefault('old_rw', self.node_name)
        details.setdefault('target', self.tname)
        details.setdefault('old_rw_writable', self.writable)
        return PolarDBError(msg, executed=self.executed, timings=self.timings, **details)

    def _connect_target(self):
        try:
            return self.connect()
        except PolarDBError as e:
            raise self._error('target %s is unreachable: %s' % (self.taddr, e.msg))

    def _target_state(self, session):
        row = session.one(PROBE_SQL)
        if not row or row.get('probe') is None:
            raise self._error('target %s: the status query returned nothing' % self.taddr)
        return parse_probe(row['probe'])

    # -- checks ---------------------------------------------------------------

    def _local(self):
        cd = self.instance.controldata()
        state, error = self.instance.probe()
        self._step('check: local engine (pg_controldata, status query on %s port %d)'
                   % (self.instance.socket_dir, self.instance.port))
        sysid = cd.get('Database system identifier')
        if state is not None and state.get('system_identifier') not in (None, sysid):
            state, error = None, ('the engine on port %d is cluster %s, the data directory holds %s'
                                  % (self.instance.port, state['system_identifier'], sysid))
        return cd, state, error

    def _already_switched(self, cd, local_state, local_error):
        """The local engine is not a running RW: report an earlier switchover to
        the target as done, else refuse."""
        if local_state is not None:
            why = 'the local engine is in recovery'
        else:
            why = 'the local engine is not running (%s)' % (local_error or 'no answer')
        not_rw = 'this host is not the RW: %s' % why
        try:
            session = self.connect()
        except PolarDBError as e:
            raise self._error('%s; target %s is unreachable too: %s' % (not_rw, self.taddr, e.msg))
        try:
            t = self._target_state(session)
            self._step('check: target %s status' % self.tname)
            sysid = cd.get('Database system identifier')
            if (local_state is None and t['in_recovery'] and t['system_identifier'] == sysid
                    and cd.get('Database cluster state') == 'shut down'):
                # An earlier run stopped this RW cleanly and was interrupted before the
                # promote: finish it (or undo it) exactly as that run would have.
                self._step('resume: the local engine was stopped by an interrupted switchover')
                if self.check_mode:
                    return self._result(changed=True, new_rw=self.tname, resumed=True,
                                        msg='would finish an interrupted switchover to %s' % self.tname)
                self.session, session = session, None
                now = self.clock()
                result = self._after_stop(self._result(), now, now)
                result['resumed'] = True
                result['msg'] = 'resumed an interrupted switchover: ' + result['msg']
                return result
            if t['in_recovery'] or t['system_identifier'] != sysid:
                raise self._error('%s, and the target %s is not its RW (%s)' % (
                    not_rw, self.taddr, 'in recovery' if t['in_recovery']
                    else 'system identifier %s, ours %s' % (t['system_identifier'], sysid)))
            ckpt = None
            if local_state is None:
                # Stopped: only a clean shutdown as RW whose shutdown checkpoint the
                # target replayed before its promotion is an earlier switchover.
                state = cd.get('Database cluster state')
                ckpt = cd.get('Latest checkpoint location')
                tli = int(cd.get("Latest checkpoint's TimeLineID") or 0)
                if state != 'shut down':
                    raise self._error('%s (cluster state %r), and the target %s is RW: not the '
                                      'result of a switchover by this module'
                                      % (not_rw, state, self.taddr))
                self._check_fork(session, t['timeline'], tli, ckpt, not_rw)
            return self._result(
                new_rw=self.tname, timeline=t['timeline'], shutdown_checkpoint_lsn=ckpt,
                msg='already switched: %s is the RW and %s (%s)' % (
                    self.tname, self.node_name, 'in recovery' if local_state is not None
                    else 'stopped after its shutdown checkpoint %s' % ckpt))
        finally:
            if session is not None:
                session.close()

    def _check_fork(self, session, target_tli, local_tli, ckpt, not_rw):
        if not target_tli or target_tli <= local_tli:
            raise self._error('%s, and the target %s is RW on timeline %s, not after ours (%s)'
                              % (not_rw, self.taddr, target_tli, local_tli))
        path = 'pg_wal/%08X.history' % target_tli
        try:
            row = session.one(HISTORY_SQL, (path,))
        except PolarDBError as e:
            raise self._error('%s; the target %s is RW but its timeline history %s cannot be read '
                              'to tell whether it took over after our shutdown checkpoint: %s'
                              % (not_rw, self.taddr, path, e.msg))
        history = parse_timeline_history((row or {}).get('history'))
        point = switchpoint(history, local_tli)
        if point is None or parse_lsn(point) <= parse_lsn(ckpt):
            raise self._error(
                '%s; the target %s is RW but left timeline %s at %s, %s our shutdown checkpoint %s: '
                'not a clean switchover (this node needs pg_rewind or a new base backup)'
                % (not_rw, self.taddr, local_tli, point or '(not in its history)',
                   'before' if point else 'unrelated to', ckpt))

    def _check_target(self, cd, local):
        t = self._target_state(self.session)
        self._step('check: target %s status' % self.tname)
        sysid = cd.get('Database system identifier')
        if t['system_identifier'] != sysid:
            raise self._error('target %s is foreign: system identifier %s, this RW has %s'
                              % (self.taddr, t['system_identifier'], sysid))
        if not t['in_recovery']:
            raise self._error('target %s is not in recovery: it is a RW already (this node too: '
                              'two RWs, or the target is this node)' % self.taddr)
        up = t['upstream'] or {}
        if up.get('status') != 'streaming':
            raise self._error('target %s is not streaming (%s)' % (
                self.taddr, 'WAL receiver %s' % up.get('status') if up else 'no WAL receiver'))
        row = _replication_row(local.get('replication') or [], self.tname, up.get('slot'))
        if row is None or row.get('state') != 'streaming':
            raise self._error(
                'target %s does not stream from this RW: %s (its WAL receiver is connected to %s:%s%s)'
                % (self.taddr, 'no walsender of this RW serves %s' % (
                    'slot %s or application_name %s' % (up['slot'], self.tname) if up.get('slot')
                    else 'application_name %s' % self.tname) if row is None
                   else 'the walsender of this RW for it is %s' % row.get('state'),
                   up.get('host'), up.get('port'),
                   ', slot %s' % up['slot'] if up.get('slot') else ''),
                upstream=up)
        lag = lsn_diff(local['lsn']['current'], t['lsn']['replay'])
        if lag is None:
            raise self._error('target %s: replay LSN unknown' % self.taddr)
        lag = max(0, lag)
        if self.max_lag_bytes is not None and lag > self.max_lag_bytes:
            raise self._error('target %s lags %d bytes behind this RW (> max_lag_bytes %d): '
                              'nothing was changed' % (self.taddr, lag, self.max_lag_bytes),
                              lag_bytes=lag)
        can = self.session.one(CAN_PROMOTE_SQL)
        if not (can or {}).get('can_promote'):
            raise self._error('target %s: the login user may not execute pg_promote()' % self.taddr)
        return t, lag

    # -- the critical section -----------------------------------------------

    def _await_stop(self):
        """Wait for a stop running in the background to end; its failure (text) or None."""
        if self.stopping is None:
            return None
        stopping, self.stopping = self.stopping, None
        try:
            res = stopping.wait()
        except (OSError, PolarDBError) as e:
            return 'waiting for %s failed: %s' % (' '.join(self.stop_command), getattr(e, 'msg', e))
        if res.rc != 0:
            output = ' '.join((res.stderr or res.stdout or '').split())
            return '%s failed (rc=%d): %s' % (' '.join(self.stop_command), res.rc, output)
        return None

    def _stop(self, sysid, flushed_lsn):
        """Stop the local engine. Returns the shutdown checkpoint's LSN (int) as
        soon as pg_control says "shut down" while the stop goes on in the
        background (self.stopping), or None once the stop ended (pg_controldata
        then tells). Raises PolarDBError when the stop fails."""
        spawn = getattr(self.runner, 'spawn', None)
        if spawn is None:
            self.runner.run(self.stop_command)
            return None
        self.stopping = spawn(self.stop_command)
        while True:
            ended = self.stopping.poll()
            head = self.instance.control_head()
            if (head is not None and head['state'] == DB_SHUTDOWNED and head['system_identifier'] == sysid
                    and head['checkpoint'] >= flushed_lsn):
                return head['checkpoint']
            if ended is not None:
                failure = self._await_stop()
                if failure:
                    raise PolarDBError(failure)
                return None
            self.sleep(STOP_POLL_INTERVAL)

    def _restart_old_rw(self, why, probe_first=False):
        """Undo: start the local engine again; raise the failure saying so."""
        stop_failure = self._await_stop()
        if stop_failure:
            why = '%s (and %s)' % (why, stop_failure)
        if probe_first:
            state, dummy = self.instance.probe()
            if state is not None and not state.get('in_recovery'):
                self._step('undo: the local engine still runs as RW')
                return self._error('%s; the local engine still runs as RW (nothing was lost)' % why,
                                   restarted=False, old_rw_writable=True)
        self._step('undo: %s' % ' '.join(self.start_command))
        try:
            self.runner.run(self.start_command)
        except PolarDBError as e:
            return self._error('%s; restarting the old RW FAILED: %s - start it by hand (%s): '
                               'the target was not promoted, nothing was lost'
                               % (why, e.msg, ' '.join(self.start_command)), restarted=False)
        return self._error('%s; the old RW %s was restarted and is the RW again (the target was '
                           'not promoted): nothing was lost' % (why, self.node_name), restarted=True,
                           old_rw_writable=True)

    def _poll_replay(self, ckpt, what='the shutdown checkpoint', past=True):
        """Until the target replayed past ``ckpt`` (int; with ``past=False``: up to
        it). Returns (replay_lsn, None) or (last_lsn, why) on a timeout, or raises
        when the target left recovery."""
        deadline = self.clock() + self.catchup_timeout
        last = None
        broken = None
        while True:
            row = None
            try:
                if self.session is None:
                    self.session = self.connect()
                row = self.session.one(REPLAY_SQL)
            except PolarDBError as e:
                broken = e.msg
                if self.session is not None:
                    self.session.close()
                self.session = None
            if row is not None:
                if not row.get('in_recovery'):
                    raise self._error(
                        'target %s left recovery on its own while we waited for it to replay '
                        '%s %s: not restarting the old RW (two RWs otherwise); '
                        'check the cluster' % (self.taddr, what, format_lsn(ckpt)),
                        new_rw=self.tname, restarted=False)
                last = row.get('replay_lsn')
                if last is not None and (parse_lsn(last) > ckpt if past else parse_lsn(last) >= ckpt):
                    return last, None
            if self.clock() >= deadline:
                return last, ('target %s did not replay %s %s %s within '
                              '%s s (replayed up to %s%s)' % (
                                  self.taddr, 'past' if past else 'up to', what, format_lsn(ckpt),
                                  self.catchup_timeout, last,
                                  '; last error: %s' % broken if broken else ''))
            self.sleep(self.poll_interval)

    def _wait_promoted(self):
        """After pg_promote(false): poll until the target left recovery, asking
        again every PROMOTE_NUDGE_S (a request that came while the target's
        startup process went to sleep waits for its wake-up otherwise). (True,
        None), or (False, why) after promote_timeout; raises when the connection
        breaks (the caller then asks again on a new one)."""
        deadline = self.clock() + self.promote_timeout
        nudge = self.clock() + PROMOTE_NUDGE_S
        self.timings['promote_requests'] = 1
        while True:
            row = self.session.one(RECOVERY_SQL)
            if row is not None and row.get('in_recovery') is False:
                return True, None
            if self.clock() >= deadline:
                return False, 'not promoted within %d s' % self.promote_timeout
            if self.clock() >= nudge:
                try:
                    self.session.one(PROMOTE_SQL)
                    self.timings['promote_requests'] += 1
                except PolarDBError:
                    # "recovery is not in progress": promoted meanwhile; the next poll says so
                    pass
                nudge = self.clock() + PROMOTE_NUDGE_S
            self.sleep(self.poll_interval)

    def _target_in_recovery(self):
        """pg_is_in_recovery() of the target after a failed promote; None if unknown."""
        for attempt in range(3):
            try:
                if self.session is None:
                    self.session = self.connect()
                row = self.session.one(RECOVERY_SQL)
                if row is not None and row.get('in_recovery') is not None:
                    return bool(row['in_recovery'])
            except PolarDBError:
                if self.session is not None:
                    self.session.close()
                self.session = None
            self.sleep(0.5)
        return None

    def _switch(self, result, sysid):
        clock = self.clock
        # (a) outside the window: the shutdown checkpoint has little left to write
        c0 = clock()
        rounds = 0
        while True:
            r0 = clock()
            try:
                self.instance.execute('CHECKPOINT')
            except PolarDBError as e:
                raise self._error('CHECKPOINT on the local engine failed, nothing was changed: %s' % e.msg)
            rounds += 1
            self._step('CHECKPOINT on the local engine')
            if clock() - r0 <= QUICK_CHECKPOINT_S or rounds >= MAX_CHECKPOINTS:
                break
        self.timings['checkpoint_s'] = round(clock() - c0, 6)
        self.timings['checkpoints'] = rounds

        # (a') still outside the window: the target replays up to where this RW's
        # WAL is flushed now, so that after the stop only the last moments and the
        # shutdown record are left to replay (under load the replay can lag).
        p0 = clock()
        try:
            flushed = self.instance.execute(FLUSH_SQL).strip()
            flushed_lsn = parse_lsn(flushed)
        except (PolarDBError, ValueError) as e:
            raise self._error('reading the flush position of the local engine failed, nothing '
                              'was changed: %s' % getattr(e, 'msg', e))
        self._step('wait for %s to replay up to %s (before the stop)' % (self.tname, flushed))
        replay, why = self._poll_replay(flushed_lsn, what='the flush position', past=False)
        self.timings['precatchup_s'] = round(clock() - p0, 6)
        if why:
            raise self._error('%s: it cannot keep up with this RW, nothing was changed' % why,
                              target_replay_lsn=replay)

        # (b) t0: writes stop
        self.writable = False
        t0 = clock()
        self._step('stop: %s' % ' '.join(self.stop_command))
        try:
            early = self._stop(sysid, flushed_lsn)
        except PolarDBError as e:
            self.timings['stop_s'] = round(clock() - t0, 6)
            raise self._restart_old_rw('stopping the local engine failed: %s' % e.msg,
                                       probe_first=True)
        t_stop = clock()
        self.timings['stop_s'] = round(t_stop - t0, 6)
        if early is not None:
            self._step('pg_control: shut down, checkpoint at %s (the engine still exits)' % format_lsn(early))
        return self._after_stop(result, t0, t_stop, early)

    def _after_stop(self, result, t0, t_stop, early=None):
        """Steps (c) to (e), from an old RW that wrote its shutdown checkpoint
        (``early``: its LSN, read from pg_control while the engine still exits;
        None: the engine stopped, pg_controldata tells): also the resume of a run
        that was interrupted between the stop and the promote."""
        clock = self.clock

        # (c) where the old RW's WAL ends
        if early is None:
            try:
                cd = self.instance.controldata()
            except PolarDBError as e:
                raise self._restart_old_rw('pg_controldata after the stop failed: %s' % e.msg,
                                           probe_first=True)
            state = cd.get('Database cluster state')
            ckpt_text = cd.get('Latest checkpoint location')
            self._step('pg_controldata: %s, checkpoint at %s' % (state, ckpt_text))
            if state != 'shut down':
                raise self._restart_old_rw('the local engine stopped with cluster state %r, not '
                                           '"shut down": no shutdown checkpoint to wait for' % state,
                                           probe_first=True)
            ckpt = parse_lsn(ckpt_text)
        else:
            ckpt, ckpt_text = early, format_lsn(early)
        result['shutdown_checkpoint_lsn'] = ckpt_text
        t_cd = clock()
        self.timings['controldata_s'] = round(t_cd - t_stop, 6)

        # (d) zero loss: the target has replayed the shutdown checkpoint record
        self._step('wait for %s to replay past %s' % (self.tname, ckpt_text))
        replay, why = self._poll_replay(ckpt)
        t_caught = clock()
        self.timings['catchup_s'] = round(t_caught - t_cd, 6)
        result['target_replay_lsn'] = replay
        if why:
            raise self._restart_old_rw(why)

        # (e) promote
        self._step('pg_promote(false) on %s, then poll until it left recovery (at most %d s)'
                   % (self.tname, self.promote_timeout))
        promoted, error, pending = None, None, False
        try:
            row = self.session.one(PROMOTE_SQL)
            if not (row or {}).get('promoted'):
                error = 'pg_promote() returned false'
            else:
                pending = True
                promoted, error = self._wait_promoted()
        except PolarDBError as e:
            error = e.msg
            self.session.close()
            self.session = None
        if not promoted:
            in_recovery = self._target_in_recovery()
            self._step('check: target in recovery after the failed promote: %s' % in_recovery)
            if in_recovery is True:
                self.timings['promote_s'] = round(clock() - t_caught, 6)
                raise self._restart_old_rw(
                    'promoting %s failed (%s) and it is still in recovery%s' % (
                        self.taddr, error, '; its promote request may still be pending: stop it '
                        'before it promotes' if pending else ''))
            if in_recovery is None:
                self.timings['promote_s'] = round(clock() - t_caught, 6)
                raise self._error(
                    'promoting %s failed (%s) and whether it became RW cannot be told (it does not '
                    'answer): the old RW %s stays stopped, its WAL is on the target up to the '
                    'shutdown checkpoint %s; check the target (SELECT pg_is_in_recovery()) and '
                    'either start this node again (target in recovery) or rejoin it as a replica '
                    '(target RW)' % (self.taddr, error, self.node_name, ckpt_text),
                    shutdown_checkpoint_lsn=ckpt_text, restarted=False)
            result['warning'] = ('pg_promote() reported %s, but %s is out of recovery: promoted'
                                 % (error, self.tname))
        t1 = clock()
        self.timings['promote_s'] = round(t1 - t_caught, 6)
        self.timings['write_unavailable_s'] = round(t1 - t0, 6)

        # after the window: the stop ended, at the checkpoint the target replayed
        if early is not None:
            self._confirm_stop(result, ckpt_text)

        # after the window: the new timeline
        try:
            if self.session is None:
                self.session = self.connect()
            row = self.session.one(NEW_RW_SQL)
            result['timeline'] = timeline_of_walfile((row or {}).get('wal_file'))
        except PolarDBError as e:
            result.setdefault('warning', 'could not read the new timeline: %s' % e.msg)
        self._create_target_slots(result)
        result.update(changed=True, new_rw=self.tname,
                      msg='switched over from %s to %s: writes unavailable %.3f s, nothing lost '
                          '(the target replayed past the shutdown checkpoint %s)'
                          % (self.node_name, self.tname, self.timings['write_unavailable_s'],
                             ckpt_text))
        return result

    def _create_target_slots(self, result):
        """After the window, on the new RW: the slots the other nodes stream
        through, before they are re-pointed at it (a follower that asks for a
        missing slot retries only after wal_retrieve_retry_interval). A failure
        is a warning: the playbook's replication step creates them too."""
        result['slots_created'] = []
        if not self.target_slots:
            return
        try:
            if self.session is None:
                self.session = self.connect()
            have = set(r['slot_name'] for r in self.session.query(SLOTS_SQL))
            for slot in self.target_slots:
                if slot not in have:
                    self.session.one(CREATE_SLOT_SQL, (slot,))
                    result['slots_created'].append(slot)
        except PolarDBError as e:
            warning = 'could not create the slots %s on %s: %s' % (
                ', '.join(self.target_slots), self.tname, e.msg)
            _warn(result, warning)
        if result['slots_created']:
            self._step('slots on %s: %s' % (self.tname, ', '.join(result['slots_created'])))

    def _confirm_stop(self, result, ckpt_text):
        """After a promote on the strength of pg_control: the stop ended and
        pg_controldata names the same shutdown checkpoint (else a warning: the
        target is RW now, nothing is undone)."""
        failure = self._await_stop()
        try:
            cd = self.instance.controldata()
            state, last = cd.get('Database cluster state'), cd.get('Latest checkpoint location')
        except PolarDBError as e:
            state, last = None, None
            failure = failure or 'pg_controldata failed: %s' % e.msg
        self._step('pg_controldata after the stop: %s, checkpoint at %s' % (state, last))
        if not failure and (state != 'shut down' or last != ckpt_text):
            failure = ('pg_controldata says %s, checkpoint at %s, after the target replayed past the '
                       'shutdown checkpoint %s read from pg_control' % (state, last, ckpt_text))
        if failure:
            warning = 'the old RW %s after the promote of %s: %s' % (self.node_name, self.tname, failure)
            _warn(result, warning)

    # -- entry point ----------------------------------------------------------

    def run(self):
        self.started = self.clock()
        cd, local, local_error = self._local()
        if local is None or local.get('in_recovery'):
            try:
                return self._already_switched(cd, local, local_error)
            finally:
                if self.session is not None:
                    self.session.close()
        self.writable = True
        self.session = self._connect_target()
        try:
            t, lag = self._check_target(cd, local)
            result = self._result(lag_bytes=lag, target_replay_lsn=t['lsn']['replay'])
            if self.check_mode:
                result.update(
                    changed=True, new_rw=self.tname,
                    planned=['CHECKPOINT on the local engine',
                             'wait (at most %s s) for %s to replay up to the flush position'
                             % (self.catchup_timeout, self.tname),
                             'stop: %s' % ' '.join(self.stop_command),
                             'pg_controldata: read the shutdown checkpoint',
                             'wait (at most %s s) for %s to replay past it'
                             % (self.catchup_timeout, self.tname),
                             'pg_promote(false) on %s, then poll until it left recovery '
                             '(at most %d s)' % (self.tname, self.promote_timeout)],
                    msg='would switch over from %s to %s (lag %d bytes)'
                        % (self.node_name, self.tname, lag))
                return result
            result = self._switch(result, cd.get('Database system identifier'))
            self.timings['total_s'] = round(self.clock() - self.started, 6)
            return result
        finally:
            # a failure after the stop began: the engine still ends its stop
            self._await_stop()
            if self.session is not None:
                self.session.close()
