# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Option of plugins/module_utils/operation_lock.py RELEASE_ARGUMENT_SPEC /
    # release_record(): a module whose run is an operation's last step on a node
    # also releases the run's record of the lock there.
    DOCUMENTATION = r'''
options:
  release_lock:
    description:
      - When this module's step succeeded and left the node in its place, also release the record of the cluster's
        operation lock that O(release_lock.owner) holds on this host, as M(polardb.stack.operation_lock) with
        O(polardb.stack.operation_lock#module:state=released) does; the outcome is in RV(operation_lock).
      - A step that fails, or leaves the node out of place, keeps the record, so that running the operation again
        resumes it; a record this run cannot release is reported, not an error (the lock role's C(release) then
        handles that node).
      - Why here - an operation's last step runs on every node anyway; released in the same module run, the lock
        costs no round trip of its own at the end (C(polardb_lock_released_in) of the lock role's C(release)).
    type: dict
    suboptions:
      cluster:
        description: Name of the cluster.
        type: str
        required: true
      owner:
        description: The run whose record is released (as O(polardb.stack.operation_lock#module:owner)).
        type: dict
        required: true
        suboptions:
          run_id:
            description: Unique id of the run.
            type: str
            required: true
          controller:
            description: Host name of the controller.
            type: str
          pid:
            description: Process id of the run's C(ansible-playbook).
            type: int
      lock_dir:
        description: Directory of the lock records.
        type: path
        default: /var/lib/polardb-stack/locks
'''
