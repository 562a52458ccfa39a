# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ha_table
author: polardb.stack developers (!UNKNOWN)
version_added: 0.3.0
short_description: Render what etcd holds for a cluster's manager as lines
description:
  - Turns the C(cluster) result of M(polardb.stack.cluster_manager) into lines for people - whether the manager is
    paused, which agent holds the leader key, one line per agent (its engine's role, timeline, LSN, the report's age),
    and the etcd cluster (members, endpoints that answer, one leader, version), with a line per endpoint that does not
    answer.
options:
  _input:
    description: The C(cluster) value returned by M(polardb.stack.cluster_manager).
    type: dict
    required: true
  cluster:
    description: The cluster's name, for the first line.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Print what etcd holds
  ansible.builtin.debug:
    msg: "{{ ha.cluster | polardb.stack.ha_table('demo') }}"
"""

RETURN = r"""
_value:
  description: The lines.
  type: list
  elements: str
"""


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def ha_table(*args, **kwargs):
    from ansible_collections.polardb.stack.plugins.module_utils.ha_manager import table
    return table(*args, **kwargs)


class FilterModule(object):
    def filters(self):
        return {'ha_table': ha_table}
