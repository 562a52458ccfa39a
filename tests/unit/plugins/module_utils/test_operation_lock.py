# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operation lock's lease over real files in tmp_path, with a fake node clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import threading

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import operation_lock as ol
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import FileLeaseStore, ensure_lock
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

RUN_A = dict(run_id='1a2b3c4d', controller='ctl1', pid=1234)
RUN_B = dict(run_id='9f8e7d6c', controller='ctl2', pid=4321)
SW = dict(operation='switchover', params={'from': 'pdb1', 'to': 'pdb2'})


class FakeClock(object):
    """A node's clock: boot-time seconds, a wall clock (deliberately far from
    the boot-time one) and a boot id; sleeping advances both."""

    def __init__(self):
        self.m, self.w, self.boot = 1000.0, 1796170000.0, 'boot-1'
        self.on_sleep = None

    def mono(self):
        return self.m

    def wall(self):
        return self.w

    def boot_id(self):
        return self.boot

    def advance(self, seconds):
        self.m += seconds
        self.w += seconds

    def sleep(self, seconds):
        self.advance(seconds)
        if self.on_sleep:
            self.on_sleep()


@pytest.fixture
def clock():
    return FakeClock()


def node(tmp_path, name='pdb1'):
    return FileLeaseStore(str(tmp_path / name / 'locks'), hostname=name)


@pytest.fixture
def store(tmp_path):
    return node(tmp_path)


def lock(store, clock, owner=None, state='acquired', lease_seconds=30, **kw):
    owner = owner or RUN_A
    args = dict(SW) if state == 'acquired' else {}
    args.update(kw)
    return ensure_lock(store, 'demo', state=state, owner=owner, lease_seconds=lease_seconds, clock=clock, **args)


def on_disk(store):
    with open(store.path('demo')) as f:
        return json.load(f)


# --- one node -------------------------------------------------------------------------------------

def test_acquire_writes_a_lease_record(store, clock):
    out = lock(store, clock)
    rec = out['lock']
    assert out['changed'] is True and out['previous'] is None and out['expired'] is False
    assert (rec['operation'], rec['params'], rec['owner'], rec['lease_seconds']) == \
        ('switchover', SW['params'], RUN_A, 30)
    assert rec['clock'] == dict(boot_id='boot-1', mono=1000.0, wall=1796170000.0)
    assert rec['renewals'] == 1 and rec['transitions'] == 0 and rec['host'] == 'pdb1'
    assert on_disk(store) == rec
    assert stat.S_IMODE(os.stat(store.path('demo')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.lock_dir).st_mode) == 0o700


def test_a_live_lease_refuses_another_run_and_expires_by_the_node_clock(store, clock):
    lock(store, clock)
    clock.advance(29)
    with pytest.raises(PolarDBError) as e:
        lock(store, clock, owner=RUN_B)
    assert 'cluster demo is locked on pdb1: switchover {from: pdb1, to: pdb2}' in e.value.msg
    assert 'run 1a2b3c4d (pid 1234 on ctl1)' in e.value.msg and 'runs 1 s more' in e.value.msg
    assert e.value.details['refused'] is True and e.value.details['expired'] is False
    clock.advance(1)
    out = lock(store, clock, owner=RUN_B, params={})
    rec = out['lock']
    assert rec['owner'] == RUN_B and rec['taken_over_from'] == RUN_A and rec['transitions'] == 1
    assert rec['params'] == SW['params'], 'a resumed run keeps what the dead run decided'
    assert rec['started'] == out['previous']['started']


def test_renewal_keeps_the_lease_alive(store, clock):
    lock(store, clock, lease_seconds=10)
    for _renewal in range(5):
        clock.advance(3.3)
        out = lock(store, clock, state='renewed', lease_seconds=10)
        assert out['changed'] is True and out['expires_in'] == 10
    assert out['lock']['renewals'] == 6
    clock.advance(9)
    with pytest.raises(PolarDBError):
        lock(store, clock, owner=RUN_B)


def test_the_wall_clock_does_not_matter_while_the_node_runs(store, clock):
    lock(store, clock)
    clock.w += 3600  # NTP steps the wall clock an hour ahead
    with pytest.raises(PolarDBError):
        lock(store, clock, owner=RUN_B)
    clock.w -= 7200
    clock.m += 31
    assert lock(store, clock, owner=RUN_B)['lock']['owner'] == RUN_B


def test_after_a_reboot_of_the_node_its_wall_clock_judges(store, clock):
    lock(store, clock)
    clock.boot, clock.m = 'boot-2', 5.0  # boot-time clock restarted
    clock.w += 10
    assert ensure_lock(store, 'demo', clock=clock)['expired'] is False
    clock.w += 20
    assert ensure_lock(store, 'demo', clock=clock)['expired'] is True


def test_an_expired_lease_of_another_operation_is_refused_unless_abandoned(store, clock):
    lock(store, clock)
    clock.advance(31)
    with pytest.raises(PolarDBError) as e:
        lock(store, clock, owner=RUN_B, operation='rebuild_node', params={'node': 'pdb3'})
    assert 'its lease expired' in e.value.msg and 'run switchover again' in e.value.msg
    out = lock(store, clock, owner=RUN_B, operation='rebuild_node', params={'node': 'pdb3'}, takeover=True)
    assert out['lock']['params'] == {'node': 'pdb3'} and out['lock']['taken_over_from'] == RUN_A


def test_takeover_never_takes_a_live_lease(store, clock):
    lock(store, clock)
    with pytest.raises(PolarDBError):
        lock(store, clock, owner=RUN_B, takeover=True)


def test_this_run_renews_and_merges_its_own_lock(store, clock):
    lock(store, clock)
    clock.advance(40)  # expired, but nobody took it: still ours
    out = lock(store, clock, params={'to': 'pdb3'})
    assert out['lock']['params'] == {'from': 'pdb1', 'to': 'pdb3'} and out['expired'] is False


def test_renew_of_a_released_lock_changes_nothing_and_of_a_lost_one_fails(store, clock):
    assert lock(store, clock, state='renewed')['lock'] is None
    assert not os.path.exists(store.path('demo'))
    lock(store, clock, owner=RUN_B)
    with pytest.raises(PolarDBError) as e:
        lock(store, clock, state='renewed')
    assert 'lease on pdb1 is lost' in e.value.msg and e.value.details['lost'] is True


def test_release_only_removes_this_runs_lock(store, clock):
    lock(store, clock)
    with pytest.raises(PolarDBError) as e:
        lock(store, clock, owner=RUN_B, state='released')
    assert 'only that run can release it' in e.value.msg
    out = lock(store, clock, state='released')
    assert out['changed'] is True and out['lock'] is None and not os.path.exists(store.path('demo'))
    assert lock(store, clock, state='released')['changed'] is False


def test_release_with_restore_puts_the_dead_runs_lock_back(store, clock):
    dead = lock(store, clock)['lock']
    clock.advance(31)
    lock(store, clock, owner=RUN_B)
    out = lock(store, clock, owner=RUN_B, state='released', restore=dead)
    back = on_disk(store)
    assert out['changed'] is True and back['owner'] == RUN_A and back['params'] == SW['params']
    assert back['version'] != dead['version']


def test_expect_version_is_the_compare_of_the_compare_and_swap(store, clock):
    seen = ensure_lock(store, 'demo', clock=clock)['lock']
    assert seen is None
    lock(store, clock, owner=RUN_B)  # another run got in after this run read the node
    clock.advance(31)
    with pytest.raises(PolarDBError) as e:
        lock(store, clock, expect_version='')
    assert 'changed since this run read it' in e.value.msg and 'run 9f8e7d6c' in e.value.msg
    current = ensure_lock(store, 'demo', clock=clock)['lock']
    assert lock(store, clock, expect_version=current['version'])['lock']['owner'] == RUN_A


def test_check_mode_writes_nothing(store, clock):
    out = lock(store, clock, check_mode=True)
    assert out['changed'] is True and out['lock']['owner'] == RUN_A
    assert not os.path.exists(store.lock_dir)
    lock(store, clock)
    before = on_disk(store)
    for state in ('renewed', 'released'):
        assert lock(store, clock, state=state, check_mode=True)['changed'] is True
    assert on_disk(store) == before


def test_a_corrupt_file_fails_every_state_naming_it(store, clock):
    os.makedirs(store.lock_dir)
    with open(store.path('demo'), 'w') as f:
        f.write('{')
    for state in ('query', 'acquired', 'released'):
        with pytest.raises(PolarDBError) as e:
            lock(store, clock, state=state)
        assert store.path('demo') in e.value.msg


@pytest.mark.parametrize('kw, text', [
    (dict(cluster='1demo'), 'invalid cluster name'),
    (dict(state='acquired', owner=RUN_A), 'operation is required'),
    (dict(state='renewed'), 'owner with a run_id'),
    (dict(state='acquired', operation='x', owner=RUN_A, lease_seconds=2), 'lease_seconds'),
])
def test_argument_errors(store, clock, kw, text):
    kw.setdefault('cluster', 'demo')
    with pytest.raises(PolarDBError) as e:
        ensure_lock(store, clock=clock, **kw)
    assert text in e.value.msg


# --- waiting for a lease --------------------------------------------------------------------------

def test_query_waits_until_a_dead_holders_lease_expires(store, clock):
    lock(store, clock, lease_seconds=10)
    out = ensure_lock(store, 'demo', wait=60, owner=RUN_B, clock=clock)
    assert out['expired'] is True and out['renewed_while_waiting'] is False and 10 <= out['waited'] <= 11


def test_query_stops_waiting_when_the_holder_renews(store, clock):
    lock(store, clock, lease_seconds=10)
    clock.on_sleep = lambda: clock.m >= 1003 and lock(store, clock, state='renewed', lease_seconds=10)
    out = ensure_lock(store, 'demo', wait=60, owner=RUN_B, clock=clock)
    assert out['expired'] is False and out['renewed_while_waiting'] is True and out['waited'] <= 4


def test_query_waits_at_most_wait_seconds_and_never_for_its_own_lock(store, clock):
    lock(store, clock, lease_seconds=600)
    out = ensure_lock(store, 'demo', wait=5, owner=RUN_B, clock=clock)
    assert out['expired'] is False and out['waited'] == 5
    assert ensure_lock(store, 'demo', wait=5, owner=RUN_A, clock=clock)['waited'] == 0


def test_a_coarse_clock_waits_its_resolution_past_the_expiry_so_the_next_run_agrees(store, clock):
    # the Kubernetes Lease's clock is the API server's Date (whole seconds): the
    # module run that takes the lock after this wait may read it up to 1 s behind
    lock(store, clock, lease_seconds=10)
    clock.resolution = 1.0
    out = ensure_lock(store, 'demo', wait=60, owner=RUN_B, clock=clock)
    assert out['expired'] is True and 11 <= out['waited'] <= 12
    clock.advance(-0.99)  # the take's reading of the same instant
    taken = ensure_lock(store, 'demo', state='acquired', owner=RUN_B, clock=clock, **SW)
    assert taken['lock']['owner']['run_id'] == RUN_B['run_id'] and taken['lock']['transitions'] == 1


def test_a_coarse_clock_does_not_wait_for_a_lease_long_expired(store, clock):
    lock(store, clock, lease_seconds=10)
    clock.resolution = 1.0
    clock.advance(12)
    assert ensure_lock(store, 'demo', wait=60, owner=RUN_B, clock=clock)['waited'] == 0


# --- races ----------------------------------------------------------------------------------------

class RacingStore(FileLeaseStore):
    """Lets another writer in between a read and the compare-and-swap, once."""

    def __init__(self, lock_dir, intruder):
        super(RacingStore, self).__init__(lock_dir, hostname='pdb1')
        self.intruder = intruder

    def cas(self, cluster, expected_version, record):
        if self.intruder:
            intruder, self.intruder = self.intruder, None
            intruder()
        return super(RacingStore, self).cas(cluster, expected_version, record)


def test_a_writer_between_read_and_swap_wins_and_this_run_is_refused(tmp_path, clock):
    plain = node(tmp_path)
    racing = RacingStore(plain.lock_dir, lambda: lock(plain, clock, owner=RUN_B))
    with pytest.raises(PolarDBError) as e:
        lock(racing, clock)
    assert 'run 9f8e7d6c' in e.value.msg
    assert on_disk(plain)['owner'] == RUN_B


def test_two_resumes_of_an_expired_lease_exactly_one_wins(tmp_path, clock):
    plain = node(tmp_path)
    lock(plain, clock, owner=dict(run_id='dead'))
    clock.advance(31)
    racing = RacingStore(plain.lock_dir, lambda: lock(plain, clock, owner=RUN_B))
    with pytest.raises(PolarDBError):
        lock(racing, clock)
    assert on_disk(plain)['owner'] == RUN_B and on_disk(plain)['taken_over_from'] == {'run_id': 'dead',
                                                                                      'controller': None, 'pid': None}


def test_concurrent_processes_under_flock_exactly_one_wins(tmp_path):
    lock_dir = str(tmp_path / 'pdb1' / 'locks')
    wins, losses = [], []

    def attempt(i):
        try:
            ensure_lock(FileLeaseStore(lock_dir, hostname='pdb1'), 'demo', state='acquired', operation='switchover',
                        owner=dict(run_id='run%d' % i), expect_version='')
            wins.append(i)
        except PolarDBError:
            losses.append(i)
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


# --- the cluster: all or nothing, majority --------------------------------------------------------

NODES = ['pdb1', 'pdb2', 'pdb3']


def walk(stores, clock, owner, expected, cluster_nodes=None, reachable=None):
    """What roles/lock/tasks/take.yml does: nodes in sorted order, stop at the first
    refusal, then take_outcome and its rollback."""
    results = []
    for name in sorted(stores):
        if reachable is not None and name not in reachable:
            results.append(dict(node=name, unreachable=True))
            continue
        try:
            out = lock(stores[name], clock, owner=owner, expect_version=expected.get(name, ''))
            results.append(dict(node=name, granted=True, changed=out['changed'], lock=out['lock'],
                                previous=out['previous']))
        except PolarDBError as e:
            results.append(dict(node=name, refused=True, msg=e.msg, lock=e.details.get('lock')))
            break
    outcome = ol.take_outcome(results, cluster_nodes or NODES)
    for step in outcome['rollback']:
        lock(stores[step['node']], clock, owner=owner, state='released', restore=step['restore'])
    return outcome


@pytest.fixture
def cluster(tmp_path):
    return dict((n, node(tmp_path, n)) for n in NODES)


def records(cluster):
    return dict((n, (ensure_lock(s, 'demo')['lock'] or {}).get('owner', {}).get('run_id')) for n, s in cluster.items())


def test_quorum():
    assert [ol.quorum(['n'] * k) for k in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_a_run_gets_every_node(cluster, clock):
    out = walk(cluster, clock, RUN_A, {})
    assert out['ok'] is True and out['granted'] == NODES and out['rollback'] == []
    assert records(cluster) == dict.fromkeys(NODES, RUN_A['run_id'])


def test_refused_on_a_later_node_gives_back_what_it_took(cluster, clock):
    lock(cluster['pdb2'], clock, owner=RUN_B)  # B holds pdb2 only (it is on its way)
    out = walk(cluster, clock, RUN_A, {'pdb2': ''})
    assert out['ok'] is False and list(out['refused']) == ['pdb2'] and out['holder']['owner'] == RUN_B
    assert [s['node'] for s in out['rollback']] == ['pdb1']
    assert records(cluster) == {'pdb1': None, 'pdb2': RUN_B['run_id'], 'pdb3': None}


def test_two_runs_in_the_same_order_exactly_one_proceeds(cluster, clock):
    a = walk(cluster, clock, RUN_A, {})
    b = walk(cluster, clock, RUN_B, {})
    assert (a['ok'], b['ok']) == (True, False) and list(b['refused']) == ['pdb1']
    assert records(cluster) == dict.fromkeys(NODES, RUN_A['run_id'])


def test_a_refused_resume_puts_the_dead_runs_lock_back(cluster, clock):
    dead = dict(run_id='dead')
    walk(cluster, clock, dead, {})
    clock.advance(31)
    seen = dict((n, ensure_lock(s, 'demo')['lock']['version']) for n, s in cluster.items())
    lock(cluster['pdb3'], clock, owner=RUN_B, expect_version=seen['pdb3'])  # B resumes from pdb3 (an error)
    out = walk(cluster, clock, RUN_A, seen)
    assert out['ok'] is False and [s['node'] for s in out['rollback']] == ['pdb2', 'pdb1']
    assert all(s['restore']['owner']['run_id'] == 'dead' for s in out['rollback'])
    assert records(cluster) == {'pdb1': 'dead', 'pdb2': 'dead', 'pdb3': RUN_B['run_id']}
    assert ensure_lock(cluster['pdb1'], 'demo', clock=clock)['lock']['params'] == SW['params']


def test_a_majority_holds_it_when_a_node_is_dead(cluster, clock):
    out = walk(cluster, clock, RUN_A, {}, reachable=['pdb2', 'pdb3'])
    assert out['ok'] is True and out['granted'] == ['pdb2', 'pdb3'] and out['unreachable'] == ['pdb1']


def test_a_minority_gives_back_what_it_took(cluster, clock):
    out = walk(cluster, clock, RUN_A, {}, reachable=['pdb3'])
    assert out['ok'] is False and out['granted'] == ['pdb3'] and out['quorum'] == 2
    assert records(cluster) == dict.fromkeys(NODES)


def test_two_partitioned_controllers_cannot_both_hold_it(cluster, clock):
    a = walk(cluster, clock, RUN_A, {}, reachable=['pdb1', 'pdb2'])
    b = walk(cluster, clock, RUN_B, {}, reachable=['pdb2', 'pdb3'])
    assert (a['ok'], b['ok']) == (True, False)


# --- the decision of inspect.yml --------------------------------------------------------------------

def q(lock=None, expired=None):
    return dict(lock=lock, expired=expired)


def rec(owner=None, operation='switchover', params=None):
    return dict(owner=owner or RUN_B, operation=operation, params=params or {'from': 'pdb1', 'to': 'pdb2'})


def test_decision_start_when_free_or_only_this_runs_records():
    assert ol.inspect_decision({'pdb1': q(), 'pdb2': q()}, 'switchover', 'x')['action'] == 'start'
    assert ol.inspect_decision({'pdb1': q(rec(owner=RUN_A), False)}, 'switchover', RUN_A['run_id'])['action'] == 'start'


def test_decision_refuses_a_live_lease_on_any_node():
    out = ol.inspect_decision({'pdb1': q(rec(), True), 'pdb2': q(rec(), False)}, 'switchover', 'x')
    assert (out['action'], out['reason'], out['alive']) == ('refuse', 'alive', ['pdb2'])
    out = ol.inspect_decision({'pdb1': q(rec(), False)}, 'switchover', 'x', takeover=True)
    assert out['action'] == 'refuse'


def test_decision_resumes_an_expired_lease_of_the_same_operation():
    out = ol.inspect_decision({'pdb1': q(rec(), True), 'pdb2': q(), 'pdb3': q(rec(), True)}, 'switchover', 'x')
    assert out['action'] == 'resume' and out['lock']['params'] == {'from': 'pdb1', 'to': 'pdb2'}
    assert out['nodes'] == ['pdb1', 'pdb3']


def test_decision_refuses_another_operation_or_several_runs_unless_abandoned():
    out = ol.inspect_decision({'pdb1': q(rec(), True)}, 'create_cluster', 'x')
    assert (out['action'], out['reason']) == ('refuse', 'other_operation')
    assert ol.inspect_decision({'pdb1': q(rec(), True)}, 'create_cluster', 'x', True)['action'] == 'start'
    several = {'pdb1': q(rec(), True), 'pdb2': q(rec(owner=dict(run_id='zz')), True)}
    assert ol.inspect_decision(several, 'switchover', 'x')['reason'] == 'several'


def test_take_answers_from_registered_results():
    lock = {'owner': {'run_id': 'r1'}, 'version': 'v2'}
    answers = ol.take_answers([
        ['pdb1', {'changed': False, 'lock': lock, 'previous': None}],
        ['pdb2', {'msg': 'Cluster demo is locked by switchover', 'lock': {'owner': {'run_id': 'r0'}}}],
        ['pdb3', {'unreachable': True, 'msg': 'Failed to connect to the host via ssh'}],
        ['pdb4', {'skipped': True, 'changed': False}],
    ])
    assert [a['node'] for a in answers] == ['pdb1', 'pdb2', 'pdb3']
    assert answers[0] == dict(node='pdb1', unreachable=False, granted=True, refused=False, raced=False, msg='',
                              changed=True, lock=lock, previous=None)
    assert answers[1]['refused'] and not answers[1]['granted']
    assert answers[2]['unreachable'] and not answers[2]['granted'] and not answers[2]['refused']
    outcome = ol.take_outcome(answers, ['pdb1', 'pdb2', 'pdb3'])
    assert not outcome['ok'] and outcome['rollback'] == [{'node': 'pdb1', 'restore': None}]
    assert ol.take_answers([['pdb1', {'lock': lock}]], check_mode=True)[0]['changed'] is False


# --- every node asked at once: the first node decides a race -------------------------------------

def at_once(stores, clock, owner, names=None):
    """One run's answers when every node (or ``names``) is asked at once, as
    take.yml's first task registers them, in sorted order."""
    answers = []
    for name in sorted(names or stores):
        try:
            out = lock(stores[name], clock, owner=owner, expect_version='')
            answers.append(['%s' % name, dict(changed=True, lock=out['lock'], previous=out['previous'])])
        except PolarDBError as e:
            answers.append(['%s' % name, dict(failed=True, msg=e.msg, **e.details)])
    return ol.take_answers(answers)


def test_a_race_asked_at_once_is_won_by_the_first_node_and_the_loser_gives_back(cluster, clock):
    # run A got pdb1 and pdb3, run B (which read the nodes at the same moment) got pdb2
    a = at_once(cluster, clock, RUN_A, ['pdb1', 'pdb3'])
    b = at_once(cluster, clock, RUN_B, ['pdb2'])
    a += at_once(cluster, clock, RUN_A, ['pdb2'])
    b = at_once(cluster, clock, RUN_B, ['pdb1']) + b + at_once(cluster, clock, RUN_B, ['pdb3'])
    a = sorted(a, key=lambda r: r['node'])
    assert [r['raced'] for r in a] == [False, True, False]
    won = ol.take_outcome(a, NODES, retry_raced=True)
    assert not won['ok'] and won['retry'] == ['pdb2'] and won['rollback'] == []
    lost = ol.take_outcome(b, NODES, retry_raced=True)
    # B lost the first node: no retry, it gives back pdb2
    assert not lost['ok'] and lost['retry'] == [] and lost['rollback'] == [{'node': 'pdb2', 'restore': None}]

    def give_back():
        clock.on_sleep = None
        lock(cluster['pdb2'], clock, owner=RUN_B, state='released')
    clock.on_sleep = give_back
    retaken = lock(cluster['pdb2'], clock, owner=RUN_A, expect_version='', expect_wait=10)
    assert retaken['lock']['owner'] == RUN_A
    assert records(cluster) == dict.fromkeys(NODES, RUN_A['run_id'])


def test_a_node_not_given_back_in_time_is_refused(cluster, clock):
    lock(cluster['pdb2'], clock, owner=RUN_B)
    start = clock.mono()
    with pytest.raises(PolarDBError) as e:
        lock(cluster['pdb2'], clock, owner=RUN_A, expect_version='', expect_wait=2)
    assert e.value.details['raced'] is True and 2 <= clock.mono() - start < 2.5


def test_no_retry_when_the_first_node_refused_or_a_refusal_is_not_a_race(cluster, clock):
    lock(cluster['pdb3'], clock, owner=RUN_B)  # a live lease, read before: not a race
    answers = ol.take_answers([
        ['pdb1', dict(changed=True, lock={}, previous=None)],
        ['pdb2', dict(changed=True, lock={}, previous=None)],
        ['pdb3', dict(failed=True, msg='cluster demo is locked on pdb3', refused=True)],
    ])
    out = ol.take_outcome(answers, NODES, retry_raced=True)
    assert out['retry'] == [] and [r['node'] for r in out['rollback']] == ['pdb2', 'pdb1']
    first_lost = ol.take_answers([
        ['pdb1', dict(failed=True, msg='changed since this run read it', refused=True, raced=True)],
        ['pdb2', dict(changed=True, lock={}, previous=None)],
    ])
    assert ol.take_outcome(first_lost, NODES, retry_raced=True)['retry'] == []


def test_the_first_node_that_answered_decides(cluster, clock):
    answers = ol.take_answers([
        ['pdb1', dict(unreachable=True, msg='Failed to connect')],
        ['pdb2', dict(changed=True, lock={}, previous=None)],
        ['pdb3', dict(failed=True, msg='changed since this run read it', refused=True, raced=True)],
    ])
    assert ol.take_outcome(answers, NODES, retry_raced=True)['retry'] == ['pdb3']


def test_lock_records_take_the_query_else_the_discovery_and_never_assume_free():
    query = {'lock': None, 'expired': None}
    found = {'lock': {'owner': {'run_id': 'r0'}}, 'expired': True}
    out = ol.lock_records({'pdb1': query, 'pdb2': {'skipped': True}},
                          {'pdb1': {}, 'pdb2': {'operation_lock': found}})
    assert out == {'pdb1': query, 'pdb2': found}
    with pytest.raises(PolarDBError) as e:
        ol.lock_records({'pdb1': {'skipped': True}}, {'pdb1': {'cluster': {}}})
    assert 'not read' in e.value.msg
    with pytest.raises(PolarDBError):
        ol.lock_records({'pdb1': {'skipped': True}})


def test_read_free_only_when_every_node_was_read_without_a_record():
    free = {'operation_lock': {'lock': None}}
    held = {'operation_lock': {'lock': {'owner': {'run_id': 'r0'}}}}
    assert ol.read_free({'pdb1': free, 'pdb2': free}, ['pdb1', 'pdb2']) is True
    assert ol.read_free({'pdb1': free, 'pdb2': held}, ['pdb1', 'pdb2']) is False
    assert ol.read_free({'pdb1': free}, ['pdb1', 'pdb2']) is False  # pdb2 not read
    assert ol.read_free({'pdb1': {'errors': {'operation_lock': 'corrupt'}}}, ['pdb1']) is False
    assert ol.read_free({}, ['pdb1']) is False


def test_read_record_is_a_query_without_diff(store, clock):
    lock(store, clock)
    found = ol.read_record({'cluster': 'demo', 'lock_dir': None}, store=store)
    assert found['lock']['owner'] == RUN_A and 'diff' not in found and found['waited'] == 0.0


def test_release_record_removes_this_runs_record_and_says_released(store, clock):
    lock(store, clock)
    out = ol.release_record({'cluster': 'demo', 'lock_dir': None, 'owner': RUN_A}, store=store)
    assert out['released'] is True and out['changed'] is True and out['lock'] is None and 'diff' not in out
    assert out['previous']['owner'] == RUN_A and store.read('demo') is None


def test_release_record_with_no_record_left_is_released_without_a_change(store):
    out = ol.release_record({'cluster': 'demo', 'lock_dir': None, 'owner': RUN_A}, store=store)
    assert out['released'] is True and out['changed'] is False


def test_release_record_of_another_runs_record_keeps_it_and_reports_instead_of_raising(store, clock):
    lock(store, clock, owner=RUN_B)
    out = ol.release_record({'cluster': 'demo', 'lock_dir': None, 'owner': RUN_A}, store=store)
    assert out['released'] is False and RUN_B['run_id'] in out['error']
    assert store.read('demo')['owner'] == RUN_B


def test_release_record_in_check_mode_writes_nothing(store, clock):
    lock(store, clock)
    out = ol.release_record({'cluster': 'demo', 'lock_dir': None, 'owner': RUN_A}, check_mode=True, store=store)
    assert out['changed'] is True and store.read('demo')['owner'] == RUN_A
