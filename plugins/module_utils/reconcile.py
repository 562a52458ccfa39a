# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconciling a PolarDBCluster: from what the resource says and what the engines
say, the status to write and the lifecycle operations to run.

Pure functions over plain data (the resource as the API returns it, the
topology as cluster_info returns it), so every decision is unit-tested.

The status keeps ``applied``: what the last successful reconcile made true
(primary, parameters, class, engine version, storage size). A change is what
the spec says differently from ``applied``, not from the live engines: after an
automatic failover the RW is not ``spec.primary``, and that is not a request to
switch back; changing ``spec.primary`` is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.k8s_resource import members, parameters_text

# in the order they run: the cluster first, then its shape, then its settings
OPERATIONS = ('create_cluster', 'add_node', 'remove_node', 'switchover', 'refresh_params', 'scale',
              'minor_upgrade', 'expand_storage')


def applied_of(spec):
    """What a successful reconcile of ``spec`` made true (kept in status.applied)."""
    return dict(primary=spec.get('primary'), parameters=parameters_text(spec.get('parameters')),
                instanceClass=spec.get('class') or '', engineVersion=spec.get('engineVersion') or '',
                storageSize=(spec.get('storage') or {}).get('size') or '')


def _live(topology):
    nodes = (topology or {}).get('nodes') or {}
    return dict((name, n) for name, n in nodes.items() if n.get('reachable'))


def plan(resource, topology, supported=OPERATIONS):
    """The operations that make the engines what ``resource`` says: a list of
    ``{operation, node, reason}`` in the order to run them, and the problems that
    stop a reconcile before it changes anything (``{'steps': [...], 'refused': [...]}``).
    A step whose operation is not in ``supported`` (what the caller runs itself) is refused,
    naming its playbook."""
    result = _plan(resource, topology)
    result['refused'].extend('%s (%s) is not run by reconcile.yml yet: run playbooks/%s.yml'
                             % (s['operation'], s['reason'], s['operation'])
                             for s in result['steps'] if s['operation'] not in supported)
    return result


def _plan(resource, topology):
    spec = resource.get('spec') or {}
    status = resource.get('status') or {}
    applied = status.get('applied')
    live = _live(topology)
    rw = (topology or {}).get('rw')
    wanted = members(spec, rw=rw)
    steps, refused = [], []

    if applied is None and not live:
        # never reconciled and no engine answers: a new cluster
        return dict(steps=[dict(operation='create_cluster', node=spec.get('primary'),
                                reason='no engine answers on any node of a cluster never reconciled')], refused=[])
    if not rw:
        refused.append('no node answers as RW (%s): a failover (playbooks/failover.yml or the cluster manager) comes '
                       'first, reconcile changes nothing without a RW'
                       % ('; '.join((topology or {}).get('problems') or []) or 'no engine answers'))
        return dict(steps=steps, refused=refused)

    known = set(i.get('name') for i in status.get('instances') or [])
    for node in wanted:
        if node['name'] in live:
            continue
        if node['name'] in known:
            refused.append('%s was an instance of the cluster and does not answer: rebuild it (playbooks/rebuild_node.yml) '
                           'or give its place up in spec.nodes' % node['name'])
        else:
            steps.append(dict(operation='add_node', node=node['name'],
                              reason='spec wants %s as a %s; no engine answers there' % (node['name'], node['role'])))
    wanted_names = set(n['name'] for n in wanted)
    declared = set(n['name'] for n in spec.get('nodes') or [])
    for name in sorted(live):
        if name != rw and name not in wanted_names and name in declared:
            steps.append(dict(operation='remove_node', node=name,
                              reason='%s runs but spec.replicas (%s) leaves it out' % (name, spec.get('replicas') or 0)))

    want = applied_of(spec)
    before = applied or want
    if want['primary'] != before.get('primary') and want['primary'] != rw:
        steps.append(dict(operation='switchover', node=want['primary'],
                          reason='spec.primary changed from %s to %s; the RW is %s' % (before.get('primary'), want['primary'], rw)))
    if want['parameters'] != before.get('parameters', {}):
        steps.append(dict(operation='refresh_params', node=None, reason='spec.parameters changed'))
    if want['instanceClass'] != before.get('instanceClass', ''):
        steps.append(dict(operation='scale', node=None, reason='spec.class changed from %r to %r'
                          % (before.get('instanceClass'), want['instanceClass'])))
    if want['engineVersion'] != before.get('engineVersion', '') and want['engineVersion']:
        steps.append(dict(operation='minor_upgrade', node=None, reason='spec.engineVersion changed to %s' % want['engineVersion']))
    if want['storageSize'] != before.get('storageSize', '') and want['storageSize']:
        steps.append(dict(operation='expand_storage', node=None, reason='spec.storage.size changed to %s' % want['storageSize']))
    steps.sort(key=lambda s: OPERATIONS.index(s['operation']))
    return dict(steps=steps, refused=refused)


def observed(resource, topology):
    """The status fields the engines decide: phase, rw, ready, instances."""
    spec = resource.get('spec') or {}
    nodes = (topology or {}).get('nodes') or {}
    rw = (topology or {}).get('rw')
    wanted = members(spec, rw=rw)
    roles = dict((n['name'], n['role']) for n in wanted)
    instances = []
    for name, n in nodes.items():
        if n.get('reachable'):
            role = 'rw' if n.get('role') == 'primary' else ('standby' if roles.get(name) == 'standby' else 'replica')
            state = 'running' if role == 'rw' else ('streaming' if n.get('streaming') else 'not streaming')
        else:
            role, state = 'none', 'unreachable'
        item = dict(name=name, host=n.get('host') or '', role=role, state=state)
        if n.get('timeline') is not None:
            item['timeline'] = int(n['timeline'])
        if n.get('lag_bytes') is not None:
            item['lagBytes'] = int(n['lag_bytes'])
        instances.append(item)
    ready = sum(1 for i in instances if i['name'] in roles and i['state'] in ('running', 'streaming'))
    if not rw:
        phase = 'Failed' if nodes else 'Pending'
    elif ready == len(wanted) and (topology or {}).get('healthy'):
        phase = 'Running'
    else:
        phase = 'Degraded'
    return dict(phase=phase, rw=rw or '', ready='%d/%d' % (ready, len(wanted)), instances=instances)


def status_patch(resource, result, now, run=None, started=None, ran=()):
    """The status to write after a reconcile: what the engines say (``result['observed']``
    of the last discovery), and, once nothing was refused, ``applied`` and
    ``observedGeneration``. ``lastOperation`` only when operations ran (``ran``) or
    something was refused, and the Ready condition only when it flips, so that a
    converged cluster's reconcile changes nothing but the heartbeat."""
    status = (resource.get('status') or {})
    meta = resource.get('metadata') or {}
    observed = result['observed']
    patch = dict(observed, heartbeat=now)
    if not result['refused']:
        patch['applied'] = result['applied']
        patch['observedGeneration'] = meta.get('generation')
    if ran or result['refused']:
        what = ', '.join('%s%s' % (s['operation'], ' ' + s['node'] if s.get('node') else '') for s in ran) or 'nothing'
        patch['lastOperation'] = dict(
            name='reconcile', runId=run or '', step='done' if not result['refused'] else 'plan',
            started=started or now, finished=now, result='Failed' if result['refused'] else 'Succeeded',
            message=('ran: %s' % what) if not result['refused'] else '; '.join(result['refused']))
    ready = 'True' if observed['phase'] == 'Running' and not result['refused'] else 'False'
    reason = 'Converged' if ready == 'True' else ('Refused' if result['refused'] else observed['phase'])
    old = dict((c.get('type'), c) for c in status.get('conditions') or [])
    if (old.get('Ready') or {}).get('status') != ready or (old.get('Ready') or {}).get('reason') != reason:
        patch['conditions'] = [dict(type='Ready', status=ready, reason=reason, lastTransitionTime=now,
                                    message='; '.join(result['refused']) or 'phase %s' % observed['phase'],
                                    observedGeneration=meta.get('generation'))]
    return patch
