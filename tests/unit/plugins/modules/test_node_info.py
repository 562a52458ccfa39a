# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""node_info as Ansible runs it: one run reads the LUN and the packages; a LUN
that is not there is reported in errors, not as a failed module."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
