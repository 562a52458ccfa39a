# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operation lock over real files in tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import LockFiles, ensure_lock
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

T0 = '2026-11-26T13:40:01Z'
T1 = '2026-11-26T13:45:00Z'
RUN_A = dict(run_id='1a2b3c4d', controller='ctl1', pid=1234)
RUN_B = dict(run_id='9f8e7d6c', controller='ctl2', pid=4321)


class Clock(object):
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def files(tmp_path, clock):
    return LockFiles(str(tmp_path / 'locks'), clock=clock, hostname='pdb1')


def on_disk(files, cluster='demo'):
    with open(files.path(cluster)) as f:
        return json.load(f)


def acquire(files, owner=None, operation='switchover', params=None, **kw):
    return ensure_lock(files, 'demo', state='acquired', operation=operation,
                       params={'from': 'pdb1', 'to': 'pdb2'} if params is None else params,
                       owner=owner or RUN_A, **kw)


def test_query_without_lock(files):
    r = ensure_lock(files, 'demo')
    assert (r['changed'], r['lock'], r['previous']) == (False, None, None)
    assert not os.path.exists(files.lock_dir)


def test_create(files):
    r = acquire(files)
    lock = dict(cluster='demo', operation='switchover', params={'from': 'pdb1', 'to': 'pdb2'}, owner=RUN_A,
                started=T0, updated=T0, host='pdb1')
    assert (r['changed'], r['lock'], r['previous']) == (True, lock, None)
    assert on_disk(files) == lock
    assert stat.S_IMODE(os.stat(files.path('demo')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(files.lock_dir).st_mode) == 0o700
    assert os.listdir(files.lock_dir) == ['demo.json']  # the temp file is gone
    assert r['diff']['before'] == '' and json.loads(r['diff']['after']) == lock
    assert ensure_lock(files, 'demo')['lock'] == lock


def test_same_run_reacquires_and_merges_params(files, clock):
    acquire(files)
    clock.now = T1
    r = acquire(files, params={'from': 'pdb1', 'to': 'pdb2'})
    assert r['changed'] is False and r['lock']['updated'] == T0
    r = acquire(files, params={'to': 'pdb3', 'fenced': True})
    assert r['changed'] is True
    assert r['lock']['params'] == {'from': 'pdb1', 'to': 'pdb3', 'fenced': True}
    assert (r['lock']['started'], r['lock']['updated']) == (T0, T1)
    assert r['previous']['params'] == {'from': 'pdb1', 'to': 'pdb2'}
    assert on_disk(files) == r['lock']


def test_other_run_is_refused(files):
    acquire(files)
    with pytest.raises(PolarDBError) as e:
        acquire(files, owner=RUN_B, operation='failover', params={})
    msg = e.value.msg
    assert msg.startswith('cluster demo is locked: switchover {from: pdb1, to: pdb2} started %s '
                          'by run 1a2b3c4d (pid 1234 on ctl1); another operation cannot start' % T0)
    assert 'run the same operation again (it resumes)' in msg
    assert 'polardb.stack.operation_lock state=released takeover=true' in msg
    assert e.value.details['lock']['owner'] == RUN_A
    assert on_disk(files)['owner'] == RUN_A


def test_same_run_other_operation_is_refused(files):
    acquire(files)
    with pytest.raises(PolarDBError) as e:
        acquire(files, operation='rebuild_node')
    assert 'already locked by this run for switchover' in e.value.msg


def test_takeover_keeps_started_and_records_previous_owner(files, clock):
    acquire(files)
    clock.now = T1
    r = acquire(files, owner=RUN_B, params={'step': 'promote'}, takeover=True)
    assert r['changed'] is True
    assert r['lock']['owner'] == RUN_B
    assert r['lock']['taken_over_from'] == RUN_A
    assert (r['lock']['started'], r['lock']['updated']) == (T0, T1)
    assert r['lock']['params'] == {'from': 'pdb1', 'to': 'pdb2', 'step': 'promote'}
    assert r['previous']['owner'] == RUN_A
    assert on_disk(files) == r['lock']
    assert os.listdir(files.lock_dir) == ['demo.json']


def test_takeover_for_another_operation_starts_anew(files, clock):
    acquire(files)
    clock.now = T1
    r = acquire(files, owner=RUN_B, operation='failover', params={'to': 'pdb3'}, takeover=True)
    assert (r['lock']['operation'], r['lock']['params'], r['lock']['started']) == ('failover', {'to': 'pdb3'}, T1)
    assert r['lock']['taken_over_from'] == RUN_A


def test_release_own(files):
    acquire(files)
    r = ensure_lock(files, 'demo', state='released', owner=RUN_A)
    assert (r['changed'], r['lock'], r['previous']['owner']) == (True, None, RUN_A)
    assert not os.path.exists(files.path('demo'))
    assert r['diff']['after'] == ''


def test_release_other_is_refused_unless_takeover(files):
    acquire(files)
    with pytest.raises(PolarDBError) as e:
        ensure_lock(files, 'demo', state='released', owner=RUN_B)
    assert 'cluster demo is locked: switchover' in e.value.msg and 'only that run can release it' in e.value.msg
    assert os.path.exists(files.path('demo'))
    r = ensure_lock(files, 'demo', state='released', owner=RUN_B, takeover=True)
    assert r['changed'] is True and not os.path.exists(files.path('demo'))


def test_release_absent(files):
    r = ensure_lock(files, 'demo', state='released', owner=RUN_A)
    assert (r['changed'], r['lock'], r['previous']) == (False, None, None)


class RacingFiles(LockFiles):
    """Another run creates the lock between our read and our link."""

    def _link(self, tmp, path):
        with open(path, 'w') as f:
            json.dump(dict(cluster='demo', operation='failover', params={'to': 'pdb3'}, owner=RUN_B,
                           started=T1, updated=T1, host='pdb2'), f)
        super(RacingFiles, self)._link(tmp, path)


@pytest.mark.parametrize('takeover', [False, True])
def test_race_lost_is_refused_not_overwritten(tmp_path, takeover):
    files = RacingFiles(str(tmp_path / 'locks'), clock=Clock(), hostname='pdb1')
    with pytest.raises(PolarDBError) as e:
        acquire(files, takeover=takeover)
    assert 'cluster demo is locked: failover {to: pdb3}' in e.value.msg
    assert 'by run 9f8e7d6c (pid 4321 on ctl2)' in e.value.msg
    assert e.value.details['lock']['owner'] == RUN_B
    assert on_disk(files)['owner'] == RUN_B
    assert os.listdir(files.lock_dir) == ['demo.json']


@pytest.mark.parametrize('content', ['{"cluster": "demo", "oper', '[]', '{"cluster": "demo"}'])
def test_corrupt_file(files, content):
    os.makedirs(files.lock_dir)
    with open(files.path('demo'), 'w') as f:
        f.write(content)
    for kw in (dict(), dict(state='acquired', operation='switchover', owner=RUN_A, takeover=True)):
        with pytest.raises(PolarDBError) as e:
            ensure_lock(files, 'demo', **kw)
        assert 'lock file %s is corrupt' % files.path('demo') in e.value.msg
        assert e.value.details['lock_file'] == files.path('demo')
    with open(files.path('demo')) as f:
        assert f.read() == content


def test_check_mode_writes_nothing(files, clock):
    r = acquire(files, check_mode=True)
    assert r['changed'] is True and r['lock']['operation'] == 'switchover'
    assert not os.path.exists(files.lock_dir)
    acquire(files)
    before = on_disk(files)
    clock.now = T1
    assert acquire(files, owner=RUN_B, takeover=True, check_mode=True)['lock']['owner'] == RUN_B
    assert acquire(files, params={'x': 1}, check_mode=True)['lock']['params']['x'] == 1
    r = ensure_lock(files, 'demo', state='released', owner=RUN_A, check_mode=True)
    assert (r['changed'], r['lock']) == (True, None)
    assert on_disk(files) == before


@pytest.mark.parametrize('kw, text', [
    (dict(cluster='Demo'), 'invalid cluster name'),
    (dict(cluster='demo', state='acquired', owner=RUN_A), 'operation is required'),
    (dict(cluster='demo', state='acquired', operation='switchover'), 'owner with a run_id is required'),
    (dict(cluster='demo', state='released', owner={'pid': 1}), 'owner with a run_id is required'),
])
def test_invalid_arguments(files, kw, text):
    with pytest.raises(PolarDBError) as e:
        ensure_lock(files, **kw)
    assert text in e.value.msg
