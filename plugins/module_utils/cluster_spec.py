# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of a cluster as the inventory describes it, before anything runs.

Pure functions over plain data, so the preflight role can refuse bad input
with one clear list of problems and nothing changed on any host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.polardb.stack.plugins.module_utils.lun import normalise_wwid

NODE_ROLES = ('replica', 'standby')
_WWID_RE = re.compile(r'^(0x)?[0-9a-f]{16,33}$')
_PARAM_NAME_RE = re.compile(r'^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$')


def node_problems(nodes, initial_primary):
    """``nodes``: list of {name, wwid, role}. Returns a list of problems (strings)."""
    problems = []
    names = [n['name'] for n in nodes]
    if not nodes:
        problems.append('the cluster has no hosts')
    if initial_primary not in names:
        problems.append('polardb_initial_primary=%s is not a host of the cluster (%s)'
                        % (initial_primary, ', '.join(names)))
    owners = {}
    for n in nodes:
        wwid = n.get('wwid')
        if wwid in (None, ''):
            problems.append('%s has no polardb_lun_wwid' % n['name'])
            continue
        if not _WWID_RE.match(str(wwid).strip().lower()):
            problems.append('%s: polardb_lun_wwid=%r is not a WWID (16 to 33 hex digits, optional 0x)'
                            % (n['name'], wwid))
            continue
        owners.setdefault(normalise_wwid(str(wwid)), []).append(n['name'])
        if n['name'] != initial_primary and n.get('role') not in NODE_ROLES:
            problems.append('%s: polardb_node_role=%r must be one of %s'
                            % (n['name'], n.get('role'), ', '.join(NODE_ROLES)))
    for wwid, hosts in sorted(owners.items()):
        if len(hosts) > 1:
            problems.append('LUN %s is given to more than one host (%s): each node needs a LUN of its own'
                            % (wwid, ', '.join(hosts)))
    return problems


def parameter_problems(parameters, reserved, reserved_prefixes):
    """Names the collection manages itself, or that cannot be parameter names."""
    problems = []
    for name in sorted(parameters or {}):
        lname = str(name).lower()
        if not _PARAM_NAME_RE.match(lname):
            problems.append('%r is not a valid parameter name' % (name,))
        elif lname in reserved or any(lname.startswith(p) for p in reserved_prefixes):
            problems.append('parameter %s is managed by polardb.stack and cannot be set in polardb_parameters'
                            % lname)
    return problems
