# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: failover_choice
author: polardb.stack developers
version_added: 0.1.0
short_description: Say which node was the (dead) RW and which replica takes over, or why not
description:
  - From the C(cluster) result of M(polardb.stack.cluster_info) and where the surviving replicas replicated from,
    decides the failover of C(playbooks/failover.yml) before anything changes.
  - The old RW - no node answers as RW, and every surviving replica's C(primary_conninfo) points at one node, whose
    engine does not answer. With O(force), a node that answers as RW is the old RW.
  - The new RW - a reachable replica (engine answers, in recovery, host reachable, same system identifier), the
    most advanced first (received LSN, then replayed LSN), ties by name; never a node in O(standbys).
  - Never fails; the playbook asserts on C(error).
options:
  _input:
    description: The C(cluster) value returned by M(polardb.stack.cluster_info).
    type: dict
    required: true
  upstreams:
    description: Node name to the address its replication configuration points at (null for none), for the hosts that answer.
    type: dict
  up:
    description: The hosts the controller reaches; the new RW must be one of them.
    type: list
    elements: str
  standbys:
    description: Names of nodes flagged standby (never chosen).
    type: list
    elements: str
  force:
    description: Accept a node that answers as RW as the old RW (it is fenced out and replaced).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Decide the failover
  ansible.builtin.set_fact:
    choice: "{{ topo.cluster | polardb.stack.failover_choice(upstreams, up=groups['polardb_demo_up']) }}"
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    from:
      description: The old RW; null when it cannot be told.
      type: str
    to:
      description: The replica that takes over; null when none can.
      type: str
    forced:
      description: Whether the old RW answered (O(force)).
      type: bool
    candidates:
      description: Acceptable nodes as C({name, receive, replay}), best first.
      type: list
      elements: dict
    refused:
      description: Node name to the reason it cannot take over.
      type: dict
    error:
      description: Null, or why the failover cannot go on.
      type: str
"""


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def failover_choice(cluster, upstreams=None, up=None, standbys=None, force=False):
    from ansible_collections.polardb.stack.plugins.module_utils.failover import choose_failover
    return choose_failover(cluster, upstreams=upstreams, up=up, standbys=standbys, force=force)


class FilterModule(object):
    def filters(self):
        return {'failover_choice': failover_choice}
