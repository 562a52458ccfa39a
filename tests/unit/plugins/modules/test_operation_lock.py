# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it: arguments in, exit_json / fail_json out, a lock directory in tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.polardb.stack.plugins.modules import operation_lock

RUN_A = dict(run_id='1a2b3c4d', controller='ctl1', pid=1234)
RUN_B = dict(run_id='9f8e7d6c', controller='ctl2', pid=4321)


class Exit(Exception):
    def __init__(self, failed, result):
        super(Exit, self).__init__(result.get('msg'))
        self.failed = failed
        self.result = result


@pytest.fixture
def run(monkeypatch, tmp_path):
    def exit_json(module, **result):
        raise Exit(False, result)

    def fail_json(module, **result):
        raise Exit(True, result)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def run(**args):
        args.setdefault('cluster', 'demo')
        args.setdefault('lock_dir', str(tmp_path / 'locks'))
        with patch_module_args(args):
            with pytest.raises(Exit) as e:
                operation_lock.main()
        return e.value
    run.path = str(tmp_path / 'locks' / 'demo.json')
    return run


def test_acquire_query_release(run):
    out = run(state='acquired', operation='switchover', params={'from': 'pdb1', 'to': 'pdb2'}, owner=RUN_A,
              _ansible_diff=True)
    assert out.failed is False and out.result['changed'] is True
    lock = out.result['lock']
    assert (lock['operation'], lock['owner'], out.result['previous']) == ('switchover', RUN_A, None)
    assert out.result['lock_file'] == run.path
    assert json.loads(out.result['diff']['after']) == lock and out.result['diff']['before'] == ''
    with open(run.path) as f:
        assert json.load(f) == lock

    out = run()
    assert (out.failed, out.result['changed'], out.result['lock']) == (False, False, lock)
    assert 'diff' not in out.result

    out = run(state='acquired', operation='switchover', params={'to': 'pdb2'}, owner=RUN_A)
    assert out.result['changed'] is True and out.result['lock']['renewals'] == 2  # acquiring again renews
    lock = out.result['lock']

    out = run(state='released', owner={'run_id': RUN_A['run_id']})
    assert (out.result['changed'], out.result['lock'], out.result['previous']) == (True, None, lock)
    assert not os.path.exists(run.path)


def test_other_run_fails_with_the_lock(run):
    run(state='acquired', operation='switchover', params={'from': 'pdb1', 'to': 'pdb2'}, owner=RUN_A)
    out = run(state='acquired', operation='rebuild_node', owner=RUN_B)
    assert out.failed is True
    assert out.result['msg'].startswith('cluster demo is locked on ')
    assert 'switchover {from: pdb1, to: pdb2} started ' in out.result['msg']
    assert out.result['lock']['owner'] == RUN_A and out.result['previous']['owner'] == RUN_A
    assert out.result['refused'] is True and out.result['expired'] is False

    out = run(state='acquired', operation='switchover', owner=RUN_B, takeover=True)
    assert out.failed is True, 'a live lease is never taken over'


def test_renew_and_query_report_the_lease(run):
    run(state='acquired', operation='switchover', owner=RUN_A, lease_seconds=10)
    out = run(state='renewed', owner=RUN_A, lease_seconds=10)
    assert out.failed is False and out.result['changed'] is True and out.result['lock']['renewals'] == 2
    out = run(wait=1, owner=RUN_B)
    assert out.result['expired'] is False and 0 < out.result['expires_in'] <= 10 and out.result['waited'] >= 1
    out = run(state='released', owner=RUN_A)
    out = run(state='renewed', owner=RUN_A)
    assert out.failed is False and out.result['changed'] is False and out.result['lock'] is None


def test_check_mode(run):
    out = run(state='acquired', operation='switchover', owner=RUN_A, _ansible_check_mode=True)
    assert out.result['changed'] is True and out.result['lock']['owner'] == RUN_A
    assert not os.path.exists(os.path.dirname(run.path))


@pytest.mark.parametrize('args, text', [
    (dict(state='acquired', owner=RUN_A), 'operation'),
    (dict(state='released'), 'owner'),
    (dict(state='renewed'), 'owner'),
    (dict(state='released', owner={'pid': 1}), 'run_id'),
    (dict(cluster='1demo'), 'invalid cluster name'),
])
def test_argument_errors(run, args, text):
    out = run(**args)
    assert out.failed is True and text in out.result['msg']


def test_corrupt(run):
    os.makedirs(os.path.dirname(run.path))
    with open(run.path, 'w') as f:
        f.write('{')
    out = run()
    assert out.failed is True and run.path in out.result['msg'] and out.result['lock'] is None
