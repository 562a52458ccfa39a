# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minor upgrade (or a named downgrade) of the engine packages, rolling.

From what each node has installed (``dpkg-query``), what its package sources
offer (``apt-cache madison``) and what its engine runs (``version()``, from
the topology), decides which nodes to upgrade and in which order: replicas
one at a time, the RW last by a switchover (or in place), each node's
packages installed just before its restart. A target version that a node's
sources do not offer, or a downgrade that is not named, is refused before
anything changes. A node whose packages are already at the target but whose
engine still runs the old binary (an interrupted run) is restarted.

Pure functions; the playbook calls them through a filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.polardb.stack.plugins.module_utils.param_refresh import STRATEGIES, restarts

_ALNUM = re.compile(r'(\d+|\D+)')


def _order(char):
    """dpkg's order of a non-digit character: ~ first, then nothing, letters, the rest."""
    if char == '~':
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a, b):
    """dpkg's comparison of an upstream version or a revision."""
    while a or b:
        na = re.match(r'^(\D*)', a).group(1)
        nb = re.match(r'^(\D*)', b).group(1)
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na):], b[len(nb):]
        da = re.match(r'^(\d*)', a).group(1)
        db = re.match(r'^(\d*)', b).group(1)
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib:
            return -1 if ia < ib else 1
        a, b = a[len(da):], b[len(db):]
    return 0


def _split(version):
    version = str(version).strip()
    epoch = 0
    if ':' in version:
        head, version = version.split(':', 1)
        epoch = int(head or 0)
    if '-' in version:
        upstream, revision = version.rsplit('-', 1)
    else:
        upstream, revision = version, ''
    return epoch, upstream, revision


def compare_versions(a, b):
    """-1, 0 or 1 as Debian version ``a`` sorts before, with or after ``b`` (dpkg --compare-versions)."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def upstream_of(version):
    """'15.20' of '15.20-0+deb12u1' (the version the engine itself reports)."""
    return _split(version)[1]


def madison_versions(text):
    """``apt-cache madison`` output -> {package: [versions]}."""
    out = {}
    for line in (text or '').splitlines():
        fields = [f.strip() for f in line.split('|')]
        if len(fields) >= 3 and fields[0] and fields[1]:
            versions = out.setdefault(fields[0], [])
            if fields[1] not in versions:
                versions.append(fields[1])
    return out


def plan_upgrade(nodes, target, packages, rw, kinds, strategy='switchover', allow_downgrade=False):
    """The rolling upgrade of every node to ``target``.

    ``nodes``: {node: {installed: version or '', madison: apt-cache madison
    text, running: the engine's server_version or None}}; ``packages``: the
    package names that must be offered at ``target`` (server and client).
    Returns {problems, nodes: {node: {installed, running, action}}, steps,
    write_unavailable}; ``action`` is 'upgrade', 'downgrade', 'restart'
    (packages at the target, engine not yet) or 'none'.
    """
    problems = []
    target = str(target or '').strip()
    if not target:
        problems.append('name the version to install: -e version=VERSION (as apt-cache madison shows it)')
    if strategy not in STRATEGIES:
        problems.append('polardb_restart_strategy must be one of %s, not %r' % (', '.join(STRATEGIES), strategy))
    if rw is None or rw not in nodes:
        problems.append('no RW among the nodes (%s)' % ', '.join(sorted(nodes)))
    if problems:
        return {'problems': problems, 'nodes': {}, 'steps': [], 'write_unavailable': 'none'}
    out = {}
    for name in sorted(nodes):
        node = nodes[name] or {}
        installed = str(node.get('installed') or '').strip()
        offered = madison_versions(node.get('madison'))
        missing = [p for p in packages if target not in offered.get(p, [])]
        if missing:
            problems.append('%s: version %s of %s is not in the package sources (offered: %s)' % (
                name, target, ', '.join(missing),
                '; '.join('%s %s' % (p, ', '.join(offered.get(p) or ['none'])) for p in missing)))
        running = (node.get('running') or '').split(' ')[0] or None
        if not installed:
            action = 'upgrade'
        else:
            order = compare_versions(installed, target)
            action = 'upgrade' if order < 0 else 'downgrade' if order > 0 else 'none'
        if action == 'downgrade' and not allow_downgrade:
            problems.append('%s: %s is installed, newer than %s: a downgrade is refused unless named '
                            '(-e polardb_allow_downgrade=true)' % (name, installed, target))
        if action == 'none' and running is not None and running != upstream_of(target):
            action = 'restart'
        out[name] = {'installed': installed or None, 'running': running, 'action': action}
    to_restart = set(n for n, c in out.items() if c['action'] != 'none')
    steps, more_problems, unavailable = restarts(to_restart, rw, kinds, strategy)
    problems += more_problems
    return {'problems': problems, 'nodes': out, 'steps': steps, 'write_unavailable': unavailable}
