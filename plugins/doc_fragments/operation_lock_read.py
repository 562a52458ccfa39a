# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Option and return value of plugins/module_utils/operation_lock.py
    # READ_ARGUMENT_SPEC / read_record(): a module that reads a node anyway
    # also reads the node's record of the lock, so that the lock role's
    # inspect.yml needs no module run of its own.
    DOCUMENTATION = r'''
options:
  operation_lock:
    description:
      - Also read the record of the cluster's operation lock that this host keeps, as
        M(polardb.stack.operation_lock) with O(polardb.stack.operation_lock#module:state=query) and no wait
        returns it, in RV(operation_lock).
      - Why here - a lifecycle playbook reads the lock on every node before it takes it; read in the same module
        run as the rest, it costs no round trip of its own (the lock role's C(inspect) uses it, see its
        C(polardb_lock_read_in)).
    type: dict
    suboptions:
      cluster:
        description: Name of the cluster.
        type: str
        required: true
      lock_dir:
        description: Directory of the lock records.
        type: path
        default: /var/lib/polardb-stack/locks
'''
