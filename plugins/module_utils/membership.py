# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding whether a node may join or leave a running cluster.

The engines say who the RW is and who streams from it (cluster_info); the
inventory says which nodes the cluster should have and what kind each is
(replica or standby). Adding a node never creates a cluster: a running RW is
needed. Removing a node never touches the RW, and is refused when synchronous
replication would be left without the replicas it waits for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.cluster_spec import eligible_sync_replicas


def _node_state(topology, node):
    return ((topology or {}).get('nodes') or {}).get(node) or {}


def plan_add(node, topology, cluster_hosts, cluster):
    """Return {node, rw, present, problems}: whether ``node`` may be added to the
    running cluster. ``present``: it already streams from the RW (the run only
    converges it again)."""
    problems = []
    rw = (topology or {}).get('rw')
    if node not in cluster_hosts:
        problems.append('%s is not in the inventory group polardb_%s: add it there (with its polardb_lun_wwid) '
                        'first' % (node, cluster))
    if not rw:
        problems.append('cluster %s has no running RW to add %s to: create the cluster '
                        '(playbooks/create_cluster.yml) or bring its RW back first' % (cluster, node))
    elif node == rw:
        problems.append('%s is the RW of cluster %s already' % (node, cluster))
    state = _node_state(topology, node)
    present = bool(rw and node != rw and state.get('streaming') and state.get('upstream_node') == rw)
    return {'node': node, 'rw': rw, 'present': present, 'problems': problems}


def plan_remove(node, topology, kinds, sync_replicas, cluster):
    """Return {node, rw, remaining, slot, problems} for removing ``node``.

    ``kinds``: {name: 'replica'|'standby'} of every node of the inventory
    group (``node`` included); ``sync_replicas``: polardb_synchronous_replicas.
    ``slot``: the RW's slot that feeds ``node`` (null when there is none).
    """
    problems = []
    rw = (topology or {}).get('rw')
    remaining = sorted(n for n in kinds if n != node)
    if node not in kinds:
        problems.append('%s is not a node of cluster %s (nodes: %s)' % (node, cluster, ', '.join(sorted(kinds))))
    if not rw:
        problems.append('cluster %s has no running RW: removing %s now could remove the only copy of the data; '
                        'bring the RW back (playbooks/failover.yml) first' % (cluster, node))
    elif node == rw:
        others = [n for n in remaining if kinds[n] != 'standby']
        problems.append('%s is the RW of cluster %s and is never removed: switch over first '
                        '(playbooks/switchover.yml -e cluster=%s%s), then remove it'
                        % (node, cluster, cluster, ' -e target=%s' % others[0] if others else ''))
    if rw and node != rw and node in kinds:
        left = eligible_sync_replicas([{'name': n, 'kind': kinds[n]} for n in remaining], rw)
        if int(sync_replicas) > len(left):
            problems.append('synchronous replication waits for %d replica(s) (polardb_synchronous_replicas=%d); '
                            'without %s only %d would be left (%s): lower polardb_synchronous_replicas '
                            '(create_cluster.yml) or add a node first'
                            % (int(sync_replicas), int(sync_replicas), node, len(left), ', '.join(left) or 'none'))
    slot = None
    for entry in _node_state(topology, rw).get('slots') or []:
        if entry.get('node') == node:
            slot = entry.get('name')
    return {'node': node, 'rw': rw, 'remaining': remaining, 'slot': slot, 'problems': problems}


def plan_migrate(node, to, topology, kinds, cluster):
    """Return {node, to, rw, converge, switchover, problems} for moving ``node``
    to the inventory host ``to`` (another host, its own LUN), in three steps
    that each run under the cluster's lock: converge the cluster with ``to``
    (it joins and catches up), switch over to it when ``node`` is the RW, then
    remove ``node``.

    ``kinds``: {name: 'replica'|'standby'} of every node of the inventory
    group. The steps already done are skipped, so an interrupted migration is
    finished by the same command: ``converge`` is False once ``to`` streams
    from the RW (or is the RW), ``switchover`` is True only while ``node`` is
    still the RW.
    """
    problems = []
    rw = (topology or {}).get('rw')
    if not node or not to:
        problems.append('name the node to move (-e node=HOST) and the inventory host that takes it over '
                        '(-e to_host=HOST)')
    elif node == to:
        problems.append('node and to_host are both %s: to_host is the inventory host (another host, its own LUN) '
                        'that takes %s over' % (node, node))
    else:
        for name, what in ((node, 'the node to move'), (to, 'to_host')):
            if name not in kinds:
                problems.append('%s (%s) is not in the inventory group polardb_%s%s'
                                % (name, what, cluster,
                                   ': add it there with its host and polardb_lun_wwid first' if name == to else ''))
        if node in kinds and to in kinds and kinds[node] != kinds[to]:
            problems.append('%s is a %s and %s is declared a %s: to_host takes over its role, declare it with '
                            'polardb_node_role: %s' % (node, kinds[node], to, kinds[to], kinds[node]))
    if not rw:
        problems.append('cluster %s has no running RW: a migration needs one (playbooks/failover.yml first)'
                        % cluster)

    def running(name):
        state = _node_state(topology, name)
        return bool(rw) and (name == rw or (state.get('streaming') and state.get('upstream_node') == rw))

    node_runs, to_runs = running(node), running(to)
    if rw and not problems and not node_runs and not to_runs:
        problems.append('%s does not run in cluster %s and %s does not stream from its RW: a migration moves a '
                        'running node. To replace a lost node: add_node.yml -e node=%s, then remove_node.yml '
                        '-e node=%s' % (node, cluster, to, to, node))
    return {'node': node, 'to': to, 'rw': rw, 'converge': not to_runs, 'switchover': bool(rw) and node == rw,
            'problems': problems}
