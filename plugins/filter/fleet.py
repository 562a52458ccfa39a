# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def fleet_clusters(value):
    from ansible_collections.polardb.stack.plugins.module_utils import fleet
    return fleet.cluster_names(value)


def fleet_problems(clusters, operation, groups, parallel, extra_vars):
    from ansible_collections.polardb.stack.plugins.module_utils import fleet
    return fleet.problems(clusters, operation, groups, parallel, extra_vars)


def fleet_command(program, operation, cluster, inventory_sources, extra_vars, check=False, diff=False):
    from ansible_collections.polardb.stack.plugins.module_utils import fleet
    return fleet.command(program, operation, cluster, inventory_sources, extra_vars, check, diff)


def fleet_report(jobs, operation, log_dir, check=False):
    from ansible_collections.polardb.stack.plugins.module_utils import fleet
    return fleet.report([fleet.result(job) for job in jobs], operation, log_dir, check)


class FilterModule(object):
    def filters(self):
        return {'fleet_clusters': fleet_clusters, 'fleet_problems': fleet_problems, 'fleet_command': fleet_command, 'fleet_report': fleet_report}
