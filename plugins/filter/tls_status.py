# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.plugin_utils.tls_check import tls_status as _tls_status


def tls_status(ca_cert, ca_key, cert, key, common_name, alt_names, renew_days):
    return _tls_status(ca_cert, ca_key, cert, key, common_name, alt_names, renew_days)


class FilterModule(object):
    def filters(self):
        return {'tls_status': tls_status}
