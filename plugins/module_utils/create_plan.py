# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding, from what the engines say, which node is RW when a cluster is
created or converged, and what each node needs.

The inventory only names the node that becomes RW when no node holds data.
Once any node holds data the engines decide, and anything ambiguous (two
primaries, replicas with no primary, another cluster's data) is refused
rather than guessed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _is_primary_data(inst):
    """Initialised and not marked to recover: would start as a primary."""
    return bool(inst.get('initialized')) and inst.get('signal') not in ('standby', 'recovery')


def plan_create(local, cluster, initial_primary):
    """Return {rw, rw_action, nodes: {name: action}, problems}.

    ``local``: {node: instance_info result} for every node (from the host).
    ``cluster``: cluster_info result (nodes probed over TCP), may be None.
    ``rw_action``: 'running' (an RW is up), 'start' (its data is there, the
    engine is down), 'init' (no node holds data: initdb on initial_primary).
    node actions: 'rw', 'keep' (a replica with data: configure and start),
    'build' (empty: base backup from the RW).
    """
    problems = []
    names = sorted(local)
    running_rw = sorted((cluster or {}).get('rw_nodes') or [])
    initialized = [n for n in names if local[n].get('initialized')]
    primary_data = [n for n in names if _is_primary_data(local[n]) and n not in running_rw]

    rw = None
    rw_action = None
    if len(running_rw) > 1:
        problems.append('more than one node accepts writes: %s; resolve this before anything else'
                        % ', '.join(running_rw))
    elif running_rw:
        rw, rw_action = running_rw[0], 'running'
        for n in primary_data:
            problems.append('%s holds primary data but %s is the RW: it may have diverged; '
                            'rebuild it (playbooks/rebuild_node.yml -e node=%s)' % (n, rw, n))
    elif not initialized:
        rw, rw_action = initial_primary, 'init'
    elif len(primary_data) == 1:
        rw, rw_action = primary_data[0], 'start'
    elif not primary_data:
        problems.append('nodes %s hold replica data but no node holds a primary: '
                        'promote one with playbooks/failover.yml' % ', '.join(initialized))
    else:
        problems.append('more than one stopped node holds primary data (%s): refusing to start any of them'
                        % ', '.join(primary_data))

    nodes = {}
    if rw is not None:
        rw_sysid = local.get(rw, {}).get('system_identifier')
        for n in names:
            if n == rw:
                nodes[n] = 'rw'
            elif not local[n].get('initialized'):
                nodes[n] = 'build'
            elif rw_sysid and local[n].get('system_identifier') != rw_sysid:
                nodes[n] = 'refuse'
                problems.append('%s holds data of another database system (system identifier %s, the RW has %s)'
                                % (n, local[n].get('system_identifier'), rw_sysid))
            else:
                nodes[n] = 'keep'
    return {'rw': rw, 'rw_action': rw_action, 'nodes': nodes, 'problems': problems}
