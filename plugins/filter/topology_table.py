# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: topology_table
author: polardb.stack developers (!UNKNOWN)
version_added: 0.1.0
short_description: Render a cluster topology as a table of lines
description:
  - Turns the C(cluster) result of M(polardb.stack.cluster_info) into a list of
    fixed-width lines (node, role, state, timeline, LSN, lag, upstream, version, and
    for each replica the WAL its slot on the RW retains and that slot's C(wal_status))
    for people.
  - Then the RW's C(max_slot_wal_keep_size), a line per RW slot that feeds no node
    of the cluster, whether the cluster is healthy, and its problems (a lost slot
    among them, naming the node).
options:
  _input:
    description: The C(cluster) value returned by M(polardb.stack.cluster_info).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Print the topology
  ansible.builtin.debug:
    msg: "{{ polardb_cluster_info.cluster | polardb.stack.topology_table }}"
"""

RETURN = r"""
_value:
  description: One header line, one line per node, the RW's WAL bound and unclaimed slots, then one line per problem.
  type: list
  elements: str
"""


def _lsn(node):
    lsn = node.get('lsn') or {}
    return lsn.get('current') or lsn.get('replay') or lsn.get('receive') or '-'


def _text(value):
    return '-' if value is None else str(value)


def _slot_cell(node, key):
    """The node's slot on the RW (replicas): bytes of WAL it retains, its wal_status."""
    return _text((node.get('slot') or {}).get(key))


def topology_table(cluster):
    cols = ('node', 'address', 'role', 'state', 'tl', 'lsn', 'lag_bytes', 'upstream', 'version',
            'slot_wal_bytes', 'wal_status', 'pending_restart')
    rows = []
    for name, n in sorted((cluster.get('nodes') or {}).items()):
        if not n.get('reachable'):
            state = 'unreachable'
        elif n.get('role') == 'primary':
            state = 'read-write'
        else:
            state = (n.get('upstream') or {}).get('status') or 'not streaming'
        up = n.get('upstream') or {}
        rows.append((
            name, '%s:%s' % (n.get('host'), n.get('port')),
            'RW' if name == cluster.get('rw') else (n.get('role') or '-'),
            state, str(n.get('timeline') if n.get('timeline') is not None else '-'), _lsn(n),
            '-' if n.get('lag_bytes') is None else str(n.get('lag_bytes')),
            up.get('host') or '-', (n.get('server_version') or '-').split(' ')[0],
            _slot_cell(n, 'retained_bytes'), _slot_cell(n, 'wal_status'),
            ','.join(n.get('pending_restart') or []) or '-'))
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    fmt = '  '.join('%%-%ds' % w for w in widths)
    lines = [(fmt % cols).rstrip()] + [(fmt % r).rstrip() for r in rows]
    rw = (cluster.get('nodes') or {}).get(cluster.get('rw')) or {}
    if rw.get('max_slot_wal_keep_size'):
        lines.append('max_slot_wal_keep_size on the RW %s: %s' % (cluster.get('rw'), rw['max_slot_wal_keep_size']))
    for slot in rw.get('slots') or []:
        if not slot.get('node'):
            lines.append('slot %s on the RW %s (no node of the cluster): retains %s bytes, wal_status %s'
                         % (slot.get('name'), cluster.get('rw'), _text(slot.get('retained_bytes')),
                            _text(slot.get('wal_status'))))
    lines.append('healthy: %s' % ('yes' if cluster.get('healthy') else 'no'))
    lines.extend('problem: %s' % p for p in cluster.get('problems') or [])
    return lines


class FilterModule(object):
    def filters(self):
        return {'topology_table': topology_table}
