# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.polardb.stack.plugins.module_utils import reconcile

NODES = [dict(name='pdb1', host='10.0.0.11', wwid='600a0001'),
         dict(name='pdb2', host='10.0.0.12', wwid='600a0002'),
         dict(name='pdb3', host='10.0.0.13', wwid='600a0003')]
SPEC = dict(primary='pdb1', replicas=1, nodes=NODES, parameters={'work_mem': '16MB'})


def node(name, role='replica', streaming=True, reachable=True, timeline=1, lag=0):
    return dict(name=name, host='10.0.0.1' + name[-1], reachable=reachable, role=role if reachable else None,
                streaming=streaming if role == 'replica' and reachable else None, timeline=timeline if reachable else None,
                lag_bytes=lag if role == 'replica' and reachable else None)


def topology(rw='pdb1', nodes=None, healthy=True):
    nodes = nodes if nodes is not None else [node('pdb1', 'primary'), node('pdb2')]
    return dict(rw=rw, healthy=healthy, problems=[] if healthy else ['something'],
                nodes=dict((n['name'], n) for n in nodes))


def resource(spec=None, applied=True, instances=('pdb1', 'pdb2')):
    spec = copy.deepcopy(spec or SPEC)
    status = {}
    if applied:
        status['applied'] = reconcile.applied_of(spec)
        status['instances'] = [dict(name=n) for n in instances]
    return dict(metadata=dict(name='orders', generation=2), spec=spec, status=status)


def changed(before, after):
    """A resource reconciled as ``before`` whose spec now says ``after``."""
    out = resource(before)
    out['spec'] = copy.deepcopy(after)
    return out


def ops(result):
    return [(s['operation'], s['node']) for s in result['steps']]


def test_a_converged_cluster_needs_nothing():
    result = reconcile.plan(resource(), topology())
    assert result == dict(steps=[], refused=[])
    assert reconcile.observed(resource(), topology()) == dict(
        phase='Running', rw='pdb1', ready='2/2',
        instances=[dict(name='pdb1', host='10.0.0.11', role='rw', state='running', timeline=1),
                   dict(name='pdb2', host='10.0.0.12', role='replica', state='streaming', timeline=1, lagBytes=0)])


def test_a_new_resource_with_no_engine_is_created():
    nothing = topology(rw=None, nodes=[node('pdb1', reachable=False), node('pdb2', reachable=False)], healthy=False)
    assert ops(reconcile.plan(resource(applied=False), nothing)) == [('create_cluster', 'pdb1')]
    assert reconcile.observed(resource(applied=False), nothing)['phase'] == 'Failed'


def test_a_known_cluster_without_rw_is_refused_not_recreated():
    down = topology(rw=None, nodes=[node('pdb1', reachable=False), node('pdb2', reachable=False)], healthy=False)
    result = reconcile.plan(resource(), down)
    assert result['steps'] == [] and 'no node answers as RW' in result['refused'][0]


def test_raising_replicas_adds_the_next_node_lowering_removes_it():
    spec = dict(SPEC, replicas=2)
    assert ops(reconcile.plan(resource(spec), topology())) == [('add_node', 'pdb3')]
    three = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3')])
    assert ops(reconcile.plan(resource(), three)) == [('remove_node', 'pdb3')]


def test_a_lost_instance_is_a_problem_not_an_add():
    gone = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False)], healthy=False)
    result = reconcile.plan(resource(), gone)
    assert result['steps'] == [] and result['refused'][0].startswith('pdb2 was an instance of the cluster')
    assert reconcile.observed(resource(), gone)['phase'] == 'Degraded'
    assert reconcile.observed(resource(), gone)['ready'] == '1/2'


def test_a_new_primary_is_a_switchover_a_failover_is_not_undone():
    spec = dict(SPEC, primary='pdb2')
    assert ops(reconcile.plan(changed(SPEC, spec), topology())) == [('switchover', 'pdb2')]
    # the manager failed over to pdb2: spec.primary is still pdb1, nobody asked to switch back
    failed_over = topology(rw='pdb2', nodes=[node('pdb1'), node('pdb2', 'primary')])
    assert ops(reconcile.plan(resource(), failed_over)) == []
    # already the RW: nothing to do but record it
    assert ops(reconcile.plan(changed(SPEC, spec), failed_over)) == []


def test_settings_changes_map_to_their_playbooks_in_order():
    spec = dict(SPEC, primary='pdb2', parameters={'work_mem': '32MB'}, engineVersion='15.15-0+deb12u1',
                storage={'size': '4Gi'}, **{'class': 'small'})
    result = reconcile.plan(changed(SPEC, spec), topology())
    assert [s['operation'] for s in result['steps']] == ['switchover', 'refresh_params', 'scale', 'minor_upgrade',
                                                         'expand_storage']
    # parameters compare as text: 200 and '200' are the same setting
    same = dict(SPEC, parameters={'work_mem': '16MB'})
    assert reconcile.plan(changed(dict(SPEC, parameters={'work_mem': '16MB'}), same), topology())['steps'] == []


def test_the_status_of_a_converged_cluster_changes_only_its_heartbeat():
    res = resource()
    result = dict(reconcile.plan(res, topology()), observed=reconcile.observed(res, topology()),
                  applied=reconcile.applied_of(res['spec']))
    first = reconcile.status_patch(res, result, '2026-12-03T17:00:00Z')
    assert first['phase'] == 'Running' and first['observedGeneration'] == 2 and 'lastOperation' not in first
    assert first['conditions'][0]['status'] == 'True' and first['conditions'][0]['reason'] == 'Converged'
    res['status'].update(first)
    again = reconcile.status_patch(res, result, '2026-12-03T17:01:00Z')
    assert 'conditions' not in again  # no flip, no new transition time
    assert dict((k, v) for k, v in again.items() if res['status'].get(k) != v) == {'heartbeat': '2026-12-03T17:01:00Z'}


def test_a_refused_reconcile_keeps_applied_and_says_why():
    res = resource()
    gone = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False)], healthy=False)
    result = dict(reconcile.plan(res, gone), observed=reconcile.observed(res, gone), applied={'primary': 'x'})
    patch = reconcile.status_patch(res, result, 'now', run='r1')
    assert 'applied' not in patch and 'observedGeneration' not in patch
    assert patch['lastOperation']['result'] == 'Failed' and 'pdb2 was an instance' in patch['lastOperation']['message']
    assert patch['conditions'][0]['reason'] == 'Refused' and patch['phase'] == 'Degraded'


def test_a_switchover_run_is_the_last_operation():
    res = resource()
    result = dict(reconcile.plan(res, topology()), observed=reconcile.observed(res, topology()),
                  applied=reconcile.applied_of(res['spec']))
    patch = reconcile.status_patch(res, result, 'end', run='r2', started='start',
                                   ran=[dict(operation='switchover', node='pdb2')])
    assert patch['lastOperation'] == dict(name='reconcile', runId='r2', step='done', started='start', finished='end',
                                          result='Succeeded', message='ran: switchover pdb2')


def test_operations_the_caller_does_not_run_are_refused_naming_their_playbook():
    new = reconcile.plan(resource(applied=False), topology(rw=None, nodes=[], healthy=False), supported=('switchover',))
    assert new['refused'] == ['create_cluster (no engine answers on any node of a cluster never reconciled) is not run '
                              'by reconcile.yml yet: run playbooks/create_cluster.yml']
    assert reconcile.plan(changed(SPEC, dict(SPEC, primary='pdb2')), topology(), supported=('switchover',))['refused'] == []
