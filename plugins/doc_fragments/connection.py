# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/sql.py connection_argument_spec().
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The database user to connect as.
      - Needs to be a superuser (or a member of C(pg_monitor)) to read the control
        functions and C(pg_stat_replication).
    type: str
    default: postgres
  login_password:
    description:
      - The password of O(login_user) (C(scram-sha-256) authentication over TCP).
      - Never logged.
    type: str
  login_db:
    description:
      - The database to connect to.
    type: str
    default: postgres
  connect_timeout:
    description:
      - Seconds to wait for a connection to one node (libpq C(connect_timeout));
        every statement of the session is bounded by the same time.
    type: int
    default: 3
requirements:
  - psycopg (3.1 or later; Debian package C(python3-psycopg)) or psycopg2 on the host the module runs on.
'''
