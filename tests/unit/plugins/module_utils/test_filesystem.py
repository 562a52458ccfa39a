# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import filesystem
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import (
    GIB, WWN_PATH, FakeHost, fake_runner, fixture, sbin)

DEV = WWN_PATH
LABEL = 'pdb-1a2b3c4d'
LOOP = (7, 3)
TOOLS = ('blkid', 'wipefs', 'mkfs.xfs', 'xfs_info', 'xfs_growfs', 'mkfs.ext4', 'dumpe2fs', 'resize2fs')
BLKID = sbin('blkid', '-p', '-o', 'export', DEV)
WRITERS = ('wipefs', 'mkfs', 'xfs_growfs', 'resize2fs')


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path)


def lun_device(host, size_bytes=2 * GIB, content=b'', **kwargs):
    """The LUN as the lab presents it: /dev/loop3 behind the by-id link."""
    host.add_device('loop3', LOOP, size_bytes=size_bytes, content=content, **kwargs)
    host.link(DEV, '/dev/loop3')


def runner_with(*blkid_results):
    """A runner whose blkid returns the given fixture names in turn (None: nothing found)."""
    runner = fake_runner(TOOLS)
    for name in blkid_results:
        if name is None:
            runner.module.respond(BLKID, rc=2)
        else:
            runner.module.respond(BLKID, stdout=fixture(name))
    return runner


def ran(runner):
    return [' '.join(c['argv']).replace('/usr/sbin/', '') for c in runner.module.calls]


def writes(runner):
    return [c for c in ran(runner) if c.startswith(WRITERS)]


# --- create -----------------------------------------------------------------------------------

def test_blank_device_gets_mkfs_xfs_without_force_flag(host):
    lun_device(host, content=b'\0' * 4096)
    runner = runner_with(None, 'blkid-xfs-pdb.txt')
    runner.module.respond(sbin('mkfs.xfs', '-L', LABEL, DEV), stdout='meta-data=...')
    runner.module.respond(sbin('xfs_info', DEV), stdout=fixture('xfs_info-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert ran(runner) == ['blkid -p -o export ' + DEV, 'mkfs.xfs -L %s %s' % (LABEL, DEV),
                           'blkid -p -o export ' + DEV, 'xfs_info ' + DEV]
    assert (result['changed'], result['created'], result['grown']) == (True, True, False)
    assert result['filesystem'] == dict(device=DEV, fstype='xfs', label=LABEL,
                                        uuid='26db3892-164d-422e-b0c5-4a1980f9ffa9',
                                        size_bytes=2 * GIB, device_size_bytes=2 * GIB)
    assert result['diff'] == dict(before=dict(fstype=None, label=None, size_bytes=None),
                                  after=dict(fstype='xfs', label=LABEL, size_bytes=2 * GIB))
    # stdin is a pipe with "n": mkfs can never wait for, or get, a "yes"
    assert runner.module.calls[1]['data'] == 'n'


def test_blank_device_gets_mkfs_ext4(host):
    lun_device(host)
    runner = runner_with(None, 'blkid-ext4-pdb.txt')
    runner.module.respond(sbin('mkfs.ext4', '-q', '-L', LABEL, DEV))
    runner.module.respond(sbin('dumpe2fs', '-h', DEV), stdout=fixture('dumpe2fs-h-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype='ext4')
    assert writes(runner) == ['mkfs.ext4 -q -L %s %s' % (LABEL, DEV)]
    assert result['filesystem']['uuid'] == '764270aa-45a3-4a3a-af6e-bbbbd6f96a8a'
    assert result['filesystem']['size_bytes'] == 2 * GIB


def test_check_mode_plans_mkfs_and_runs_none(host):
    lun_device(host)
    runner = runner_with(None)
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, check_mode=True)
    assert (result['changed'], result['created']) == (True, True)
    assert ran(runner) == ['blkid -p -o export ' + DEV]
    assert result['filesystem']['uuid'] is None
    assert result['diff']['after'] == dict(fstype='xfs', label=LABEL, size_bytes=2 * GIB)


def test_mkfs_that_leaves_something_else_is_an_error(host):
    lun_device(host)
    runner = runner_with(None, None)
    runner.module.respond(sbin('mkfs.xfs', '-L', LABEL, DEV))
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert e.value.msg == 'mkfs.xfs on %s finished, yet blkid now finds nothing' % DEV


def test_mkfs_failure_is_reported_with_its_output(host):
    lun_device(host)
    runner = runner_with(None)
    runner.module.respond(sbin('mkfs.xfs', '-L', LABEL, DEV), rc=1,
                          stderr='mkfs.xfs: %s appears to contain an existing filesystem (ext4).\n' % DEV)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert 'appears to contain an existing filesystem (ext4)' in e.value.msg
    assert e.value.details['rc'] == 1


# --- ours ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('fstype,blkid_out,size_cmd,size_out', [
    ('xfs', 'blkid-xfs-pdb.txt', ('xfs_info', DEV), 'xfs_info-2g.txt'),
    ('ext4', 'blkid-ext4-pdb.txt', ('dumpe2fs', '-h', DEV), 'dumpe2fs-h-2g.txt'),
])
def test_ours_is_no_change(host, fstype, blkid_out, size_cmd, size_out):
    lun_device(host, content=b'XFSB')
    runner = runner_with(blkid_out)
    runner.module.respond(sbin(*size_cmd), stdout=fixture(size_out))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype=fstype)
    assert (result['changed'], result['created'], result['grown']) == (False, False, False)
    assert writes(runner) == []
    assert result['diff']['before'] == result['diff']['after'] == dict(fstype=fstype, label=LABEL, size_bytes=2 * GIB)


# --- refusals: nothing written --------------------------------------------------------------------

@pytest.mark.parametrize('blkid_out,fstype,found', [
    ('blkid-ext4-foreign.txt', 'xfs',
     "an ext4 file system labelled 'legacy-data' (uuid f4747113-ecb6-44b0-b8c3-64948bd30424)"),
    ('blkid-ext4-foreign.txt', 'ext4',
     "an ext4 file system labelled 'legacy-data' (uuid f4747113-ecb6-44b0-b8c3-64948bd30424)"),
    ('blkid-gpt.txt', 'xfs', 'a gpt partition table (id 613224b1-1ee7-5846-abe5-4d1a4ba7c756)'),
    ('blkid-xfs-pdb-and-dos.txt', 'xfs',
     "an xfs file system labelled 'pdb-1a2b3c4d' (uuid f2cbc24a-4319-41c7-9b57-f5f2ae53205e) "
     "and a dos partition table (id 5ee1cf5e)"),
    ('blkid-lvm2-member.txt', 'xfs',
     'an LVM2_member raid signature without a label (uuid Zb1o4e-0s3L-Xg0c-bY1t-2dWq-q9Qe-4kXbTr)'),
])
def test_foreign_signatures_are_refused_before_any_write(host, blkid_out, fstype, found):
    lun_device(host, content=b'\x01')
    runner = runner_with(blkid_out)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype=fstype)
    assert e.value.msg == ('LUN %s already holds %s; refusing to format it. '
                           'Set force: true to discard its contents.' % (DEV, found))
    assert ran(runner) == ['blkid -p -o export ' + DEV]


def test_our_label_on_another_fstype_is_refused_with_a_hint(host):
    lun_device(host, content=b'\x01')
    runner = runner_with('blkid-ext4-pdb.txt')
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype='xfs')
    assert "It carries this cluster's label but is not xfs." in e.value.msg
    assert writes(runner) == []


def test_nonzero_bytes_without_signature_are_refused(host):
    lun_device(host, content=b'\0' * 513 + b'PGDATA')
    runner = runner_with(None)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert e.value.msg == ('LUN %s already holds data no signature matches (a non-zero byte at offset 513 '
                           'of the first MiB); refusing to format it. Set force: true to discard its contents.' % DEV)
    assert e.value.details['nonzero_offset'] == 513
    assert writes(runner) == []


def test_ambivalent_result_is_refused(host):
    lun_device(host, content=b'XFSB')
    runner = fake_runner(TOOLS)
    runner.module.respond(BLKID, rc=8, stderr='blkid: ambivalent result')
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert 'already holds several file system signatures at once' in e.value.msg
    assert writes(runner) == []


def test_blank_but_held_device_is_refused(host):
    lun_device(host, holders=('dm-0',))
    runner = runner_with(None)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert e.value.msg == 'LUN %s is in use (held by dm-0); refusing to format it.' % DEV
    assert writes(runner) == []


def test_blank_but_read_only_device_is_refused(host):
    lun_device(host, ro=True)
    runner = runner_with(None)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert e.value.msg == 'LUN %s is read-only on pdb1; cannot format it.' % DEV
    assert writes(runner) == []


@pytest.mark.parametrize('fstype,label,error', [
    ('xfs', 'pdb-1a2b3c4d-x', "label 'pdb-1a2b3c4d-x' is 14 characters long; xfs labels hold at most 12"),
    ('ext4', 'pdb-1a2b3c4d-012x', "label 'pdb-1a2b3c4d-012x' is 17 characters long; ext4 labels hold at most 16"),
    ('xfs', 'pdb 1a2b', "label 'pdb 1a2b' must be non-empty printable ASCII without blanks"),
    ('xfs', '', "label '' must be non-empty printable ASCII without blanks"),
    ('btrfs', LABEL, "fstype must be one of xfs, ext4, not 'btrfs'"),
])
def test_label_and_fstype_are_validated_before_looking(host, fstype, label, error):
    runner = fake_runner(TOOLS)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, label, fstype=fstype)
    assert e.value.msg == error
    assert ran(runner) == []


def test_ext4_takes_a_16_character_label(host):
    filesystem.validate('ext4', 'pdb-1a2b3c4d-012')


# --- force ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('fstype,mkfs,blkid_after,size_cmd,size_out', [
    ('xfs', ('mkfs.xfs', '-f', '-L', LABEL, DEV), 'blkid-xfs-pdb.txt', ('xfs_info', DEV), 'xfs_info-2g.txt'),
    ('ext4', ('mkfs.ext4', '-q', '-F', '-L', LABEL, DEV), 'blkid-ext4-pdb.txt', ('dumpe2fs', '-h', DEV),
     'dumpe2fs-h-2g.txt'),
])
def test_force_wipes_then_formats(host, fstype, mkfs, blkid_after, size_cmd, size_out):
    lun_device(host, content=b'\x01')
    runner = runner_with('blkid-ext4-foreign.txt', blkid_after)
    runner.module.respond(sbin('wipefs', '-a', DEV), stdout='%s: 2 bytes were erased at offset 0x00000438 (ext4): 53 ef\n' % DEV)
    runner.module.respond(sbin(*mkfs))
    runner.module.respond(sbin(*size_cmd), stdout=fixture(size_out))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype=fstype, force=True)
    assert writes(runner) == ['wipefs -a ' + DEV, ' '.join(mkfs)]
    assert (result['changed'], result['created']) == (True, True)
    assert result['diff']['before'] == dict(fstype='ext4', label='legacy-data', size_bytes=None)


def test_force_on_a_blank_device_keeps_mkfs_own_guard(host):
    lun_device(host)
    runner = runner_with(None, 'blkid-xfs-pdb.txt')
    runner.module.respond(sbin('mkfs.xfs', '-L', LABEL, DEV))
    runner.module.respond(sbin('xfs_info', DEV), stdout=fixture('xfs_info-2g.txt'))
    filesystem.ensure_filesystem(runner, host, DEV, LABEL, force=True)
    assert writes(runner) == ['mkfs.xfs -L %s %s' % (LABEL, DEV)]


def test_force_in_check_mode_runs_no_wipefs(host):
    lun_device(host, content=b'\x01')
    runner = runner_with('blkid-ext4-foreign.txt')
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, force=True, check_mode=True)
    assert (result['changed'], result['created']) == (True, True)
    assert writes(runner) == []


def test_force_does_not_touch_a_mounted_device(host):
    lun_device(host, content=b'\x01')
    host.mount(LOOP, '/var/lib/legacy', fstype='ext4')
    runner = runner_with('blkid-ext4-foreign.txt')
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL, force=True)
    assert e.value.msg == ('LUN %s is in use (mounted at /var/lib/legacy); refusing to format it '
                           'even with force: true.' % DEV)
    assert writes(runner) == []


def test_force_does_not_touch_a_device_with_a_mounted_partition(host):
    lun_device(host, content=b'\x01')
    host.add_partition('loop3', 'loop3p1', (259, 0))
    host.mount((259, 0), '/boot/efi', fstype='vfat')
    runner = runner_with('blkid-gpt.txt')
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL, force=True)
    assert 'mounted at /boot/efi (partition loop3p1)' in e.value.msg
    assert writes(runner) == []


# --- grow -----------------------------------------------------------------------------------------

def test_grow_xfs_online_at_its_mountpoint(host):
    lun_device(host, size_bytes=3 * GIB, content=b'XFSB')
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    info = sbin('xfs_info', '/srv/polardb/demo')
    runner.module.respond(info, stdout=fixture('xfs_info-2g.txt'))
    runner.module.respond(info, stdout=fixture('xfs_info-3g.txt'))
    runner.module.respond(sbin('xfs_growfs', '/srv/polardb/demo'), stdout=fixture('xfs_growfs-2g-to-3g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, mountpoint='/srv/polardb/demo')
    assert writes(runner) == ['xfs_growfs /srv/polardb/demo']
    assert (result['changed'], result['created'], result['grown']) == (True, False, True)
    assert result['diff'] == dict(before=dict(fstype='xfs', label=LABEL, size_bytes=2 * GIB),
                                  after=dict(fstype='xfs', label=LABEL, size_bytes=3 * GIB))


def test_grow_ext4_online_finds_the_mountpoint_itself(host):
    lun_device(host, size_bytes=3 * GIB)
    host.mount(LOOP, '/srv/polardb/demo', fstype='ext4')
    runner = runner_with('blkid-ext4-pdb.txt')
    dump = sbin('dumpe2fs', '-h', DEV)
    runner.module.respond(dump, stdout=fixture('dumpe2fs-h-2g.txt'))
    runner.module.respond(dump, stdout=fixture('dumpe2fs-h-3g.txt'))
    runner.module.respond(sbin('resize2fs', DEV), stdout='The filesystem on %s is now 786432 (4k) blocks long.\n' % DEV)
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, fstype='ext4')
    assert writes(runner) == ['resize2fs ' + DEV]
    assert (result['grown'], result['filesystem']['size_bytes']) == (True, 3 * GIB)


def test_no_grow_when_the_device_is_only_a_little_larger(host):
    lun_device(host, size_bytes=2 * GIB + filesystem.GROW_THRESHOLD)
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture('xfs_info-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert (result['changed'], result['grown']) == (False, False)
    assert writes(runner) == []


def test_no_grow_when_not_asked(host):
    lun_device(host, size_bytes=3 * GIB)
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture('xfs_info-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, grow=False)
    assert (result['changed'], result['grown']) == (False, False)
    assert writes(runner) == []


def test_grow_needed_but_not_mounted_warns(host):
    lun_device(host, size_bytes=3 * GIB)
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', DEV), stdout=fixture('xfs_info-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, mountpoint='/srv/polardb/demo')
    assert (result['changed'], result['grown']) == (False, False)
    assert result['warnings'] == ["the file system on %s spans %d of the device's %d bytes but is not mounted: "
                                  "it is grown online, after it is mounted" % (DEV, 2 * GIB, 3 * GIB)]
    assert writes(runner) == []


def test_grow_in_check_mode_runs_no_growfs(host):
    lun_device(host, size_bytes=3 * GIB)
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture('xfs_info-2g.txt'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL, check_mode=True)
    assert (result['changed'], result['grown'], result['filesystem']['size_bytes']) == (True, True, 3 * GIB)
    assert writes(runner) == []


def test_grow_at_another_mountpoint_is_an_error(host):
    lun_device(host, size_bytes=3 * GIB)
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture('xfs_info-2g.txt'))
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL, mountpoint='/mnt')
    assert e.value.msg == '/dev/loop3 is mounted at /srv/polardb/demo, not at /mnt'
    assert writes(runner) == []


def test_grow_that_changes_nothing_is_not_a_change(host):
    lun_device(host, size_bytes=3 * GIB)
    host.mount(LOOP, '/srv/polardb/demo')
    runner = runner_with('blkid-xfs-pdb.txt')
    runner.module.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture('xfs_info-2g.txt'))
    runner.module.respond(sbin('xfs_growfs', '/srv/polardb/demo'))
    result = filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert (result['changed'], result['grown']) == (False, False)
    assert result['warnings'] == ['growing the file system on %s left it at %d bytes' % (DEV, 2 * GIB)]


# --- parsers -------------------------------------------------------------------------------------

def test_sizes_from_recorded_tool_output():
    assert filesystem.parse_xfs_info(fixture('xfs_info-3g.txt')) == 3 * GIB
    assert filesystem.parse_dumpe2fs(fixture('dumpe2fs-h-3g.txt')) == 3 * GIB
    with pytest.raises(PolarDBError):
        filesystem.parse_xfs_info('xfs_info: /dev/loop3 is not a mounted XFS filesystem')


def test_missing_tool_names_its_package(host):
    lun_device(host)
    runner = fake_runner(('blkid',))
    runner.module.respond(BLKID, rc=2)
    with pytest.raises(PolarDBError) as e:
        filesystem.ensure_filesystem(runner, host, DEV, LABEL)
    assert e.value.msg == 'mkfs.xfs is not installed on this host (package xfsprogs)'
