# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rejoin_report
author: polardb.stack developers
version_added: 0.1.0
short_description: Say what each node is after a handover, and which ones do not follow the new RW
description:
  - From each node's registered result of M(polardb.stack.replication) right after a
    handover - the new RW's run (slots) and the followers' runs, each of which waited until
    its WAL receiver streamed from the new RW - lists the problems and one line per node.
  - A problem is a node whose run did not answer, a follower whose receiver does not
    stream from the new RW, or a new RW that is not the RW. Never fails; the playbook
    asserts on C(problems).
options:
  _input:
    description: Node name to its registered M(polardb.stack.replication) result.
    type: dict
    required: true
  old_rw:
    description: The node that was the RW before the handover.
    type: str
    required: true
  new_rw:
    description: The node that is the RW after it.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check that every node follows the new RW
  ansible.builtin.assert:
    that: report.problems | length == 0
    fail_msg: "{{ report.problems | join('; ') }}"
  vars:
    report: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'polardb_replication')))
         | polardb.stack.rejoin_report('pdb1', 'pdb2') }}
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    problems:
      description: One text per node that does not take its place (empty when all do).
      type: list
      elements: str
    lines:
      description: Per node, what it is now and what its step did.
      type: list
      elements: str
"""


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def rejoin_report(results, old_rw, new_rw):
    from ansible_collections.polardb.stack.plugins.module_utils.switchover import rejoin_report as _rejoin_report
    return _rejoin_report(results or {}, old_rw, new_rw)


class FilterModule(object):
    def filters(self):
        return {'rejoin_report': rejoin_report}
