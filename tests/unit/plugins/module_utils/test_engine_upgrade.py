# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.engine_upgrade import (
    compare_versions, madison_versions, plan_upgrade, upstream_of)
from ansible_collections.polardb.stack.plugins.module_utils.operation_plan import build_plan, render_plan

MADISON = """postgresql-15 | 15.20-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
postgresql-15 | 15.18-0+deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages
postgresql-client-15 | 15.20-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
postgresql-client-15 | 15.18-0+deb12u1 | http://deb.debian.org/debian bookworm/main amd64 Packages
"""
PACKAGES = ['postgresql-15', 'postgresql-client-15']
KINDS = {'pdb1': 'replica', 'pdb2': 'replica', 'pdb3': 'standby'}


@pytest.mark.parametrize('a, b, expected', [
    ('15.18-0+deb12u1', '15.20-0+deb12u1', -1),
    ('15.20-0+deb12u1', '15.18-0+deb12u1', 1),
    ('15.20-0+deb12u1', '15.20-0+deb12u1', 0),
    ('15.9-1', '15.10-1', -1),            # numbers, not text
    ('15.10~rc1-1', '15.10-1', -1),       # ~ sorts before everything
    ('15.10-1', '15.10-1+b1', -1),
    ('1:15.1-1', '15.20-1', 1),           # epoch first
    ('15.2-0+deb12u1', '15.2-0+deb12u2', -1),
    ('15.2a-1', '15.2-1', 1),
])
def test_versions_compare_as_dpkg_does(a, b, expected):
    first, second = a, b
    assert compare_versions(first, second) == expected
    assert compare_versions(second, first) == -expected


def test_madison_and_upstream():
    offered = madison_versions(MADISON)
    assert offered == {'postgresql-15': ['15.20-0+deb12u1', '15.18-0+deb12u1'],
                       'postgresql-client-15': ['15.20-0+deb12u1', '15.18-0+deb12u1']}
    assert upstream_of('15.20-0+deb12u1') == '15.20' and upstream_of('1:15.2') == '15.2'


def have(installed, running=None):
    return {'installed': installed, 'madison': MADISON,
            'running': running or '%s (Debian %s)' % (installed.split('-')[0], installed)}


def test_upgrade_goes_replicas_first_then_the_rw_by_switchover():
    nodes = dict((n, have('15.18-0+deb12u1')) for n in KINDS)
    plan = plan_upgrade(nodes, '15.20-0+deb12u1', PACKAGES, 'pdb2', KINDS)
    assert plan['problems'] == []
    assert plan['steps'] == [{'node': 'pdb1', 'how': 'restart'}, {'node': 'pdb3', 'how': 'restart'},
                             {'node': 'pdb2', 'how': 'switchover'}]
    assert plan['nodes']['pdb1'] == {'installed': '15.18-0+deb12u1', 'running': '15.18', 'action': 'upgrade'}
    lines = render_plan(build_plan('minor_upgrade', 'demo', dict(plan, rw='pdb2', version='15.20-0+deb12u1')))
    assert lines[3] == ('3. restart on pdb1: install 15.20-0+deb12u1, then restart the engine, wait until it streams '
                        'and has caught up')


def test_a_version_not_offered_and_an_unnamed_downgrade_are_refused():
    nodes = dict((n, have('15.20-0+deb12u1')) for n in KINDS)
    missing = plan_upgrade(nodes, '15.99-1', PACKAGES, 'pdb1', KINDS)['problems']
    assert len(missing) == 3 and missing[0].startswith('pdb1: version 15.99-1 of postgresql-15, postgresql-client-15 '
                                                       'is not in the package sources')
    down = plan_upgrade(nodes, '15.18-0+deb12u1', PACKAGES, 'pdb1', KINDS)['problems']
    assert down[0] == ('pdb1: 15.20-0+deb12u1 is installed, newer than 15.18-0+deb12u1: a downgrade is refused '
                       'unless named (-e polardb_allow_downgrade=true)')
    named = plan_upgrade(nodes, '15.18-0+deb12u1', PACKAGES, 'pdb1', KINDS, allow_downgrade=True)
    assert named['problems'] == [] and set(c['action'] for c in named['nodes'].values()) == {'downgrade'}


def test_only_the_server_offered_is_refused():
    nodes = {'pdb1': dict(have('15.18-0+deb12u1'), madison=MADISON.splitlines()[0])}
    problems = plan_upgrade(nodes, '15.20-0+deb12u1', PACKAGES, 'pdb1', {'pdb1': 'replica'}, 'in_place')['problems']
    assert problems == ['pdb1: version 15.20-0+deb12u1 of postgresql-client-15 is not in the package sources '
                        '(offered: postgresql-client-15 none)']


def test_nothing_to_do_and_a_resumed_run():
    nodes = dict((n, have('15.20-0+deb12u1')) for n in KINDS)
    plan = plan_upgrade(nodes, '15.20-0+deb12u1', PACKAGES, 'pdb1', KINDS)
    assert (plan['problems'], plan['steps'], plan['write_unavailable']) == ([], [], 'none')
    # the packages are at the target but pdb1's engine still runs the old binary
    nodes['pdb1'] = have('15.20-0+deb12u1', running='15.18 (Debian 15.18-0+deb12u1)')
    plan = plan_upgrade(nodes, '15.20-0+deb12u1', PACKAGES, 'pdb1', KINDS)
    assert plan['nodes']['pdb1']['action'] == 'restart'
    assert plan['steps'] == [{'node': 'pdb1', 'how': 'switchover'}]


def test_missing_inputs():
    assert plan_upgrade({'a': have('1-1')}, '', PACKAGES, 'a', {'a': 'replica'})['problems'][0].startswith(
        'name the version to install')
    assert plan_upgrade({'a': have('1-1')}, '2-1', PACKAGES, None, {'a': 'replica'})['problems'] == [
        'no RW among the nodes (a)']
    solo = plan_upgrade({'a': have('1-1', running='1')}, '1-2', [], 'a', {'a': 'replica'})
    assert solo['problems'] == ['the RW a needs a restart and there is no replica to switch over to; '
                                'run with -e polardb_restart_strategy=in_place']
