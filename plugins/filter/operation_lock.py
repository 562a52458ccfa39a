# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def lock_records(queries, discovered=None):
    from ansible_collections.polardb.stack.plugins.module_utils import operation_lock
    try:
        return operation_lock.lock_records(queries, discovered)
    except operation_lock.PolarDBError as e:
        raise AnsibleFilterError(e.msg)


def lock_read_free(reads, nodes):
    from ansible_collections.polardb.stack.plugins.module_utils import operation_lock
    return operation_lock.read_free(reads, nodes)


def lock_decision(queries, operation, run_id=None, takeover=False):
    from ansible_collections.polardb.stack.plugins.module_utils import operation_lock
    return operation_lock.inspect_decision(queries, operation, run_id, takeover)


def lock_answers(attempts, check_mode=False):
    from ansible_collections.polardb.stack.plugins.module_utils import operation_lock
    return operation_lock.take_answers(attempts, check_mode)


def lock_outcome(results, cluster_nodes, retry_raced=False):
    from ansible_collections.polardb.stack.plugins.module_utils import operation_lock
    return operation_lock.take_outcome(results, cluster_nodes, retry_raced)


class FilterModule(object):
    def filters(self):
        return {
            'lock_records': lock_records,
            'lock_read_free': lock_read_free,
            'lock_decision': lock_decision,
            'lock_answers': lock_answers,
            'lock_outcome': lock_outcome,
        }
