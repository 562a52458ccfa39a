# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import lun
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import (
    GIB, WWID, WWN_PATH, FakeHost, fake_runner, fixture, sbin)

MPATH_WWID = '600a098038303053453f463045727a61'
XFS_HEAD = b'XFSB' + b'\0' * 60 + b'\x01'


def blkid(runner, device, rc=2, stdout='', stderr=''):
    runner.module.respond(sbin('blkid', '-p', '-o', 'export', device), rc=rc, stdout=stdout, stderr=stderr)


def multipath_ll(runner, wwid, text, rc=0):
    runner.module.respond(sbin('multipath', '-ll', '3' + wwid), rc=rc, stdout=text)


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path)


# --- WWID ----------------------------------------------------------------------------------

@pytest.mark.parametrize('given', [
    WWID, WWID.upper(), '0x' + WWID, '0X' + WWID.upper(), '3' + WWID, ' 3' + WWID + '\n', 'naa.' + WWID,
])
def test_normalise_wwid_accepts_the_usual_forms(given):
    assert lun.normalise_wwid(given) == WWID


def test_normalise_wwid_strips_the_naa_designator_of_a_16_digit_name_too():
    assert lun.normalise_wwid('35000c500a1b2c3d4') == '5000c500a1b2c3d4'
    # 32 digits starting with 3 is a name, not "3" + name
    assert lun.normalise_wwid('3' + WWID[1:]) == '3' + WWID[1:]


@pytest.mark.parametrize('given', ['', 'sdb', '0x', 'wwn-0x' + WWID])
def test_normalise_wwid_rejects_what_is_not_hex(given):
    with pytest.raises(PolarDBError) as e:
        lun.normalise_wwid(given)
    assert "'%s' is not a WWID" % given in e.value.msg


# --- multipath -ll ---------------------------------------------------------------------------

def test_parse_multipath_ll_with_alias():
    (m,) = lun.parse_multipath_ll(fixture('multipath-ll-alias.txt'))
    assert (m['name'], m['wwid'], m['sysfs']) == ('mpatha', '3' + MPATH_WWID, 'dm-0')
    assert (m['vendor'], m['product']) == ('NETAPP', 'LUN C-Mode')
    assert (m['size'], m['features'], m['hwhandler'], m['wp']) == (
        '100G', '3 queue_if_no_path pg_init_retries 50', '1 alua', 'rw')
    assert [(g['policy'], g['prio'], g['status']) for g in m['path_groups']] == [
        ('service-time 0', 50, 'active'), ('service-time 0', 10, 'enabled')]
    paths = lun.multipath_paths(m)
    assert [(p['device'], p['hcil'], p['dev_t'], p['state'], p['checker'], p['online'], p['group_status'])
            for p in paths] == [
        ('sdb', '1:0:0:1', '8:16', 'active', 'ready', 'running', 'active'),
        ('sdd', '2:0:0:1', '8:48', 'active', 'ready', 'running', 'active'),
        ('sdc', '1:0:1:1', '8:32', 'active', 'ready', 'running', 'enabled'),
        ('sde', '2:0:1:1', '8:64', 'active', 'ready', 'running', 'enabled')]


def test_parse_multipath_ll_without_alias_names_the_map_by_its_wwid():
    (m,) = lun.parse_multipath_ll(fixture('multipath-ll-no-alias.txt'))
    assert m['name'] == m['wwid'] == '3' + WWID
    assert (m['sysfs'], m['vendor'], m['product'], m['size']) == ('dm-2', 'LIO-ORG', 'lun-a1', '2.0G')
    assert [p['device'] for p in lun.multipath_paths(m)] == ['sdf', 'sdg']


def test_parse_multipath_ll_failed_pending_and_vanished_paths():
    (m,) = lun.parse_multipath_ll(fixture('multipath-ll-failed-paths.txt'))
    assert m['name'] == 'pdb_demo'
    assert [(p['device'], p['state'], p['checker'], p['online']) for p in lun.multipath_paths(m)] == [
        ('sdaa', 'active', 'ready', 'running'),
        ('sdk', 'failed', 'faulty', 'offline'),
        ('sdab', 'active', 'i/o pending', 'running'),
        (None, 'failed', 'faulty', 'running')]
    assert lun.multipath_paths(m)[3]['hcil'] == '#:#:#:#'


def test_parse_multipath_ll_ignores_messages_and_keeps_maps_apart():
    maps = lun.parse_multipath_ll(fixture('multipath-ll-noise.txt'))
    assert [(m['name'], m['wp'], len(lun.multipath_paths(m))) for m in maps] == [('mpathb', 'ro', 1), ('mpathc', 'rw', 2)]


def test_multipath_map_picks_the_map_of_the_wwid():
    runner = fake_runner(tools=('multipath',))
    multipath_ll(runner, '600a098038303053453f463045727a71', fixture('multipath-ll-noise.txt'))
    m = lun.multipath_map(runner, '600a098038303053453f463045727a71')
    assert (m['name'], m['sysfs']) == ('mpathc', 'dm-4')


def test_multipath_map_none_without_the_tool_or_a_map():
    assert lun.multipath_map(fake_runner(tools=()), WWID) is None
    runner = fake_runner(tools=('multipath',))
    multipath_ll(runner, WWID, '', rc=1)
    assert lun.multipath_map(runner, WWID) is None
    assert runner.executed == ['/usr/sbin/multipath -ll 3' + WWID]


# --- rescan --------------------------------------------------------------------------------

def test_rescan_writes_every_scsi_host_scan_file_then_waits_for_udev(host):
    for h in ('host0', 'host1'):
        host._mk('/sys/class/scsi_host/%s/scan' % h, '')
    runner = fake_runner(tools=('udevadm',))
    runner.module.respond(sbin('udevadm', 'settle', '--timeout=30'))
    assert lun.rescan_scsi_hosts(runner, host) == ['host0', 'host1']
    assert host.read('/sys/class/scsi_host/host1/scan') == '- - -'
    assert runner.executed == ['/usr/sbin/udevadm settle --timeout=30']


def test_rescan_without_scsi_hosts_is_a_no_op(host):
    runner = fake_runner(tools=('udevadm',))
    assert lun.rescan_scsi_hosts(runner, host) == []
    assert runner.executed == []


# --- find_lun: which device -------------------------------------------------------------------

@pytest.mark.parametrize('link,multipath', [
    ('/dev/disk/by-id/wwn-0x' + WWID, False),
    ('/dev/disk/by-id/scsi-3' + WWID, False),
    ('/dev/disk/by-id/dm-uuid-mpath-3' + WWID, True),
    ('/dev/mapper/3' + WWID, True),
    ('/dev/mapper/' + WWID, True),
])
def test_find_lun_by_each_by_id_form(host, link, multipath):
    if multipath:
        host.add_device('dm-2', (254, 2), dm_uuid='mpath-3' + WWID, dm_name='3' + WWID, slaves=('sdf', 'sdg'))
        host.link(link, '/dev/dm-2')
    else:
        host.add_device('sdf', (8, 80))
        host.link(link, '/dev/sdf')
    runner = fake_runner()
    blkid(runner, link)
    found = lun.find_lun(runner, host, '0x' + WWID.upper())
    assert found['device'] == link
    assert found['wwid'] == WWID
    assert found['multipath'] is multipath
    assert found['real_device'] == ('/dev/dm-2' if multipath else '/dev/sdf')
    # without multipath -ll, sysfs still names the paths
    assert found['paths'] == ([dict(device='sdf', state=None), dict(device='sdg', state=None)] if multipath else [])


def test_find_lun_prefers_the_multipath_map_and_reports_its_paths(host):
    host.add_device('sdf', (8, 80), holders=('dm-2',))
    host.add_device('sdg', (8, 96), holders=('dm-2',))
    host.add_device('dm-2', (254, 2), dm_uuid='mpath-3' + WWID, dm_name='3' + WWID, slaves=('sdf', 'sdg'))
    host.link(WWN_PATH, '/dev/sdf')
    host.link('/dev/mapper/3' + WWID, '/dev/dm-2')
    runner = fake_runner(tools=('blkid', 'multipath'))
    multipath_ll(runner, WWID, fixture('multipath-ll-no-alias.txt'))
    blkid(runner, '/dev/mapper/3' + WWID)
    found = lun.find_lun(runner, host, WWID)
    assert (found['device'], found['real_device'], found['multipath']) == ('/dev/mapper/3' + WWID, '/dev/dm-2', True)
    assert [(p['device'], p['state'], p['checker']) for p in found['paths']] == [
        ('sdf', 'active', 'ready'), ('sdg', 'active', 'ready')]
    assert found['multipath_map'] == dict(name='3' + WWID, sysfs='dm-2', vendor='LIO-ORG', product='lun-a1',
                                          size='2.0G', features='0', hwhandler='1 alua', wp='rw')
    # multipath: no looks at single paths only
    runner = fake_runner()
    blkid(runner, WWN_PATH)
    found = lun.find_lun(runner, host, WWID, multipath='no')
    assert (found['device'], found['multipath'], found['paths']) == (WWN_PATH, False, [])


def test_find_lun_uses_the_alias_multipath_names(host):
    host.add_device('sdb', (8, 16), holders=('dm-0',))
    host.add_device('dm-0', (254, 0), dm_uuid='mpath-3' + MPATH_WWID, dm_name='mpatha', slaves=('sdb', 'sdc', 'sdd', 'sde'))
    host.link('/dev/disk/by-id/wwn-0x' + MPATH_WWID, '/dev/sdb')
    host.link('/dev/mapper/mpatha', '/dev/dm-0')
    runner = fake_runner(tools=('blkid', 'multipath'))
    multipath_ll(runner, MPATH_WWID, fixture('multipath-ll-alias.txt'))
    blkid(runner, '/dev/mapper/mpatha')
    found = lun.find_lun(runner, host, '3' + MPATH_WWID)
    assert (found['device'], found['multipath']) == ('/dev/mapper/mpatha', True)
    assert [p['device'] for p in found['paths']] == ['sdb', 'sdd', 'sdc', 'sde']


def test_find_lun_finds_a_map_over_a_single_path_without_multipath_tools(host):
    host.add_device('sdb', (8, 16), holders=('dm-0',))
    host.add_device('dm-0', (254, 0), dm_uuid='mpath-3' + MPATH_WWID, dm_name='mpatha', slaves=('sdb', 'sdc'))
    host.link('/dev/disk/by-id/wwn-0x' + MPATH_WWID, '/dev/sdb')
    host.link('/dev/mapper/mpatha', '/dev/dm-0')
    runner = fake_runner()
    blkid(runner, '/dev/mapper/mpatha')
    found = lun.find_lun(runner, host, MPATH_WWID)
    assert (found['device'], found['multipath'], found['multipath_map']) == (
        '/dev/mapper/mpatha', True, dict(name='mpatha', sysfs='dm-0'))
    assert found['paths'] == [dict(device='sdb', state=None), dict(device='sdc', state=None)]


def test_find_lun_lab_style_bind_mounted_node(host):
    """The lab binds /dev/loopN onto /dev/disk/by-id/wwn-0x…: a node, not a symlink."""
    host.add_device('loop3', (7, 3), node=WWN_PATH)
    runner = fake_runner()
    blkid(runner, WWN_PATH)
    found = lun.find_lun(runner, host, WWID)
    assert (found['device'], found['real_device'], found['multipath']) == (WWN_PATH, '/dev/loop3', False)


def test_find_lun_unknown_wwid_names_wwid_host_and_every_path(host):
    runner = fake_runner(tools=('blkid', 'multipath'))
    multipath_ll(runner, WWID, '', rc=1)
    with pytest.raises(PolarDBError) as e:
        lun.find_lun(runner, host, WWID)
    msg = e.value.msg
    assert msg.startswith('no device with WWID %s on host pdb1 (looked at ' % WWID)
    looked = lun.multipath_candidates(WWID) + lun.single_path_candidates(WWID)
    for path in looked:
        assert path in msg
    assert 'multipath -ll has no map for it' in msg
    assert e.value.details == dict(wwid=WWID, host='pdb1', looked_at=looked)


def test_find_lun_multipath_yes_refuses_a_single_path(host):
    host.add_device('sdf', (8, 80))
    host.link(WWN_PATH, '/dev/sdf')
    with pytest.raises(PolarDBError) as e:
        lun.find_lun(fake_runner(), host, WWID, multipath='yes')
    assert e.value.msg.startswith('no multipath map for WWID %s on host pdb1' % WWID)
    assert 'multipath is not installed' in e.value.msg
    assert 'a single-path device exists at %s' % WWN_PATH in e.value.msg
    assert WWN_PATH not in e.value.details['looked_at']


def test_find_lun_rescans_first(host):
    host._mk('/sys/class/scsi_host/host0/scan', '')
    host.add_device('sdf', (8, 80))
    host.link(WWN_PATH, '/dev/sdf')
    runner = fake_runner()
    blkid(runner, WWN_PATH)
    lun.find_lun(runner, host, WWID, rescan=True)
    assert host.read('/sys/class/scsi_host/host0/scan') == '- - -'


# --- find_lun: what the device is and holds -------------------------------------------------

def test_size_read_only_holders_mountpoints(host):
    host.add_device('loop3', (7, 3), size_bytes=3 * GIB, ro=True, holders=('dm-7',))
    host.add_device('loop4', (7, 4))
    host.link(WWN_PATH, '/dev/loop3')
    host.mount((7, 3), r'/srv/polardb/my\040demo')
    host.mount((7, 4), '/srv/other')
    runner = fake_runner()
    blkid(runner, WWN_PATH, rc=0, stdout=fixture('blkid-xfs-pdb.txt'))
    found = lun.find_lun(runner, host, WWID)
    assert found['size_bytes'] == 3 * GIB
    assert found['read_only'] is True
    assert found['holders'] == ['dm-7']
    assert found['mountpoints'] == ['/srv/polardb/my demo']
    assert found['signature'] == dict(type='xfs', label='pdb-1a2b3c4d', uuid='26db3892-164d-422e-b0c5-4a1980f9ffa9',
                                      usage='filesystem', pttype=None, ptuuid=None)
    assert found['has_data'] is True


def test_blank_device_has_no_data(host):
    host.add_device('loop3', (7, 3), content=b'\0' * (2 * lun.MIB))
    host.link(WWN_PATH, '/dev/loop3')
    runner = fake_runner()
    blkid(runner, WWN_PATH, rc=2)
    found = lun.find_lun(runner, host, WWID)
    assert (found['signature'], found['has_data'], found['mountpoints'], found['holders']) == ({}, False, [], [])
    assert runner.executed == ['/usr/sbin/blkid -p -o export ' + WWN_PATH]


def test_nonzero_bytes_without_signature_are_data(host):
    host.add_device('loop3', (7, 3), content=b'\0' * 4096 + b'\x17')
    runner = fake_runner()
    blkid(runner, '/dev/loop3', rc=2)
    contents = lun.probe_contents(runner, host, '/dev/loop3')
    assert contents == dict(signature={}, has_data=True, nonzero_offset=4096)


def test_nonzero_bytes_after_the_first_mib_are_not_looked_at(host):
    host.add_device('loop3', (7, 3), content=b'\0' * lun.MIB + b'\x17')
    runner = fake_runner()
    blkid(runner, '/dev/loop3', rc=2)
    assert lun.probe_contents(runner, host, '/dev/loop3')['has_data'] is False


def test_ambivalent_blkid_result_is_data(host):
    host.add_device('loop3', (7, 3), content=XFS_HEAD)
    runner = fake_runner()
    blkid(runner, '/dev/loop3', rc=8,
          stderr='blkid: /dev/loop3: ambivalent result (probably more filesystems on the device, '
                 'use wipefs(8) to see more details)')
    contents = lun.probe_contents(runner, host, '/dev/loop3')
    assert contents['signature']['ambivalent'] is True
    assert contents['has_data'] is True


def test_blkid_failure_is_an_error_not_blank(host):
    host.add_device('loop3', (7, 3))
    runner = fake_runner()
    blkid(runner, '/dev/loop3', rc=4, stderr='blkid: error: /dev/loop3: Permission denied')
    with pytest.raises(PolarDBError) as e:
        lun.probe_contents(runner, host, '/dev/loop3')
    assert 'blkid could not probe /dev/loop3 (rc=4): blkid: error: /dev/loop3: Permission denied' == e.value.msg


def test_blkid_export_values_are_unescaped():
    values = lun.parse_blkid_export(fixture('blkid-xfs-label-with-space.txt'))
    assert values['LABEL'] == 'old data'


def test_block_device_errors_name_the_path_and_host(host):
    with pytest.raises(PolarDBError) as e:
        lun.block_device(host, '/dev/sdz')
    assert e.value.msg == '/dev/sdz does not exist on pdb1'
    host._mk('/dev/notablock', b'')
    with pytest.raises(PolarDBError) as e:
        lun.block_device(host, '/dev/notablock')
    assert e.value.msg == '/dev/notablock on pdb1 is not a block device'


def test_host_files_on_a_real_tree(tmp_path):
    """The real adapter, not the fake: paths under root, symlinks resolved inside it."""
    files = lun.HostFiles(str(tmp_path))
    (tmp_path / 'dev' / 'disk' / 'by-id').mkdir(parents=True)
    (tmp_path / 'dev' / 'sdb').write_bytes(b'\0\0\x01')
    os.symlink('../../sdb', str(tmp_path / 'dev' / 'disk' / 'by-id' / 'wwn-0x1'))
    assert files.realpath('/dev/disk/by-id/wwn-0x1') == '/dev/sdb'
    assert files.read_head('/dev/disk/by-id/wwn-0x1', 2) == b'\0\0'
    assert files.glob('/dev/disk/by-id/*') == ['/dev/disk/by-id/wwn-0x1']
    assert files.devno('/dev/sdb') is None  # a plain file is not a block device
    assert files.listdir('/nope') == []
    files.forget_cached('/dev/sdb')


def test_unknown_wwid_after_a_rescan_does_not_suggest_one(host):
    with pytest.raises(PolarDBError) as e:
        lun.find_lun(fake_runner(), host, WWID, rescan=True)
    assert e.value.msg.endswith('; multipath is not installed); is the LUN mapped to this host?')


# --- capacity after the array grew a LUN ----------------------------------------------------

def test_rescan_capacity_rescans_every_scsi_path_then_resizes_the_map(tmp_path):
    host = FakeHost(tmp_path)
    for name in ('sdb', 'sdc'):
        os.makedirs(str(tmp_path / 'sys' / 'class' / 'block' / name / 'device'))
        (tmp_path / 'sys' / 'class' / 'block' / name / 'device' / 'rescan').write_text('')
    runner = fake_runner(tools=('multipathd',))
    runner.module.respond(sbin('multipathd', 'resize', 'map', 'mpatha'))
    done = lun.rescan_capacity(runner, host, {'name': 'dm-0'}, [{'device': 'sdb'}, {'device': 'sdc'}], 'mpatha')
    assert done == ['sdb', 'sdc', 'mpatha']
    assert (tmp_path / 'sys' / 'class' / 'block' / 'sdb' / 'device' / 'rescan').read_text() == '1'


def test_rescan_capacity_of_a_loop_device_needs_nothing(tmp_path):
    runner = fake_runner()
    assert lun.rescan_capacity(runner, FakeHost(tmp_path), {'name': 'loop3'}, [], None) == []
    assert runner.executed == []
