# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def create_plan(local, cluster, initial_primary):
    from ansible_collections.polardb.stack.plugins.module_utils.create_plan import plan_create
    return plan_create(local, cluster, initial_primary)


class FilterModule(object):
    def filters(self):
        return {'create_plan': create_plan}
