# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's place in the cluster's replication, set in one process on its host.

After a switchover, a failover or a rebuild every node must take its place:

- the RW replicates from nobody (its ``replication.conf`` says so) and keeps a
  physical slot for every other node;
- every other node follows the RW: ``standby.signal``, ``replication.conf``
  pointing at the RW, the engine reloaded (or started), a WAL receiver towards
  the RW (restarted once when a startup process gave up on streaming, as after
  an interrupted failover), and no slot left from when it was the RW.

``Replication.run()`` does all of it in one module run per host, instead of a
task per step (each task is one more SSH round trip).

Adapters: ``instance`` (instance.Instance: local socket SQL, data directory
facts), ``runner`` (systemctl, journalctl), ``clock``/``sleep``. File writes are
atomic (``node_files.write_atomically``) with the owner and mode asked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.polardb.stack.plugins.module_utils.node_files import write_atomically
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

SLOT_NAME = re.compile(r'^[a-z0-9_]{1,63}$')
CONF_MODE = 0o640
SIGNAL_MODE = 0o600
DEFAULT_RECEIVER_TIMEOUT = 10.0
# a follower starts streaming within tens of milliseconds of its (re)start
POLL_INTERVAL = 0.02

SLOTS_SQL = "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY 1"
TERMINATE_SLOT_SQL = ('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots '
                      'WHERE slot_name = %s AND active_pid IS NOT NULL')
RECEIVER_SQL = "SELECT coalesce(string_agg(status, ','), '') FROM pg_stat_wal_receiver WHERE sender_host = %s"


def quote_literal(text):
    return "'%s'" % str(text).replace("'", "''")


def check_slot_names(names, what):
    bad = [n for n in names if not SLOT_NAME.match(str(n))]
    if bad:
        raise PolarDBError('%s: invalid slot names %s (lower-case letters, digits and _ only, '
                           'at most 63)' % (what, ', '.join(map(str, bad))))
    return [str(n) for n in names]


def in_place(result):
    """The node's step ended with it where it belongs: the RW, or a follower whose
    WAL receiver streams (what ``switchover.rejoin_report`` asks of each node)."""
    if result.get('role') == 'rw':
        return True
    return 'streaming' in (result.get('receiver') or '').split(',')


class Replication(object):
    """Bring the local node to its place: RW (``upstream`` None) or follower."""

    def __init__(self, instance, runner, service, conf_path, conf_content, upstream=None,
                 slots=(), drop_slots=(), receiver_timeout=DEFAULT_RECEIVER_TIMEOUT,
                 check_mode=False, clock=time.monotonic, sleep=time.sleep):
        self.instance = instance
        self.runner = runner
        self.service = service
        self.conf_path = conf_path
        self.conf_content = conf_content
        self.upstream = dict(upstream) if upstream else None
        self.slots = check_slot_names(slots or [], 'slots')
        self.drop_slots = check_slot_names(drop_slots or [], 'drop_slots')
        self.receiver_timeout = float(receiver_timeout)
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.actions = []
        self.result = {'changed': False, 'role': 'replica' if self.upstream else 'rw',
                       'conf_changed': False, 'signal_created': False, 'reloaded': False,
                       'started': False, 'restarted': False, 'slots_created': [],
                       'slots_dropped': [], 'receiver': None, 'actions': self.actions,
                       'diff': {'before': {}, 'after': {}}, 'timings': {}}

    # -- small steps ---------------------------------------------------------

    def _did(self, what, key=None, value=True):
        self.actions.append(('would ' if self.check_mode else '') + what)
        self.result['changed'] = True
        if key:
            self.result[key] = value

    def _write(self, path, content, mode):
        """Atomically make ``path`` hold ``content`` (owner: the instance's owner)."""
        uid, gid = self.instance._owner_ids()
        write_atomically(path, content.encode('utf-8'), uid, gid, mode)

    def _conf(self):
        try:
            with open(self.conf_path) as f:
                before = f.read()
        except (IOError, OSError):
            before = None
        self.result['diff'] = {'before': {self.conf_path: before}, 'after': {self.conf_path: self.conf_content}}
        if before == self.conf_content:
            return False
        if not self.check_mode:
            self._write(self.conf_path, self.conf_content, CONF_MODE)
        self._did('write %s' % self.conf_path, 'conf_changed')
        return True

    def _sql(self, statement):
        return self.instance.execute(statement).strip()

    def _systemctl(self, verb):
        try:
            self.runner.run(['systemctl', verb, self.service])
        except PolarDBError as e:
            journal = self.runner.run(['journalctl', '-u', self.service, '-n', '12', '-o', 'cat',
                                       '--no-pager'], check=False)
            lines = [line for line in (journal.stdout or '').splitlines()
                     if line.strip() and 'Failed to kill control group' not in line]
            raise PolarDBError('systemctl %s %s failed (%s). Its last log lines: %s'
                               % (verb, self.service, e.msg, ' | '.join(lines)),
                               actions=self.actions)

    def _until(self, probe, timeout):
        """Call ``probe`` until it returns a true value or ``timeout`` passes; the
        last value (and the last error) either way."""
        deadline = self.clock() + timeout
        last, error = None, None
        while True:
            try:
                last, error = probe(), None
            except PolarDBError as e:
                last, error = None, e.msg
            if last or self.clock() >= deadline:
                return last, error
            self.sleep(POLL_INTERVAL)

    # -- the RW --------------------------------------------------------------

    def _as_rw(self):
        state, error = self.instance.probe()
        if state is None:
            raise PolarDBError('cannot make %s the RW: its engine does not answer (%s)'
                               % (self.instance.data_dir, error))
        if state.get('in_recovery'):
            raise PolarDBError('cannot make this node the RW: its engine is in recovery (a replica)')
        if self._conf():
            if not self.check_mode:
                self._systemctl('reload')
            self._did('reload %s' % self.service, 'reloaded')
        have = set(self._sql(SLOTS_SQL).split())
        for slot in self.slots:
            if slot in have:
                continue
            if not self.check_mode:
                self._sql('SELECT pg_create_physical_replication_slot(%s, true)' % quote_literal(slot))
            self._did('create slot %s' % slot)
            self.result['slots_created'].append(slot)

    # -- a follower ----------------------------------------------------------

    def _receiver(self):
        status = self._sql(RECEIVER_SQL % quote_literal(self.upstream['host']))
        return status or None

    def _wait_receiver(self):
        """(status, error): 'streaming' once it streams, within receiver_timeout;
        else the receiver's status as it is (None: there is none)."""
        status, error = self._until(self._streaming, self.receiver_timeout)
        if not status:
            try:
                status = self._receiver()
            except PolarDBError as e:
                status, error = None, e.msg
        return status, error

    def _streaming(self):
        status = self._receiver()
        return status if status and 'streaming' in status.split(',') else None

    def _as_replica(self):
        d = self.instance.dir_state()
        if not d['initialized']:
            raise PolarDBError('%s holds no data: rebuild this node (playbooks/rebuild_node.yml)'
                               % self.instance.data_dir)
        state, dummy = self.instance.probe()
        running = state is not None
        if running and not state.get('in_recovery'):
            raise PolarDBError('this node runs as a primary while %s is the RW: rebuild it '
                               '(playbooks/rebuild_node.yml)' % self.upstream.get('name', self.upstream['host']))
        signal = os.path.join(self.instance.data_dir, 'standby.signal')
        if not os.path.exists(signal):
            if not self.check_mode:
                self._write(signal, '', SIGNAL_MODE)
            self._did('create %s' % signal, 'signal_created')
        conf_changed = self._conf()
        if not running:
            if not self.check_mode:
                t_start = self.clock()
                self._systemctl('start')
                self.result['timings']['start_s'] = round(self.clock() - t_start, 3)
            self._did('start %s' % self.service, 'started')
        elif conf_changed:
            if not self.check_mode:
                self._systemctl('reload')
            self._did('reload %s' % self.service, 'reloaded')
        if self.check_mode:
            self.result['receiver'] = 'unknown (check mode)'
            have = self._local_slots() if running else set()
            self.result['slots_dropped'] = [s for s in self.drop_slots if s in have]
            for slot in self.result['slots_dropped']:
                self._did('drop slot %s' % slot)
            self.result['slots_created'] = [s for s in self.slots if s not in have]
            for slot in self.result['slots_created']:
                self._did('create slot %s' % slot)
            return
        t0 = self.clock()
        # streaming, not only started: the playbook's next step waits for every
        # replica to stream, and polls far less often than this
        status, error = self._wait_receiver()
        if not status:
            # A startup process that gave up on streaming waits for WAL for ever
            # without a receiver; a restart mends it.
            self._systemctl('restart')
            self._did('restart %s (no WAL receiver towards %s after %.0f s%s)'
                      % (self.service, self.upstream['host'], self.receiver_timeout,
                         ': %s' % error if error else ''), 'restarted')
            status, error = self._wait_receiver()
        self.result['timings']['receiver_s'] = round(self.clock() - t0, 3)
        t_slots = self.clock()
        self.result['receiver'] = status or ('none%s' % (' (%s)' % error if error else ''))
        # a replica just started may still refuse connections for a moment
        listed, error = self._until(self._local_slots_listed, self.receiver_timeout)
        if listed is None:
            raise PolarDBError('cannot list the replication slots of the local engine: %s' % error,
                               actions=self.actions)
        have = set(listed[0])
        for slot in self.drop_slots:
            if slot in have:
                self._drop_slot(slot)
                self._did('drop slot %s' % slot)
                self.result['slots_dropped'].append(slot)
        self.result['timings']['slots_s'] = round(self.clock() - t_slots, 3)
        # the slots of nodes that stream from this follower (cascading): a
        # switchover's followers before the stop (see roles/handover)
        for slot in self.slots:
            if slot not in have:
                self._sql('SELECT pg_create_physical_replication_slot(%s, true)' % quote_literal(slot))
                self._did('create slot %s' % slot)
                self.result['slots_created'].append(slot)

    def _drop_slot(self, slot):
        """Drop a slot left from when this node was the RW. A node not yet
        re-pointed may have reconnected to this one (now a standby: cascading)
        through it: its walsender is ended first (that node follows the new RW
        once re-pointed), and the drop is tried again until the slot is free."""
        name = quote_literal(slot)
        deadline = self.clock() + self.receiver_timeout
        while True:
            self._sql(TERMINATE_SLOT_SQL % name)
            try:
                self._sql('SELECT pg_drop_replication_slot(%s)' % name)
                return
            except PolarDBError as e:
                if 'is active' not in e.msg or self.clock() >= deadline:
                    raise
            self.sleep(POLL_INTERVAL)

    def _local_slots(self):
        return set(self._sql(SLOTS_SQL).split())

    def _local_slots_listed(self):
        # wrapped in a list, so that "no slot at all" is still a true value for _until
        return [sorted(self._local_slots())]

    # -- entry point -----------------------------------------------------------

    def run(self):
        t0 = self.clock()
        if self.upstream:
            self._as_replica()
        else:
            self._as_rw()
        self.result['timings']['total_s'] = round(self.clock() - t0, 3)
        return self.result
