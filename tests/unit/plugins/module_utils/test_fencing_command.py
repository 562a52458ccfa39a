# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command fence driver against a fake fence command that keeps one LUN's
registrations as the contract says (docs/fencing.md): placeholders, the walk to
each state with a status call after every action, check mode, exit codes and
the command's stderr in failures, argv without a shell."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import fencing, fencing_command
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, PolarDBError
from ansible_collections.polardb.stack.tests.unit.fixtures.fencing.fakes import (
    COMMAND, K1, K2, K3, P1, P3, TOOL, FakeFenceCommand)
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import WWID, WWN_PATH, FakeHost


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2')
    h.add_device('sdb', (8, 16), node=WWN_PATH)
    return h


def run(fake, host, state, check_mode=False, **kwargs):
    kwargs.setdefault('command', COMMAND)
    kwargs.setdefault('node', 'pdb2')
    return fencing.ensure_fence(CommandRunner(fake), host, state=state, driver='command', device=WWN_PATH,
                                cluster='demo', nodes=['pdb1', 'pdb2', 'pdb3'], check_mode=check_mode, **kwargs)


def test_writer_takes_the_lun_from_the_old_writer_with_a_status_after_each_action(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    result = run(fake, host, 'writer')
    assert fake.actions() == ['status', 'register', 'status', 'fence', 'status']
    assert fake.registrations == {'pdb2': K2} and fake.reserved
    assert result['changed'] and result['fence']['this_host_writer']
    assert result['fence']['registered_nodes'] == ['pdb2'] and result['fence']['tool'] == 'site-fence'
    assert result['actions'] == ['register key %s (pdb2) on %s' % (K2, WWN_PATH),
                                 'preempt and abort key %s (pdb1) on %s' % (K1, WWN_PATH)]
    assert result['diff'] == dict(
        before=dict(registrations=[K1], reservation=dict(key='0x' + '0' * 16, type=7,
                                                         type_name='only registered hosts write')),
        after=dict(registrations=[K2], reservation=dict(key='0x' + '0' * 16, type=7,
                                                        type_name='only registered hosts write')))


def test_placeholders_are_substituted_one_argument_each(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    run(fake, host, 'fenced_out', victim='pdb1')
    fence = [c for c in fake.calls if c['argv'][1] == 'fence'][0]
    assert fence['argv'] == [TOOL, 'fence', '--dev', WWN_PATH, '--cluster', 'demo', '--node', 'pdb2',
                             '--key', K2, '--victim', 'pdb1', '--victim-key', K1, '--lun=']
    assert fence['environ'] == dict(
        POLARDB_FENCE_ACTION='fence', POLARDB_FENCE_CLUSTER='demo', POLARDB_FENCE_NODE='pdb2',
        POLARDB_FENCE_KEY=K2, POLARDB_FENCE_WWID='', POLARDB_FENCE_DEVICE=WWN_PATH, POLARDB_FENCE_VICTIM='pdb1',
        POLARDB_FENCE_VICTIM_KEY=K1)
    status = fake.calls[0]['argv']
    assert status[status.index('--victim') + 1] == '' and status[status.index('--victim-key') + 1] == ''


def test_an_argument_with_shell_characters_reaches_the_command_unchanged(host):
    fake = FakeFenceCommand()
    command = COMMAND + ['--note', '$(reboot); {node} && echo `id` > /tmp/x']
    run(fake, host, 'query', command=command)
    assert fake.calls[0]['argv'][-2:] == ['--note', '$(reboot); pdb2 && echo `id` > /tmp/x']


def test_fenced_out_on_a_free_lun_registers_reserves_and_fences(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=False)
    result = run(fake, host, 'fenced_out', victim='pdb1')
    assert [a for a in fake.actions() if a != 'status'] == ['register', 'reserve', 'fence']
    assert fake.registrations == {'pdb2': K2} and fake.reserved
    assert result['fence']['victim_key'] == K1 and result['fence']['writers'] == [K2]


def test_a_victim_already_fenced_out_changes_nothing(host):
    fake = FakeFenceCommand({'pdb2': K2}, reserved=True)
    result = run(fake, host, 'fenced_out', victim='pdb1')
    assert fake.actions() == ['status'] and not result['changed']


def test_check_mode_only_reads_and_predicts(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    result = run(fake, host, 'writer', check_mode=True)
    assert fake.actions() == ['status']
    assert fake.registrations == {'pdb1': K1}
    assert result['changed'] and result['diff']['after']['registrations'] == [K2]
    assert result['fence']['registrations'] == [K1]   # as it is now


def test_released_gives_the_lun_free_with_the_last_registration(host):
    fake = FakeFenceCommand({'pdb2': K2}, reserved=True)
    result = run(fake, host, 'released')
    assert fake.actions() == ['status', 'release', 'status']
    assert result['fence']['reservation'] is None and result['fence']['writers'] is None


def test_registered_refuses_a_second_writer(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    with pytest.raises(PolarDBError, match='would make this host a writer beside'):
        run(fake, host, 'registered')
    assert set(fake.actions()) == {'status'} and fake.registrations == {'pdb1': K1}


def test_status_may_name_nodes_instead_of_keys(host):
    fake = FakeFenceCommand({'pdb1': K1, 'pdb3': K3}, reserved=True, report_names=True)
    result = run(fake, host, 'query')
    assert result['fence']['registrations'] == sorted([K1, K3], key=lambda k: int(k, 16))
    assert sorted(result['fence']['registered_nodes']) == ['pdb1', 'pdb3']
    assert fencing_command.parse_status('{"registrations": ["pdb1", "0x1"], "reserved": false}', 'demo') \
        .registrations == sorted([P1, 1])


@pytest.mark.parametrize('text', ['', 'ok\n', '[]', '{"registrations": [], "reserved": "yes"}',
                                  '{"registrations": "pdb1", "reserved": true}', '{"reserved": true}',
                                  '{"registrations": [7], "reserved": true}'])
def test_status_output_outside_the_contract_is_refused(text):
    with pytest.raises(PolarDBError, match='status|registration'):
        fencing_command.parse_status(text, 'demo')


@pytest.mark.parametrize('rc, stderr, message', [
    (2, 'RESERVATION CONFLICT from the array\n',
     "the fence command's register for %s on pdb2 was refused as a conflict (exit 2: RESERVATION CONFLICT from the "
     "array): the key %s of pdb2 is not registered or another host holds the LUN" % (WWN_PATH, K2)),
    (3, 'no such LUN\n', "the fence command's register for %s on pdb2 is not supported (exit 3: no such LUN)" % WWN_PATH),
    (1, 'array API: 503 Service Unavailable\n',
     "the fence command's register for %s on pdb2 failed (exit 1): array API: 503 Service Unavailable" % WWN_PATH),
])
def test_exit_codes_are_mapped_and_stderr_reported(host, rc, stderr, message):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    fake.fail['register'] = (rc, '', stderr)
    with pytest.raises(PolarDBError) as e:
        run(fake, host, 'writer')
    assert message in e.value.msg
    assert e.value.details['rc'] == rc and e.value.details['stderr'] == stderr
    assert e.value.details['cmd'][:2] == [TOOL, 'register']
    assert fake.registrations == {'pdb1': K1}   # nothing changed, and the error says what the LUN reports
    assert 'now reports registrations %s' % K1 in e.value.msg


def test_a_failed_fence_removes_the_registration_this_run_added(host):
    fake = FakeFenceCommand({'pdb1': K1}, reserved=True)
    fake.fail['fence'] = (1, '', 'array timeout\n')
    with pytest.raises(PolarDBError, match='array timeout.*registration of %s this run added was removed' % K2):
        run(fake, host, 'fenced_out', victim='pdb1')
    assert fake.actions()[-2:] == ['release', 'status']
    assert fake.registrations == {'pdb1': K1}


def test_a_command_that_runs_too_long_is_ended_by_timeout(host):
    fake = FakeFenceCommand(tools=('site-fence', 'timeout'))
    fake.fail['status'] = (124, '', '')
    with pytest.raises(PolarDBError, match='did not finish within 30 s'):
        run(fake, host, 'query', command_timeout=30)
    assert fake.calls[0]['argv'][:4] == ['/usr/sbin/timeout', '--kill-after=5', '30s', TOOL]


@pytest.mark.parametrize('kwargs, message', [
    (dict(command=['site-fence', '{action}', '{lun}']), r'unknown placeholders \{lun\}'),
    (dict(command=['site-fence', 'status']), r'must pass \{action\}'),
    (dict(command='site-fence {action}'), 'must be a non-empty list of strings'),
    (dict(command=None), 'driver=command needs command'),
    (dict(command=['missing-fence', '{action}']), 'the fence command missing-fence .* is not an executable on pdb2'),
])
def test_commands_that_cannot_work_are_refused_before_running(host, kwargs, message):
    fake = FakeFenceCommand()
    with pytest.raises(PolarDBError, match=message):
        run(fake, host, 'writer', **kwargs)
    assert fake.calls == []


def test_command_is_for_the_command_driver_only(host):
    fake = FakeFenceCommand()
    with pytest.raises(PolarDBError, match='command is for driver=command only'):
        fencing.ensure_fence(CommandRunner(fake), host, state='query', driver='scsi3_pr', device=WWN_PATH,
                             cluster='demo', command=COMMAND)


def test_the_wwid_reaches_the_command_when_the_lun_is_found_by_wwid(host, monkeypatch):
    monkeypatch.setattr(fencing, 'find_lun', lambda runner, h, wwid: dict(device=WWN_PATH, wwid=wwid, multipath=False))
    fake = FakeFenceCommand()
    fencing.ensure_fence(CommandRunner(fake), host, state='query', driver='command', wwid=WWID, cluster='demo',
                         node='pdb2', command=COMMAND)
    assert '--lun=' + WWID in fake.calls[0]['argv']


def test_keys_given_explicitly_need_keys_in_status(host):
    assert fencing_command.parse_status('{"registrations": ["%s"], "reserved": true}' % K3, None).registrations == [P3]
    with pytest.raises(PolarDBError, match='expected a key'):
        fencing_command.parse_status('{"registrations": ["pdb1"], "reserved": true}', None)
