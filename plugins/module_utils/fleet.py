# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet runs: one lifecycle playbook on several clusters at once.

Each cluster gets an ansible-playbook process of its own, not a share of one
play over every cluster's hosts: the plays of an operation are
``any_errors_fatal`` (one node's failed check stops its cluster before any
change) and decide cluster-wide things once (``run_once``). A play over several
clusters would stop all of them on one cluster's failure and decide once for
all; a process per cluster keeps each cluster's rules whole and its failure its
own. Plain Python, no Ansible imports: the filters in plugins/filter/fleet.py
call it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.polardb.stack.plugins.module_utils.cluster_spec import _CLUSTER_RE

# The operations that need nothing but the cluster's name (and extra vars
# shared by every cluster): the ones that name a node differ per cluster.
OPERATIONS = ('create_cluster', 'status', 'refresh_params', 'restart', 'minor_upgrade', 'scale')

_RECAP_RE = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)
_DELTA_RE = re.compile(r'^(\d+):(\d+):(\d+(?:\.\d+)?)$')
_FATAL_RE = re.compile(r'^fatal: \[([^\]]+)\]: (?:FAILED!|UNREACHABLE!) => ?(.*)$')


def cluster_names(value):
    """The clusters named by ``value``: a list, or a string of names separated
    by commas or blanks (as a survey or ``-e clusters=a,b`` gives them)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [n for n in re.split(r'[\s,]+', value) if n]
    if isinstance(value, (list, tuple)):
        return [str(n).strip() for n in value]
    return [value]


def problems(clusters, operation, groups, parallel, extra_vars):
    """What is wrong with a fleet run's input, each naming the variable; an
    empty list when it may start. ``groups``: the inventory's groups."""
    out = []
    names = cluster_names(clusters)
    if not names:
        out.append('name the clusters with -e clusters=NAME,NAME,... (their inventory groups polardb_NAME)')
    bad = [n for n in names if not isinstance(n, str) or not _CLUSTER_RE.match(n)]
    if bad:
        out.append('clusters: %s must each be 1 to 31 lower-case letters, digits, - or _, starting with a letter'
                   % ', '.join(repr(n) for n in bad))
    twice = sorted(set(n for n in names if isinstance(n, str) and names.count(n) > 1))
    if twice:
        out.append('clusters: %s named twice' % ', '.join(twice))
    groups = groups or {}
    missing = [n for n in names if isinstance(n, str) and _CLUSTER_RE.match(n) and not groups.get('polardb_' + n)]
    if missing:
        have = sorted(g[len('polardb_'):] for g in groups if g.startswith('polardb_') and groups[g])
        out.append('clusters: %s not in the inventory (no group polardb_NAME with hosts; clusters here: %s)'
                   % (', '.join(missing), ', '.join(have) or 'none'))
    if operation not in OPERATIONS:
        out.append('operation=%s is not one a fleet runs (%s)' % (operation, ', '.join(OPERATIONS)))
    try:
        if isinstance(parallel, bool) or int(parallel) < 1:
            raise ValueError
    except (TypeError, ValueError):
        out.append('parallel=%s must be a whole number of runs at once, at least 1' % (parallel,))
    if not isinstance(extra_vars, dict):
        out.append('polardb_fleet_vars must be a mapping of extra vars for every run')
    elif set(extra_vars) & {'cluster', 'clusters'}:
        out.append('polardb_fleet_vars must not set cluster: the fleet names each run\'s cluster')
    return out


def command(program, operation, cluster, inventory_sources, extra_vars, check=False, diff=False):
    """The argv of one cluster's run: the collection's playbook with this run's
    inventory sources, the cluster, the shared extra vars, and --check/--diff
    when the fleet run has them."""
    argv = [program, 'polardb.stack.' + operation]
    for source in inventory_sources or []:
        argv += ['-i', source]
    argv += ['-e', 'cluster=' + cluster]
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars, sort_keys=True)]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    return argv


def recap(output):
    """{host: {ok, changed, unreachable, failed}} from a run's PLAY RECAP."""
    return dict((m.group(1), {'ok': int(m.group(2)), 'changed': int(m.group(3)),
                              'unreachable': int(m.group(4)), 'failed': int(m.group(5))})
                for m in _RECAP_RE.finditer(output or ''))


def _seconds(delta):
    m = _DELTA_RE.match(str(delta or ''))
    if not m:
        return None
    return round(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)), 1)


def _first_line(text):
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ''


def failure(output):
    """The message of the last failed task of a run's output (its ``msg``, for
    results printed as YAML or JSON), or ''."""
    lines = (output or '').splitlines()
    found = ''
    for i, line in enumerate(lines):
        m = _FATAL_RE.match(line)
        if not m:
            continue
        # the result: the rest of the line, then the lines indented under it
        block = [m.group(2)]
        for nxt in lines[i + 1:]:
            if nxt.startswith((' ', '\t', '}')):
                block.append(nxt)
            else:
                break
        found = '%s: %s' % (m.group(1), _message('\n'.join(block)))
    return found


def _message(block):
    text = block.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return str(data.get('msg', text))
    # YAML results: the value of the first "msg:" key, possibly folded over lines
    m = re.search(r'^\s*msg:\s*(.*(?:\n\s{6,}.*)*)', text, re.M)
    if m:
        value = ' '.join(part.strip() for part in m.group(1).splitlines()).strip()
        if value[:1] in ('"', "'") and value[-1:] == value[:1]:
            value = value[1:-1]
        return value.replace("''", "'") if value else _first_line(text)
    return _first_line(text)


def result(job):
    """One cluster's outcome from its finished (or timed out) async job, as
    async_status returned it (``item.item`` is the cluster)."""
    started = job.get('item') or {}
    cluster = started.get('item') if isinstance(started, dict) else started
    output = job.get('stdout') or ''
    finished = bool(job.get('finished'))
    rc = job.get('rc') if finished else None
    hosts = recap(output)
    out = {
        'cluster': cluster,
        'finished': finished,
        'rc': rc,
        'seconds': _seconds(job.get('delta')),
        # the controller's own plays (the command line check, passwords) are no node
        'hosts': len([h for h in hosts if h != 'localhost']),
        'changed': sum(h['changed'] for h in hosts.values()),
        'message': '',
    }
    if not finished:
        out['message'] = 'did not finish within polardb_fleet_timeout; it may still run: see its lock'
    elif rc != 0:
        out['message'] = failure(output) or _first_line(job.get('stderr') or job.get('msg') or 'rc %s' % rc)
    return out


def report(results, operation, log_dir, check=False):
    """{lines, failed, changed, message}: a line per cluster, the clusters
    whose run failed, whether any run changed something, and what a failed
    fleet run ends with ('' when none failed)."""
    lines = ['%s on %d cluster(s)%s; the log of each: %s/CLUSTER.log'
             % (operation, len(results), ' -- CHECK MODE: nothing is changed' if check else '', log_dir)]
    failed = []
    for r in results:
        took = '' if r['seconds'] is None else ' in %s s' % r['seconds']
        if r['finished'] and r['rc'] == 0:
            lines.append('%s: ok%s, %d node(s), %d change(s)' % (r['cluster'], took, r['hosts'], r['changed']))
            continue
        failed.append(r['cluster'])
        state = 'FAILED (rc %s)' % r['rc'] if r['finished'] else 'NOT FINISHED'
        lines.append('%s: %s%s: %s' % (r['cluster'], state, took, r['message']))
    message = ''
    if failed:
        message = 'The run of %s failed or did not finish (above, and in %s)' % (', '.join(failed), log_dir)
        if len(failed) < len(results):
            # each cluster ran in its own process, under its own lock
            message += '; the runs of the other clusters finished, unaffected'
            lines.append('the other clusters were not affected: each ran on its own, under its own lock')
    return {'lines': lines, 'failed': failed, 'changed': any(r['changed'] for r in results), 'message': message}
