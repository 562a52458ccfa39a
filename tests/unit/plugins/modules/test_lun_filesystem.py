# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it: arguments in, exit_json / fail_json out; the host is
the tmp_path tree and the recorded command output of tests/unit/fixtures/lun."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest


from ansible_collections.polardb.stack.plugins.modules import lun_filesystem
from ansible_collections.polardb.stack.tests.unit.plugins.modules import harness
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import (
    GIB, WWN_PATH, FakeHost, FakeModule, fixture, sbin)

LABEL = 'pdb-1a2b3c4d'
TOOLS = ('blkid', 'wipefs', 'mkfs.xfs', 'xfs_info', 'xfs_growfs')
BLKID = sbin('blkid', '-p', '-o', 'export', WWN_PATH)


def run_module(monkeypatch, host, commands, args):
    monkeypatch.setattr(lun_filesystem, 'HostFiles', lambda: host)
    return harness.run_module(monkeypatch, lun_filesystem.main, args, commands)


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path)
    h.add_device('loop3', (7, 3), size_bytes=3 * GIB, content=b'\x01', node=WWN_PATH)
    return h


def test_creates_on_a_blank_lun_and_returns_the_commands(monkeypatch, tmp_path):
    host = FakeHost(tmp_path)
    host.add_device('loop3', (7, 3), size_bytes=2 * GIB, node=WWN_PATH)
    commands = FakeModule(TOOLS)
    commands.respond(BLKID, rc=2)
    commands.respond(BLKID, stdout=fixture('blkid-xfs-pdb.txt'))
    commands.respond(sbin('mkfs.xfs', '-L', LABEL, WWN_PATH))
    commands.respond(sbin('xfs_info', WWN_PATH), stdout=fixture('xfs_info-2g.txt'))
    out = run_module(monkeypatch, host, commands, dict(device=WWN_PATH, label=LABEL))
    assert out.failed is False
    assert (out.result['changed'], out.result['created'], out.result['grown']) == (True, True, False)
    assert out.result['executed_commands'] == [
        '/usr/sbin/blkid -p -o export ' + WWN_PATH, '/usr/sbin/mkfs.xfs -L %s %s' % (LABEL, WWN_PATH),
        '/usr/sbin/blkid -p -o export ' + WWN_PATH, '/usr/sbin/xfs_info ' + WWN_PATH]
    assert out.result['diff']['after'] == dict(fstype='xfs', label=LABEL, size_bytes=2 * GIB)
    assert 'warnings' not in out.result


def test_refusal_is_fail_json_with_what_was_found(monkeypatch, host):
    commands = FakeModule(TOOLS)
    commands.respond(BLKID, stdout=fixture('blkid-ext4-foreign.txt'))
    out = run_module(monkeypatch, host, commands, dict(device=WWN_PATH, label=LABEL))
    assert out.failed is True
    assert out.result['msg'] == (
        "LUN %s already holds an ext4 file system labelled 'legacy-data' "
        "(uuid f4747113-ecb6-44b0-b8c3-64948bd30424); refusing to format it. "
        "Set force: true to discard its contents." % WWN_PATH)
    assert out.result['found']['type'] == 'ext4'
    assert [c['argv'][0] for c in commands.calls] == ['/usr/sbin/blkid']


def test_check_mode_with_force_plans_and_writes_nothing(monkeypatch, host):
    commands = FakeModule(TOOLS)
    commands.respond(BLKID, stdout=fixture('blkid-ext4-foreign.txt'))
    out = run_module(monkeypatch, host, commands,
                     dict(device=WWN_PATH, label=LABEL, force=True, _ansible_check_mode=True))
    assert (out.failed, out.result['changed'], out.result['created']) == (False, True, True)
    assert out.result['executed_commands'] == ['/usr/sbin/blkid -p -o export ' + WWN_PATH]


def test_grow_warning_goes_through_module_warn(monkeypatch, host):
    commands = FakeModule(TOOLS)
    commands.respond(BLKID, stdout=fixture('blkid-xfs-pdb.txt'))
    commands.respond(sbin('xfs_info', WWN_PATH), stdout=fixture('xfs_info-2g.txt'))
    out = run_module(monkeypatch, host, commands, dict(device=WWN_PATH, label=LABEL))
    assert (out.failed, out.result['changed']) == (False, False)
    assert len(out.warnings) == 1 and 'is not mounted' in out.warnings[0]


def test_label_too_long_for_xfs(monkeypatch, host):
    out = run_module(monkeypatch, host, FakeModule(TOOLS), dict(device=WWN_PATH, label='pdb-1a2b3c4d5'))
    assert out.failed is True
    assert out.result['msg'] == "label 'pdb-1a2b3c4d5' is 13 characters long; xfs labels hold at most 12"
