# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.node_info import (
    DPKG_FORMAT, installed_packages, listening_ports, read_sections)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.tests.unit.fixtures.lun.fakes import fake_runner


def test_a_section_that_fails_is_reported_and_the_others_are_still_read():
    def missing_lun():
        raise PolarDBError('no device with WWID 6001 on pdb1')

    found, errors = read_sections({'lun': missing_lun, 'instance': lambda: {'running': True}})

    assert found == {'instance': {'running': True}}
    assert errors == {'lun': 'no device with WWID 6001 on pdb1'}


def test_installed_packages_keeps_only_what_dpkg_has_installed():
    runner = fake_runner()
    names = ['postgresql-15', 'postgresql-client-15', 'xfsprogs', 'sg3-utils']
    # rc 1: sg3-utils is unknown to dpkg; xfsprogs was removed but its configuration is kept (rc)
    runner.module.respond(['dpkg-query', '-W', '-f', DPKG_FORMAT] + names, rc=1, stdout=(
        'postgresql-15 15.20-0+deb12u1 ii \n'
        'postgresql-client-15 15.20-0+deb12u1 ii \n'
        'xfsprogs 6.1.0-1 rc \n'), stderr='dpkg-query: no packages found matching sg3-utils\n')

    assert installed_packages(runner, names) == {
        'postgresql-15': '15.20-0+deb12u1', 'postgresql-client-15': '15.20-0+deb12u1'}


def test_no_package_names_asks_dpkg_nothing():
    runner = fake_runner()
    assert installed_packages(runner, []) == {}
    assert runner.executed == []


def test_listening_ports_are_the_sockets_in_listen_state_of_both_tables():
    tcp = ('  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
           '   0: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 1 1\n'
           '   1: 0B4DD50A:1538 0C4DD50A:D2F4 01 00000000:00000000 00:00000000 00000000   104        0 2 1\n'
           '   2: 0B4DD50A:9C40 0C4DD50A:1539 01 00000000:00000000 00:00000000 00000000   104        0 3 1\n')
    tcp6 = ('  sl  local_address                         remote_address                        st tx_queue\n'
            '   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000\n')
    # 0x1538 = 5432 listens; 0x9C40 = 40000 is only a client's port; 0x16 = 22 listens on IPv6
    assert listening_ports([tcp, tcp6]) == {5432, 22}
