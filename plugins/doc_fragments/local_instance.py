# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/instance.py local_argument_spec(): the
    # local engine a module acts on, found by its data directory and reached
    # over its unix socket with peer authentication.
    DOCUMENTATION = r'''
options:
  data_dir:
    description:
      - The data directory of the local engine.
    type: path
    required: true
  bin_dir:
    description:
      - Directory of the engine's programs (C(postgres), C(pg_ctl), C(pg_controldata), C(psql)).
    type: path
    default: /usr/lib/postgresql/15/bin
  owner:
    description:
      - OS user that owns the data directory and runs the engine's programs; C(psql) runs as this user (peer authentication
        on the unix socket).
    type: str
    default: postgres
  port:
    description:
      - Port of the local engine; it names the engine's unix socket.
    type: int
    default: 5432
  socket_dir:
    description:
      - Directory of the local engine's unix socket.
    type: path
    default: /var/run/postgresql
'''
