# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_info as Ansible runs it: one run reads the LUN and the packages; a LUN
that is not there is reported in errors, not as a failed module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.node_info import DPKG_FORMAT
from ansible_collections.polardb.stack.plugins.modules import node_info
from ansible_collections.polardb.stack.tests.unit.plugins.modules import harness
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import (
    WWID, WWN_PATH, FakeHost, FakeModule, fixture, sbin)


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2')
    h.add_device('loop3', (7, 3), content=b'\0' * 4096, node=WWN_PATH)
    return h


def run_module(monkeypatch, host, commands, args):
    monkeypatch.setattr(node_info, 'HostFiles', lambda: host)
    return harness.run_module(monkeypatch, node_info.main, args, commands)


def test_reads_the_lun_and_the_packages_in_one_run(monkeypatch, host):
    commands = FakeModule()
    commands.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), stdout=fixture('blkid-xfs-pdb.txt'))
    commands.respond(['dpkg-query', '-W', '-f', DPKG_FORMAT, 'postgresql-15'], stdout='postgresql-15 15.20-0+deb12u1 ii \n')

    out = run_module(monkeypatch, host, commands, dict(lun=dict(wwid=WWID), packages=['postgresql-15']))

    assert (out.failed, out.result['changed'], out.result['errors']) == (False, False, {})
    assert (out.result['lun']['device'], out.result['lun']['signature']['label']) == (WWN_PATH, 'pdb-1a2b3c4d')
    assert out.result['packages'] == {'postgresql-15': '15.20-0+deb12u1'}
    assert 'instance' not in out.result and 'fence' not in out.result


def test_an_unknown_wwid_is_reported_in_errors_and_the_module_does_not_fail(monkeypatch, host):
    other = '600140500000000000000000000000ff'

    out = run_module(monkeypatch, host, FakeModule(), dict(lun=dict(wwid=other)))

    assert out.failed is False
    assert 'lun' not in out.result
    assert out.result['errors']['lun'].startswith('no device with WWID %s on host pdb2' % other)


@pytest.mark.parametrize('info, size, grow', [
    ('xfs_info-2g.txt', 2 * 1024 ** 3, False),
    ('xfs_info-2g.txt', 3 * 1024 ** 3, True),
])
def test_a_mounted_file_system_is_measured_against_its_lun(monkeypatch, tmp_path, info, size, grow):
    host = FakeHost(tmp_path, hostname='pdb2')
    host.add_device('loop3', (7, 3), size_bytes=size, content=b'\0' * 4096, node=WWN_PATH)
    host.mount((7, 3), '/srv/polardb/demo')
    commands = FakeModule(tools=('blkid', 'xfs_info'))
    commands.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), stdout=fixture('blkid-xfs-pdb.txt'))
    commands.respond(sbin('xfs_info', '/srv/polardb/demo'), stdout=fixture(info))

    out = run_module(monkeypatch, host, commands, dict(lun=dict(wwid=WWID)))

    assert out.result['lun']['mountpoints'] == ['/srv/polardb/demo']
    fs = out.result['lun']['filesystem']
    assert fs['grow_needed'] is grow and 2 * 1024 ** 3 - 64 * 1024 ** 2 < fs['size_bytes'] <= 2 * 1024 ** 3
    assert fs['mountpoint'] == '/srv/polardb/demo' and fs['root'] is None    # no such directory in the fake tree
    (tmp_path / 'srv' / 'polardb' / 'demo').mkdir(parents=True)
    (tmp_path / 'srv' / 'polardb' / 'demo').chmod(0o755)
    out = run_module(monkeypatch, host, commands, dict(lun=dict(wwid=WWID)))
    assert out.result['lun']['filesystem']['root'] == {'uid': os.getuid(), 'gid': os.getgid(), 'mode': '0755'}


def test_an_unmounted_or_unreadable_file_system_is_not_measured(monkeypatch, host):
    commands = FakeModule(tools=('blkid', 'xfs_info'))
    commands.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), stdout=fixture('blkid-xfs-pdb.txt'))
    out = run_module(monkeypatch, host, commands, dict(lun=dict(wwid=WWID)))
    assert out.result['lun']['filesystem'] is None and out.result['errors'] == {}
    assert not any('xfs_info' in ' '.join(c['argv']) for c in commands.calls)
    # mounted, but xfs_info fails: unknown, and the LUN is still read
    host.mount((7, 3), '/srv/polardb/demo')
    commands.respond(sbin('xfs_info', '/srv/polardb/demo'), rc=1, stderr='xfs_info: not an XFS filesystem')
    out = run_module(monkeypatch, host, commands, dict(lun=dict(wwid=WWID)))
    fs = out.result['lun']['filesystem']
    assert (fs['size_bytes'], fs['grow_needed']) == (None, None) and out.result['lun']['mountpoints'] == ['/srv/polardb/demo']
    assert any('xfs_info' in ' '.join(c['argv']) for c in commands.calls)
