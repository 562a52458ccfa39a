# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.storage_growth import plan_expand


def expand_plan(luns, size):
    return plan_expand(size, luns)


class FilterModule(object):
    def filters(self):
        return {'expand_plan': expand_plan}
