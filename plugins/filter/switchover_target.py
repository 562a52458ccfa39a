# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: switchover_target
author: polardb.stack developers
version_added: 0.1.0
short_description: Choose the replica a switchover hands the RW role to, or say why not
description:
  - From the C(cluster) result of M(polardb.stack.cluster_info), picks the
    target of M(polardb.stack.switchover) - a reachable replica of the RW's
    system identifier whose WAL receiver streams from the RW and lags at most
    O(max_lag_bytes); least lag first, ties by name.
  - Nodes listed in O(standbys) are taken only when named as O(target).
  - With O(target) given, that node is checked and chosen, or refused with the
    reason (the RW itself, unreachable, not a replica, foreign system
    identifier, not streaming, streaming from another node, lagging, lag unknown).
  - Never fails; the playbook asserts on C(error) before changing anything.
options:
  _input:
    description: The C(cluster) value returned by M(polardb.stack.cluster_info).
    type: dict
    required: true
  target:
    description: The node to switch over to; null lets the filter choose.
    type: str
  standbys:
    description: Names of nodes flagged standby (excluded unless named as O(target)).
    type: list
    elements: str
  max_lag_bytes:
    description: A replica lagging more than this many bytes is refused; null for no bound.
    type: int
    default: 16777216
"""

EXAMPLES = r"""
- name: Choose the target (the least lagging replica, or the one asked for)
  ansible.builtin.set_fact:
    switch: "{{ topo.cluster | polardb.stack.switchover_target(polardb_switchover_target | default(none),
                standbys=groups['polardb_demo_standby'] | default([])) }}"

- name: Refuse before anything changes
  ansible.builtin.assert:
    that: switch.error is none
    fail_msg: "{{ switch.error }}"
"""

RETURN = r"""
_value:
  description: The choice.
  type: dict
  contains:
    target:
      description: Name of the chosen node; null when none can be chosen.
      type: str
    node:
      description: C({name, host, port}) of the chosen node (the C(target) option of M(polardb.stack.switchover)); null when none.
      type: dict
    lag_bytes:
      description: Lag of the chosen node in bytes.
      type: int
    rw:
      description: Name of the current RW.
      type: str
    candidates:
      description: Every acceptable node as C({name, lag_bytes}), best first.
      type: list
      elements: dict
    refused:
      description: Node name to the reason it cannot take over (the RW included).
      type: dict
    error:
      description: Null, or why no target can be chosen (no single RW, the named target refused, no candidate).
      type: str
"""


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def switchover_target(cluster, target=None, standbys=None, max_lag_bytes=16777216):
    # the default is switchover.DEFAULT_MAX_LAG_BYTES (a unit test keeps them equal); null: no bound
    from ansible_collections.polardb.stack.plugins.module_utils.switchover import choose_target
    return choose_target(cluster, target=target or None, standbys=standbys,
                         max_lag_bytes=max_lag_bytes)


class FilterModule(object):
    def filters(self):
        return {'switchover_target': switchover_target}
