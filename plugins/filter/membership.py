# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.membership import plan_add, plan_migrate, plan_remove


def add_plan(node, topology, cluster_hosts, cluster):
    return plan_add(node, topology, cluster_hosts, cluster)


def remove_plan(node, topology, kinds, sync_replicas, cluster):
    return plan_remove(node, topology, kinds, sync_replicas, cluster)


def migrate_plan(node, to, topology, kinds, cluster):
    return plan_migrate(node, to, topology, kinds, cluster)


class FilterModule(object):
    def filters(self):
        return {'add_plan': add_plan, 'remove_plan': remove_plan, 'migrate_plan': migrate_plan}
