# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def add_plan(node, topology, cluster_hosts, cluster):
    from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_add
    return plan_add(node, topology, cluster_hosts, cluster)


def remove_plan(node, topology, kinds, sync_replicas, cluster):
    from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_remove
    return plan_remove(node, topology, kinds, sync_replicas, cluster)


def migrate_plan(node, to, topology, kinds, cluster):
    from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_migrate
    return plan_migrate(node, to, topology, kinds, cluster)


class FilterModule(object):
    def filters(self):
        return {'add_plan': add_plan, 'remove_plan': remove_plan, 'migrate_plan': migrate_plan}
