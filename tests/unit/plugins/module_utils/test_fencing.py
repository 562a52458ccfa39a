# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fencing.py against recorded sg_persist / mpathpersist / nvme-cli output: parsing,
the walk to each state, refusals, check mode and the verification after acting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import fencing, fencing_nvme, fencing_scsi
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, PolarDBError
from ansible_collections.polardb.stack.tests.unit.fixtures.fencing.fakes import (
    K1, K2, K3, MPATH, NVME, P1, P2, P3, Lun, Namespace, fixture)
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import WWID, WWN_PATH, FakeHost, FakeModule, sbin

SG = ('sg_persist',)


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2.example.net')
    h.add_device('sdb', (8, 16), node=WWN_PATH)
    h.add_device('dm-0', (253, 0), dm_uuid='mpath-3' + WWID, dm_name='mpatha', slaves=('sdb', 'sdc'), node=MPATH)
    h.add_device('nvme0n1', (259, 0), node=NVME)
    return h


def setup(tools=SG, tool='sg_persist', device=WWN_PATH):
    module = FakeModule(tools)
    return CommandRunner(module), Lun(module, tool, device)


def run(runner, host, state, device=WWN_PATH, **kwargs):
    kwargs.setdefault('cluster', 'demo')
    return fencing.ensure_fence(runner, host, state=state, device=device, **kwargs)


def outs(runner):
    return [c for c in runner.executed if ' --out ' in c or ' resv-register ' in c or ' resv-acquire ' in c
            or ' resv-release ' in c]


# --- keys ------------------------------------------------------------------------------------

def test_keys_derive_from_cluster_and_node():
    assert [fencing.derive_key('demo', n) for n in ('pdb1', 'pdb2', 'pdb3')] == [P1, P2, P3]
    assert fencing.derive_key('other', 'pdb1') != P1
    assert fencing.format_key(P2) == K2 and fencing.parse_key(K2) == P2
    assert fencing.parse_key('0xAB') == 0xab and fencing.format_key(0xab) == '0x00000000000000ab'


@pytest.mark.parametrize('text', ['1234', '0x', '0x0', '0x' + 'f' * 17, 'pdb1'])
def test_keys_must_be_hex_with_0x_and_not_zero(text):
    with pytest.raises(PolarDBError):
        fencing.parse_key(text)


# --- parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize('name, generation, keys', [
    ('sg_persist-read-keys-none.txt', 0, []),
    ('sg_persist-read-keys-pdb1.txt', 1, [P1]),
    ('sg_persist-read-keys-pdb1-pdb2.txt', 3, [P1, P2]),
    ('sg_persist-read-keys-inquiry.txt', 3, [P1, P2]),
    ('mpathpersist-read-keys-none.txt', 0, []),
    ('mpathpersist-read-keys-pdb1-pdb2-two-paths.txt', 6, [P1, P1, P2, P2]),
])
def test_read_keys_of_sg_persist_and_mpathpersist(name, generation, keys):
    assert fencing_scsi.parse_read_keys(fixture(name)) == (generation, keys)


def test_a_key_listed_once_per_path_counts_once():
    _gen, keys = fencing_scsi.parse_read_keys(fixture('mpathpersist-read-keys-pdb1-pdb2-two-paths.txt'))
    assert fencing.PRState(keys).registrations == [P2, P1]  # sorted by value, each once


@pytest.mark.parametrize('text', ['', 'garbage\n', '  PR generation=0x3, 2 registered reservation keys follow:\n    0x1\n'])
def test_read_keys_that_do_not_add_up_are_refused(text):
    with pytest.raises(PolarDBError):
        fencing_scsi.parse_read_keys(text)


@pytest.mark.parametrize('name, reservation', [
    ('sg_persist-read-reservation-none.txt', None),
    ('mpathpersist-read-reservation-none.txt', None),
    ('sg_persist-read-reservation-wear.txt', dict(key=0, type=7)),
    ('mpathpersist-read-reservation-wear.txt', dict(key=0, type=7)),
    ('sg_persist-read-reservation-wear-holder-key.txt', dict(key=P1, type=7)),
    ('sg_persist-read-reservation-we-pdb1.txt', dict(key=P1, type=1)),
    ('sg_persist-read-reservation-obsolete.txt', dict(key=P1, type=10)),
])
def test_read_reservation_of_sg_persist_and_mpathpersist(name, reservation):
    assert fencing_scsi.parse_read_reservation(fixture(name))[1] == reservation


def test_read_reservation_with_an_unknown_type_is_refused():
    text = fixture('sg_persist-read-reservation-wear.txt').replace('all registrants', 'all friends')
    with pytest.raises(PolarDBError, match='unknown reservation type'):
        fencing_scsi.parse_read_reservation(text)


@pytest.mark.parametrize('name, keys, reservation', [
    ('empty', [], None),
    ('pdb1-writer', [P1], dict(key=0, type=5)),
    ('pdb1-pdb2', [P2, P1], dict(key=0, type=5)),
    ('pdb2-registered', [P2], None),
    ('regctls', [P2, P1], dict(key=P1, type=1)),
])
def test_nvme_resv_report_json(name, keys, reservation):
    state = fencing_nvme.parse_resv_report(fixture('nvme-resv-report-%s.json' % name))
    assert (state.registrations, state.reservation) == (keys, reservation)


def test_nvme_keys_printed_signed_by_old_builds_are_read_unsigned():
    text = fixture('nvme-resv-report-pdb1-writer.json').replace(str(P1), str(P1 - (1 << 64)))
    assert fencing_nvme.parse_resv_report(text).registrations == [P1]


def test_nvme_report_that_is_not_json_is_refused():
    with pytest.raises(PolarDBError, match='unexpected nvme resv-report output'):
        fencing_nvme.parse_resv_report('NVMe status: …')


# --- scsi3_pr with sg_persist ------------------------------------------------------------------

def test_fresh_device_to_writer_registers_then_reserves(host):
    runner, lun = setup()
    lun.read('none', 'none')
    lun.register(P2)
    lun.read('pdb2', 'none')
    lun.reserve(P2)
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'writer')
    assert out['changed'] is True
    assert out['actions'] == ['register key %s (pdb2) on %s' % (K2, WWN_PATH),
                              'reserve %s as "Write Exclusive, all registrants" with key %s (pdb2)' % (WWN_PATH, K2)]
    fence = out['fence']
    assert (fence['driver'], fence['tool'], fence['device'], fence['key']) == ('scsi3_pr', 'sg_persist', WWN_PATH, K2)
    assert fence['registrations'] == [K2] and fence['writers'] == [K2]
    assert fence['reservation'] == dict(key='0x0000000000000000', type=7, type_name='Write Exclusive, all registrants')
    assert fence['this_host_writer'] is True and fence['registered_nodes'] == ['pdb2']
    assert out['diff'] == dict(before=dict(registrations=[], reservation=None),
                               after=dict(registrations=[K2], reservation=fence['reservation']))
    assert outs(runner) == [
        '/usr/sbin/sg_persist --no-inquiry --out --register-ignore --param-sark=0x120534175508b10b ' + WWN_PATH,
        '/usr/sbin/sg_persist --no-inquiry --out --reserve --param-rk=0x120534175508b10b --prout-type=7 ' + WWN_PATH]


def test_already_the_writer_changes_nothing(host):
    runner, lun = setup()
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'writer')
    assert out['changed'] is False and out['actions'] == []
    assert out['fence']['this_host_writer'] is True
    assert len(runner.executed) == 2 and outs(runner) == []


def test_writer_takes_over_from_another_writer_with_preempt_and_abort(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'writer', nodes=['pdb1', 'pdb2', 'pdb3'])
    assert out['actions'][-1] == 'preempt and abort key %s (pdb1) on %s' % (K1, WWN_PATH)
    assert outs(runner)[-1] == ('/usr/sbin/sg_persist --no-inquiry --out --preempt-abort --param-rk=0x120534175508b10b '
                                '--param-sark=0xb50ec543f35ed573 --prout-type=7 ' + WWN_PATH)
    assert out['fence']['this_host_writer'] is True and out['fence']['registered_nodes'] == ['pdb2']
    assert out['diff']['before']['registrations'] == [K1]


def test_writer_preempts_every_other_registrant(host):
    runner, lun = setup()
    lun.read('pdb1-pdb2-pdb3', 'wear')
    lun.preempt(P2, P3)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'writer')
    assert [a.split(' on ')[0] for a in out['actions']] == ['preempt and abort key ' + K3, 'preempt and abort key ' + K1]


def test_writer_turns_its_own_write_exclusive_into_all_registrants(host):
    runner, lun = setup()
    lun.read('pdb1', 'we-pdb1')
    lun.preempt(P1, P1)
    lun.read('pdb1', 'wear')
    out = run(runner, host, 'writer', node='pdb1')
    assert out['actions'] == ['change the reservation of %s to "Write Exclusive, all registrants"' % WWN_PATH]
    assert out['fence']['key'] == K1


def test_check_mode_reads_and_predicts_but_runs_no_out_command(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    out = run(runner, host, 'writer', check_mode=True)
    assert out['changed'] is True and len(out['actions']) == 2
    assert outs(runner) == [] and len(runner.executed) == 2
    assert out['fence']['registrations'] == [K1] and out['fence']['this_host_writer'] is False
    assert out['diff']['after'] == dict(registrations=[K2], reservation=dict(
        key='0x0000000000000000', type=7, type_name='Write Exclusive, all registrants'))


def test_check_mode_of_a_fresh_device_predicts_register_and_reserve(host):
    runner, lun = setup()
    lun.read('none', 'none')
    out = run(runner, host, 'fenced_out', victim='pdb1', check_mode=True)
    assert [a.split(' ')[0] for a in out['actions']] == ['register', 'reserve']
    assert outs(runner) == []


def test_fenced_out_removes_the_victim_from_a_survivor(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'fenced_out', victim='pdb1')
    assert out['changed'] is True and out['fence']['victim_key'] == K1
    assert out['fence']['registrations'] == [K2] and out['fence']['writers'] == [K2]


def test_fenced_out_by_key_without_a_reservation_reserves_before_it_preempts(host):
    runner, lun = setup()
    lun.read('pdb1', 'none')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'none')
    lun.reserve(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'fenced_out', victim=K1)
    assert [a.split(' ')[0] for a in out['actions']] == ['register', 'reserve', 'preempt']


def test_a_victim_already_fenced_out_changes_nothing(host):
    runner, lun = setup()
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'fenced_out', victim='pdb1', node='pdb3')
    assert out['changed'] is False and outs(runner) == []


def test_a_host_does_not_fence_itself_out(host):
    runner, _lun = setup()
    with pytest.raises(PolarDBError, match='does not fence itself out'):
        run(runner, host, 'fenced_out', victim='pdb2')
    assert runner.executed == []


def test_released_unregisters_and_the_reservation_goes_with_the_last_registrant(host):
    runner, lun = setup()
    lun.read('pdb2', 'wear')
    lun.unregister(P2)
    lun.read('none', 'none')
    out = run(runner, host, 'released')
    assert out['changed'] is True and out['fence']['reservation'] is None and out['fence']['writers'] is None
    assert outs(runner) == ['/usr/sbin/sg_persist --no-inquiry --out --register --param-rk=0x120534175508b10b '
                            + WWN_PATH]


def test_released_when_not_registered_changes_nothing(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    assert run(runner, host, 'released')['changed'] is False


def test_registered_refuses_to_make_a_second_writer(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    with pytest.raises(PolarDBError, match='would make this host a writer beside 0xb50ec543f35ed573'):
        run(runner, host, 'registered')
    assert outs(runner) == []


def test_registered_without_a_reservation_registers_only(host):
    runner, lun = setup()
    lun.read('none', 'none')
    lun.register(P2)
    lun.read('pdb2', 'none')
    out = run(runner, host, 'registered')
    assert out['changed'] is True and out['fence']['this_host_registered'] is True
    assert out['fence']['this_host_writer'] is False and out['fence']['writers'] is None


def test_query_reads_only(host):
    runner, lun = setup()
    lun.read('pdb1-pdb2', 'wear-holder-key')
    out = run(runner, host, 'query', key='0x120534175508b10b', cluster=None)
    assert out['changed'] is False and outs(runner) == []
    assert out['fence']['reservation']['key'] == K1 and out['fence']['this_host_registered'] is True
    assert out['fence']['this_host_writer'] is False and out['fence']['writers'] == [K2, K1]


def test_verification_failure_rolls_back_the_registration_and_reports_the_device(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb1-pdb2', 'wear')   # the preempt "succeeded" but pdb1 is still there
    lun.unregister(P2)
    lun.read('pdb1', 'wear')
    with pytest.raises(PolarDBError) as e:
        run(runner, host, 'writer')
    assert 'did not change after the last command (preempt)' in e.value.msg
    assert 'the registration of %s this run added was removed again' % K2 in e.value.msg
    assert e.value.msg.endswith('now reports registrations %s, reservation "Write Exclusive, all registrants" key '
                                '0x0000000000000000' % K1)
    assert e.value.details['fence_state']['registrations'] == [K1]
    assert outs(runner)[-1].endswith('--register --param-rk=0x120534175508b10b ' + WWN_PATH)


def test_a_refused_preempt_rolls_back_and_names_the_conflict(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1, rc=24, stderr=fixture('sg_persist-conflict.stderr'))
    lun.read('pdb1-pdb2', 'wear')
    lun.unregister(P2)
    lun.read('pdb1', 'wear')
    with pytest.raises(PolarDBError) as e:
        run(runner, host, 'writer')
    assert e.value.msg.startswith('preempt key 0xb50ec543f35ed573: %s on pdb2.example.net answered RESERVATION '
                                  'CONFLICT (PR out (Preempt and abort): Reservation conflict; sg_persist failed: '
                                  'Reservation conflict)' % WWN_PATH)
    assert e.value.details['rc'] == 24 and e.value.details['done'] == ['register']


def test_a_preempt_refused_because_the_victim_left_meanwhile_goes_on(host):
    runner, lun = setup()
    lun.read('pdb1', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2', 'wear')
    lun.preempt(P2, P1, rc=24, stderr=fixture('sg_persist-conflict.stderr'))
    lun.read('pdb2', 'wear')
    out = run(runner, host, 'writer')
    assert out['fence']['this_host_writer'] is True
    assert 'went on from registrations %s' % K2 in out['warnings'][0]


def test_a_unit_attention_is_retried_once(host):
    runner, lun = setup()
    lun.module.respond(lun.argv('--in', '--read-keys'), rc=6, stderr=fixture('sg_persist-unit-attention.stderr'))
    lun.read('pdb2', 'wear')
    assert run(runner, host, 'query')['fence']['this_host_writer'] is True


def test_missing_sg_persist_names_the_package(host):
    runner, _lun = setup(tools=())
    with pytest.raises(PolarDBError, match='^sg_persist not found on pdb2.example.net: install sg3-utils$'):
        run(runner, host, 'query')


@pytest.mark.parametrize('rc, stderr', [(75, 'sg_persist-enotty.stderr'), (9, 'sg_persist-invalid-op.stderr')])
def test_a_device_without_persistent_reservations_is_refused(host, rc, stderr):
    runner, lun = setup()
    lun.module.respond(lun.argv('--in', '--read-keys'), rc=rc, stderr=fixture(stderr))
    with pytest.raises(PolarDBError) as e:
        run(runner, host, 'writer')
    assert e.value.msg.startswith('%s on pdb2.example.net does not support SCSI-3 persistent reservations (sg_persist:'
                                  % WWN_PATH)
    assert outs(runner) == []


def test_an_array_without_type_7_says_so(host):
    runner, lun = setup()
    lun.read('none', 'none')
    lun.register(P2)
    lun.read('pdb2', 'none')
    lun.reserve(P2, rc=5, stderr=fixture('sg_persist-reserve-illegal.stderr'))
    lun.read('pdb2', 'none')
    lun.unregister(P2)
    lun.read('none', 'none')
    with pytest.raises(PolarDBError, match='does the array support the reservation type "Write Exclusive, all '
                                           'registrants"'):
        run(runner, host, 'writer')


def test_a_missing_device_is_refused_before_any_command(host):
    runner, _lun = setup()
    with pytest.raises(PolarDBError, match='/dev/sdz does not exist on pdb2.example.net'):
        run(runner, host, 'query', device='/dev/sdz')


def test_a_single_path_of_a_multipath_map_is_refused(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2')
    h.add_device('sdc', (8, 32), holders=('dm-1',), node='/dev/sdc')
    h.add_device('dm-1', (253, 1), dm_uuid='mpath-3' + WWID, dm_name='mpatha', slaves=('sdc',), node=MPATH)
    runner, _lun = setup()
    with pytest.raises(PolarDBError, match='/dev/sdc on pdb2 is a path of the multipath map mpatha: fence the map'):
        run(runner, h, 'writer', device='/dev/sdc')
    assert runner.executed == []


def test_the_lun_is_found_by_wwid_as_lun_info_finds_it(host):
    runner, lun = setup(tools=('sg_persist', 'blkid'))
    runner.module.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), rc=2)
    lun.read('pdb2', 'wear')
    out = fencing.ensure_fence(runner, host, state='writer', wwid='3' + WWID.upper(), cluster='demo')
    assert out['fence']['device'] == WWN_PATH and out['changed'] is False


# --- scsi3_pr with mpathpersist on a multipath map ---------------------------------------------

def test_a_multipath_map_is_fenced_through_mpathpersist(host):
    runner, lun = setup(tools=('mpathpersist',), tool='mpathpersist', device=MPATH)
    lun.read('pdb1-two-paths', 'wear')
    lun.register(P2)
    lun.read('pdb1-pdb2-two-paths', 'wear')
    lun.preempt(P2, P1)
    lun.read('pdb2-two-paths', 'wear')
    out = run(runner, host, 'writer', device=MPATH)
    assert out['fence']['tool'] == 'mpathpersist' and out['fence']['registrations'] == [K2]
    assert outs(runner) == [
        '/usr/sbin/mpathpersist --out --register-ignore --param-sark=0x120534175508b10b ' + MPATH,
        '/usr/sbin/mpathpersist --out --preempt-abort --param-rk=0x120534175508b10b --param-sark=0xb50ec543f35ed573 '
        '--prout-type=7 ' + MPATH]


def test_mpathpersist_without_reservation_key_file_explains_multipath_conf(host):
    runner, lun = setup(tools=('mpathpersist',), tool='mpathpersist', device=MPATH)
    lun.read('none', 'none')
    lun.register(P2, rc=1, stdout=fixture('mpathpersist-command-failed.stdout'),
                 stderr=fixture('mpathpersist-key-mismatch.stderr'))
    lun.read('none', 'none')
    with pytest.raises(PolarDBError) as e:
        run(runner, host, 'writer', device=MPATH)
    assert '"reservation_key file"' in e.value.msg and 'multipathd reconfigure' in e.value.msg
    assert "refused the key (mpatha: configured reservation key doesn't match: 0x0; PR out: command failed)" \
        in e.value.msg
    assert 'Usage' not in e.value.msg


def test_mpathpersist_conflict(host):
    runner, lun = setup(tools=('mpathpersist',), tool='mpathpersist', device=MPATH)
    lun.read('pdb1-two-paths', 'wear')
    lun.register(P2, rc=11, stdout=fixture('mpathpersist-conflict.stdout'))
    lun.read('pdb1-two-paths', 'wear')
    with pytest.raises(PolarDBError, match='answered RESERVATION CONFLICT'):
        run(runner, host, 'writer', device=MPATH)


def test_missing_mpathpersist_names_multipath_tools(host):
    runner, _lun = setup(tools=('sg_persist',))
    with pytest.raises(PolarDBError, match='mpathpersist not found on pdb2.example.net: install multipath-tools'):
        run(runner, host, 'query', device=MPATH)


# --- nvme ------------------------------------------------------------------------------------------

def nvme_setup():
    module = FakeModule(('nvme',))
    return CommandRunner(module), Namespace(module)


def test_nvme_fresh_namespace_to_writer(host):
    runner, ns = nvme_setup()
    ns.report('empty')
    ns.cmd('resv-register', '--nrkey=0x120534175508b10b', '--rrega=0', stdout=fixture('nvme-register-success.stdout'))
    ns.report('pdb2-registered')
    ns.cmd('resv-acquire', '--crkey=0x120534175508b10b', '--rtype=5', '--racqa=0',
           stdout=fixture('nvme-acquire-success.stdout'))
    ns.report('pdb2-writer')
    out = run(runner, host, 'writer', device=NVME, driver='nvme')
    assert out['fence']['this_host_writer'] is True
    assert out['fence']['reservation'] == dict(key='0x0000000000000000', type=5,
                                               type_name='Write Exclusive - All Registrants')


def test_nvme_takes_over_with_preempt_and_abort(host):
    runner, ns = nvme_setup()
    ns.report('pdb1-writer')
    ns.cmd('resv-register', '--nrkey=0x120534175508b10b', '--rrega=0', stdout=fixture('nvme-register-success.stdout'))
    ns.report('pdb1-pdb2')
    ns.cmd('resv-acquire', '--crkey=0x120534175508b10b', '--prkey=0xb50ec543f35ed573', '--rtype=5', '--racqa=2',
           stdout=fixture('nvme-acquire-success.stdout'))
    ns.report('pdb2-writer')
    out = run(runner, host, 'fenced_out', device=NVME, driver='nvme', victim='pdb1')
    assert out['changed'] is True and out['fence']['registrations'] == [K2]


def test_nvme_replaces_an_old_key_of_this_host(host):
    runner, ns = nvme_setup()
    ns.report('empty')
    ns.cmd('resv-register', '--nrkey=0x120534175508b10b', '--rrega=0', rc=1, stderr=fixture('nvme-conflict.stderr'))
    ns.cmd('resv-register', '--nrkey=0x120534175508b10b', '--rrega=2', '--iekey',
           stdout=fixture('nvme-register-success.stdout'))
    ns.report('pdb2-registered')
    assert run(runner, host, 'registered', device=NVME, driver='nvme')['fence']['this_host_registered'] is True


def test_nvme_without_the_extended_structure_reads_the_64_bit_one(host):
    runner, ns = nvme_setup()
    ns.cmd('resv-report', '--eds', '--output-format=json', rc=1, stderr=fixture('nvme-invalid-field.stderr'))
    ns.report('regctls', eds=False)
    out = run(runner, host, 'query', device=NVME, driver='nvme')
    assert out['fence']['reservation']['key'] == K1 and out['fence']['writers'] == [K1]


def test_nvme_release(host):
    runner, ns = nvme_setup()
    ns.report('pdb2-writer')
    ns.cmd('resv-register', '--crkey=0x120534175508b10b', '--rrega=1', stdout=fixture('nvme-register-success.stdout'))
    ns.report('empty')
    out = run(runner, host, 'released', device=NVME, driver='nvme')
    assert out['changed'] is True and out['fence']['registrations'] == []


@pytest.mark.parametrize('stderr, message', [
    ('nvme-not-nvme.stderr', 'is not an NVMe namespace (nvme: get-namespace-id: Inappropriate ioctl for device)'),
    ('nvme-invalid-opcode.stderr', 'does not support NVMe reservations (nvme: NVMe status: Invalid Command Opcode'),
])
def test_nvme_refusals(host, stderr, message):
    runner, ns = nvme_setup()
    ns.cmd('resv-report', '--eds', '--output-format=json', rc=1, stderr=fixture(stderr))
    with pytest.raises(PolarDBError) as e:
        run(runner, host, 'writer', device=NVME, driver='nvme')
    assert message in e.value.msg


def test_missing_nvme_cli(host):
    runner = CommandRunner(FakeModule(()))
    with pytest.raises(PolarDBError, match='nvme not found on pdb2.example.net: install nvme-cli'):
        run(runner, host, 'query', device=NVME, driver='nvme')


# --- the rest ----------------------------------------------------------------------------------------

def test_every_driver_has_the_interface():
    for cls in fencing.drivers().values():
        assert issubclass(cls, fencing.FenceDriver)
        assert cls.writer_type in cls.all_registrants_types and cls.writer_type in cls.type_names


@pytest.mark.parametrize('kwargs, message', [
    (dict(state='fenced_out'), 'needs victim'),
    (dict(state='fenced_out', victim='pdb1', cluster=None, key=K2), 'cluster is needed to derive its key'),
    (dict(state='writer', cluster=None), 'cluster .* or key is needed'),
    (dict(state='hold'), 'state must be one of'),
    (dict(state='query', driver='iscsi'), 'driver must be one of'),
])
def test_arguments_that_cannot_work(host, kwargs, message):
    runner = CommandRunner(FakeModule(SG))
    kwargs.setdefault('cluster', 'demo')
    with pytest.raises(PolarDBError, match=message):
        fencing.ensure_fence(runner, host, device=WWN_PATH, **kwargs)


def test_simulation_follows_the_standard():
    drv = fencing_scsi.ScsiPrDriver(None, WWN_PATH)
    wear = dict(key=0, type=7)
    state = fencing.PRState([P1, P2], wear)
    assert fencing.simulate(drv, state, ('preempt', P2, 0)).registrations == [P2]
    assert fencing.simulate(drv, state, ('preempt', P2, P1)).reservation == wear
    we = fencing.PRState([P1, P2], dict(key=P1, type=1))
    after = fencing.simulate(drv, we, ('preempt', P2, P1))
    assert (after.registrations, after.reservation) == ([P2], wear)
    assert fencing.simulate(drv, fencing.PRState([P2], wear), ('unregister', P2)).reservation is None
    assert fencing.simulate(drv, state, ('unregister', P2)).reservation == wear
