# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def tls_status(ca_cert, ca_key, cert, key, common_name, alt_names, renew_days):
    from ansible_collections.polardb.stack.plugins.plugin_utils.tls_check import tls_status as _tls_status
    return _tls_status(ca_cert, ca_key, cert, key, common_name, alt_names, renew_days)


class FilterModule(object):
    def filters(self):
        return {'tls_status': tls_status}
