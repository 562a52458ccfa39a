# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PolarDBCluster resource (stack.polardb.io/v1alpha1) as plain data.

What a resource says (its spec) and what it reports (its status), turned into
what the collection works with: the nodes that should run and their roles, the
inventory hosts and groups of the playbooks, a short summary. No API calls here:
the module and the inventory plugin bring the objects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.polardb.stack.plugins.module_utils.k8s_api import API_VERSION, KIND

PHASES = ('Pending', 'Creating', 'Running', 'Reconciling', 'Degraded', 'Interrupted', 'Failed', 'Deleting')
DEFAULT_PORT = 5432


def definition(name, namespace, spec, labels=None):
    """The object to create or update; ``spec`` in the resource's own (camelCase) terms.
    Unset options (None) are left out, so the API server's defaults apply."""
    return dict(apiVersion=API_VERSION, kind=KIND,
                metadata=dict(name=name, namespace=namespace, labels=dict(labels or {})),
                spec=dict((k, v) for k, v in spec.items() if v is not None))


def spec_from_options(params):
    """The module's snake_case options as the resource's spec."""
    nodes = None
    if params.get('nodes') is not None:
        nodes = []
        for n in params['nodes']:
            node = dict(name=n['name'], host=n['host'], wwid=n['wwid'])
            if n.get('port') is not None:
                node['port'] = n['port']
            if n.get('standby') is not None:
                node['standby'] = n['standby']
            nodes.append(node)
    storage = dict(size=params['storage_size']) if params.get('storage_size') else None
    return dict(primary=params.get('primary'), replicas=params.get('replicas'), nodes=nodes,
                parameters=params.get('parameters'), storage=storage,
                engineVersion=params.get('engine_version'), deletionPolicy=params.get('deletion_policy'),
                **{'class': params.get('instance_class')})


def update_patch(existing, desired):
    """A JSON merge patch that makes ``existing`` say what ``desired`` says.

    Merge patches merge maps: a parameter left out of ``desired`` would survive,
    so it is removed explicitly (null). Lists (nodes) are replaced whole."""
    patch = copy.deepcopy(desired)
    patch.pop('apiVersion', None)
    patch.pop('kind', None)
    old = ((existing or {}).get('spec') or {}).get('parameters') or {}
    new = (patch.get('spec') or {}).get('parameters')
    if new is not None:
        for key in old:
            if key not in new:
                patch['spec']['parameters'][key] = None
    return patch


def parameters_text(parameters):
    """Engine parameters compared as text: 200 and '200' are the same setting."""
    return dict((k, '%s' % v) for k, v in (parameters or {}).items())


def spec_changes(existing, desired):
    """The spec keys whose value differs (a desired key not given is not a change)."""
    old = (existing or {}).get('spec') or {}
    new = desired.get('spec') or {}
    changes = []
    for key in sorted(new):
        if key == 'nodes':
            if _nodes_differ(old.get(key) or [], new[key]):
                changes.append(key)
        elif key == 'parameters':
            if parameters_text(old.get(key)) != parameters_text(new[key]):
                changes.append(key)
        elif old.get(key) != new[key]:
            changes.append(key)
    want_labels = (desired.get('metadata') or {}).get('labels') or {}
    have_labels = ((existing or {}).get('metadata') or {}).get('labels') or {}
    if any(have_labels.get(k) != v for k, v in want_labels.items()):
        changes.append('metadata.labels')
    return changes


# Live readings: written on every reconcile, never a change. A replica's lag moves with
# the write load between two reconciles of a converged cluster.
LIVE_STATUS = ('heartbeat',)
LIVE_INSTANCE = ('lagBytes',)


def _settled(key, value):
    if key == 'instances' and isinstance(value, list):
        return [dict((k, v) for k, v in i.items() if k not in LIVE_INSTANCE) if isinstance(i, dict) else i
                for i in value]
    return value


def status_changes(existing, status):
    """The status fields ``status`` (a merge patch) would change; the live
    readings (the heartbeat, each instance's lag) are not a change."""
    old = (existing or {}).get('status') or {}
    return sorted(k for k, v in status.items()
                  if k not in LIVE_STATUS and _settled(k, old.get(k)) != _settled(k, v))


def _nodes_differ(old, new):
    def norm(n):
        return (n.get('name'), n.get('host'), ('%s' % n.get('wwid')).lower(), int(n.get('port') or DEFAULT_PORT),
                bool(n.get('standby')))
    return [norm(n) for n in old] != [norm(n) for n in new]


def members(spec, rw=None):
    """The nodes that should run, in spec order, each with its role: the RW
    (``rw``, what the engines say, else spec.primary), the first ``replicas``
    of the other non-standby nodes, and every standby."""
    rw = rw or spec.get('primary')
    wanted = int(spec.get('replicas') or 0)
    out = []
    for n in spec.get('nodes') or []:
        node = dict(name=n['name'], host=n['host'], wwid=n['wwid'], port=int(n.get('port') or DEFAULT_PORT))
        if n['name'] == rw:
            node['role'] = 'primary'
        elif n.get('standby'):
            node['role'] = 'standby'
        elif wanted > 0:
            node['role'] = 'replica'
            wanted -= 1
        else:
            continue
        out.append(node)
    return out


def leaving(spec, status):
    """Nodes of ``spec.nodes`` that are no longer members (``spec.replicas`` was
    lowered) but that the status written by the last reconcile lists as a running
    replica or standby: reconcile removes them, so they stay in the inventory
    until an instance of theirs no longer runs."""
    wanted = set(n['name'] for n in members(spec, rw=status.get('rw')))
    running = set(i.get('name') for i in status.get('instances') or []
                  if i.get('role') in ('replica', 'standby') and i.get('state') != 'unreachable')
    return [dict(name=n['name'], host=n['host'], wwid=n['wwid'], port=int(n.get('port') or DEFAULT_PORT),
                 role='standby' if n.get('standby') else 'replica')
            for n in spec.get('nodes') or [] if n['name'] in running and n['name'] not in wanted]


def summary(obj):
    """Phase, RW, ready count and whether the status speaks of the current spec."""
    if not obj:
        return dict(exists=False, phase=None, rw=None, ready=None, generation=None, observed_generation=None,
                    current=False, last_operation=None)
    status = obj.get('status') or {}
    meta = obj.get('metadata') or {}
    return dict(exists=True, phase=status.get('phase'), rw=status.get('rw'), ready=status.get('ready'),
                generation=meta.get('generation'), observed_generation=status.get('observedGeneration'),
                current=status.get('observedGeneration') == meta.get('generation'),
                last_operation=status.get('lastOperation'))


def phase_reached(obj, phase):
    s = summary(obj)
    return s['exists'] and s['phase'] == phase and s['current']


def cluster_name(obj):
    """The collection's cluster name (its polardb_<cluster> group, unit, directories, lock)."""
    return obj['metadata']['name'].replace('-', '_')


def inventory(objects):
    """Hosts and groups for the playbooks, from resources (dicts as the API returns them).

    Returns ``{'hosts': {name: vars}, 'groups': {group: [hosts]}, 'group_vars': {group: vars}}``:
    one group ``polardb_<cluster>`` per resource with the cluster's settings,
    its member nodes as hosts (and the nodes reconcile removes, flagged
    ``polardb_k8s_leaving``: see ``leaving``), and role groups ``role_rw``, ``role_replica``,
    ``role_standby`` from the live status (falling back to the spec).
    Raises ValueError when two resources name a node alike (the host names would collide)."""
    hosts, groups, group_vars = {}, {}, {}
    owner = {}
    for obj in sorted(objects, key=lambda o: (o['metadata'].get('namespace') or '', o['metadata']['name'])):
        meta, spec, status = obj['metadata'], obj.get('spec') or {}, obj.get('status') or {}
        cluster = cluster_name(obj)
        group = 'polardb_%s' % cluster
        live = dict((i.get('name'), i) for i in status.get('instances') or [])
        gv = dict(polardb_cluster=cluster, polardb_initial_primary=spec.get('primary'),
                  polardb_k8s_resource=dict(name=meta['name'], namespace=meta.get('namespace'),
                                            generation=meta.get('generation'), uid=meta.get('uid')),
                  polardb_parameters=dict(spec.get('parameters') or {}))
        if spec.get('class'):
            gv['polardb_class'] = spec['class']
        if spec.get('engineVersion'):
            gv['polardb_engine_version'] = spec['engineVersion']
        group_vars[group] = gv
        groups[group] = []
        going = leaving(spec, status)
        for node in members(spec, rw=status.get('rw')) + going:
            name = node['name']
            if name in owner:
                raise ValueError('node name %s is used by clusters %s and %s: inventory host names must be unique; '
                                 'rename one node (e.g. %s-%s)' % (name, owner[name], meta['name'], meta['name'], name))
            owner[name] = meta['name']
            role = (live.get(name) or {}).get('role') or {'primary': 'rw'}.get(node['role'], node['role'])
            hvars = dict(ansible_host=node['host'], polardb_lun_wwid=node['wwid'], polardb_port=node['port'],
                         polardb_k8s_role=role)
            if node['role'] in ('replica', 'standby'):
                hvars['polardb_node_role'] = node['role']
            if node in going:
                hvars['polardb_k8s_leaving'] = True
            hosts[name] = hvars
            groups[group].append(name)
            groups.setdefault('role_%s' % role, []).append(name)
    return dict(hosts=hosts, groups=groups, group_vars=group_vars)
