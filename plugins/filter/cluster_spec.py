# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def node_problems(nodes, initial_primary):
    from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec
    return cluster_spec.node_problems(nodes, initial_primary)


def parameter_problems(parameters, reserved, reserved_prefixes):
    from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec
    return cluster_spec.parameter_problems(parameters, reserved, reserved_prefixes)


def port_problems(cluster, groups, hostvars):
    """The nodes of every polardb_<name> group, then cluster_spec.port_problems."""
    nodes = []
    for group in sorted(groups):
        if not group.startswith('polardb_'):
            continue
        name = group[len('polardb_'):]
        # the groups create_cluster makes with group_by (polardb_NAME_rw, _ro) are not clusters
        if name.endswith(('_rw', '_ro')) and ('polardb_' + name[:-3]) in groups:
            continue
        for host in groups[group]:
            hv = hostvars[host]
            nodes.append({'cluster': name, 'name': host,
                          'address': hv.get('polardb_node_address') or hv.get('ansible_host') or host,
                          'port': hv.get('polardb_port') or 5432})
    from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec
    return cluster_spec.port_problems(cluster, nodes)


def setting_problems(settings, nodes, rw):
    from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec
    return cluster_spec.setting_problems(settings, nodes, rw)


class FilterModule(object):
    def filters(self):
        return {
            'node_problems': node_problems,
            'parameter_problems': parameter_problems,
            'port_problems': port_problems,
            'setting_problems': setting_problems,
        }
