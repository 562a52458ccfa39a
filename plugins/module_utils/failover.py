# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failover decisions, from the cluster_info topology and what the survivors say.

Which node was the RW (it no longer answers as one), and which replica takes
over: the most advanced one (highest received LSN, then replayed LSN; ties by
name), never a standby. Plain data in, plain data out; never raises.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def lsn_int(text):
    """'16/B374D848' -> int; None for None or anything that is not an LSN."""
    try:
        hi, lo = str(text).split('/')
        return (int(hi, 16) << 32) | int(lo, 16)
    except (ValueError, AttributeError):
        return None


def _node_by_address(cluster, address):
    for name, node in cluster.get('nodes', {}).items():
        if address is not None and str(node.get('host')) == str(address):
            return name
    return None


def choose_failover(cluster, upstreams=None, up=None, standbys=None, force=False):
    """Returns dict(from, to, forced, candidates, refused, error).

    cluster: cluster_info's ``cluster``; upstreams: {node: address its
    replication.conf points at, or None} for the hosts that answer; up: the
    hosts the controller reaches (a new RW must be one); standbys: never chosen.
    """
    nodes = cluster.get('nodes') or {}
    up = list(nodes) if up is None else list(up)
    standbys = list(standbys or [])
    result = {'from': None, 'to': None, 'forced': False, 'candidates': [], 'refused': {}, 'error': None}
    rw_nodes = list(cluster.get('rw_nodes') or [])
    if len(rw_nodes) > 1:
        result['error'] = '%d nodes answer as RW (%s): sort that out by hand first.' % (
            len(rw_nodes), ', '.join(rw_nodes))
        return result
    if rw_nodes:
        if not force:
            result['error'] = ('the RW %s answers: a failover replaces a dead RW. Use playbooks/switchover.yml for a '
                               'planned change, or -e force=true to fence %s out and replace it anyway.'
                               % (rw_nodes[0], rw_nodes[0]))
            return result
        result['from'], result['forced'] = rw_nodes[0], True
    else:
        pointed = {}
        for name, address in sorted((upstreams or {}).items()):
            if address:
                target = _node_by_address(cluster, address) or '%s (not a node of the cluster)' % address
                pointed.setdefault(target, []).append(name)
        if not pointed:
            result['error'] = ('no node answers as RW and no surviving replica says where it replicated from: '
                               'cannot tell which node was the RW.')
            return result
        if len(pointed) > 1:
            result['error'] = ('no node answers as RW and the replicas point at different nodes (%s): cannot tell '
                               'which node was the RW.' % '; '.join(
                                   '%s <- %s' % (k, ', '.join(v)) for k, v in sorted(pointed.items())))
            return result
        old = list(pointed)[0]
        if old not in nodes:
            result['error'] = 'the replicas replicate from %s: cannot fail over from it.' % old
            return result
        if nodes[old].get('reachable'):
            result['error'] = ('%s, which the replicas replicated from, answers as %s, not as a dead RW: nothing to '
                               'fail over from.' % (old, nodes[old].get('role')))
            return result
        result['from'] = old
    old = result['from']
    old_sysid = nodes.get(old, {}).get('system_identifier')
    candidates = []
    for name, node in sorted(nodes.items()):
        if name == old:
            continue
        reason = None
        if name in standbys:
            reason = 'a standby (never chosen by a failover)'
        elif name not in up:
            reason = 'its host does not answer'
        elif not node.get('reachable'):
            reason = 'its engine does not answer: %s' % node.get('error')
        elif not node.get('in_recovery'):
            reason = 'not a replica (role %s)' % node.get('role')
        elif old_sysid and node.get('system_identifier') != old_sysid:
            reason = 'foreign: system identifier %s, not %s' % (node.get('system_identifier'), old_sysid)
        if reason:
            result['refused'][name] = reason
            continue
        lsn = node.get('lsn') or {}
        receive, replay = lsn_int(lsn.get('receive')), lsn_int(lsn.get('replay'))
        best = max(x for x in (receive, replay, -1) if x is not None)
        candidates.append({'name': name, 'receive': lsn.get('receive'), 'replay': lsn.get('replay'),
                           '_key': (-best, -(replay if replay is not None else -1), name)})
    candidates.sort(key=lambda c: c['_key'])
    for c in candidates:
        del c['_key']
    result['candidates'] = candidates
    if not candidates:
        result['error'] = 'no replica can take over from %s (%s).' % (old, '; '.join(
            '%s: %s' % kv for kv in sorted(result['refused'].items())) or 'no other node')
        return result
    result['to'] = candidates[0]['name']
    return result
