# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils import params as P
from ansible_collections.polardb.stack.plugins.module_utils.operation_plan import build_plan, render_plan
from ansible_collections.polardb.stack.plugins.module_utils.param_refresh import (
    node_changes, plan_refresh, plan_restart)

KINDS = {'pdb1': 'replica', 'pdb2': 'replica', 'pdb3': 'replica'}


def check(max_connections=(100, 100), work_mem=None, resets=None, pending=None, **more):
    """A parameter_check result: (new, running) per parameter."""
    params = {}
    for name, pair in dict(more, max_connections=max_connections).items():
        new, cur = pair
        change = 'none' if new == cur else ('restart' if name.startswith('max_') else 'reload')
        params[name] = {'normalised': new, 'setting': str(cur), 'change': change}
    if work_mem is not None:
        params['work_mem'] = {'normalised': work_mem[0], 'setting': str(work_mem[1]),
                              'change': 'none' if work_mem[0] == work_mem[1] else 'reload'}
    return {'parameters': params, 'resets': resets or {}, 'pending_restart': pending or []}


def everywhere(**kw):
    return dict((n, check(**kw)) for n in KINDS)


def test_a_reload_parameter_restarts_nothing():
    plan = plan_refresh(everywhere(work_mem=(8192, 4096)), KINDS, 'pdb1')
    assert plan['problems'] == []
    assert plan['steps'] == []
    assert plan['nodes']['pdb2'] == {'reload': ['work_mem'], 'restart': [], 'pending': []}
    assert plan['reload'] == ['pdb1', 'pdb2', 'pdb3']
    assert plan['write_unavailable'] == 'none: the RW pdb1 is only reloaded'


def test_nothing_differs_nothing_to_do():
    plan = plan_refresh(everywhere(work_mem=(4096, 4096)), KINDS, 'pdb1')
    assert (plan['problems'], plan['steps'], plan['reload'], plan['write_unavailable']) == ([], [], [], 'none')
    text = render_plan(build_plan('refresh_params', 'demo', dict(plan, rw='pdb1')))
    assert 'note: every node already runs these parameters: nothing to do' in text


def test_raising_restarts_the_replicas_first_and_the_rw_by_switchover():
    plan = plan_refresh(everywhere(max_connections=(150, 100)), KINDS, 'pdb2')
    assert plan['problems'] == []
    assert plan['directions'] == {'max_connections': 'raise'}
    assert plan['steps'] == [{'node': 'pdb1', 'how': 'restart'}, {'node': 'pdb3', 'how': 'restart'},
                             {'node': 'pdb2', 'how': 'switchover'}]
    assert 'switchover' in plan['write_unavailable']


def test_raising_in_place_restarts_the_rw_last_in_place():
    plan = plan_refresh(everywhere(max_connections=(150, 100)), KINDS, 'pdb1', 'in_place')
    assert plan['steps'][-1] == {'node': 'pdb1', 'how': 'in_place'}


def test_lowering_needs_the_rw_first_in_place_and_is_refused_by_switchover():
    refused = plan_refresh(everywhere(max_connections=(50, 100)), KINDS, 'pdb1')
    assert len(refused['problems']) == 1
    assert 'lowering max_connections needs the RW pdb1 to restart first' in refused['problems'][0]
    assert 'polardb_restart_strategy=in_place' in refused['problems'][0]
    plan = plan_refresh(everywhere(max_connections=(50, 100)), KINDS, 'pdb1', 'in_place')
    assert plan['problems'] == []
    assert plan['steps'][0] == {'node': 'pdb1', 'how': 'in_place'}
    assert [s['node'] for s in plan['steps'][1:]] == ['pdb2', 'pdb3']


def test_raising_one_and_lowering_another_is_refused():
    plan = plan_refresh(everywhere(max_connections=(150, 100), max_wal_senders=(5, 10)), KINDS, 'pdb1', 'in_place')
    assert any('raises max_connections and lowers max_wal_senders' in p for p in plan['problems'])


def test_a_replica_below_the_rw_is_refused():
    checks = everywhere(max_connections=(150, 150))
    checks['pdb3'] = check(max_connections=(120, 150))
    plan = plan_refresh(checks, KINDS, 'pdb1')
    assert plan['problems'] == ['max_connections=120 on pdb3 would be below the RW pdb1\'s 150: a hot standby '
                                'needs at least the RW\'s value']


def test_pending_restarts_and_resets_count():
    checks = everywhere()
    checks['pdb3'] = check(pending=['shared_buffers'], resets={'work_mem': 'reload', 'huge_pages': 'restart'})
    plan = plan_refresh(checks, KINDS, 'pdb1')
    assert plan['nodes']['pdb3'] == {'reload': ['work_mem'], 'restart': ['huge_pages', 'shared_buffers'],
                                     'pending': ['shared_buffers']}
    assert plan['steps'] == [{'node': 'pdb3', 'how': 'restart'}]
    assert plan['write_unavailable'] == 'none'


def test_no_replica_to_switch_over_to():
    kinds = {'pdb1': 'replica', 'pdb2': 'standby'}
    plan = plan_refresh(dict((n, check(pending=['shared_buffers'])) for n in kinds), kinds, 'pdb1')
    assert any('no replica to switch over to' in p for p in plan['problems'])
    assert plan_refresh(dict((n, check(pending=['shared_buffers'])) for n in kinds), kinds, 'pdb1',
                        'in_place')['problems'] == []


def test_unknown_strategy_and_missing_rw():
    assert 'polardb_restart_strategy must be one of' in plan_refresh(everywhere(), KINDS, 'pdb1', 'inplace')['problems'][0]
    assert plan_refresh(everywhere(), KINDS, None)['problems'] == ['no RW among the nodes (pdb1, pdb2, pdb3)']


def test_restart_one_node_or_all():
    assert plan_restart(KINDS, 'pdb1', only='pdb3')['steps'] == [{'node': 'pdb3', 'how': 'restart'}]
    assert plan_restart(KINDS, 'pdb1', only='pdb1', strategy='in_place')['steps'] == [{'node': 'pdb1', 'how': 'in_place'}]
    steps = plan_restart(KINDS, 'pdb2')['steps']
    assert steps == [{'node': 'pdb1', 'how': 'restart'}, {'node': 'pdb3', 'how': 'restart'},
                     {'node': 'pdb2', 'how': 'switchover'}]
    assert plan_restart(KINDS, 'pdb1', only='nosuch')['problems'] == [
        'node nosuch is not a node of this cluster (its nodes: pdb1, pdb2, pdb3)']
    lines = render_plan(build_plan('restart', 'demo', {'rw': 'pdb2', 'steps': steps}, True))
    assert lines[4].startswith('4. switchover on pdb2') and lines[4].endswith('[skipped in check mode]')


def test_node_changes_sorts_and_merges():
    c = node_changes({'parameters': {'b': {'change': 'restart'}, 'a': {'change': 'reload'}, 'c': {'change': 'none'}},
                      'resets': {'d': 'restart'}, 'pending_restart': ['b']})
    assert c == {'reload': ['a'], 'restart': ['b', 'd'], 'pending': ['b']}


def entry(name, context, setting, source='configuration file', pending=False, vartype='integer'):
    return P.Entry(name, vartype, context, None, 0, 100000, None, setting, pending, source)


def test_check_parameters_reports_resets_and_pending_restarts_but_not_managed_ones():
    catalog = {
        'work_mem': entry('work_mem', 'user', '4096'),
        'shared_buffers': entry('shared_buffers', 'postmaster', '16384', pending=True),
        'huge_pages_x': entry('huge_pages_x', 'postmaster', '1'),
        'cluster_name': entry('cluster_name', 'postmaster', 'demo', vartype='string'),
        'recovery_target_timeline': entry('recovery_target_timeline', 'postmaster', 'latest', pending=True,
                                          vartype='string'),
        'port': entry('port', 'postmaster', '5432'),
        'max_connections': entry('max_connections', 'postmaster', '100', source='default'),
    }
    out = P.check_parameters({'shared_buffers': 32768}, catalog, ['port'], ['ssl'],
                             ['cluster_name', 'recovery_target_timeline'])
    assert out['resets'] == {'work_mem': 'reload', 'huge_pages_x': 'restart'}
    assert out['pending_restart'] == ['shared_buffers']
    assert out['parameters']['shared_buffers']['setting'] == '16384'
    assert out['restart_required'] is True
