# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a lifecycle operation: its ordered steps, the node of each,
whether check mode can simulate it, and what it costs the cluster's writers.

A playbook decides (from the live topology) who hands over to whom, which node
is rebuilt from which, and so on; ``build_plan`` turns those decisions into the
list of steps that the playbook then runs, in that order. ``--check`` prints
the same plan and stops before the first step that would change anything, so
the preview and the real run cannot drift: both come from one decision.

A plan is plain data::

    {operation, cluster, check_mode, steps: [{step, node, simulated, does}],
     write_unavailable: str, not_simulated: [step names], notes: [str]}

``simulated`` is False for a step that check mode cannot simulate (SQL with
effects outside a transaction, service stops, promotes, waits on the new
state): check mode skips it, and the plan names it in ``not_simulated``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

OPERATIONS = ('switchover', 'failover', 'rebuild_node', 'destroy_cluster', 'create_cluster', 'refresh_params',
              'restart', 'minor_upgrade', 'remove_node', 'expand_storage', 'migrate_node')


def _step(step, node, does, simulated=False):
    return dict(step=step, node=node, does=does, simulated=bool(simulated))


def _others(nodes, *excluded):
    return [n for n in sorted(nodes) if n not in excluded]


def _require(decisions, *names):
    missing = [n for n in names if decisions.get(n) in (None, '')]
    if missing:
        raise PolarDBError('the plan needs %s' % ', '.join(missing))


def plan_switchover(d):
    _require(d, 'from', 'to', 'nodes')
    old, new = d['from'], d['to']
    steps = [
        _step('take the lock', 'all', 'record {from: %s, to: %s} on every node' % (old, new)),
        _step('critical section', old,
              'checkpoint, stop %s, wait until %s replayed its shutdown record, promote %s' % (old, new, new)),
        _step('configure the new RW', new, 'replicate from nobody; slots for every other node'),
    ]
    steps += [_step('follow the new RW', n, 'primary_conninfo -> %s, restart as a replica' % new)
              for n in _others(d['nodes'], new)]
    steps += [_step('wait until every node streams from %s' % new, 'all', 'poll the engines'),
              _step('release the lock', 'all', 'remove the lock')]
    lag = d.get('lag_bytes')
    return dict(
        steps=steps,
        write_unavailable=('from the stop of %s until %s is promoted: typically 0.1-0.3 s '
                           '(see docs/benchmarks.md); nothing acknowledged is lost' % (old, new)),
        notes=['%s lags %s bytes behind %s' % (new, lag, old)] if lag is not None else [])


def plan_failover(d):
    _require(d, 'from', 'to', 'nodes')
    old, new = d['from'], d['to']
    driver = d.get('fence_driver') or 'none'
    unfenced = bool(d.get('unfenced'))
    steps = [_step('take the lock', 'up nodes', 'record {from: %s, to: %s}' % (old, new))]
    if driver == 'none':
        steps.append(_step('no fence', old, 'no fence driver: %s' % (
            'promoting unfenced (polardb_failover_unfenced=true)' if unfenced else 'refused unless polardb_failover_unfenced=true')))
    else:
        steps.append(_step('fence the old RW', new, 'fence %s out of its LUN with the %s driver%s'
                           % (old, driver, ' (best effort: polardb_failover_unfenced=true)' if unfenced else '')))
    steps += [
        _step('stop the old RW', old, 'stop its engine if its host answers'),
        _step('promote', new, 'pg_promote() on %s, wait until it accepts writes' % new),
        _step('configure the new RW', new, 'replicate from nobody; slots for every other node'),
    ]
    steps += [_step('follow the new RW', n, 'primary_conninfo -> %s, restart as a replica' % new)
              for n in _others(d.get('up') or d['nodes'], new, old)]
    steps += [_step('wait until the survivors stream from %s' % new, 'all', 'poll the engines'),
              _step('release the lock', 'up nodes', 'remove the lock')]
    notes = ['%s stays fenced and stopped: bring it back with rebuild_node.yml' % old]
    if d.get('receive_lsn'):
        notes.append('%s received WAL up to %s; what %s wrote after that is lost, if anything'
                     % (new, d['receive_lsn'], old))
    return dict(
        steps=steps,
        write_unavailable=('writes stopped when %s failed; they resume once %s is promoted '
                           '(a few seconds after this plan)' % (old, new)),
        notes=notes)


def plan_rebuild_node(d):
    _require(d, 'node', 'source')
    node, source = d['node'], d['source']
    split = bool(d.get('split_brain'))
    steps = [_step('take the lock', 'up nodes', 'record {node: %s, rw: %s}' % (node, source))]
    if split:
        steps += [_step('fence the node', source, 'fence %s out of its LUN: it stops accepting writes' % node),
                  _step('stop the node', node, 'stop its engine')]
    steps += [
        _step('slots on the RW', source, 'a replication slot for every other node'),
        _step('stop the node', node, 'stop its engine'),
        _step('take the LUN back', node, 'the node is its LUN\'s only writer again'),
        _step('rewind or copy', node, 'pg_rewind from %s; if that cannot work, a fresh base backup '
                                      '(its local data is discarded)' % source),
        _step('follow the RW', node, 'start as a replica of %s' % source),
        _step('wait until %s streams from %s' % (node, source), 'all', 'poll the engines'),
        _step('release the lock', 'up nodes', 'remove the lock'),
    ]
    notes = []
    if split:
        notes.append('split brain: %s accepts writes too; WAL it wrote after the histories diverged '
                     '(%s) is DISCARDED' % (node, d.get('discarded') or 'the range is reported after the fence'))
    if d.get('followers'):
        notes.append('%s replicate from %s: rebuild them next (rebuild_node.yml -e node=...)'
                     % (', '.join(sorted(d['followers'])), node))
    return dict(
        steps=steps,
        write_unavailable=('none on %s; %s stops accepting writes' % (source, node)) if split
        else 'none: the RW %s is not touched' % source,
        notes=notes)


def plan_destroy_cluster(d):
    _require(d, 'nodes')
    wipe = bool(d.get('wipe'))
    steps = [_step('take the lock', 'all', 'no other operation may run')]
    steps += [_step('remove the node', n, 'stop and disable the engine, remove configuration, unmount the LUN%s'
                    % (', WIPE its file system' if wipe else ' (its data is kept)')) for n in sorted(d['nodes'])]
    return dict(steps=steps, write_unavailable='permanent: the cluster is removed',
                notes=['LUN data is %s' % ('wiped (wipe=true)' if wipe else 'kept')])


def plan_remove_node(d):
    _require(d, 'node', 'rw', 'remaining')
    node, rw, wipe = d['node'], d['rw'], bool(d.get('wipe'))
    steps = [_step('take the lock', 'all', 'record {node: %s} on every node' % node),
             _step('remove the node', node, 'stop and disable the engine, remove its configuration, unmount the LUN, '
                   'release its fence registration%s' % (', WIPE the LUN' if wipe else ' (its data is kept)')),
             _step('the other nodes without it', ', '.join(d['remaining']),
                   'pg_hba.conf and synchronous_standby_names without %s, reload' % node, True)]
    if d.get('slot'):
        steps.append(_step('drop its slot', rw, 'drop replication slot %s' % d['slot']))
    steps += [_step('wait until every other node streams from %s' % rw, 'all', 'poll the engines'),
              _step('release the lock', 'all', 'remove the lock')]
    return dict(steps=steps, write_unavailable='none: the RW is not touched (reload only)',
                notes=['LUN data of %s is %s' % (node, 'wiped (wipe=true)' if wipe else 'kept'),
                       'then delete %s from the inventory group, or the next create_cluster adds it back' % node])


def plan_migrate_node(d):
    _require(d, 'node', 'to', 'rw')
    node, to, rw, wipe = d['node'], d['to'], d['rw'], bool(d.get('wipe'))
    steps = []
    if d.get('converge'):
        steps.append(_step('join', to, 'converge the cluster with %s (create_cluster, its own preview follows): '
                           'install, its LUN formatted and mounted, a base backup from %s through its own slot; '
                           'wait until it streams and has caught up' % (to, rw), True))
    if d.get('switchover'):
        steps.append(_step('switchover', node, 'hand the RW over to %s (switchover.yml: checkpoint, stop, replay '
                           'wait, promote); %s follows it' % (to, node)))
    steps.append(_step('remove the node', node, 'remove_node.yml: stop and disable the engine, remove its '
                       'configuration, unmount the LUN%s, release its fence registration; the others reload; '
                       'its slot dropped' % (' and WIPE it' if wipe else ' (its data is kept)')))
    return dict(steps=steps,
                write_unavailable=("one switchover's critical section (%s is the RW)" % node) if d.get('switchover')
                else 'none: the RW only reloads',
                notes=['each step takes the cluster lock for its length; the same command finishes an '
                       'interrupted migration (the steps done are skipped)',
                       'then delete %s from the inventory group, or the next create_cluster adds it back' % node])


def plan_expand_storage(d):
    _require(d, 'nodes', 'bytes', 'array')
    size, array = d['bytes'], d['array']
    growing = sorted(n for n, v in d['nodes'].items() if v.get('grow'))
    steps = [_step('take the lock', 'all', 'no other operation may run')]
    if array == 'none':
        steps.append(_step('the array', 'the storage team', 'every LUN already grown to %d bytes (not checked until '
                           'the rescan)' % size, True))
    else:
        steps += [_step('grow the LUN on the array', n, 'LUN %s: %d -> %d bytes (%s)'
                        % (d['nodes'][n]['wwid'], d['nodes'][n]['before'], size, array)) for n in growing]
    steps += [_step('rescan and grow the file system', 'all', 're-read the capacity of every path (and the '
                    'multipath map), grow the mounted file system online'),
              _step('derived parameters', 'all', 'max_slot_wal_keep_size from the new size, reload', True),
              _step('release the lock', 'all', 'remove the lock')]
    return dict(steps=steps, write_unavailable='none: online, no engine restarts',
                notes=['already at the size: %s' % ', '.join(sorted(set(d['nodes']) - set(growing)))]
                if set(d['nodes']) - set(growing) else [])


def plan_create_cluster(d):
    _require(d, 'nodes', 'rw')
    actions = d['nodes']
    says = dict(running='already running', start='start it (it holds the data)',
                init='initialise a new cluster', keep='configure and start as a replica (has data)',
                build='base backup from the RW, start as a replica')
    rw_action = d.get('rw_action') or 'running'
    steps = [_step('checks', 'all', 'inventory, LUNs, parameters (nothing changes until they pass)', True),
             _step('engine packages, storage, fence, configuration', 'all',
                   'install, mount, register, template (check mode shows the diffs)', True)]
    steps.append(_step('RW', d['rw'], says[rw_action], rw_action == 'running'))
    for n, a in sorted(actions.items()):
        if n != d['rw']:
            steps.append(_step('replica', n, says.get(a, a), a == 'keep'))
    steps.append(_step('wait until every node streams', 'all', 'poll the engines'))
    restarting = d.get('restart') or []
    return dict(steps=steps,
                write_unavailable=('none: configuration changes are reloaded' if rw_action == 'running' and not restarting
                                   else 'the cluster is not writable until the RW has started'
                                   if rw_action != 'running' else 'restart of %s' % ', '.join(restarting)),
                notes=[])


def _restart_steps(d):
    """The restarts of a refresh or a restart: ``steps`` of ``param_refresh.plan_refresh``."""
    out = []
    first = 'install %s, then ' % d['version'] if d.get('version') else ''
    for s in d.get('steps') or []:
        if s['how'] == 'restart':
            out.append(_step('restart', s['node'], first + 'restart the engine, wait until it streams and has caught up'))
        elif s['how'] == 'in_place':
            out.append(_step('restart the RW in place', s['node'],
                             first + 'restart the engine (writes stop meanwhile), wait until every node streams'))
        else:
            out.append(_step('switchover', s['node'], first + 'hand the RW over to %s (critical section as in a '
                                                              'switchover); %s restarts as its replica'
                             % (d.get('target') or 'the most advanced replica', s['node'])))
            out.append(_step('wait until every node streams from %s' % (d.get('target') or 'the new RW'), 'all',
                             'poll the engines'))
    return out


def plan_refresh_params(d):
    _require(d, 'rw', 'nodes')
    nodes = d['nodes']
    steps = [_step('checks', 'all', 'every parameter against each engine\'s catalog; hot-standby order', True),
             _step('take the lock', 'all', 'no other operation may run')]
    for n in sorted(nodes):
        c = nodes[n]
        changed = sorted(set(c.get('reload') or []) | set(c.get('restart') or []))
        if changed:
            steps.append(_step('write postgresql.conf and reload', n, ', '.join(changed)))
    steps += _restart_steps(d)
    steps.append(_step('release the lock', 'all', 'remove the lock'))
    notes = ['%s: needs a restart for %s' % (n, ', '.join(nodes[n]['restart']))
             for n in sorted(nodes) if nodes[n].get('restart')]
    if not any(nodes[n].get('reload') or nodes[n].get('restart') for n in nodes):
        notes.append('every node already runs these parameters: nothing to do')
    return dict(steps=steps, write_unavailable=d.get('write_unavailable') or 'none', notes=notes)


def plan_minor_upgrade(d):
    _require(d, 'rw', 'version', 'nodes')
    steps = [_step('checks', 'all', 'the version in every node\'s package sources; no downgrade unless named', True),
             _step('take the lock', 'all', 'no other operation may run')]
    steps += _restart_steps(d)
    steps.append(_step('verify, release the lock', 'all', 'version() on every node, remove the lock'))
    notes = ['%s: %s (installed %s, runs %s)' % (n, c['action'], c.get('installed') or 'nothing', c.get('running') or '?')
             for n, c in sorted(d['nodes'].items())]
    return dict(steps=steps, write_unavailable=d.get('write_unavailable') or 'none', notes=notes)


def plan_restart(d):
    _require(d, 'rw')
    steps = [_step('take the lock', 'all', 'no other operation may run')]
    steps += _restart_steps(d)
    steps.append(_step('release the lock', 'all', 'remove the lock'))
    return dict(steps=steps, write_unavailable=d.get('write_unavailable') or 'none', notes=[])


_BUILDERS = dict(switchover=plan_switchover, failover=plan_failover, rebuild_node=plan_rebuild_node,
                 destroy_cluster=plan_destroy_cluster, create_cluster=plan_create_cluster,
                 refresh_params=plan_refresh_params, restart=plan_restart,
                 minor_upgrade=plan_minor_upgrade, remove_node=plan_remove_node,
                 expand_storage=plan_expand_storage, migrate_node=plan_migrate_node)


def build_plan(operation, cluster, decisions, check_mode=False):
    """The plan of ``operation`` from the playbook's ``decisions`` (a dict)."""
    if operation not in _BUILDERS:
        raise PolarDBError('unknown operation %r: expected one of %s' % (operation, ', '.join(OPERATIONS)))
    body = _BUILDERS[operation](dict(decisions or {}))
    plan = dict(operation=operation, cluster=cluster, check_mode=bool(check_mode))
    plan.update(body)
    plan['not_simulated'] = [s['step'] + ' (' + s['node'] + ')' for s in body['steps'] if not s['simulated']]
    return plan


def render_plan(plan):
    """Lines for people: one per step, then the cost and the notes."""
    head = '%s of cluster %s%s' % (plan['operation'], plan['cluster'],
                                   ' -- CHECK MODE: nothing is changed' if plan['check_mode'] else '')
    lines = [head]
    for i, s in enumerate(plan['steps'], 1):
        mark = '' if s['simulated'] or not plan['check_mode'] else '  [skipped in check mode]'
        lines.append('%d. %s on %s: %s%s' % (i, s['step'], s['node'], s['does'], mark))
    lines.append('write unavailability: %s' % plan['write_unavailable'])
    lines += ['note: %s' % n for n in plan['notes']]
    return lines
