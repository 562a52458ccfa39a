# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.storage_growth import parse_size, plan_expand

GIB = 1024 ** 3


@pytest.mark.parametrize('text, size', [
    ('4G', 4 * GIB), ('4g', 4 * GIB), ('4GiB', 4 * GIB), ('2.5G', int(2.5 * GIB)), ('512M', 512 * 1024 ** 2),
    ('1T', 1024 ** 4), ('2147483648', 2 * GIB), (2147483648, 2 * GIB), ('lots', None), ('-1G', None), ('', None),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


def luns(*sizes):
    return {'pdb%d' % i: {'wwid': 'w%d' % i, 'size_bytes': s} for i, s in enumerate(sizes, 1)}


def test_every_lun_below_the_size_grows_and_one_already_there_does_not():
    plan = plan_expand('4G', luns(2 * GIB, 4 * GIB))
    assert plan == {'bytes': 4 * GIB, 'problems': [], 'nodes': {
        'pdb1': {'wwid': 'w1', 'before': 2 * GIB, 'grow': True},
        'pdb2': {'wwid': 'w2', 'before': 4 * GIB, 'grow': False}}}


def test_a_shrink_is_refused_naming_the_node():
    assert plan_expand('2G', luns(2 * GIB, 3 * GIB))['problems'] == [
        'the LUN of pdb2 has 3 GiB: a LUN is never shrunk (size=2G is 2 GiB)']


def test_a_size_that_is_not_one_is_refused():
    assert plan_expand('big', luns(GIB))['problems'] == [
        "size='big' is not a size: give bytes or a number with K, M, G or T (binary units), e.g. size=4G"]
