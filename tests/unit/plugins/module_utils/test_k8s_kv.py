# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd's interface on the Kubernetes API (ConfigMaps and Leases), against an
in-memory API server that answers as the real one does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import k8s_kv
from ansible_collections.polardb.stack.plugins.module_utils.etcd import EtcdError
from ansible_collections.polardb.stack.plugins.module_utils.k8s_lease import micro_time

from .fake_kube import FakeKubeApi, ServerClock

PREFIX = '/polardb-stack/demo/'


@pytest.fixture
def api():
    return FakeKubeApi()


def kv_of(api, holder='pdb1'):
    return k8s_kv.KubeKV(api, 'db', holder, clock=ServerClock(api.clock))


def configmaps(api):
    return dict((name, o) for (r, ns, name), o in api.objects.items() if r == 'configmaps')


def test_a_key_is_a_configmap_named_after_it_and_read_back():
    # names: DNS labels, readable, distinct for keys whose slugs are the same
    a, b = k8s_kv.object_name(PREFIX + 'members/pdb_1'), k8s_kv.object_name(PREFIX + 'members/pdb-1')
    assert a != b
    for name in (a, b, k8s_kv.object_name('/x/' + 'y' * 300)):
        assert re.match(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', name) and len(name) <= 63, name
    assert a.startswith('polardb-ha-polardb-stack-demo-members-pdb-1-')


def test_create_is_refused_when_the_key_exists_and_says_what_is_there(api):
    kv = kv_of(api)
    assert kv.create(PREFIX + 'rw', {'node': 'pdb1'}) == (True, None)
    created, now = kv.create(PREFIX + 'rw', {'node': 'pdb2'})
    assert created is False and now['value'] == '{"node":"pdb1"}' and now['key'] == PREFIX + 'rw'
    cm = configmaps(api)[k8s_kv.object_name(PREFIX + 'rw')]
    assert cm['data'] == {'value': '{"node":"pdb1"}'}
    assert cm['metadata']['labels'][k8s_kv.KEY_LABEL] == 'true'


def test_replace_and_delete_if_are_compare_and_swap_on_the_resource_version(api):
    kv = kv_of(api)
    kv.put(PREFIX + 'failover', {'state': 'decided'})
    seen = kv.get(PREFIX + 'failover')
    other = kv_of(api, 'pdb2')
    assert other.replace(PREFIX + 'failover', {'state': 'promoted'}, seen['mod_revision'])
    # the first reader's revision is stale now
    assert kv.replace(PREFIX + 'failover', {'state': 'failed'}, seen['mod_revision']) is False
    assert kv.delete_if(PREFIX + 'failover', seen['mod_revision']) is False
    now = kv.get(PREFIX + 'failover')
    assert now['value'] == '{"state":"promoted"}'
    assert kv.delete_if(PREFIX + 'failover', now['mod_revision']) is True
    assert kv.get(PREFIX + 'failover') is None
    assert kv.replace(PREFIX + 'failover', {'state': 'x'}, now['mod_revision']) is False  # gone: no resurrection


def test_put_writes_over_and_creates(api):
    kv = kv_of(api)
    kv.put(PREFIX + 'history/1', {'a': 1})
    kv.put(PREFIX + 'history/1', {'a': 2})
    assert kv.get(PREFIX + 'history/1')['value'] == '{"a":2}'
    assert len(configmaps(api)) == 1


def test_get_prefix_lists_the_live_keys_under_the_prefix_sorted(api):
    kv = kv_of(api)
    lease = kv.grant(6)
    kv.put(PREFIX + 'members/pdb2', {'n': 2}, lease=lease)
    kv.put(PREFIX + 'leader', {'n': 1}, lease=lease)
    kv.put('/polardb-stack/other/leader', {'n': 9})
    revision, kvs = kv.get_prefix(PREFIX)
    assert [x['key'] for x in kvs] == [PREFIX + 'leader', PREFIX + 'members/pdb2']
    assert all(x['lease'] == lease for x in kvs)
    assert revision == api.rv


def test_a_revoked_lease_takes_its_keys_at_once_even_before_the_garbage_collector(api):
    api.gc = False
    kv = kv_of(api)
    lease = kv.grant(6)
    kv.put(PREFIX + 'members/pdb1', {'n': 1}, lease=lease)
    assert kv.create(PREFIX + 'leader', {'node': 'pdb1'}, lease=lease)[0]
    cm = configmaps(api)[k8s_kv.object_name(PREFIX + 'leader')]
    assert cm['metadata']['ownerReferences'][0]['name'] == 'polardb-ha-lease-%x' % lease
    kv.revoke(lease)
    assert kv.get(PREFIX + 'leader') is None and kv.get_prefix(PREFIX)[1] == []
    # another agent takes the key the dead lease left behind
    other = kv_of(api, 'pdb2')
    assert other.create(PREFIX + 'leader', {'node': 'pdb2'}, lease=other.grant(6)) == (True, None)
    assert kv.get(PREFIX + 'leader')['value'] == '{"node":"pdb2"}'
    # the garbage collector deletes the dead lease's other key
    api.collect()
    assert sorted(configmaps(api)) == [k8s_kv.object_name(PREFIX + 'leader')]


def test_a_lease_not_renewed_ends_a_second_after_its_duration_by_the_servers_clock(api):
    kv = kv_of(api)
    lease = kv.grant(6)
    kv.put(PREFIX + 'leader', {'node': 'pdb1'}, lease=lease)
    api.clock.now += 5
    assert kv.keepalive(lease) == 6  # renewed at +5
    api.clock.now += 7  # 7 s since: alive through the clock's resolution
    assert kv.get(PREFIX + 'leader') is not None
    api.clock.now += 0.5
    assert kv.get(PREFIX + 'leader') is None
    assert kv_of(api, 'pdb2').create(PREFIX + 'leader', {'node': 'pdb2'})[0]
    # the holder learns it lost the lease: 0, and the Lease is deleted
    assert kv.keepalive(lease) == 0
    assert not [k for k in api.objects if k[0] == 'leases']


def test_a_lease_is_shown_with_its_holder_and_stamped_with_the_servers_clock(api):
    kv = kv_of(api, 'pdb3')
    lease = kv.grant(10)
    obj = api.objects[('leases', 'db', 'polardb-ha-lease-%x' % lease)]
    assert obj['spec']['holderIdentity'] == 'pdb3' and obj['spec']['leaseDurationSeconds'] == 10
    assert abs(k8s_kv.parse_micro_time(obj['spec']['renewTime']) - api.clock.now) < 1e-3
    assert abs(k8s_kv.parse_micro_time(micro_time(1796170000.25)) - 1796170000.25) < 1e-5


def test_an_api_server_that_does_not_answer_is_etcd_unreachable(api):
    api.down.add(api.server)
    with pytest.raises(EtcdError) as e:
        kv_of(api).get(PREFIX + 'leader')
    assert e.value.unreachable


def test_the_store_reports_itself_as_one_member(api):
    kv = kv_of(api)
    assert [m['name'] for m in kv.members()] == ['kube-apiserver']
    assert kv.status(kv.endpoints[0])['version'] == 'v1.35.4'


def test_token_api_wants_https():
    with pytest.raises(EtcdError) as e:
        k8s_kv.TokenApi('http://127.0.0.1:6443', '/nonexistent')
    assert 'https://' in e.value.msg


def test_a_reader_deletes_an_expired_lease_and_the_garbage_collector_its_keys(api):
    dead = kv_of(api, 'pdb1')  # its host lost: nobody renews
    lease = dead.grant(6)
    dead.put(PREFIX + 'members/pdb1', {'n': 1}, lease=lease)
    reader = kv_of(api, 'pdb2')
    api.clock.now += 5
    assert [kv['key'] for kv in reader.get_prefix(PREFIX)[1]] == [PREFIX + 'members/pdb1']
    api.clock.now += 3
    assert reader.get_prefix(PREFIX)[1] == []
    assert not api.objects  # the Lease deleted, its key with it
    assert dead.keepalive(lease) == 0  # back, it learns it lost it
