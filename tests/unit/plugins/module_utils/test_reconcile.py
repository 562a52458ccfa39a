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
    assert result == dict(steps=[], refused=[], run=[], lines=['nothing to change'], deleting=False,
                          finalizers=[reconcile.FINALIZER])
    assert reconcile.observed(resource(), topology()) == dict(
        phase='Running', rw='pdb1', ready='2/2',
        instances=[dict(name='pdb1', host='10.0.0.11', role='rw', state='running', timeline=1),
                   dict(name='pdb2', host='10.0.0.12', role='replica', state='streaming', timeline=1, lagBytes=0)])


def test_a_new_resource_with_no_engine_is_created():
    nothing = topology(rw=None, nodes=[node('pdb1', reachable=False), node('pdb2', reachable=False)], healthy=False)
    new = reconcile.plan(resource(applied=False), nothing)
    assert ops(new) == [('create_cluster', 'pdb1')] and new['refused'] == [] and ops(dict(steps=new['run'])) == ops(new)
    # once created, the plan made again finds nothing: the spec's parameters came with the cluster
    created = topology(nodes=[node('pdb1', 'primary'), node('pdb2')])
    assert reconcile.plan(resource(applied=False), created, resume=False, ran=new['run'])['steps'] == []
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
    assert patch['lastOperation'] == dict(name='reconcile', runId='r2', step='done', node=None, started='start', finished='end',
                                          result='Succeeded', message='ran: switchover pdb2')


def test_operations_the_caller_does_not_run_are_refused_naming_their_playbook():
    new = reconcile.plan(resource(applied=False), topology(rw=None, nodes=[], healthy=False), supported=('switchover',))
    assert new['refused'] == ['create_cluster (no engine answers on any node of a cluster never reconciled) is not run '
                              'by reconcile.yml yet: run playbooks/create_cluster.yml']
    assert reconcile.plan(changed(SPEC, dict(SPEC, primary='pdb2')), topology(), supported=('switchover',))['refused'] == []


def test_reconcile_runs_every_operation_a_spec_change_needs_in_their_order():
    spec = dict(SPEC, replicas=2, primary='pdb2', parameters={'work_mem': '32MB'}, engineVersion='15.15-0+deb12u1',
                storage={'size': '20Gi'}, **{'class': 'small'})
    result = reconcile.plan(changed(SPEC, spec), topology())
    assert [s['operation'] for s in result['steps']] == ['add_node', 'switchover', 'refresh_params', 'scale',
                                                         'minor_upgrade', 'expand_storage']
    assert result['refused'] == []
    # a caller that does not run the last two refuses them, naming their playbooks
    older = reconcile.plan(changed(SPEC, spec), topology(), supported=tuple(
        o for o in reconcile.RUN_BY_RECONCILE if o not in ('minor_upgrade', 'expand_storage')))
    assert older['refused'] == ['minor_upgrade (spec.engineVersion changed to 15.15-0+deb12u1) is not run by '
                                'reconcile.yml yet: run playbooks/minor_upgrade.yml',
                                'expand_storage (spec.storage.size changed to 20Gi) is not run by '
                                'reconcile.yml yet: run playbooks/expand_storage.yml']


def test_a_removed_node_leaves_the_instances_once_its_engine_stopped():
    # spec.replicas lowered to 1: pdb3 runs until reconcile removes it, then its engine no longer answers
    three = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3')])
    assert [i['name'] for i in reconcile.observed(resource(), three)['instances']] == ['pdb1', 'pdb2', 'pdb3']
    stopped = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3', reachable=False)], healthy=False)
    stopped['problems'] = ['pdb3 (10.0.0.13:5432) unreachable: connection refused']
    seen = reconcile.observed(resource(), stopped)
    assert [i['name'] for i in seen['instances']] == ['pdb1', 'pdb2'] and seen['phase'] == 'Running'
    # a member that stops answering stays, unreachable
    lost = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False)], healthy=False)
    lost['problems'] = ['pdb2 (10.0.0.12:5432) unreachable: connection refused']
    seen = reconcile.observed(resource(), lost)
    assert seen['instances'][1] == dict(name='pdb2', host='10.0.0.12', role='none', state='unreachable')
    assert seen['phase'] == 'Degraded'
    # a member's problem is the cluster's even when every member answers
    lagging = topology(healthy=False)
    lagging['problems'] = ['pdb2: replica lags 99999999 bytes behind the RW pdb1 (more than 16777216)']
    assert reconcile.observed(resource(), lagging)['phase'] == 'Degraded'


def test_steps_left_for_the_next_run_hold_back_applied_and_say_so():
    res = resource(dict(SPEC, replicas=0))
    three = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3')])
    first = reconcile.plan(res, three)
    assert ops(first) == [('remove_node', 'pdb2'), ('remove_node', 'pdb3')]
    after = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False), node('pdb3')])
    replan = reconcile.plan(res, after)
    result = dict(replan, observed=reconcile.observed(res, after), applied=reconcile.applied_of(res['spec']),
                  steps=first['steps'][:1], remaining=replan['steps'])
    patch = reconcile.status_patch(res, result, 'end', run='r3', ran=first['steps'][:1])
    assert patch['phase'] == 'Reconciling' and 'applied' not in patch and 'observedGeneration' not in patch
    assert patch['lastOperation']['message'] == 'ran: remove_node pdb2; still to run: remove_node pdb3 (run reconcile again)'
    assert patch['conditions'][0]['status'] == 'False' and patch['conditions'][0]['reason'] == 'Reconciling'
    # the next run removes pdb3 and leaves nothing: applied and the generation are recorded
    done = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False), node('pdb3', reachable=False)])
    result = dict(reconcile.plan(res, done), observed=reconcile.observed(res, done), applied=reconcile.applied_of(res['spec']),
                  remaining=[])
    patch = reconcile.status_patch(res, result, 'end', ran=first['steps'][1:])
    assert patch['phase'] == 'Running' and patch['observedGeneration'] == 2 and patch['ready'] == '1/1'


def test_a_run_stops_after_its_first_removal():
    # the removed node stays in this run's inventory: what follows waits for the next run
    spec = dict(SPEC, replicas=0, primary='pdb2', parameters={'work_mem': '32MB'})
    three = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3')])
    result = reconcile.plan(changed(dict(SPEC, replicas=0), spec), three)
    assert [s['operation'] for s in result['steps']] == ['remove_node', 'remove_node', 'switchover', 'refresh_params']
    assert [(s['operation'], s['node']) for s in result['run']] == [('remove_node', 'pdb2')]
    assert result['lines'][:2] == ['remove_node: pdb2 runs but spec.replicas (0) leaves it out',
                                   'next run: remove_node: pdb3 runs but spec.replicas (0) leaves it out']
    assert [s['operation'] for s in reconcile.plan(resource(dict(SPEC, replicas=2)), topology())['run']] == ['add_node']
    refused = reconcile.plan(resource(), topology(rw=None, nodes=[node('pdb1', reachable=False)], healthy=False))
    assert refused['refused'] and refused['run'] == []
    assert refused['lines'] == ['nothing to change', 'refused: ' + refused['refused'][0]]


def test_a_step_that_did_not_finish_is_resumed_first_then_the_rest():
    res = changed(dict(SPEC, replicas=0), dict(SPEC, replicas=0, parameters={'work_mem': '32MB'}))
    three = topology(nodes=[node('pdb1', 'primary'), node('pdb2'), node('pdb3')])
    first = reconcile.plan(res, three)
    progress = reconcile.progress_patch(first, ['remove_node'], 'run1', '2026-12-04T06:00:00Z')
    assert progress == dict(phase='Reconciling', lastOperation=dict(
        name='reconcile', runId='run1', step='remove_node', node='pdb2', started='2026-12-04T06:00:00Z', finished=None,
        result='Running', message='running step 1 of 1: remove_node pdb2'))
    assert reconcile.progress_patch(first, ['switchover'], 'run1', 'x') is None
    # run1 died after pdb2's engine stopped: pdb2 is no longer live, yet its removal is finished first
    res['status'].update(progress)
    stopped = topology(nodes=[node('pdb1', 'primary'), node('pdb2', reachable=False), node('pdb3')])
    again = reconcile.plan(res, stopped)
    assert ops(again) == [('remove_node', 'pdb2'), ('remove_node', 'pdb3'), ('refresh_params', None)]
    assert again['steps'][0]['reason'] == ('resuming remove_node pdb2 of run run1 (started 2026-12-04T06:00:00Z), '
                                           'which did not finish')
    assert ops(dict(steps=again['run'])) == [('remove_node', 'pdb2')]
    # the plan made after this run's steps does not resume it again
    assert ops(reconcile.plan(res, stopped, resume=False)) == [('remove_node', 'pdb3'), ('refresh_params', None)]


def test_an_interrupted_switchover_is_resumed_even_without_a_rw():
    res = resource(dict(SPEC, primary='pdb2'))
    res['status']['lastOperation'] = dict(name='reconcile', runId='run2', step='switchover', node='pdb2',
                                          started='t0', result='Interrupted')
    no_rw = topology(rw=None, nodes=[node('pdb1', reachable=False), node('pdb2', 'replica')], healthy=False)
    result = reconcile.plan(res, no_rw)
    assert result['refused'] == [] and ops(result) == [('switchover', 'pdb2')]
    # without that record, no RW stops the reconcile
    res['status']['lastOperation']['result'] = 'Succeeded'
    assert reconcile.plan(res, no_rw)['refused'][0].startswith('no node answers as RW')


def test_the_heartbeat_marks_a_dead_runs_step_interrupted_and_nothing_else():
    res = resource()
    res['status']['lastOperation'] = dict(name='reconcile', runId='run3', step='add_node', node='pdb3', started='t0',
                                          finished=None, result='Running', message='running step 1 of 1: add_node pdb3')
    patch = reconcile.interrupted_patch(res, 't1', 'its ansible-playbook process (pid 42 on ctl) is gone')
    assert patch['phase'] == 'Interrupted'
    assert patch['lastOperation'] == dict(
        name='reconcile', runId='run3', step='add_node', node='pdb3', started='t0', finished='t1', result='Interrupted',
        message='run3 stopped during step add_node pdb3: its ansible-playbook process (pid 42 on ctl) is gone; '
                'run reconcile again to resume it')
    assert patch['conditions'][0]['status'] == 'False' and patch['conditions'][0]['reason'] == 'Interrupted'
    res['status']['lastOperation']['result'] = 'Succeeded'
    assert reconcile.interrupted_patch(res, 't1', 'gone') is None


def test_what_this_run_made_is_no_change_when_it_plans_again():
    # status.applied is written at the end of the run: the plan made after its steps must not find them again
    spec = dict(SPEC, replicas=2, primary='pdb2', parameters={'work_mem': '32MB'}, **{'class': 'small'})
    res = changed(SPEC, spec)
    before = topology()
    first = reconcile.plan(res, before)
    assert ops(first) == [('add_node', 'pdb3'), ('switchover', 'pdb2'), ('refresh_params', None), ('scale', None)]
    after = topology(rw='pdb2', nodes=[node('pdb1'), node('pdb2', 'primary'), node('pdb3')])
    assert ops(reconcile.plan(res, after, resume=False, ran=first['run'])) == []
    # without them, parameters and class are still a change (the engines cannot say they were applied)
    assert ops(reconcile.plan(res, after, resume=False)) == [('refresh_params', None), ('scale', None)]
    # a step that did not take (its node still does not answer) is still to run
    lost = topology(rw='pdb2', nodes=[node('pdb1'), node('pdb2', 'primary')])
    assert ops(reconcile.plan(res, lost, resume=False, ran=first['run'])) == [('add_node', 'pdb3')]


def test_a_reconciled_resource_gets_the_finalizer_once():
    res = resource()
    result = reconcile.plan(res, topology())
    assert result['finalizers'] == [reconcile.FINALIZER] and not result['deleting']
    res['metadata']['finalizers'] = ['other.io/keep', reconcile.FINALIZER]
    assert reconcile.plan(res, topology())['finalizers'] is None


def test_a_deleted_resource_removes_its_engines_keeping_the_data_unless_wipe_then_drops_the_finalizer():
    res = resource()
    res['metadata'].update(deletionTimestamp='2026-12-04T16:00:00Z', finalizers=['other.io/keep', reconcile.FINALIZER])
    # whatever else the spec says or the engines do (no RW here), the engines are removed
    res['spec']['primary'] = 'pdb2'
    down = topology(rw=None, nodes=[node('pdb1', reachable=False), node('pdb2')], healthy=False)
    result = reconcile.plan(res, down)
    assert result['deleting'] and result['refused'] == [] and ops(dict(steps=result['run'])) == [('destroy_cluster', None)]
    assert result['run'][0]['wipe'] is False and 'every LUN keeps its data (deletionPolicy Retain)' in result['run'][0]['reason']
    assert result['finalizers'] == ['other.io/keep']
    progress = reconcile.progress_patch(result, ['destroy_cluster'], 'r9', 't0')
    assert progress['phase'] == 'Deleting' and progress['lastOperation']['step'] == 'destroy_cluster'
    # after its destroy_cluster, nothing is left to run
    assert reconcile.plan(res, down, resume=False, ran=result['run'])['steps'] == []
    res['spec']['deletionPolicy'] = 'Wipe'
    assert reconcile.plan(res, down)['run'][0]['wipe'] is True
    # without our finalizer (never reconciled) there is nothing to remove
    res['metadata']['finalizers'] = []
    result = reconcile.plan(res, down)
    assert result['steps'] == [] and result['finalizers'] is None
