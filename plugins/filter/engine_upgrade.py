# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def upgrade_plan(nodes, target, packages, rw, kinds, strategy='switchover', allow_downgrade=False):
    if not isinstance(nodes, dict) or not isinstance(kinds, dict):
        raise AnsibleFilterError('upgrade_plan: expects a dict of what each node has and a dict of node kinds')
    from ansible_collections.polardb.stack.plugins.module_utils.engine_upgrade import plan_upgrade
    return plan_upgrade(nodes, target, list(packages or []), rw, kinds, strategy, bool(allow_downgrade))


class FilterModule(object):
    def filters(self):
        return {'upgrade_plan': upgrade_plan}
