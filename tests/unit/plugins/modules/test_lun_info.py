# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module as Ansible runs it: arguments in, exit_json / fail_json out; the host is
the tmp_path tree and the recorded command output of tests/unit/fixtures/lun."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest


from ansible_collections.polardb.stack.plugins.modules import lun_info
from ansible_collections.polardb.stack.tests.unit.plugins.modules import harness
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import (
    WWID, WWN_PATH, FakeHost, FakeModule, fixture, sbin)


def run_module(monkeypatch, host, commands, args):
    monkeypatch.setattr(lun_info, 'HostFiles', lambda: host)
    return harness.run_module(monkeypatch, lun_info.main, args, commands)


@pytest.fixture
def host(tmp_path):
    h = FakeHost(tmp_path, hostname='pdb2')
    h.add_device('loop3', (7, 3), content=b'\0' * 4096, node=WWN_PATH)
    return h


def test_reports_the_lun(monkeypatch, host):
    commands = FakeModule()
    commands.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), stdout=fixture('blkid-xfs-pdb.txt'))
    out = run_module(monkeypatch, host, commands, dict(wwid='3' + WWID.upper()))
    assert out.failed is False
    assert out.result['changed'] is False
    lun = out.result['lun']
    assert (lun['wwid'], lun['device'], lun['real_device'], lun['multipath']) == (WWID, WWN_PATH, '/dev/loop3', False)
    assert (lun['signature']['label'], lun['has_data']) == ('pdb-1a2b3c4d', True)


def test_unknown_wwid_fails_naming_host_and_paths(monkeypatch, host):
    other = '600140500000000000000000000000ff'
    out = run_module(monkeypatch, host, FakeModule(), dict(wwid=other))
    assert out.failed is True
    assert out.result['msg'].startswith('no device with WWID %s on host pdb2 (looked at /dev/mapper/3%s' % (other, other))
    assert out.result['looked_at'][-1] == '/dev/disk/by-id/scsi-3' + other


def test_bad_multipath_choice_is_rejected_by_the_argument_spec(monkeypatch, host):
    out = run_module(monkeypatch, host, FakeModule(), dict(wwid=WWID, multipath='sometimes'))
    assert out.failed is True
    assert 'multipath' in out.result['msg'] and 'auto' in out.result['msg']


def test_yaml_boolean_yes_means_the_yes_choice(monkeypatch, host):
    """`multipath: yes` unquoted arrives as a boolean; the choice is still 'yes'."""
    out = run_module(monkeypatch, host, FakeModule(), dict(wwid=WWID, multipath=True))
    assert out.failed is True
    assert out.result['msg'].startswith('no multipath map for WWID %s on host pdb2' % WWID)


def test_check_mode_still_reports(monkeypatch, host):
    commands = FakeModule()
    commands.respond(sbin('blkid', '-p', '-o', 'export', WWN_PATH), rc=2)
    out = run_module(monkeypatch, host, commands, dict(wwid=WWID, _ansible_check_mode=True))
    assert (out.failed, out.result['lun']['has_data']) == (False, False)
