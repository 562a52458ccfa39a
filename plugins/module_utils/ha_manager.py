# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster manager: its state in etcd, and what it decides.

Keys of one cluster, under ``<namespace>/<cluster>/`` (``keys()``):

- ``members/<node>``: the report of the node's agent (``report_of``), under the
  agent's lease: it vanishes when the agent stops or its host goes silent.
- ``leader``: {node, timeline, since}, held by the RW's agent under its lease.
- ``manager``: {node, since}, held under its lease by the agent that manages
  (the first to take it; another takes it when that lease expires).
- ``rw``: {node, timeline, since}: the cluster's record of its RW (no lease),
  written by the manager when the leader key names a new node, and by the
  agent that was promoted.
- ``failover``: the failover under way (no lease): {id, from, to, state,
  decided_at, reason, ...}; state decided -> promoted -> (``history/`` entry).
- ``history/<id>``: every automatic failover, with its timings.
- ``paused``: {by, since, reason}: the manager decides nothing (no lease).

``decide()`` is the manager's whole judgement, pure: from what etcd holds (and
the manager's memory of the last rounds) to at most one action. The agents
carry the actions out (module_utils/ha_agent.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.polardb.stack.plugins.module_utils.etcd import EtcdError
from ansible_collections.polardb.stack.plugins.module_utils.failover import lsn_int
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import CLUSTER_RE
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

STATES = ('query', 'enabled', 'paused')
AGENT_VERSION = 1
DEFAULT_NAMESPACE = '/polardb-stack'


def keys(namespace, cluster):
    """The etcd keys of ``cluster``."""
    prefix = '%s/%s/' % (namespace.rstrip('/'), cluster)
    out = {'prefix': prefix, 'members': prefix + 'members/', 'history': prefix + 'history/'}
    for name in ('leader', 'manager', 'rw', 'failover', 'paused'):
        out[name] = prefix + name
    return out


def report_of(node, state, error, unit_active, now):
    """The ``members/<node>`` document from one probe of the engine.

    ``state``: node_state() of the probe, or None when the engine did not
    answer (``error`` says why); ``unit_active``: whether the engine's systemd unit
    runs or is being (re)started."""
    doc = {'node': node, 'updated': round(now, 3), 'agent_version': AGENT_VERSION,
           'unit_active': unit_active}
    if state is None:
        doc.update({'role': 'down', 'running': False, 'error': error, 'timeline': None,
                    'lsn': {'current': None, 'receive': None, 'replay': None}, 'upstream': None})
        return doc
    doc.update({'role': state['role'], 'running': True, 'error': None, 'timeline': state['timeline'],
                'lsn': dict(state['lsn']), 'upstream': state['upstream']})
    return doc


def parse_cluster(revision, kvs, namespace, cluster, now):
    """What etcd holds for ``cluster`` (``get_prefix`` of its prefix): {revision,
    members: {node: report + age}, leader, manager, rw, failover, paused,
    history: [...]}; ``mod_revisions`` of the single keys, for compare-and-swap."""
    k = keys(namespace, cluster)
    single = dict((k[name], name) for name in ('leader', 'manager', 'rw', 'failover', 'paused'))
    out = {'revision': revision, 'members': {}, 'history': [], 'mod_revisions': {}}
    out.update(dict((name, None) for name in single.values()))
    for kv in kvs:
        try:
            doc = json.loads(kv['value'])
        except ValueError:
            continue
        if kv['key'].startswith(k['members']):
            doc['age'] = round(max(0.0, now - float(doc.get('updated', now))), 1)
            out['members'][kv['key'][len(k['members']):]] = doc
        elif kv['key'].startswith(k['history']):
            out['history'].append(doc)
        elif kv['key'] in single:
            out[single[kv['key']]] = doc
            out['mod_revisions'][single[kv['key']]] = kv['mod_revision']
    return out


def etcd_view(etcd):
    """{members: [...], endpoints: {url: {healthy, version, leader, raft_term, error}}, leader_agreed}."""
    view = {'members': [], 'endpoints': {}, 'label': getattr(etcd, 'label', 'etcd')}
    try:
        view['members'] = etcd.members()
    except EtcdError as e:
        view['error'] = e.msg
    leaders = set()
    for url in etcd.endpoints:
        try:
            st = etcd.status(url)
            st.update(healthy=True, error=None)
            leaders.add(st['leader'])
        except EtcdError as e:
            st = {'healthy': False, 'error': e.msg}
        view['endpoints'][url] = st
    view['leader_agreed'] = len(leaders) == 1
    return view


def read_cluster(etcd, namespace, cluster, now):
    """What etcd holds for ``cluster`` (parse_cluster's form) plus ``etcd``: etcd_view()."""
    revision, kvs = etcd.get_prefix(keys(namespace, cluster)['prefix'])
    out = parse_cluster(revision, kvs, namespace, cluster, now)
    out['etcd'] = etcd_view(etcd)
    return out


def ensure_state(etcd, namespace, cluster, state, now, by=None, reason=None, check_mode=False):
    """Query, pause (``paused``) or resume (``enabled``) the manager of ``cluster``.

    {changed, cluster: read_cluster(), diff}. A pause already there is kept as
    it is (its author and time stay); resuming removes it."""
    if state not in STATES:
        raise PolarDBError('unknown state %r (one of %s)' % (state, ', '.join(STATES)))
    # the name is part of every key: one the collection cannot have would read or pause
    # under a prefix of its own (the lock's check, which the module documents)
    if not CLUSTER_RE.match('%s' % cluster):
        raise PolarDBError('invalid cluster name %r: must match %s' % (cluster, CLUSTER_RE.pattern))
    key = keys(namespace, cluster)['paused']
    current = etcd.get(key)
    before = json.loads(current['value']) if current else None
    after = before
    if state == 'paused' and current is None:
        after = {'by': by or 'unknown', 'since': round(now, 3), 'reason': reason or ''}
        if not check_mode:
            created, dummy = etcd.create(key, after)
            if not created:  # paused meanwhile by someone else: theirs stands
                after = json.loads(etcd.get(key)['value'])
    elif state == 'enabled' and current is not None:
        after = None
        if not check_mode:
            etcd.delete_if(key, current['mod_revision'])
    changed = after != before
    return {'changed': changed, 'cluster': read_cluster(etcd, namespace, cluster, now),
            'diff': {'before': {'paused': before}, 'after': {'paused': after}}}


# -- the manager's judgement -----------------------------------------------------


def _best_lsn(report):
    lsn = report.get('lsn') or {}
    vals = [v for v in (lsn_int(lsn.get('receive')), lsn_int(lsn.get('replay'))) if v is not None]
    return max(vals) if vals else -1


def candidates(view, old, nodes, max_age):
    """The replicas that may take over from ``old``, most advanced first:
    [{name, lsn}]; and {name: why not} for the others."""
    out, refused = [], {}
    for name in sorted(nodes):
        if name == old:
            continue
        rep = view['members'].get(name)
        kind = nodes[name].get('kind', 'replica')
        if kind != 'replica':
            refused[name] = 'a %s (never chosen)' % kind
        elif rep is None:
            refused[name] = 'no report (agent or host gone)'
        elif rep.get('age', 0) > max_age:
            refused[name] = 'its report is %.1f s old' % rep['age']
        elif rep.get('role') != 'replica':
            refused[name] = 'its engine is %s' % rep.get('role')
        else:
            out.append({'name': name, 'lsn': _best_lsn(rep),
                        'lsn_text': (rep.get('lsn') or {}).get('receive') or (rep.get('lsn') or {}).get('replay')})
    out.sort(key=lambda c: (-c['lsn'], c['name']))
    return out, refused


def decide(view, me, cfg, now, memory):
    """The manager's action for this round, or None.

    ``view``: parse_cluster(); ``me``: the managing agent's node; ``cfg``:
    {nodes: {name: {kind, host, port}}, ttl, interval, fence_driver,
    unfenced_ok, restart_grace, failover_timeout}; ``memory``: a dict the
    manager keeps between rounds (``suspect_since``, ``noted``).

    Actions (dicts with ``action``): record_rw {doc}; failover {doc};
    finish {doc}; note {msg} (for the log, once per distinct message)."""
    if view.get('paused'):
        memory.pop('suspect_since', None)
        return None
    nodes = cfg['nodes']
    ttl, interval = float(cfg['ttl']), float(cfg['interval'])
    fo = view.get('failover')
    if fo:
        return _supervise(view, fo, nodes, cfg, now)
    leader = view.get('leader')
    rw = view.get('rw')
    # The leader key alone is not enough: a new etcd leader extends every lease by
    # its TTL, so an RW gone with the etcd leader keeps its key that much longer.
    # Its agent's report, silent for longer than the lease, tells the same sooner.
    leader_rep = view['members'].get(leader['node']) if leader else None
    silent = leader is not None and (leader_rep is None or leader_rep.get('age', 0) > ttl)
    if leader and not silent:
        memory.pop('suspect_since', None)
        fresh = leader_rep.get('age', 0) <= 3 * interval
        if (rw is None or rw.get('node') != leader['node']) and fresh and leader_rep.get('role') == 'primary':
            return {'action': 'record_rw', 'doc': {'node': leader['node'], 'timeline': leader.get('timeline'),
                                                   'since': round(now, 3)}}
        return None
    if rw is None:
        return _note(memory, 'no RW recorded yet and no leader key: nothing to watch')
    # a playbook at work (switchover, restart, ...) holds the cluster's operation lock:
    # an RW it stopped on purpose is no failure
    locked = sorted(set('%s (%s s left)' % (r['lock'].get('operation'), r['lock'].get('expires_in'))
                        for r in view['members'].values() if r.get('lock') and r.get('age', 0) <= 3 * interval))
    if locked:
        memory.pop('suspect_since', None)
        return _note(memory, 'no leader key, and the operation lock is held by %s: waiting' % ', '.join(locked))
    old = rw['node']
    memory.setdefault('suspect_since', now)
    rep = view['members'].get(old)
    if rep is not None and rep.get('age', 0) > ttl:
        rep = None  # its agent is silent: as good as gone
    if rep is not None and rep.get('role') == 'primary':
        return None  # its agent retakes the leader key next round
    if rep is not None and rep.get('unit_active') and now - memory['suspect_since'] < float(cfg['restart_grace']):
        return _note(memory, '%s: engine down, its unit restarting it (waiting up to %s s)'
                     % (old, cfg['restart_grace']))
    fresh = dict((n, r) for n, r in view['members'].items() if n != old and r.get('age', 0) <= 3 * interval)
    unreachable = sorted(n for n, r in fresh.items() if r.get('rw_reachable') is False)
    reachable = sorted(n for n, r in fresh.items() if r.get('rw_reachable'))
    needed = min(2, len(fresh))
    if reachable or not needed or len(unreachable) < needed:
        return _note(memory, 'RW %s: its %s, not confirmed: %s' % (
            old, 'agent is silent' if silent else 'leader key is gone', 'reached by %s' % ', '.join(reachable) if reachable else
            'unreachable for %s of %d probes needed' % (', '.join(unreachable) or 'none', needed)))
    if cfg.get('fence_driver', 'none') == 'none' and not cfg.get('unfenced_ok'):
        return _note(memory, '%s is gone, and no fence driver is configured: no automatic failover '
                     '(polardb_fence_driver, or polardb_ha_failover_unfenced)' % old)
    cands, refused = candidates(view, old, nodes, max_age=ttl)
    if not cands:
        return _note(memory, '%s is gone and no replica can take over (%s)' % (
            old, '; '.join('%s: %s' % kv for kv in sorted(refused.items()))))
    to = cands[0]
    return {'action': 'failover', 'doc': {
        'id': '%d-%s' % (int(now * 1000), old), 'from': old, 'to': to['name'], 'state': 'decided',
        'decided_at': round(now, 3), 'suspected_at': round(memory['suspect_since'], 3), 'decided_by': me,
        'reason': 'RW %s: its %s; unreachable for %s' % (old, 'agent is silent' if silent else 'leader key is gone',
                                                         ', '.join(unreachable)),
        'to_lsn': to['lsn_text'], 'timeline': rw.get('timeline'),
        'candidates': [c['name'] for c in cands], 'refused': refused}}


def _note(memory, msg):
    if memory.get('noted') == msg:
        return None
    memory['noted'] = msg
    return {'action': 'note', 'msg': msg}


def _following(rep, to_node):
    up = (rep or {}).get('upstream') or {}
    return rep is not None and up.get('host') == to_node.get('host') and up.get('status') == 'streaming'


def _supervise(view, fo, nodes, cfg, now):
    """A failover under way: finish it once the others follow the new RW (or time is up)."""
    waited = now - float(fo['decided_at'])
    if fo['state'] == 'decided':
        if waited > float(cfg['failover_timeout']):
            error = '%s did not promote within %s s' % (fo['to'], cfg['failover_timeout'])
            return {'action': 'finish', 'doc': dict(fo, state='failed', ended_at=round(now, 3), error=error)}
        return None
    if fo['state'] != 'promoted':
        return None
    to_node = nodes.get(fo['to'], {})
    others = [n for n in sorted(view['members']) if n not in (fo['from'], fo['to'])]
    lagging = [n for n in others if not _following(view['members'].get(n), to_node)]
    if lagging and waited <= float(cfg['failover_timeout']):
        return None
    doc = dict(fo, state='done', ended_at=round(now, 3), following=[n for n in others if n not in lagging])
    if lagging:
        doc['not_following'] = lagging
    return {'action': 'finish', 'doc': doc}


# -- for people ------------------------------------------------------------------


def _fmt_lsn(lsn):
    lsn = lsn or {}
    return lsn.get('current') or lsn.get('replay') or lsn.get('receive') or '-'


def table(view, cluster):
    """``read_cluster()`` as lines for people."""
    paused = view.get('paused')
    lines = ['cluster %s: manager %s' % (cluster, 'PAUSED by %s (%s)' % (paused.get('by'), paused.get('reason') or 'no reason given')
                                         if paused else 'not paused')]
    leader, manager, rw = view.get('leader'), view.get('manager'), view.get('rw')
    lines.append('leader key: %s; RW on record: %s; managed by: %s' % (
        '%s (timeline %s)' % (leader.get('node'), leader.get('timeline')) if leader else 'held by no agent',
        rw.get('node') if rw else 'none', manager.get('node') if manager else 'no agent'))
    for node, rep in sorted((view.get('members') or {}).items()):
        extra = []
        up = rep.get('upstream')
        if up:
            extra.append('from %s:%s (%s)' % (up.get('host'), up.get('port'), up.get('status')) if isinstance(up, dict)
                         else 'from %s' % up)
        if rep.get('error'):
            extra.append(rep['error'])
        if rep.get('conflict'):
            extra.append('CONFLICT: %s' % rep['conflict'])
        lines.append('agent %-12s %-8s timeline %-3s %-14s report %.1f s old%s'
                     % (node, rep.get('role'), rep.get('timeline') if rep.get('timeline') is not None else '-',
                        _fmt_lsn(rep.get('lsn')), rep.get('age', 0.0), ('; ' + '; '.join(extra)) if extra else ''))
    fo = view.get('failover')
    if fo:
        lines.append('failover under way: %s -> %s, %s' % (fo.get('from'), fo.get('to'), fo.get('state')))
    hist = sorted(view.get('history') or [], key=lambda h: h.get('decided_at', 0))
    if hist:
        h = hist[-1]
        lines.append('last automatic failover: %s -> %s, %s%s%s' % (
            h.get('from'), h.get('to'), h.get('state'),
            ', promoted %.1f s after the old RW\'s last report' % (h['promoted_at'] - h['old_last_report_at'])
            if h.get('promoted_at') and h.get('old_last_report_at') else '',
            '; the old RW was last seen at %s, the new RW had received %s' % (h.get('old_lsn_last_seen'), h.get('to_lsn'))
            if h.get('old_lsn_last_seen') else ''))
    etcd = view.get('etcd') or {}
    eps = etcd.get('endpoints') or {}
    healthy = [u for u, st in eps.items() if st.get('healthy')]
    versions = sorted(set(st.get('version') for st in eps.values() if st.get('version')))
    if etcd.get('label', 'etcd') != 'etcd':  # the Kubernetes API in etcd's place
        lines.append('store: %s %s, version %s' % (etcd['label'], ', '.join(
            '%s %s' % (u, 'answers' if st.get('healthy') else 'does NOT answer: %s' % st.get('error'))
            for u, st in sorted(eps.items())), ', '.join(versions) or '?'))
        return lines
    lines.append('etcd: %d members (%s), %d/%d endpoints answer%s, version %s'
                 % (len(etcd.get('members') or []), ', '.join(m['name'] for m in etcd.get('members') or []),
                    len(healthy), len(eps), ', one leader' if etcd.get('leader_agreed') else ', NO AGREED LEADER',
                    ', '.join(versions) or '?'))
    for url, st in sorted(eps.items()):
        if not st.get('healthy'):
            lines.append('etcd endpoint %s: %s' % (url, st.get('error')))
    return lines
