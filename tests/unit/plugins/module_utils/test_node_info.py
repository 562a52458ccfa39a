# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.node_info import (
    DPKG_FORMAT, installed_packages, read_sections)
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
