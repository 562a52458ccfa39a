# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From per-node probes to a cluster topology.

Every node answers one query, ``PROBE_SQL`` (one JSON document: recovery
state, timeline, LSNs, WAL receiver, WAL senders). ``node_state()`` turns that
answer into the facts of one node; ``build_topology()`` turns the facts of all
nodes into the cluster: the RW, replicas, lag and the problems (no RW, two RWs,
unreachable, foreign system identifier, not streaming, wrong upstream). Those
two and the LSN helpers are pure. ``probe_node()`` / ``probe_all()`` do the
probing, with the connection function handed in (``sql.connect`` in modules,
a fake in tests).

Timeline, as reported here:

- primary: the timeline WAL is written on now, from the name of the current
  WAL file (``pg_walfile_name(pg_current_wal_lsn())``). The timeline of
  ``pg_control_checkpoint()`` lags behind it after a promote until the next
  checkpoint, so it is not used on a primary.
- replica: the timeline of the WAL last received (``received_tli`` of
  ``pg_stat_wal_receiver``); without a WAL receiver, the timeline of the last
  restartpoint (``pg_control_checkpoint()``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import socket
import threading
import time

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

# The one probe every node answers, locally through psql (instance_info) or
# over TCP (cluster_info). One row, one column ``probe``: a JSON text. Needs a
# superuser (or pg_monitor) for the control functions and pg_stat_replication.
PROBE_SQL = """SELECT json_build_object(
 'in_recovery', pg_is_in_recovery(),
 'server_version', current_setting('server_version'),
 'server_version_num', current_setting('server_version_num')::int,
 'polar_version', current_setting('polar_version', true),
 'data_directory', current_setting('data_directory'),
 'system_identifier', (SELECT system_identifier::text FROM pg_control_system()),
 'checkpoint_timeline', (SELECT timeline_id FROM pg_control_checkpoint()),
 'wal_file', CASE WHEN pg_is_in_recovery() THEN NULL
                  ELSE pg_walfile_name(pg_current_wal_lsn()) END,
 'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL
                     ELSE pg_current_wal_lsn()::text END,
 'receive_lsn', pg_last_wal_receive_lsn()::text,
 'replay_lsn', pg_last_wal_replay_lsn()::text,
 'wal_receiver', (SELECT json_build_object(
     'status', w.status, 'received_tli', w.received_tli,
     'sender_host', w.sender_host, 'sender_port', w.sender_port,
     'slot_name', w.slot_name, 'flushed_lsn', w.flushed_lsn::text)
   FROM pg_stat_wal_receiver w LIMIT 1),
 'replication', COALESCE((SELECT json_agg(json_build_object(
     'application_name', r.application_name, 'client_addr', host(r.client_addr),
     'state', r.state, 'sync_state', r.sync_state, 'slot_name', s.slot_name,
     'sent_lsn', r.sent_lsn::text, 'write_lsn', r.write_lsn::text,
     'flush_lsn', r.flush_lsn::text, 'replay_lsn', r.replay_lsn::text,
     'replay_lag_bytes', pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
              ELSE pg_current_wal_lsn() END, r.replay_lsn)::bigint)
     ORDER BY r.application_name, r.pid)
   FROM pg_stat_replication r
   LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid), '[]'::json),
 'max_slot_wal_keep_size', current_setting('max_slot_wal_keep_size', true),
 'pending_restart', COALESCE((SELECT json_agg(name ORDER BY name) FROM pg_settings WHERE pending_restart), '[]'::json),
 'slots', COALESCE((SELECT json_agg(json_build_object(
     'slot_name', s.slot_name, 'slot_type', s.slot_type, 'active', s.active,
     'restart_lsn', s.restart_lsn::text, 'wal_status', s.wal_status,
     'safe_wal_size', s.safe_wal_size,
     'retained_bytes', CASE WHEN pg_is_in_recovery() OR s.restart_lsn IS NULL THEN NULL
                            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint END)
     ORDER BY s.slot_name)
   FROM pg_replication_slots s), '[]'::json)
)::text AS probe"""

APPLICATION_NAME = 'polardb.stack'


# --------------------------------------------------------------------- LSNs

def parse_lsn(text):
    """'16/B374D848' -> int; None stays None."""
    if text is None:
        return None
    try:
        hi, lo = str(text).strip().split('/')
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise ValueError('not an LSN: %r' % (text,))


def format_lsn(value):
    """int -> 'X/Y' as PostgreSQL writes it (upper-case hex, no padding)."""
    if value is None:
        return None
    value = int(value)
    if value < 0:
        raise ValueError('negative LSN: %d' % value)
    return '%X/%X' % (value >> 32, value & 0xFFFFFFFF)


def lsn_diff(a, b):
    """Bytes from LSN ``b`` to LSN ``a`` (a - b); None if either is unknown."""
    if a is None or b is None:
        return None
    return parse_lsn(a) - parse_lsn(b)


def timeline_of_walfile(name):
    """'00000002000000000000000A' -> 2."""
    if not name:
        return None
    return int(name[:8], 16)


# -------------------------------------------------------------- node facts

def _empty_lsn():
    return {'current': None, 'receive': None, 'replay': None}


def node_state(raw):
    """The probe's JSON (dict) -> facts of one running node."""
    in_recovery = bool(raw.get('in_recovery'))
    receiver = raw.get('wal_receiver') or None
    upstream = None
    if receiver:
        upstream = {
            'host': receiver.get('sender_host'),
            'port': receiver.get('sender_port'),
            'status': receiver.get('status'),
            'slot': receiver.get('slot_name'),
        }
    if in_recovery:
        timeline = (receiver or {}).get('received_tli') or raw.get('checkpoint_timeline')
    else:
        timeline = timeline_of_walfile(raw.get('wal_file')) or raw.get('checkpoint_timeline')
    replication = []
    for r in raw.get('replication') or []:
        replication.append({
            'application_name': r.get('application_name'),
            'client_addr': r.get('client_addr'),
            'state': r.get('state'),
            'sync_state': r.get('sync_state'),
            'slot_name': r.get('slot_name'),
            'sent_lsn': r.get('sent_lsn'),
            'write_lsn': r.get('write_lsn'),
            'flush_lsn': r.get('flush_lsn'),
            'replay_lsn': r.get('replay_lsn'),
            'replay_lag_bytes': r.get('replay_lag_bytes'),
        })
    slots = []
    for sl in raw.get('slots') or []:
        retained = sl.get('retained_bytes')
        if retained is None and not in_recovery:
            retained = lsn_diff(raw.get('current_lsn'), sl.get('restart_lsn'))
        slots.append({
            'name': sl.get('slot_name'),
            'type': sl.get('slot_type'),
            'active': sl.get('active'),
            'restart_lsn': sl.get('restart_lsn'),
            'wal_status': sl.get('wal_status'),
            'safe_wal_size': sl.get('safe_wal_size'),
            'retained_bytes': max(0, int(retained)) if retained is not None else None,
        })
    polar_version = raw.get('polar_version')
    return {
        'role': 'replica' if in_recovery else 'primary',
        'in_recovery': in_recovery,
        'timeline': int(timeline) if timeline is not None else None,
        'system_identifier': (str(raw['system_identifier'])
                              if raw.get('system_identifier') is not None else None),
        'server_version': raw.get('server_version'),
        'server_version_num': raw.get('server_version_num'),
        'flavour': 'polardb' if polar_version else 'postgresql',
        'polar_version': polar_version or None,
        'data_directory': raw.get('data_directory'),
        'lsn': {
            'current': raw.get('current_lsn') if not in_recovery else None,
            'receive': raw.get('receive_lsn') if in_recovery else None,
            'replay': raw.get('replay_lsn') if in_recovery else None,
        },
        'upstream': upstream,
        'replication': replication,
        'slots': slots,
        'max_slot_wal_keep_size': raw.get('max_slot_wal_keep_size'),
        'pending_restart': list(raw.get('pending_restart') or []),
    }


def parse_probe(text):
    """The ``probe`` column (JSON text, or an already decoded dict) -> node_state."""
    raw = text if isinstance(text, dict) else json.loads(text)
    return node_state(raw)


# --------------------------------------------------------------- topology

def _same_host_plain(a, b):
    return a is not None and b is not None and str(a).lower() == str(b).lower()


def _names(nodes):
    return ', '.join(n['name'] for n in nodes)


def _find_node(nodes, host, port, same_host):
    if host is None:
        return None
    for n in nodes:
        if same_host(n['host'], host) and (port is None or int(n['port']) == int(port)):
            return n
    return None


def _replication_row(rw, replica, same_host):
    """The RW's pg_stat_replication row of ``replica`` (slot, name, address)."""
    rows = rw.get('replication') or []
    slot = (replica.get('upstream') or {}).get('slot')
    if slot:
        for r in rows:
            if r.get('slot_name') == slot:
                return r
    for r in rows:
        if r.get('application_name') == replica['name']:
            return r
    by_addr = [r for r in rows if same_host(r.get('client_addr'), replica['host'])]
    if len(by_addr) == 1:
        return by_addr[0]
    return None


def _node_out(probe):
    state = probe.get('state') if probe.get('reachable') else None
    out = {
        'name': probe['name'],
        'host': probe['host'],
        'port': int(probe['port']),
        'reachable': bool(state is not None),
        'error': probe.get('error'),
        'role': None,
        'in_recovery': None,
        'timeline': None,
        'system_identifier': None,
        'server_version': None,
        'server_version_num': None,
        'pending_restart': [],
        'flavour': None,
        'lsn': _empty_lsn(),
        'upstream': None,
        'upstream_node': None,
        'replication': [],
        'lag_bytes': None,
        'streaming': None,
        'slots': [],
        'slot': None,
        'max_slot_wal_keep_size': None,
    }
    if state is not None:
        for key in ('role', 'in_recovery', 'timeline', 'system_identifier', 'server_version',
                    'server_version_num', 'flavour', 'upstream', 'replication', 'max_slot_wal_keep_size'):
            out[key] = state.get(key)
        out['slots'] = list(state.get('slots') or [])
        out['lsn'] = dict(_empty_lsn(), **(state.get('lsn') or {}))
    elif out['error'] is None:
        out['error'] = 'no answer'
    return out


def build_topology(probes, same_host=None, max_lag_bytes=None):
    """Probes of every node -> the ``cluster`` result of cluster_info.

    ``probes``: list of {name, host, port, reachable, error, state} where
    ``state`` is ``node_state()`` of a reachable node. ``same_host(a, b)``
    tells whether two host strings name the same host (default: equal, case
    insensitive). ``max_lag_bytes``: a replica lagging more is a problem.
    """
    same_host = same_host or _same_host_plain
    nodes = [_node_out(p) for p in probes]
    problems = []

    reachable = [n for n in nodes if n['reachable']]
    rw_nodes = [n for n in reachable if n['role'] == 'primary']
    replicas = [n for n in reachable if n['role'] == 'replica']
    rw = rw_nodes[0] if rw_nodes else None

    if not rw_nodes:
        problems.append('no RW node' + (' among the reachable nodes (%s)' % _names(reachable)
                                        if reachable else ': no node is reachable'))
    elif len(rw_nodes) > 1:
        problems.append('%d RW nodes: %s' % (len(rw_nodes), _names(rw_nodes)))

    for n in nodes:
        if not n['reachable']:
            problems.append('%s (%s:%s) unreachable: %s' % (n['name'], n['host'], n['port'], n['error']))

    if rw is None:
        ids = sorted(set(n['system_identifier'] for n in reachable if n['system_identifier']))
        if len(ids) > 1:
            problems.append('the nodes do not share one system identifier: %s' % ', '.join(
                '%s=%s' % (n['name'], n['system_identifier']) for n in reachable))
    else:
        for other in rw_nodes[1:]:
            if other['system_identifier'] != rw['system_identifier']:
                problems.append('%s: system identifier %s differs from the RW %s (%s)'
                                % (other['name'], other['system_identifier'], rw['name'],
                                   rw['system_identifier']))

    for n in replicas:
        up = n['upstream']
        n['streaming'] = bool(up and up.get('status') == 'streaming')
        if up:
            source = _find_node(nodes, up.get('host'), up.get('port'), same_host)
            n['upstream_node'] = source['name'] if source else None
        if not n['streaming']:
            problems.append('%s: replica not streaming (%s)' % (
                n['name'], 'WAL receiver %s' % up.get('status') if up else 'no WAL receiver'))
        if rw is None:
            continue
        if n['system_identifier'] != rw['system_identifier']:
            problems.append('%s: system identifier %s differs from the RW %s (%s)'
                            % (n['name'], n['system_identifier'], rw['name'], rw['system_identifier']))
            continue
        if up and up.get('host') is not None and n['upstream_node'] != rw['name']:
            if n['upstream_node']:
                problems.append('%s: streams from %s (cascaded), not from the RW %s'
                                % (n['name'], n['upstream_node'], rw['name']))
            else:
                problems.append('%s: streams from %s:%s, which is not the RW %s (%s:%s)'
                                % (n['name'], up.get('host'), up.get('port'), rw['name'],
                                   rw['host'], rw['port']))
        lag = None
        row = _replication_row(rw, n, same_host) if n['upstream_node'] == rw['name'] else None
        if row is not None and row.get('replay_lag_bytes') is not None:
            lag = int(row['replay_lag_bytes'])
        else:
            lag = lsn_diff(rw['lsn']['current'], n['lsn']['replay'])
        n['lag_bytes'] = max(0, lag) if lag is not None else None
        if max_lag_bytes is not None and n['lag_bytes'] is not None and n['lag_bytes'] > max_lag_bytes:
            problems.append('%s: replica lags %d bytes behind the RW %s (more than %d)'
                            % (n['name'], n['lag_bytes'], rw['name'], max_lag_bytes))

    if rw is not None:
        problems.extend(_slot_problems(rw, nodes))

    return {
        'rw': rw['name'] if rw else None,
        'rw_nodes': [n['name'] for n in rw_nodes],
        'healthy': not problems,
        'problems': problems,
        'nodes': dict((n['name'], n) for n in nodes),
    }


# ------------------------------------------------------------ slots, WAL

# wal_status of a slot whose WAL is (or is about to be) gone: the node it fed
# cannot catch up from the RW any more.
LOST_WAL_STATUS = ('lost', 'unreserved')


def slot_name_of(name):
    """The slot (and application_name) the collection gives a node: its name in
    lower case, anything but a-z, 0-9 and _ replaced by _ (polardb_slot_name)."""
    return re.sub(r'[^a-z0-9_]', '_', str(name).lower())


def _slot_owner(slot, nodes, rw):
    """The node a slot of the RW feeds: the replica whose WAL receiver uses it,
    else the node whose name gives that slot name."""
    for n in nodes:
        if n is not rw and (n.get('upstream') or {}).get('slot') == slot['name']:
            return n
    for n in nodes:
        if n is not rw and slot_name_of(n['name']) == slot['name']:
            return n
    return None


def _slot_problems(rw, nodes):
    """Attach each RW slot to its node (``node`` of the slot, ``slot`` of the
    node) and name every node whose slot lost (or is losing) its WAL."""
    problems = []
    for slot in rw.get('slots') or []:
        owner = _slot_owner(slot, nodes, rw)
        slot['node'] = owner['name'] if owner else None
        if owner is not None:
            owner['slot'] = dict(slot, on=rw['name'])
        status = slot.get('wal_status')
        who = owner['name'] if owner else 'no node of the cluster'
        if status == 'lost':
            problems.append('%s: its replication slot %s on the RW %s is lost (wal_status lost): the WAL it needs '
                            'was removed (max_slot_wal_keep_size %s); rebuild %s (playbooks/rebuild_node.yml)'
                            % (who, slot['name'], rw['name'], rw.get('max_slot_wal_keep_size') or '?', who))
        elif status == 'unreserved':
            problems.append('%s: its replication slot %s on the RW %s holds %s bytes, more than max_slot_wal_keep_size '
                            '%s (wal_status unreserved): it is lost at the next checkpoint unless %s catches up'
                            % (who, slot['name'], rw['name'], slot.get('retained_bytes'),
                               rw.get('max_slot_wal_keep_size') or '?', who))
    return problems


# ----------------------------------------------------------------- probing

def resolving_same_host():
    """A ``same_host`` that also compares the addresses both names resolve to."""
    cache = {}

    def addresses(name):
        if name not in cache:
            try:
                cache[name] = set(a[4][0] for a in socket.getaddrinfo(name, None))
            except (socket.error, UnicodeError):
                cache[name] = set()
        return cache[name]

    def same_host(a, b):
        if a is None or b is None:
            return False
        if _same_host_plain(a, b):
            return True
        if str(a).startswith('/') or str(b).startswith('/'):
            return False  # a unix socket directory names no network host
        return bool(addresses(a) & addresses(b))
    return same_host


def probe_node(node, connect, login_user, login_password, login_db, connect_timeout):
    """Connect to one node and run PROBE_SQL. Never raises: errors go into the result."""
    result = {'name': node['name'], 'host': node['host'], 'port': int(node['port']),
              'reachable': False, 'error': None, 'state': None}
    try:
        session = connect(node['host'], node['port'], login_user, login_password, login_db,
                          connect_timeout, APPLICATION_NAME,
                          statement_timeout_ms=max(1, int(connect_timeout)) * 1000)
        try:
            row = session.one(PROBE_SQL)
        finally:
            session.close()
        if not row or row.get('probe') is None:
            raise PolarDBError('the probe query returned nothing')
        result['state'] = parse_probe(row['probe'])
        result['reachable'] = True
    except PolarDBError as e:
        result['error'] = e.msg
    except Exception as e:  # a probe must never fail the whole run
        result['error'] = 'probe failed: %s' % e
    return result


def probe_all(nodes, probe_one, timeout):
    """Run ``probe_one(node)`` for every node in parallel threads.

    Returns the results in the order of ``nodes``. A probe still running
    after ``timeout`` seconds is reported unreachable (its thread is a daemon
    and is left behind).
    """
    results = [None] * len(nodes)

    def work(i, node):
        results[i] = probe_one(node)

    threads = []
    for i, node in enumerate(nodes):
        t = threading.Thread(target=work, args=(i, node), name='probe-%s' % node['name'])
        t.daemon = True
        t.start()
        threads.append(t)
    deadline = time.time() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
    out = []
    for i, node in enumerate(nodes):
        r = results[i]
        if r is None:
            r = {'name': node['name'], 'host': node['host'], 'port': int(node['port']),
                 'reachable': False, 'error': 'no answer within %s s' % timeout, 'state': None}
        out.append(r)
    return out


# --- waiting inside one module run -------------------------------------------
# A wait as Ansible's until/retries costs a module run per attempt (a few
# tenths of a second of CPU on each host) plus the delay; most waits here end
# within a second or two, so cluster_info polls itself, finely, for a bounded
# time, and until/retries only repeats that (which prints progress).

def arrived(cluster, rw=None, streaming=None):
    """Whether ``cluster`` is what a wait waits for: without ``rw``, healthy;
    with it, ``rw`` the only RW and every node of ``streaming`` streaming from it."""
    if rw is None:
        return bool(cluster.get('healthy'))
    if cluster.get('rw_nodes') != [rw]:
        return False
    nodes = cluster.get('nodes') or {}
    return all((nodes.get(n) or {}).get('streaming') and nodes[n].get('upstream_node') == rw
               for n in streaming or [])


def wait_for(discover, seconds, condition, interval=0.25, clock=time.monotonic, sleep=time.sleep):
    """Call ``discover`` until ``condition`` holds for what it returns, for at
    most ``seconds`` (always at least once). Returns (last result,
    {arrived, attempts, seconds})."""
    start = clock()
    attempts = 0
    while True:
        found = discover()
        attempts += 1
        done = bool(condition(found))
        elapsed = clock() - start
        if done or elapsed + interval > seconds:
            return found, dict(arrived=done, attempts=attempts, seconds=round(elapsed, 3))
        sleep(interval)
