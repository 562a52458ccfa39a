# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etcd v3 gateway client over the in-memory gateway (fake_etcd)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.etcd import Etcd, EtcdError, prefix_end

from .fake_etcd import FakeEtcd


@pytest.fixture
def gw():
    return FakeEtcd()


@pytest.fixture
def etcd(gw):
    return Etcd(gw.endpoints, timeout=1, transport=gw)


def test_prefix_end():
    assert prefix_end(b'/a/') == b'/a0'
    assert prefix_end(b'a\xff') == b'b'
    assert prefix_end(b'\xff\xff') == b'\0'


def test_put_get_and_prefix(etcd):
    etcd.put('/p/c/members/n1', {'role': 'primary'})
    etcd.put('/p/c/members/n2', 'text')
    etcd.put('/p/d/members/n1', 'other cluster')
    assert json.loads(etcd.get('/p/c/members/n1')['value']) == {'role': 'primary'}
    rev, kvs = etcd.get_prefix('/p/c/')
    assert [kv['key'] for kv in kvs] == ['/p/c/members/n1', '/p/c/members/n2']
    assert rev >= 4
    assert etcd.get('/p/c/nothing') is None
    assert etcd.delete('/p/c/', prefix=True) == 2
    assert etcd.get_prefix('/p/c/')[1] == []
    assert etcd.get('/p/d/members/n1')['value'] == 'other cluster'


def test_create_only_once_and_reports_the_holder(etcd):
    assert etcd.create('/k', {'node': 'a'}) == (True, None)
    created, now = etcd.create('/k', {'node': 'b'})
    assert not created
    assert json.loads(now['value']) == {'node': 'a'}


def test_replace_and_delete_if_compare_the_revision(etcd):
    etcd.put('/k', 'v1')
    kv = etcd.get('/k')
    assert etcd.replace('/k', 'v2', kv['mod_revision'])
    assert not etcd.replace('/k', 'v3', kv['mod_revision'])
    assert etcd.get('/k')['value'] == 'v2'
    assert not etcd.delete_if('/k', kv['mod_revision'])
    assert etcd.delete_if('/k', etcd.get('/k')['mod_revision'])
    assert etcd.get('/k') is None


def test_a_lease_keeps_its_keys_until_it_expires(gw, etcd):
    lease = etcd.grant(10)
    etcd.put('/k', 'v', lease=lease)
    gw.clock.now += 8
    assert etcd.keepalive(lease) == 10
    gw.clock.now += 8
    assert etcd.get('/k')['lease'] == lease
    gw.clock.now += 11
    assert etcd.get('/k') is None
    assert etcd.keepalive(lease) == 0
    etcd.revoke(lease)  # already gone: no error


def test_revoke_drops_the_keys_now(etcd):
    lease = etcd.grant(10)
    etcd.put('/k', 'v', lease=lease)
    etcd.revoke(lease)
    assert etcd.get('/k') is None


def test_an_endpoint_that_does_not_answer_is_skipped_and_the_next_remembered(gw, etcd):
    gw.down.add(gw.endpoints[0])
    etcd.put('/k', 'v')
    assert gw.calls[-2:] == [(gw.endpoints[0], '/v3/kv/put'), (gw.endpoints[1], '/v3/kv/put')]
    etcd.get('/k')
    assert gw.calls[-1] == (gw.endpoints[1], '/v3/kv/range')


def test_no_endpoint_answering_is_an_error_naming_them(gw, etcd):
    gw.down.update(gw.endpoints)
    with pytest.raises(EtcdError) as e:
        etcd.get('/k')
    assert e.value.unreachable
    assert 'e1' in e.value.msg and 'e3' in e.value.msg


def test_a_refusal_is_not_retried_on_another_endpoint(gw, etcd):
    with pytest.raises(EtcdError) as e:
        etcd.put('/k', 'v', lease=12345)
    assert not e.value.unreachable
    assert len(gw.calls) == 1


def test_no_endpoints_is_refused():
    with pytest.raises(EtcdError):
        Etcd([])


def test_members_and_status(gw, etcd):
    assert [m['name'] for m in etcd.members()] == ['m1', 'm2', 'm3']
    st = etcd.status(gw.endpoints[2])
    assert st == {'version': '3.4.23', 'leader': '1', 'member_id': '3', 'raft_term': 2}


def test_unreadable_tls_files_are_an_etcd_error(tmp_path):
    with pytest.raises(EtcdError) as e:
        Etcd(['https://e1:2379'], ca_file=str(tmp_path / 'missing.crt'))
    assert 'missing.crt' in e.value.msg
