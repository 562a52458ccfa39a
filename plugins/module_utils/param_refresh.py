# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which nodes a parameter change reloads or restarts, and in which order.

Input: what ``parameter_check`` found on each node (the desired value of
every parameter against the running engine: ``change`` none/reload/restart,
``resets`` for parameters taken out of the file, ``pending_restart`` from the
engine), each node's kind and the discovered RW.

Rules (those of the original system, and PostgreSQL's own for hot standbys):

- a reload is enough unless a changed parameter's context is ``postmaster``;
  the engine's own ``pending_restart`` is restarted too, so a run that was
  interrupted after the reload resumes with the restarts;
- replicas and standbys restart one at a time, each back in place before the
  next; the RW last, by a switchover (the default: one switchover's write
  gap) or in place (the restart's);
- a hot standby refuses to run with a lower ``max_connections``,
  ``max_worker_processes``, ``max_wal_senders``, ``max_prepared_transactions``
  or ``max_locks_per_transaction`` than its RW: raising goes replicas first;
  lowering needs the RW to run the lower value first, which only a restart of
  the RW as the RW gives (in place; a switchover would promote a node that
  still runs the higher value); raising one and lowering another in one run
  cannot be ordered, so it is refused.

Pure functions: the playbooks call them through filters.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

HOT_STANDBY_PARAMETERS = ('max_connections', 'max_worker_processes', 'max_wal_senders',
                          'max_prepared_transactions', 'max_locks_per_transaction')
STRATEGIES = ('switchover', 'in_place')


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def node_changes(check):
    """One node's ``parameter_check`` result -> {reload, restart, pending}.

    ``reload``/``restart``: parameter names whose new value (or return to the
    default) needs that; ``pending``: what the engine already waits to
    restart for (an earlier run's reload, or a hand edit).
    """
    check = check or {}
    reload_, restart = [], []
    for name, p in sorted((check.get('parameters') or {}).items()):
        if p.get('change') == 'reload':
            reload_.append(name)
        elif p.get('change') == 'restart':
            restart.append(name)
    for name, apply in sorted((check.get('resets') or {}).items()):
        (restart if apply == 'restart' else reload_).append(name)
    pending = sorted(check.get('pending_restart') or [])
    return {'reload': reload_, 'restart': sorted(set(restart) | set(pending)), 'pending': pending}


def _desired(check, name):
    p = ((check or {}).get('parameters') or {}).get(name)
    if p is None:
        return None
    return _number(p.get('normalised'))


def _current(check, name):
    p = ((check or {}).get('parameters') or {}).get(name)
    return _number(p.get('setting')) if p else None


def hot_standby_direction(checks, rw):
    """({name: 'raise'|'lower'} on the RW, problems) for the hot-standby parameters.

    Problems: a replica's new value below the RW's new value (the end state
    PostgreSQL refuses).
    """
    directions, problems = {}, []
    rw_check = checks.get(rw)
    for name in HOT_STANDBY_PARAMETERS:
        new, cur = _desired(rw_check, name), _current(rw_check, name)
        if new is not None and cur is not None and new != cur:
            directions[name] = 'raise' if new > cur else 'lower'
        if new is None:
            continue
        for node in sorted(checks):
            if node == rw:
                continue
            theirs = _desired(checks[node], name)
            if theirs is None:
                theirs = _current(checks[node], name)
            if theirs is not None and theirs < new:
                problems.append('%s=%s on %s would be below the RW %s\'s %s: a hot standby needs at least '
                                'the RW\'s value' % (name, _fmt(theirs), node, rw, _fmt(new)))
    return directions, problems


def _fmt(number):
    return '%d' % number if float(number).is_integer() else '%s' % number


def restart_order(to_restart, rw, kinds, strategy, rw_first=False):
    """Steps [{node, how}] that restart ``to_restart``: the others one at a
    time (sorted), the RW last (``how`` = the strategy) or first (in place)."""
    others = [{'node': n, 'how': 'restart'} for n in sorted(to_restart) if n != rw]
    if rw not in to_restart:
        return others
    rw_step = {'node': rw, 'how': 'in_place' if rw_first else strategy}
    return [rw_step] + others if rw_first else others + [rw_step]


def switchover_candidates(rw, kinds):
    """Nodes that may take the RW's place: the replicas (standbys never do)."""
    return sorted(n for n, k in kinds.items() if n != rw and k != 'standby')


def plan_refresh(checks, kinds, rw, strategy='switchover', restart_all=False):
    """The refresh of every node's parameters.

    ``checks``: {node: parameter_check result}; ``kinds``: {node: 'replica' |
    'standby'} (the inventory's kind; the RW is the discovered ``rw``);
    ``restart_all``: restart every node even without a change (restart.yml).

    Returns {problems, nodes: {node: {reload, restart, pending}}, reload:
    [nodes], steps: [{node, how}], directions, write_unavailable}.
    """
    problems = []
    if strategy not in STRATEGIES:
        problems.append('polardb_restart_strategy must be one of %s, not %r' % (', '.join(STRATEGIES), strategy))
    if rw is None or rw not in checks:
        problems.append('no RW among the nodes (%s)' % ', '.join(sorted(checks)))
        return {'problems': problems, 'nodes': {}, 'reload': [], 'steps': [], 'directions': {},
                'write_unavailable': 'none'}
    nodes = dict((n, node_changes(c)) for n, c in checks.items())
    directions, hs_problems = hot_standby_direction(checks, rw)
    problems += hs_problems
    wanted = set(directions.values())
    if len(wanted) > 1:
        problems.append('this run raises %s and lowers %s: a hot standby needs the replicas raised first and '
                        'the RW lowered first, so no order fits both; change them in two runs'
                        % (', '.join(sorted(n for n, d in directions.items() if d == 'raise')),
                           ', '.join(sorted(n for n, d in directions.items() if d == 'lower'))))
    rw_first = wanted == {'lower'}
    if rw_first and strategy == 'switchover':
        problems.append('lowering %s needs the RW %s to restart first, as the RW (a switchover would promote a '
                        'node that still runs the higher value): writes stop for the time of that restart. '
                        'Run with -e polardb_restart_strategy=in_place to accept it'
                        % (', '.join(sorted(directions)), rw))
    to_restart = set(checks) if restart_all else set(n for n, c in nodes.items() if c['restart'])
    steps, more_problems, unavailable = restarts(to_restart, rw, kinds, strategy, rw_first)
    problems += more_problems
    if not any(s['node'] == rw for s in steps) and nodes[rw]['reload']:
        unavailable = 'none: the RW %s is only reloaded' % rw
    return {
        'problems': problems,
        'nodes': nodes,
        'reload': sorted(n for n, c in nodes.items() if c['reload'] or c['restart']),
        'steps': steps,
        'directions': directions,
        'write_unavailable': unavailable,
    }


def restarts(to_restart, rw, kinds, strategy, rw_first=False):
    """(steps, problems, write unavailability) of restarting ``to_restart``."""
    problems = []
    how = strategy if strategy in STRATEGIES else 'switchover'
    if rw in to_restart and how == 'switchover' and not rw_first and not switchover_candidates(rw, kinds):
        problems.append('the RW %s needs a restart and there is no replica to switch over to; '
                        'run with -e polardb_restart_strategy=in_place' % rw)
    steps = restart_order(to_restart, rw, kinds, how, rw_first)
    rw_steps = [s for s in steps if s['node'] == rw]
    if not rw_steps:
        unavailable = 'none'
    elif rw_steps[0]['how'] == 'switchover':
        unavailable = 'one switchover\'s gap (typically 0.1-0.3 s, see docs/benchmarks.md); nothing is lost'
    else:
        unavailable = 'the restart of the RW %s in place (typically 1-3 s); nothing is lost' % rw
    return steps, problems, unavailable


def plan_restart(kinds, rw, strategy='switchover', only=None):
    """The restart of node ``only`` (an inventory name), or of every node.

    ``kinds``: {node: kind} of every node of the cluster; ``rw``: the
    discovered RW. Returns {problems, steps, write_unavailable}.
    """
    problems = []
    if strategy not in STRATEGIES:
        problems.append('polardb_restart_strategy must be one of %s, not %r' % (', '.join(STRATEGIES), strategy))
    if only not in (None, '') and only not in kinds:
        problems.append('node %s is not a node of this cluster (its nodes: %s)' % (only, ', '.join(sorted(kinds))))
        return {'problems': problems, 'steps': [], 'write_unavailable': 'none'}
    if rw is None or rw not in kinds:
        problems.append('no RW among the nodes (%s)' % ', '.join(sorted(kinds)))
        return {'problems': problems, 'steps': [], 'write_unavailable': 'none'}
    to_restart = set([only]) if only not in (None, '') else set(kinds)
    steps, more_problems, unavailable = restarts(to_restart, rw, kinds, strategy)
    return {'problems': problems + more_problems, 'steps': steps, 'write_unavailable': unavailable}
