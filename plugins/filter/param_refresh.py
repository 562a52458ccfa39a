# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def refresh_plan(checks, kinds, rw, strategy='switchover', restart_all=False):
    if not isinstance(checks, dict) or not isinstance(kinds, dict):
        raise AnsibleFilterError('refresh_plan: expects a dict of parameter_check results and a dict of node kinds')
    from ansible_collections.polardb.stack.plugins.module_utils.param_refresh import plan_refresh
    return plan_refresh(checks, kinds, rw, strategy, bool(restart_all))


def restart_plan(kinds, rw, strategy='switchover', only=None):
    if not isinstance(kinds, dict):
        raise AnsibleFilterError('restart_plan: expects a dict of node kinds')
    from ansible_collections.polardb.stack.plugins.module_utils.param_refresh import plan_restart
    return plan_restart(kinds, rw, strategy, only)


class FilterModule(object):
    def filters(self):
        return {'refresh_plan': refresh_plan, 'restart_plan': restart_plan}
