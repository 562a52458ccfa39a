# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils import cluster_spec


def node_problems(nodes, initial_primary):
    return cluster_spec.node_problems(nodes, initial_primary)


def parameter_problems(parameters, reserved, reserved_prefixes):
    return cluster_spec.parameter_problems(parameters, reserved, reserved_prefixes)


def setting_problems(settings, nodes, rw):
    return cluster_spec.setting_problems(settings, nodes, rw)


class FilterModule(object):
    def filters(self):
        return {
            'node_problems': node_problems,
            'parameter_problems': parameter_problems,
            'setting_problems': setting_problems,
        }
