# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster manager's agent: one per node, a systemd service on the host.

Every ``interval`` seconds it probes its own engine (``Instance.probe`` through
the local socket, the same query as the playbooks' discovery) and, with a TCP
connect, the engine of the RW on record; it writes what it saw to etcd (or to
the Kubernetes API in its place, module_utils/k8s_kv.py) under its lease (``members/<node>``, keys in module_utils/ha_manager.py). A separate
thread renews the lease, so a slow round (a fence command, a promote) never
lets it lapse. The agent of the RW also holds the cluster's ``leader`` key.

One agent holds the ``manager`` key and decides (``ha_manager.decide``); what
it decides is carried out by the agents themselves, each on its own host, as
failover.yml does it from the controller:

- the chosen replica fences the old RW out of its LUN (module_utils/fencing,
  the inventory's driver), promotes its engine, takes its place as the RW
  (module_utils/replication: slots for the others) and records itself as the
  RW (``rw``) and the failover as promoted;
- every other replica then follows it (replication.conf, reload, streaming);
- the old RW, if its agent is alive, stops its engine: it is left, fenced, for
  playbooks/rebuild_node.yml.

An RW whose agent cannot reach etcd for nearly its lease (``ttl``) stops its
engine: it cannot know whether it was fenced and replaced.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import signal
import socket
import sys
import threading
import time

from ansible_collections.polardb.stack.plugins.module_utils.etcd import Etcd, EtcdError
from ansible_collections.polardb.stack.plugins.module_utils.ha_manager import decide, keys, parse_cluster, report_of
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

# pg_promote() looks only every 100 ms and a request can reach the startup
# process as it goes to sleep for wal_retrieve_retry_interval: ask again every
# 30 ms until it left recovery, at most 60 s (the same statement as failover.yml).
PROMOTE_SQL = """DO $$
BEGIN
  FOR i IN 1..2000 LOOP
    EXIT WHEN NOT pg_is_in_recovery();
    BEGIN
      PERFORM pg_promote(false);
    EXCEPTION WHEN OTHERS THEN
      NULL;
    END;
    PERFORM pg_sleep(0.03);
  END LOOP;
  IF pg_is_in_recovery() THEN
    RAISE EXCEPTION 'not promoted within 60 s';
  END IF;
END
$$"""


# the pace of the rounds while no agent holds the leader key or a failover is under way
FAST_INTERVAL = 0.2


def tcp_reachable(host, port, timeout):
    """Whether a TCP connection to ``host``:``port`` opens within ``timeout`` seconds."""
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, socket.timeout):
        return False
    sock.close()
    return True


class LeaseKeeper(object):
    """Renews the agent's lease every ``interval`` seconds in its own thread
    (with its own etcd client: connections are not shared between threads)."""

    def __init__(self, etcd, interval, mono=time.monotonic):
        self.etcd = etcd
        self.interval = float(interval)
        self.mono = mono
        self.lease = 0
        self.last_ok = mono()
        self.lost = False
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def set(self, lease):
        with self._lock:
            self.lease, self.lost, self.last_ok = lease, False, self.mono()

    def renew(self):
        with self._lock:
            lease = self.lease
        if not lease:
            return
        try:
            left = self.etcd.keepalive(lease)
        except EtcdError:
            return
        with self._lock:
            if lease == self.lease:
                self.last_ok = self.mono()
                self.lost = left <= 0

    def run(self):
        while not self._stop.wait(self.interval):
            self.renew()

    def start(self):
        t = threading.Thread(target=self.run, name='lease-keeper')
        t.daemon = True
        t.start()

    def stop(self):
        self._stop.set()


class Agent(object):
    """One node's agent. Adapters: ``etcd`` (Etcd), ``instance`` (Instance:
    probe, execute), ``unit_active()``, ``reachable(host, port)``,
    ``fence(victim)``, ``replicate(upstream_node_or_None)``, ``stop_engine()``,
    ``keeper`` (LeaseKeeper, or None to renew in the round), ``read_lock()``
    ({operation, expires_in} of the cluster's live operation lock on this node, or None)."""

    def __init__(self, cfg, etcd, instance, unit_active, reachable, fence, replicate, stop_engine,
                 keeper=None, read_lock=None, clock=time.time, mono=time.monotonic, log=None):
        self.cfg = cfg
        self.cluster = cfg['cluster']
        self.node = cfg['node']
        self.nodes = cfg.get('nodes') or {}
        self.ttl = int(cfg.get('ttl', 10))
        self.keys = keys(cfg.get('namespace', '/polardb-stack'), self.cluster)
        self.etcd = etcd
        self.store = getattr(etcd, 'label', 'etcd')
        self.instance = instance
        self.unit_active = unit_active
        self.reachable = reachable
        self.fence = fence
        self.replicate = replicate
        self.stop_engine = stop_engine
        self.keeper = keeper
        self.read_lock = read_lock or (lambda: None)
        self.clock = clock
        self.mono = mono
        self.log = log or (lambda msg: None)
        self.lease = 0
        self.last_ok = mono()
        self.last_role = None
        self.etcd_ok = None
        self.holds_leader = False
        self.view = None
        self.memory = {}
        self.done = set()
        self.demoted = False
        self.urgent = False
        self.rw_lsn_seen = self.rw_seen_at = None

    # -- what this node sees -------------------------------------------------

    def observe(self):
        """This node's report, from its engine now (and whether the RW on record answers)."""
        state, error = self.instance.probe()
        active = None
        if state is None:
            try:
                active = self.unit_active()
            except PolarDBError:
                active = None
        report = report_of(self.node, state, error, active, self.clock())
        report['lock'] = self.read_lock()
        rw = (self.view or {}).get('rw')
        # during a failover the old RW's answer matters no more (and a dead host costs the timeout)
        if rw and rw.get('node') != self.node and rw.get('node') in self.nodes and not (self.view or {}).get('failover'):
            n = self.nodes[rw['node']]
            report['rw_reachable'] = self.reachable(n['host'], n['port'])
        return report

    # -- etcd ------------------------------------------------------------------

    def _ensure_lease(self):
        if self.keeper is not None:
            alive = self.lease and not self.keeper.lost
        else:
            alive = self.lease and self.etcd.keepalive(self.lease) > 0
        if alive:
            return
        if self.lease:
            self.log('lease %x had expired: keys written again under a new one' % self.lease)
        self.lease = self.etcd.grant(self.ttl)
        if self.keeper is not None:
            self.keeper.set(self.lease)
        self.holds_leader = False

    def _since_etcd(self):
        last = self.keeper.last_ok if self.keeper is not None else self.last_ok
        return self.mono() - last

    def _read(self):
        revision, kvs = self.etcd.get_prefix(self.keys['prefix'])
        return parse_cluster(revision, kvs, self.cfg.get('namespace', '/polardb-stack'), self.cluster, self.clock())

    def _leader(self, report, view):
        """Hold the leader key while the engine is the RW; give it back when not."""
        fo = view.get('failover')
        if report['role'] == 'primary':
            if fo and fo.get('from') == self.node:
                return 'a failover replaced this node'
            doc = {'node': self.node, 'timeline': report['timeline'], 'since': report['updated']}
            created, now = self.etcd.create(self.keys['leader'], doc, lease=self.lease)
            if created:
                self.log('leader key taken (timeline %s)' % report['timeline'])
                self.holds_leader = True
                return None
            holder = json.loads(now['value']).get('node') if now else None
            self.holds_leader = holder == self.node and now['lease'] == self.lease
            if self.holds_leader:
                return None
            rw = view.get('rw') or {}
            # a primary behind the RW on record, while another holds the leader key:
            # an old RW back after a failover (a new RW is on a later timeline)
            if (holder not in (None, self.node) and rw.get('node') == holder
                    and (report['timeline'] or 0) <= (rw.get('timeline') or 0)):
                self.log('this engine is a primary on timeline %s, the RW on record is %s on timeline %s: '
                         'stopping it (rebuild it with playbooks/rebuild_node.yml)'
                         % (report['timeline'], holder, rw.get('timeline')))
                self._stop_engine_logged()
                return 'an old primary (the RW is %s): stopped' % holder
            return 'the leader key names %s' % holder
        if self.holds_leader:
            kv = self.etcd.get(self.keys['leader'])
            if kv and kv['lease'] == self.lease:
                self.etcd.delete_if(self.keys['leader'], kv['mod_revision'])
            self.holds_leader = False
            self.log('leader key given back: the engine is %s' % report['role'])
        return None

    # -- a round ----------------------------------------------------------------

    def step(self):
        """One round: probe, renew, report, hold the leader key, manage, act."""
        report = self.observe()
        if report['role'] != self.last_role:
            self.log('engine is %s%s' % (report['role'], ' (%s)' % report['error'] if report['error'] else ''))
            self.last_role = report['role']
        try:
            self._ensure_lease()
            self.last_ok = self.mono()
            view = self._read()
            self.view = view
            # every agent keeps the RW's last LSN it saw: a manager elected after the RW
            # died (it may have been the manager) can still say what may be lost
            leader = view.get('leader')
            rw_report = (view['members'].get(leader['node']) or {}) if leader else {}
            if (rw_report.get('lsn') or {}).get('current'):
                self.rw_lsn_seen, self.rw_seen_at = rw_report['lsn']['current'], rw_report.get('updated')
            report['conflict'] = self._leader(report, view)
            self.etcd.put(self.keys['members'] + self.node, report, lease=self.lease)
            view['members'][self.node] = dict(report, age=0.0)
            self._manage(view)
            self._act(view, report)
            # no RW holds the leader key, or a failover is under way: every round counts
            self.urgent = view.get('leader') is None or view.get('failover') is not None
        except EtcdError as e:
            if 'lease not found' in e.msg:
                self.lease = 0  # expired between the renewal and the write: a new one next round
            if self.etcd_ok is not False:
                self.log('%s lost: %s' % (self.store, e.msg))
            self.etcd_ok = False
            self._maybe_demote(report)
            return report
        if self.etcd_ok is False:
            self.log('%s back' % self.store)
        self.etcd_ok = True
        self.demoted = False  # a later loss of etcd stops the engine again
        return report

    def _maybe_demote(self, report):
        """An RW cut off from etcd for nearly its lease stops its engine: by the
        time the lease expires a manager elsewhere may fence and replace it."""
        silent = self._since_etcd()
        if report['role'] == 'primary' and silent >= self.ttl - 1 and not self.demoted:
            self.log('%s unreachable for %.1f s (lease %d s): stopping the engine (it may be replaced)'
                     % (self.store, silent, self.ttl))
            self.demoted = True
            self._stop_engine_logged()

    def _stop_engine_logged(self):
        try:
            self.stop_engine()
        except PolarDBError as e:
            self.log('stopping the engine failed: %s' % e.msg)

    # -- the manager's duty --------------------------------------------------------

    def _manage(self, view):
        manager = view.get('manager')
        if manager is None:
            me = {'node': self.node, 'since': round(self.clock(), 3)}
            created, dummy = self.etcd.create(self.keys['manager'], me, lease=self.lease)
            if not created:
                return
            self.log('manager of cluster %s' % self.cluster)
            self.memory = {}
        elif manager.get('node') != self.node:
            return
        action = decide(view, self.node, self.cfg, self.clock(), self.memory)
        if action:
            self._do(action, view)

    def _do(self, action, view):
        kind = action['action']
        if kind == 'note':
            self.log('manager: %s' % action['msg'])
        elif kind == 'record_rw':
            self.etcd.put(self.keys['rw'], action['doc'])
            self.log('manager: %s is the RW on record (timeline %s)' % (action['doc']['node'], action['doc']['timeline']))
        elif kind == 'failover':
            doc = dict(action['doc'], old_lsn_last_seen=self.rw_lsn_seen, old_last_report_at=self.rw_seen_at)
            created, dummy = self.etcd.create(self.keys['failover'], doc)
            if created:
                self.log('manager: FAILOVER %s -> %s (%s)' % (doc['from'], doc['to'], doc['reason']))
                if doc['to'] == self.node:  # this node takes over: in this round, not the next
                    self.view = view = self._read()
                    self._act(view, view['members'].get(self.node) or {'role': 'replica'})
        elif kind == 'finish':
            doc = action['doc']
            self.etcd.put(self.keys['history'] + doc['id'], doc)
            self.etcd.delete_if(self.keys['failover'], view['mod_revisions']['failover'])
            if doc['state'] == 'failed':
                self.etcd.create(self.keys['paused'], {'by': 'manager on %s' % self.node, 'since': round(self.clock(), 3),
                                                       'reason': 'automatic failover failed: %s' % doc.get('error')})
            why = ': %s' % doc['error'] if doc.get('error') else ''
            self.log('manager: failover %s -> %s %s%s' % (doc['from'], doc['to'], doc['state'], why))

    # -- carrying out a failover ----------------------------------------------------

    def _act(self, view, report):
        fo = view.get('failover')
        if not fo:
            return
        if fo['to'] == self.node and fo['state'] == 'decided':
            self._take_over(fo, view)
        elif fo['from'] == self.node and report['role'] == 'primary' and fo['id'] not in self.done:
            self.log('a failover replaced this node by %s: stopping the engine' % fo['to'])
            self.done.add(fo['id'])
            self._stop_engine_logged()
        elif (fo['state'] == 'promoted' and self.node not in (fo['from'], fo['to'])
              and fo['id'] not in self.done and report['role'] in ('replica', 'down')):
            try:
                res = self.replicate(fo['to'])
            except PolarDBError as e:
                self.log('following %s failed (next round tries again): %s' % (fo['to'], e.msg))
                return
            self.done.add(fo['id'])
            self.log('following %s: %s' % (fo['to'], ', '.join(res.get('actions') or ['nothing to change'])))

    def _take_over(self, fo, view):
        t0 = self.clock()
        steps = {}
        self.log('taking over from %s (failover %s)' % (fo['from'], fo['id']))
        fence_error = None
        try:
            fenced = self.fence(fo['from'])
            steps['fenced'] = fenced
        except PolarDBError as e:
            fence_error = e.msg
        steps['fenced_at'] = round(self.clock(), 3)
        if fence_error and not self.cfg.get('unfenced_ok'):
            self._update(fo, view, state='decided', error='fencing %s failed: %s' % (fo['from'], fence_error))
            self.log('fencing %s failed, not promoting: %s' % (fo['from'], fence_error))
            return
        try:
            self.instance.execute(PROMOTE_SQL)
        except PolarDBError as e:
            self._update(fo, view, state='decided', error='promote failed: %s' % e.msg)
            self.log('promote failed: %s' % e.msg)
            return
        promoted = self.clock()
        state, dummy = self.instance.probe()
        timeline = state['timeline'] if state else None
        try:
            res = self.replicate(None)
            steps['slots_created'] = res.get('slots_created')
        except PolarDBError as e:
            steps['replication_error'] = e.msg
        self.etcd.put(self.keys['rw'], {'node': self.node, 'timeline': timeline, 'since': round(promoted, 3)})
        # the old RW's leader key may outlive it (a lease extended by an etcd election): this node takes it now
        kv = self.etcd.get(self.keys['leader'])
        if kv and json.loads(kv['value']).get('node') == fo['from']:
            self.etcd.delete_if(self.keys['leader'], kv['mod_revision'])
        self._update(fo, view, state='promoted', promoted_at=round(promoted, 3), new_timeline=timeline,
                     new_lsn=(state or {}).get('lsn', {}).get('current'), fence_error=fence_error,
                     take_over_s=round(promoted - t0, 3), **steps)
        self.log('promoted (timeline %s) %.2f s after the decision' % (timeline, promoted - float(fo['decided_at'])))

    def _update(self, fo, view, **fields):
        doc = dict(fo, **fields)
        if not self.etcd.replace(self.keys['failover'], doc, view['mod_revisions']['failover']):
            self.log('the failover record changed meanwhile: not updated')

    def stop(self):
        """Leave cleanly: the lease (and with it the report, the leader and manager keys) goes now."""
        if self.keeper is not None:
            self.keeper.stop()
        if self.lease:
            try:
                self.etcd.revoke(self.lease)
            except EtcdError:
                pass
            self.lease = 0


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    for key in ('cluster', 'node', 'engine', 'nodes'):
        if key not in cfg:
            raise PolarDBError('%s: no %r' % (path, key))
    if ('etcd' in cfg) == ('kubernetes' in cfg):
        raise PolarDBError('%s: one store, "etcd" or "kubernetes"' % path)
    return cfg


def store_client(cfg):
    """A client of the configured store: etcd, or the Kubernetes API in its place (module_utils/k8s_kv)."""
    if 'kubernetes' in cfg:
        from ansible_collections.polardb.stack.plugins.module_utils.k8s_kv import KubeKV, TokenApi
        kube = cfg['kubernetes']
        api = TokenApi(kube['server'], kube['token_file'], ca_file=kube.get('ca_file'), timeout=float(kube.get('timeout', 2)))
        return KubeKV(api, kube['namespace'], holder='%s/%s' % (cfg['cluster'], cfg['node']))
    etc = cfg['etcd']
    return Etcd(etc['endpoints'], timeout=float(etc.get('timeout', 2)), ca_file=etc.get('ca_file'),
                cert_file=etc.get('cert_file'), key_file=etc.get('key_file'))


def store_name(cfg):
    if 'kubernetes' in cfg:
        return 'the Kubernetes API %s (namespace %s)' % (cfg['kubernetes']['server'], cfg['kubernetes']['namespace'])
    return 'etcd %s' % ', '.join(cfg['etcd']['endpoints'])


def agent_from_config(cfg, log):
    """The Agent of ``cfg`` with the real adapters (the imports stay here: unit tests need none of them)."""
    from ansible_collections.polardb.stack.plugins.module_utils.fencing import ensure_fence
    from ansible_collections.polardb.stack.plugins.module_utils.instance import Instance
    from ansible_collections.polardb.stack.plugins.module_utils.lun import HostFiles
    from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import (
        DEFAULT_LOCK_DIR, FileLeaseStore, NodeClock, lease_state)
    from ansible_collections.polardb.stack.plugins.module_utils.replication import Replication
    from ansible_collections.polardb.stack.plugins.module_utils.runner import ProcessRunner

    eng, fen = cfg['engine'], cfg.get('fence') or {}
    runner = ProcessRunner(timeout=float(cfg.get('command_timeout', 60)))

    instance = Instance(runner, eng['data_dir'], bin_dir=eng['bin_dir'], owner=eng.get('owner', 'postgres'),
                        port=eng.get('port', 5432), socket_dir=eng.get('socket_dir', '/var/run/postgresql'))
    nodes = cfg['nodes']

    def unit_active():
        # running, or being (re)started: "activating" covers systemd's restart of a crashed
        # engine (Restart=on-failure), which the manager waits for before failing over
        res = runner.run(['systemctl', 'show', '--property=ActiveState', '--value', '--', eng['service']], check=False)
        return (res.stdout or '').strip() in ('active', 'activating', 'reloading') if res.rc == 0 else None

    def reachable(host, port):
        return tcp_reachable(host, port, float(cfg.get('probe_timeout', 1)))

    def fence(victim):
        if fen.get('driver', 'none') == 'none':
            raise PolarDBError('no fence driver configured')
        res = ensure_fence(runner, HostFiles(), state='fenced_out', driver=fen['driver'], wwid=nodes[victim]['wwid'],
                           cluster=cfg['cluster'], node=cfg['node'], victim=victim, nodes=list(nodes),
                           command=fen.get('command') or None, command_timeout=fen.get('command_timeout'))
        return res.get('actions') or []

    def replicate(upstream):
        others = [n['slot'] for name, n in sorted(nodes.items()) if name != cfg['node']]
        return Replication(instance, runner, eng['service'], eng['replication_conf_path'],
                           eng['replication_conf'][upstream or ''],
                           upstream=dict(nodes[upstream], name=upstream) if upstream else None,
                           slots=[] if upstream else others, drop_slots=others if upstream else []).run()

    def stop_engine():
        # the stop job first (so that the unit's Restart= does not bring it back), then an
        # immediate shutdown: a fast one would wait for WAL that may not be writable any more
        runner.run(['systemctl', 'stop', '--no-block', eng['service']])
        runner.run(['systemctl', 'kill', '--signal=SIGQUIT', '--kill-whom=main', eng['service']], check=False)

    store, node_clock = FileLeaseStore(cfg.get('lock_dir', DEFAULT_LOCK_DIR)), NodeClock()

    def read_lock():
        try:
            lock = store.read(cfg['cluster'])
        except PolarDBError as e:
            return {'operation': 'unreadable (%s)' % e.msg, 'expires_in': None}
        if lock is None:
            return None
        state = lease_state(lock, node_clock)
        return None if state['expired'] else {'operation': lock.get('operation'), 'expires_in': state['expires_in']}

    keeper = LeaseKeeper(store_client(cfg), float(cfg.get('interval', 1)))
    return Agent(cfg, store_client(cfg), instance, unit_active, reachable, fence, replicate, stop_engine,
                 keeper=keeper, read_lock=read_lock, log=log)


def main(argv=None):
    parser = argparse.ArgumentParser(description='polardb.stack cluster manager agent')
    parser.add_argument('--config', required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)

    def log(msg):
        sys.stdout.write('%s/%s: %s\n' % (cfg['cluster'], cfg['node'], msg))
        sys.stdout.flush()

    agent = agent_from_config(cfg, log)
    interval = float(cfg.get('interval', 1))

    def leave(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    log('started (ttl %s s, every %s s, %s)' % (agent.ttl, interval, store_name(cfg)))
    agent.keeper.start()
    try:
        while True:
            started = time.monotonic()
            try:
                agent.step()
            except PolarDBError as e:
                log('round failed: %s' % e.msg)
            pace = min(interval, FAST_INTERVAL) if agent.urgent else interval
            time.sleep(max(0.0, pace - (time.monotonic() - started)))
    finally:
        agent.stop()
        log('stopped: lease revoked')


if __name__ == '__main__':
    main()
