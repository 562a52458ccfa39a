# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def operation_plan(decisions, operation, cluster, check_mode=False):
    from ansible_collections.polardb.stack.plugins.module_utils.operation_plan import build_plan, render_plan
    from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
    try:
        plan = build_plan(operation, cluster, decisions, check_mode)
    except PolarDBError as e:
        raise AnsibleFilterError('%s plan: %s' % (operation, e))
    plan['lines'] = render_plan(plan)
    return plan


class FilterModule(object):
    def filters(self):
        return {'operation_plan': operation_plan}
