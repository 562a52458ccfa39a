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
              'minor_upgrade', 'expand_storage', 'destroy_cluster')

# held on every reconciled resource: deleted, it stays until a reconcile removed its engines
FINALIZER = 'stack.polardb.io/engines'


# what playbooks/reconcile.yml runs itself (create_cluster converges new nodes too, so it also adds
# them; scale is refresh_params with the class the spec names); a caller that runs fewer refuses the
# others, naming their playbook
RUN_BY_RECONCILE = ('create_cluster', 'add_node', 'remove_node', 'switchover', 'refresh_params', 'scale',
                    'minor_upgrade', 'expand_storage', 'destroy_cluster')


def applied_of(spec):
    """What a successful reconcile of ``spec`` made true (kept in status.applied)."""
    return dict(primary=spec.get('primary'), parameters=parameters_text(spec.get('parameters')),
                instanceClass=spec.get('class') or '', engineVersion=spec.get('engineVersion') or '',
                storageSize=(spec.get('storage') or {}).get('size') or '')


def _live(topology):
    nodes = (topology or {}).get('nodes') or {}
    return dict((name, n) for name, n in nodes.items() if n.get('reachable'))


# what each operation makes true in status.applied (a run that made it counts it done when it plans again)
APPLIES = dict(switchover='primary', refresh_params='parameters', scale='instanceClass',
               minor_upgrade='engineVersion', expand_storage='storageSize')


def plan(resource, topology, supported=RUN_BY_RECONCILE, resume=True, ran=()):
    """The operations that make the engines what ``resource`` says: a list of
    ``{operation, node, reason}`` in the order to run them, the problems that
    stop a reconcile before it changes anything, and the steps this run makes
    (``{'steps': [...], 'refused': [...], 'run': [...]}``, see ``this_run``).
    A step whose operation is not in ``supported`` (what the caller runs itself) is refused,
    naming its playbook. With ``resume``, the step of an earlier run that did not
    finish (see ``interrupted_step``) comes first. ``ran``: the steps this run made,
    for the plan made again after them: what they applied is no longer a change
    (the status's ``applied`` is written only at the end of the run).
    A deleted resource (``deleting``) plans only the removal of its engines
    (``_deletion``); ``finalizers``: the list to write, see ``finalizers()``."""
    deleting = bool((resource.get('metadata') or {}).get('deletionTimestamp'))
    if deleting:
        # after this run's destroy_cluster, nothing is left to do but drop the finalizer
        result = dict(steps=[], refused=[]) if any(s['operation'] == 'destroy_cluster' for s in ran) else _deletion(resource)
    else:
        result = _plan(resource, topology, interrupted_step(resource) if resume else None,
                       done=[APPLIES[s['operation']] for s in ran if s['operation'] in APPLIES])
    result['deleting'] = deleting
    result['finalizers'] = finalizers(resource)
    result['refused'].extend('%s (%s) is not run by reconcile.yml yet: run playbooks/%s.yml'
                             % (s['operation'], s['reason'], s['operation'])
                             for s in result['steps'] if s['operation'] not in supported)
    result['run'] = [] if result['refused'] else this_run(result['steps'])
    result['lines'] = plan_lines(result)
    return result


def _deletion(resource):
    """A deleted resource: its engines are removed (destroy_cluster, the LUNs' data kept
    unless ``spec.deletionPolicy`` is ``Wipe``), whatever else the spec or the engines
    say; then the finalizer goes and the API server deletes the resource."""
    meta = resource.get('metadata') or {}
    if FINALIZER not in (meta.get('finalizers') or []):
        return dict(steps=[], refused=[])
    wipe = (resource.get('spec') or {}).get('deletionPolicy') == 'Wipe'
    return dict(steps=[dict(operation='destroy_cluster', node=None, wipe=wipe,
                            reason='the resource was deleted: its engines are removed, every LUN %s (deletionPolicy %s)'
                                   % ('erased' if wipe else "keeps its data", 'Wipe' if wipe else 'Retain'))],
                refused=[])


def finalizers(resource):
    """The resource's finalizers as reconcile leaves them: ours added to a resource
    that lives, removed from one deleted (once its engines are removed); ``None`` when
    they are right already."""
    meta = resource.get('metadata') or {}
    now = list(meta.get('finalizers') or [])
    if meta.get('deletionTimestamp'):
        return [f for f in now if f != FINALIZER] if FINALIZER in now else None
    return None if FINALIZER in now else now + [FINALIZER]


def plan_lines(result):
    """The plan as a person reads it: a line per step (``next run:`` for those left
    for the next run), then what is refused."""
    now = len(result['steps']) if result['refused'] else len(result['run'])
    lines = ['%s%s: %s' % ('next run: ' if i >= now else '', s['operation'], s['reason'])
             for i, s in enumerate(result['steps'])]
    return (lines or ['nothing to change']) + ['refused: %s' % r for r in result['refused']]


def this_run(steps):
    """The steps one run makes: all of them up to the first removal included. A
    playbook's inventory is read once, so after a removal the removed node is
    still in the cluster's group, its engine stopped; the steps after it are left
    for the next run, whose inventory no longer has it."""
    out = []
    for step in steps:
        out.append(step)
        if step['operation'] == 'remove_node':
            break
    return out


def interrupted_step(resource):
    """The step an earlier reconcile was running when it stopped (killed, its
    controller gone, or a lifecycle playbook that failed): the status's last
    operation still says ``Running`` or ``Interrupted``. Run again, that step's
    playbook resumes it through its own lock record."""
    last = (resource.get('status') or {}).get('lastOperation') or {}
    if last.get('result') not in ('Running', 'Interrupted') or last.get('step') not in RUN_BY_RECONCILE:
        return None
    return dict(operation=last['step'], node=last.get('node') or None,
                reason='resuming %s%s of run %s (started %s), which did not finish'
                       % (last['step'], ' ' + last['node'] if last.get('node') else '', last.get('runId') or '?',
                          last.get('started') or '?'))


def _plan(resource, topology, resumed=None, done=()):
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
    if not rw and resumed and resumed['operation'] == 'switchover':
        # stopped inside the switchover's critical section: only its own resume brings a RW back
        return dict(steps=[resumed], refused=[])
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
    before = dict(applied or want, **dict((field, want[field]) for field in done))
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
    if resumed:
        steps = [resumed] + [s for s in steps if (s['operation'], s['node']) != (resumed['operation'], resumed['node'])]
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
        if name not in roles and not n.get('reachable'):
            # a node reconcile removed (spec.replicas lowered): no longer an instance
            continue
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
    # what the engines say of a node just removed (its engine stopped) is not a problem of the cluster
    gone = set(name for name, n in nodes.items() if name not in roles and not n.get('reachable'))
    problems = [p for p in (topology or {}).get('problems') or [] if p.split(' ', 1)[0].rstrip(':') not in gone]
    if not rw:
        phase = 'Failed' if nodes else 'Pending'
    elif ready == len(wanted) and ((topology or {}).get('healthy') or not problems):
        phase = 'Running'
    else:
        phase = 'Degraded'
    return dict(phase=phase, rw=rw or '', ready='%d/%d' % (ready, len(wanted)), instances=instances)


def status_patch(resource, result, now, run=None, started=None, ran=()):
    """The status to write after a reconcile: what the engines say (``result['observed']``
    of the last discovery), and, once nothing was refused, ``applied`` and
    ``observedGeneration``. ``lastOperation`` only when operations ran (``ran``) or
    something was refused, and the Ready condition only when it flips, so that a
    converged cluster's reconcile changes nothing but the heartbeat.
    Steps the run left for the next one (``result['remaining']``: one node is
    removed per run) make the phase ``Reconciling``; ``applied`` and
    ``observedGeneration`` wait for the run that leaves none."""
    status = (resource.get('status') or {})
    meta = resource.get('metadata') or {}
    observed = dict(result['observed'])
    remaining = [] if result['refused'] else list(result.get('remaining') or ())
    if remaining and observed['phase'] in ('Running', 'Degraded'):
        observed['phase'] = 'Reconciling'
    patch = dict(observed, heartbeat=now)
    if not result['refused'] and not remaining:
        patch['applied'] = result['applied']
        patch['observedGeneration'] = meta.get('generation')
    if ran or result['refused']:
        what = ', '.join(_step_text(s) for s in ran) or 'nothing'
        if remaining:
            what += '; still to run: %s (run reconcile again)' % ', '.join(_step_text(s) for s in remaining)
        # a merge patch: node (of a step in progress) is removed
        patch['lastOperation'] = dict(
            name='reconcile', runId=run or '', step='done' if not result['refused'] else 'plan', node=None,
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


def _step_text(step):
    return '%s%s' % (step['operation'], ' ' + step['node'] if step.get('node') else '')


def progress_patch(result, operations, run, started):
    """The status written as the step of ``result['run']`` whose operation is one
    of ``operations`` starts (None when this run has no such step): if the run
    stops there, the next run finds the step (``interrupted_step``), and the
    heartbeat of the run's Lease, or the next run, marks it ``Interrupted``
    (``interrupted_patch``)."""
    steps = result.get('run') or []
    for number, step in enumerate(steps, 1):
        if step['operation'] in operations:
            phase = dict(create_cluster='Creating', destroy_cluster='Deleting').get(step['operation'], 'Reconciling')
            return dict(phase=phase, lastOperation=dict(
                name='reconcile', runId=run, step=step['operation'], node=step.get('node') or None, started=started,
                finished=None, result='Running',
                message='running step %d of %d: %s' % (number, len(steps), _step_text(step))))
    return None


def interrupted_patch(resource, now, reason):
    """The status of a reconcile that stopped during a step (``None`` when the
    status does not say a step is running)."""
    status = resource.get('status') or {}
    last = status.get('lastOperation') or {}
    if last.get('result') != 'Running':
        return None
    message = '%s stopped during step %s: %s; run reconcile again to resume it' % (
        last.get('runId') or 'a run', _step_text(dict(operation=last.get('step'), node=last.get('node'))), reason)
    meta = resource.get('metadata') or {}
    return dict(phase='Interrupted', lastOperation=dict(last, result='Interrupted', finished=now, message=message),
                conditions=[dict(type='Ready', status='False', reason='Interrupted', lastTransitionTime=now,
                                 message=message, observedGeneration=meta.get('generation'))])
