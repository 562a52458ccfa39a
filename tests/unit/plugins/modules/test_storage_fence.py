# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it: arguments in, exit_json / fail_json out; the LUN
answers with the recorded outputs of tests/unit/fixtures/fencing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest


from ansible_collections.polardb.stack.plugins.modules import storage_fence
from ansible_collections.polardb.stack.tests.unit.plugins.modules import harness
from ansible_collections.polardb.stack.tests.unit.fixtures.fencing.fakes import (
    COMMAND, K1, K2, MPATH, P1, P2, FakeFenceCommand, Lun, fixture)
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import WWID, WWN_PATH, FakeHost, FakeModule, sbin


def run_module(monkeypatch, host, commands, args):
    monkeypatch.setattr(storage_fence, 'HostFiles', lambda: host)
    return harness.run_module(monkeypatch, storage_fence.main, args, commands)


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2')
    h.add_device('sdb', (8, 16), content=b'\0' * 4096, node=WWN_PATH)
    h.add_device('dm-0', (253, 0), dm_uuid='mpath-3' + WWID, dm_name='mpatha', node=MPATH)
    return h


@pytest.fixture
def lun():
    return Lun(FakeModule(('sg_persist', 'blkid')))


def args(**kwargs):
    base = dict(device=WWN_PATH, cluster='demo', node='pdb2')
    base.update(kwargs)
    return base


def test_writer_takes_over_and_reports(monkeypatch, host, lun):
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2', 'wear')
    out = run_module(monkeypatch, host, lun.module, args(state='writer', nodes=['pdb1', 'pdb2'], _ansible_diff=True))
    assert out.failed is False and out.result['changed'] is True
    fence = out.result['fence']
    assert (fence['key'], fence['registrations'], fence['this_host_writer']) == (K2, [K2], True)
    assert out.result['diff'] == dict(
        before=dict(registrations=[K1], reservation=fence['reservation']),
        after=dict(registrations=[K2], reservation=fence['reservation']))
    assert out.result['actions'] == ['register key %s (pdb2) on %s' % (K2, WWN_PATH),
                                     'preempt and abort key %s (pdb1) on %s' % (K1, WWN_PATH)]
    assert len(out.result['executed_commands']) == 8


def test_no_diff_unless_asked(monkeypatch, host, lun):
    lun.read('pdb2', 'wear')
    out = run_module(monkeypatch, host, lun.module, args(state='writer'))
    assert out.result['changed'] is False and 'diff' not in out.result


def test_check_mode_runs_no_out_command(monkeypatch, host, lun):
    lun.read('pdb1', 'wear')
    out = run_module(monkeypatch, host, lun.module,
                     args(state='fenced_out', victim='pdb1', _ansible_check_mode=True, _ansible_diff=True))
    assert out.failed is False and out.result['changed'] is True
    assert not [c for c in out.result['executed_commands'] if '--out' in c]
    assert out.result['diff']['after']['registrations'] == [K2]
    assert out.result['fence']['registrations'] == [K1]   # as the LUN is now


def test_wwid_is_resolved_as_lun_info_does(monkeypatch, host, lun):
    lun.module.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), rc=2)
    lun.read('pdb2', 'wear')
    out = run_module(monkeypatch, host, lun.module, dict(wwid='0x' + WWID, cluster='demo', node='pdb2', state='query'))
    assert out.result['fence']['device'] == WWN_PATH and out.result['fence']['this_host_writer'] is True


def test_failure_names_the_device_state_and_the_commands(monkeypatch, host, lun):
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1, rc=24, stderr=fixture('sg_persist-conflict.stderr'))
    lun.read('pdb1-pdb2', 'wear')
    lun.unregister(P2)
    lun.read('pdb1', 'wear')
    out = run_module(monkeypatch, host, lun.module, args(state='writer'))
    assert out.failed is True
    assert 'RESERVATION CONFLICT' in out.result['msg'] and 'removed again' in out.result['msg']
    assert out.result['fence_state']['registrations'] == [K1]
    assert out.result['executed_commands'][-3].endswith('--register --param-rk=0x120534175508b10b ' + WWN_PATH)


def test_warnings_reach_ansible(monkeypatch, host, lun):
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1, rc=24, stderr=fixture('sg_persist-conflict.stderr'))
    lun.read('pdb2', 'wear')
    out = run_module(monkeypatch, host, lun.module, args(state='writer'))
    assert out.failed is False and out.warnings and 'changed meanwhile' in out.warnings[0]


def test_missing_tool(monkeypatch, host):
    out = run_module(monkeypatch, host, FakeModule(()), args(state='query'))
    assert out.failed is True and out.result['msg'] == 'sg_persist not found on pdb2: install sg3-utils'


@pytest.mark.parametrize('bad, message', [
    (dict(state='fenced_out'), 'state is fenced_out but all of the following are missing: victim'),
    (dict(wwid=WWID), 'parameters are mutually exclusive: wwid|device'),
    (dict(cluster=None), 'one of the following is required: cluster, key'),
    (dict(driver='iscsi'), 'value of driver must be one of'),
    (dict(driver='command'), 'driver is command but all of the following are missing: command'),
])
def test_argument_spec(monkeypatch, host, bad, message):
    given = args(**bad)
    out = run_module(monkeypatch, host, FakeModule(()), dict((k, v) for k, v in given.items() if v is not None))
    assert out.failed is True and message in out.result['msg']


def test_key_option_overrides_the_derived_key(monkeypatch, host, lun):
    lun.read('pdb1', 'wear')
    out = run_module(monkeypatch, host, lun.module, dict(device=WWN_PATH, key=K1, state='writer'))
    assert out.result['changed'] is False and out.result['fence']['this_host_writer'] is True


def test_command_driver_through_the_module_with_check_mode_and_diff(monkeypatch, host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    given = args(driver='command', command=COMMAND, state='fenced_out', victim='pdb1', _ansible_diff=True)
    out = run_module(monkeypatch, host, fake, dict(given, _ansible_check_mode=True))
    assert out.failed is False and out.result['changed'] is True and fake.actions() == ['status']
    assert out.result['diff']['after']['registrations'] == [K2]
    out = run_module(monkeypatch, host, fake, given)
    assert out.failed is False and out.result['changed'] is True
    assert fake.registrations == {'pdb2': K2} and fake.reserved
    assert out.result['fence']['driver'] == 'command' and out.result['fence']['this_host_writer'] is True
    assert all(c.startswith('/usr/sbin/site-fence ') for c in out.result['executed_commands'])
    out = run_module(monkeypatch, host, fake, given)
    assert out.result['changed'] is False


def test_command_driver_failure_reports_the_commands_stderr(monkeypatch, host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    fake.fail['register'] = (1, '', 'array API: 503 Service Unavailable\n')
    out = run_module(monkeypatch, host, fake, args(driver='command', command=COMMAND, state='writer'))
    assert out.failed is True and 'failed (exit 1): array API: 503 Service Unavailable' in out.result['msg']
    assert out.result['stderr'] == 'array API: 503 Service Unavailable\n'
