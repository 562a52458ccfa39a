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

from ansible_collections.polardb.stack.plugins.module_utils.instance import WAL_SEGMENT_SIZES_MB
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


def port_problems(cluster, nodes):
    """Two nodes on one address must not share a port, whatever their clusters.

    ``nodes``: [{cluster, name, address, port}] of every node of every cluster
    of the inventory. Returns the problems of the nodes of ``cluster``."""
    problems = []
    seen = {}
    for n in nodes:
        seen.setdefault((str(n['address']), str(n['port'])), []).append(n)
    for n in nodes:
        if n['cluster'] != cluster:
            continue
        others = [o for o in seen[(str(n['address']), str(n['port']))] if o is not n]
        for o in others:
            where = 'node %s of cluster %s' % (o['name'], o['cluster']) if o['cluster'] != cluster else 'node %s' % o['name']
            hint = ('describe each cluster\'s node as an inventory host of its own (the same ansible_host, '
                    'its own polardb_lun_wwid and polardb_port)' if o['name'] == n['name']
                    else 'give one of them another polardb_port')
            problems.append('%s: port %s on %s is also %s\'s: %s' % (n['name'], n['port'], n['address'], where, hint))
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


FSTYPES = ('xfs', 'ext4')
FENCE_DRIVERS = ('none', 'scsi3_pr', 'nvme', 'command')
MULTIPATH_MODES = ('auto', 'yes', 'no')
# initdb --wal-segsize, in MB, as the settings are written
WAL_SEGMENT_SIZES = tuple(str(n) for n in WAL_SEGMENT_SIZES_MB)
_CLUSTER_RE = re.compile(r'^[a-z][a-z0-9_-]{0,30}$')
_ROLE_NAME_RE = re.compile(r'^[a-z_][a-z0-9_]{0,62}$')
_SIZE_RE = re.compile(r'^\s*\d+\s*(kB|MB|GB|TB)?\s*$')
_BOOL_TEXT = ('true', 'false', 'yes', 'no', 'on', 'off', '1', '0')
MAX_SLOT_NAME = 63


def _as_int(value):
    """An integer from YAML or -e text; None when it is not one (booleans are not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _int_problem(settings, var, low, high=None, why=''):
    """'var=x must be an integer from low to high' or None (var absent: no problem)."""
    if var not in settings:
        return None
    value = settings[var]
    number = _as_int(value)
    if number is not None and number >= low and (high is None or number <= high):
        return None
    allowed = ('an integer from %d to %d' % (low, high)) if high is not None else ('an integer >= %d' % low)
    return '%s=%r must be %s%s' % (var, value, allowed, why)


def _choice_problem(settings, var, choices):
    if var not in settings:
        return None
    value = settings[var]
    if str(value) in choices:
        return None
    return '%s=%r must be one of %s' % (var, value, ', '.join(choices))


def _bool_problem(settings, var):
    if var not in settings:
        return None
    value = settings[var]
    if isinstance(value, bool) or str(value).strip().lower() in _BOOL_TEXT:
        return None
    return '%s=%r must be a boolean (true or false)' % (var, value)


def eligible_sync_replicas(nodes, rw):
    """Names of the nodes that may acknowledge a synchronous commit of ``rw``:
    every node but the standbys and the RW itself."""
    return [n['name'] for n in nodes if n.get('kind', n.get('role')) != 'standby' and n['name'] != rw]


def setting_problems(settings, nodes, rw):
    """Check the scalar settings of a cluster (group or extra vars).

    ``settings``: {variable: value} (absent variables are not checked);
    ``nodes``: [{name, kind (replica|standby), slot, address}];
    ``rw``: the RW (live, or the initial primary when none runs yet).
    Every problem names the variable and the allowed values.
    """
    problems = []
    add = problems.append
    if 'polardb_cluster' in settings and not _CLUSTER_RE.match(str(settings['polardb_cluster'])):
        add('cluster=%r must be 1 to 31 lower-case letters, digits, - or _, starting with a letter'
            % (settings['polardb_cluster'],))
    eligible = eligible_sync_replicas(nodes, rw)
    sync = _int_problem(settings, 'polardb_synchronous_replicas', 0, len(eligible),
                        ' (the replicas that can acknowledge a commit of the RW %s: %s)'
                        % (rw, ', '.join(eligible) or 'none'))
    checks = [
        sync,
        _int_problem(settings, 'polardb_port', 1, 65535),
        _choice_problem(settings, 'polardb_fstype', FSTYPES),
        _choice_problem(settings, 'polardb_fence_driver', FENCE_DRIVERS),
        _int_problem(settings, 'polardb_wait_timeout', 1),
        _int_problem(settings, 'polardb_wait_interval', 1),
        _int_problem(settings, 'polardb_probe_timeout', 1),
        _int_problem(settings, 'polardb_switchover_max_lag_bytes', 0),
        _bool_problem(settings, 'polardb_storage_force'),
        _bool_problem(settings, 'polardb_failover_unfenced'),
        _choice_problem(settings, 'polardb_wal_segment_size_mb', WAL_SEGMENT_SIZES),
    ]
    problems.extend(c for c in checks if c)
    if 'polardb_lun_multipath' in settings:
        mp = settings['polardb_lun_multipath']
        if not (isinstance(mp, bool) or str(mp).lower() in MULTIPATH_MODES + _BOOL_TEXT):
            add('polardb_lun_multipath=%r must be one of %s' % (mp, ', '.join(MULTIPATH_MODES)))
    if settings.get('polardb_fence_driver') == 'command':
        command = settings.get('polardb_fence_command')
        if not (isinstance(command, (list, tuple)) and command and all(isinstance(a, str) and a for a in command)):
            add('polardb_fence_driver=command needs polardb_fence_command, the fence command as a list of '
                'arguments (got %r; see docs/fencing.md)' % (command,))
    wait, interval = _as_int(settings.get('polardb_wait_timeout')), _as_int(settings.get('polardb_wait_interval'))
    if wait and interval and wait > 0 and interval > wait:
        add('polardb_wait_interval=%d must not exceed polardb_wait_timeout=%d' % (interval, wait))
    if 'polardb_engine_major' in settings and not re.match(r'^\d{1,3}$', str(settings['polardb_engine_major'])):
        add('polardb_engine_major=%r must be a major version number such as 15' % (settings['polardb_engine_major'],))
    if 'polardb_mount_root' in settings and not str(settings['polardb_mount_root']).startswith('/'):
        add('polardb_mount_root=%r must be an absolute path' % (settings['polardb_mount_root'],))
    for var in ('polardb_superuser', 'polardb_replication_user', 'polardb_app_user', 'polardb_app_db'):
        if var in settings and not _ROLE_NAME_RE.match(str(settings[var])):
            add('%s=%r must be 1 to 63 lower-case letters, digits or _, not starting with a digit'
                % (var, settings[var]))
    if 'polardb_client_networks' in settings:
        problems.extend(_network_problems(settings['polardb_client_networks']))
    if 'polardb_max_slot_wal_keep_size' in settings:
        keep = settings['polardb_max_slot_wal_keep_size']
        if not (str(keep) in ('auto', '-1') or _SIZE_RE.match(str(keep))):
            add("polardb_max_slot_wal_keep_size=%r must be auto, -1 (unlimited) or a size such as 4096MB or 4GB"
                % (keep,))
    if 'polardb_max_slot_wal_keep_fraction' in settings:
        try:
            fraction = float(settings['polardb_max_slot_wal_keep_fraction'])
        except (TypeError, ValueError):
            fraction = -1
        if not 0 < fraction <= 0.9:
            add('polardb_max_slot_wal_keep_fraction=%r must be a number above 0 and at most 0.9'
                % (settings['polardb_max_slot_wal_keep_fraction'],))
    problems.extend(_slot_problems(nodes))
    return problems


def _network_problems(networks):
    import ipaddress
    if not isinstance(networks, (list, tuple)):
        return ['polardb_client_networks=%r must be a list of networks such as 10.0.0.0/24' % (networks,)]
    problems = []
    for net in networks:
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            problems.append('polardb_client_networks: %r is not a network (such as 10.0.0.0/24 or 2001:db8::/64)'
                            % (net,))
    return problems


def _slot_problems(nodes):
    """Each node's slot (and application_name) must be a valid, distinct name."""
    problems, owners = [], {}
    for n in nodes:
        slot = n.get('slot')
        if slot is None:
            continue
        if not re.match(r'^[a-z0-9_]{1,%d}$' % MAX_SLOT_NAME, str(slot)):
            problems.append('%s: polardb_slot_name=%r must be 1 to %d lower-case letters, digits or _'
                            % (n['name'], slot, MAX_SLOT_NAME))
        owners.setdefault(str(slot), []).append(n['name'])
        if not n.get('address', 'x'):
            problems.append('%s: polardb_node_address is empty' % n['name'])
    for slot, names in sorted(owners.items()):
        if len(names) > 1:
            problems.append('nodes %s share the replication slot name %s (polardb_slot_name, from the host name): '
                            'rename a host or set polardb_slot_name' % (', '.join(names), slot))
    return problems
