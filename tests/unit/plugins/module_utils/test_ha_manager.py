# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster manager's judgement (decide), its keys in etcd, pause and resume."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import ha_manager as hm
from ansible_collections.polardb.stack.plugins.module_utils.etcd import Etcd
from ansible_collections.polardb.stack.plugins.module_utils.k8s_kv import KubeKV
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

from .fake_etcd import FakeEtcd
from .fake_kube import FakeKubeApi, ServerClock

NODES = {'pdb1': {'host': '10.0.0.1', 'port': 5432, 'kind': 'replica'},
         'pdb2': {'host': '10.0.0.2', 'port': 5432, 'kind': 'replica'},
         'pdb3': {'host': '10.0.0.3', 'port': 5432, 'kind': 'replica'},
         'dr1': {'host': '10.0.0.9', 'port': 5432, 'kind': 'standby'}}
CFG = {'nodes': NODES, 'ttl': 6, 'interval': 1, 'fence_driver': 'command', 'unfenced_ok': False,
       'restart_grace': 10, 'failover_timeout': 60}
NOW = 1000.0


def rep(role, receive=None, replay=None, age=0.2, **kw):
    doc = {'role': role, 'age': age, 'lsn': {'current': None, 'receive': receive, 'replay': replay},
           'timeline': 1, 'running': role != 'down', 'unit_active': None, 'upstream': None}
    doc.update(kw)
    return doc


def view(members, leader=None, rw='pdb1', failover=None, paused=None):
    return {'members': members, 'leader': {'node': leader, 'timeline': 1} if leader else None,
            'rw': {'node': rw, 'timeline': 1} if rw else None, 'failover': failover, 'paused': paused,
            'manager': None, 'history': [], 'mod_revisions': {'failover': 7} if failover else {}}


def dead_rw_view(**kw):
    return view({'pdb2': rep('replica', '0/500', '0/4F0', rw_reachable=False),
                 'pdb3': rep('replica', '0/600', '0/5F0', rw_reachable=False),
                 'dr1': rep('replica', '0/700', '0/700', rw_reachable=False)}, **kw)


def test_a_healthy_cluster_needs_nothing():
    v = view({'pdb1': rep('primary'), 'pdb2': rep('replica')}, leader='pdb1')
    assert hm.decide(v, 'pdb2', CFG, NOW, {}) is None


def test_a_new_leader_is_recorded_as_the_rw():
    v = view({'pdb2': rep('primary')}, leader='pdb2', rw='pdb1')
    act = hm.decide(v, 'pdb3', CFG, NOW, {})
    assert act['action'] == 'record_rw' and act['doc']['node'] == 'pdb2'


def test_the_rw_gone_and_confirmed_fails_over_to_the_most_advanced_replica_never_a_standby():
    act = hm.decide(dead_rw_view(), 'pdb2', CFG, NOW, {})
    assert act['action'] == 'failover'
    doc = act['doc']
    assert (doc['from'], doc['to'], doc['state']) == ('pdb1', 'pdb3', 'decided')
    assert doc['candidates'] == ['pdb3', 'pdb2']
    assert 'standby' in doc['refused']['dr1']
    assert doc['to_lsn'] == '0/600'


def test_no_failover_while_a_node_still_reaches_the_rw():
    v = dead_rw_view()
    v['members']['pdb3']['rw_reachable'] = True
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act == {'action': 'note', 'msg': 'RW pdb1: its leader key is gone, not confirmed: reached by pdb3'}


def test_no_failover_on_one_probe_when_two_nodes_could_probe():
    v = dead_rw_view()
    del v['members']['pdb3']['rw_reachable']
    del v['members']['dr1']['rw_reachable']
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act['action'] == 'note' and 'not confirmed' in act['msg']


def test_a_stale_report_is_no_probe_and_no_candidate():
    v = dead_rw_view()
    v['members']['pdb3']['age'] = 7.0
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act['action'] == 'failover' and act['doc']['to'] == 'pdb2'
    assert 'old' in act['doc']['refused']['pdb3']


def test_an_engine_restarting_under_a_live_agent_gets_its_grace():
    v = dead_rw_view()
    v['members']['pdb1'] = rep('down', unit_active=True)
    memory = {}
    assert hm.decide(v, 'pdb2', CFG, NOW, memory)['action'] == 'note'
    assert hm.decide(v, 'pdb2', CFG, NOW + 5, memory) is None  # same note: said once
    assert hm.decide(v, 'pdb2', CFG, NOW + 10.5, memory)['action'] == 'failover'


def test_an_rw_reporting_primary_without_the_leader_key_is_left_to_retake_it():
    v = dead_rw_view()
    v['members']['pdb1'] = rep('primary')
    assert hm.decide(v, 'pdb2', CFG, NOW, {}) is None


def test_no_fence_driver_no_automatic_failover_unless_allowed():
    cfg = dict(CFG, fence_driver='none')
    act = hm.decide(dead_rw_view(), 'pdb2', cfg, NOW, {})
    assert act['action'] == 'note' and 'no fence driver' in act['msg']
    assert hm.decide(dead_rw_view(), 'pdb2', dict(cfg, unfenced_ok=True), NOW, {})['action'] == 'failover'


def test_paused_decides_nothing():
    assert hm.decide(dead_rw_view(paused={'by': 'x'}), 'pdb2', CFG, NOW, {}) is None


def test_no_replica_left_is_said_not_acted_on():
    v = view({'pdb2': rep('down', rw_reachable=False), 'pdb3': rep('standby', rw_reachable=False)})
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act['action'] == 'note' and 'no replica can take over' in act['msg']


def test_a_promoted_failover_finishes_once_the_others_follow():
    fo = {'id': '1-pdb1', 'from': 'pdb1', 'to': 'pdb3', 'state': 'promoted', 'decided_at': NOW - 2}
    following = {'host': '10.0.0.3', 'port': 5432, 'status': 'streaming'}
    v = view({'pdb2': rep('replica', upstream={'host': '10.0.0.1', 'status': 'stopping'}), 'pdb3': rep('primary')},
             failover=fo, leader='pdb3')
    assert hm.decide(v, 'pdb2', CFG, NOW, {}) is None
    v['members']['pdb2']['upstream'] = following
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act['action'] == 'finish' and act['doc']['state'] == 'done' and act['doc']['following'] == ['pdb2']


def test_a_failover_that_does_not_promote_in_time_fails():
    fo = {'id': '1-pdb1', 'from': 'pdb1', 'to': 'pdb3', 'state': 'decided', 'decided_at': NOW - 61}
    act = hm.decide(view({}, failover=fo), 'pdb2', CFG, NOW, {})
    assert act['action'] == 'finish' and act['doc']['state'] == 'failed' and 'did not promote' in act['doc']['error']


def test_keys_and_parse_cluster_read_back_what_was_written():
    gw = FakeEtcd()
    etcd = Etcd(gw.endpoints, transport=gw)
    k = hm.keys('/ns', 'demo')
    etcd.put(k['members'] + 'pdb1', hm.report_of('pdb1', None, 'down', True, NOW - 2))
    etcd.put(k['rw'], {'node': 'pdb1', 'timeline': 1})
    etcd.put(k['history'] + '1-pdb1', {'id': '1-pdb1'})
    etcd.put(hm.keys('/ns', 'demo2')['rw'], {'node': 'other'})
    v = hm.parse_cluster(*etcd.get_prefix(k['prefix']), namespace='/ns', cluster='demo', now=NOW)
    assert v['members']['pdb1']['role'] == 'down' and v['members']['pdb1']['age'] == 2.0
    assert v['rw'] == {'node': 'pdb1', 'timeline': 1} and v['mod_revisions']['rw'] > 0
    assert v['history'] == [{'id': '1-pdb1'}] and v['leader'] is None


@pytest.mark.parametrize('check_mode', [False, True])
def test_pause_and_resume(check_mode):
    gw = FakeEtcd()
    etcd = Etcd(gw.endpoints, transport=gw)
    res = hm.ensure_state(etcd, '/ns', 'demo', 'paused', NOW, by='me', reason='maintenance', check_mode=check_mode)
    assert res['changed'] and res['diff']['after']['paused']['reason'] == 'maintenance'
    assert (res['cluster']['paused'] is None) == check_mode
    if check_mode:
        return
    again = hm.ensure_state(etcd, '/ns', 'demo', 'paused', NOW + 5, by='other')
    assert not again['changed'] and again['cluster']['paused']['by'] == 'me'
    res = hm.ensure_state(etcd, '/ns', 'demo', 'enabled', NOW)
    assert res['changed'] and res['cluster']['paused'] is None
    assert not hm.ensure_state(etcd, '/ns', 'demo', 'enabled', NOW)['changed']


def test_table_says_what_people_need():
    gw = FakeEtcd()
    etcd = Etcd(gw.endpoints, transport=gw)
    gw.down.add(gw.endpoints[2])
    k = hm.keys('/ns', 'demo')
    etcd.put(k['leader'], {'node': 'pdb1', 'timeline': 3})
    etcd.put(k['members'] + 'pdb1', hm.report_of('pdb1', {'role': 'primary', 'timeline': 3, 'upstream': None,
                                                          'lsn': {'current': '0/5000', 'receive': None, 'replay': None}},
                                                 None, None, NOW))
    etcd.put(k['history'] + '1', {'from': 'pdb2', 'to': 'pdb1', 'state': 'done', 'decided_at': 1,
                                  'old_last_report_at': NOW - 10, 'promoted_at': NOW - 3,
                                  'old_lsn_last_seen': '0/5000', 'to_lsn': '0/5000'})
    lines = hm.table(hm.read_cluster(etcd, '/ns', 'demo', NOW), 'demo')
    text = '\n'.join(lines)
    assert 'manager not paused' in lines[0]
    assert 'leader key: pdb1 (timeline 3)' in text
    assert 'agent pdb1' in text and 'primary' in text and '0/5000' in text
    assert ("last automatic failover: pdb2 -> pdb1, done, promoted 7.0 s after the old RW's last report; "
            "the old RW was last seen at 0/5000, the new RW had received 0/5000") in text
    assert '2/3 endpoints answer' in text and 'etcd endpoint https://e3:2379' in text
    assert json.dumps(lines)


def test_on_the_kubernetes_api_pause_resume_and_table_work_the_same():
    api = FakeKubeApi()
    store = KubeKV(api, 'db', clock=ServerClock(api.clock))
    res = hm.ensure_state(store, '/ns', 'demo', 'paused', NOW, by='me', reason='maintenance')
    assert res['changed'] and res['cluster']['paused']['reason'] == 'maintenance'
    assert not hm.ensure_state(store, '/ns', 'demo', 'paused', NOW, by='other')['changed']
    text = '\n'.join(hm.table(res['cluster'], 'demo'))
    assert 'manager PAUSED by me (maintenance)' in text
    assert 'store: the Kubernetes API https://kube.example:6443 answers, version v1.35.4' in text
    assert hm.ensure_state(store, '/ns', 'demo', 'enabled', NOW)['cluster']['paused'] is None
    assert not [k for k in api.objects if k[0] == 'configmaps']


def test_no_failover_while_a_playbook_holds_the_operation_lock():
    v = dead_rw_view()
    v['members']['pdb2']['lock'] = {'operation': 'restart', 'expires_in': 25.0}
    memory = {}
    act = hm.decide(v, 'pdb2', CFG, NOW, memory)
    assert act == {'action': 'note', 'msg': 'no leader key, and the operation lock is held by restart (25.0 s left): waiting'}
    del v['members']['pdb2']['lock']
    assert hm.decide(v, 'pdb2', CFG, NOW + 1, memory)['action'] == 'failover'


def test_a_leader_key_outliving_its_silent_agent_does_not_delay_the_failover():
    # an etcd leader election extends every lease: the old RW's key stays, its report goes stale
    v = dead_rw_view(leader='pdb1')
    v['members']['pdb1'] = rep('primary', age=7.0)
    act = hm.decide(v, 'pdb2', CFG, NOW, {})
    assert act['action'] == 'failover' and act['doc']['from'] == 'pdb1'
    assert act['doc']['reason'].startswith('RW pdb1: its agent is silent')
    v['members']['pdb1']['age'] = 5.0  # within its lease: still the RW
    assert hm.decide(v, 'pdb2', CFG, NOW, {}) is None


def test_a_stale_primary_report_is_not_recorded_as_the_rw():
    v = view({'pdb1': rep('primary', age=4.0), 'pdb2': rep('primary')}, leader='pdb1', rw='pdb2')
    assert hm.decide(v, 'pdb3', CFG, NOW, {}) is None


@pytest.mark.parametrize('name', ['', 'Demo', 'demo/x', '../demo', 'a' * 32])
def test_a_cluster_name_the_collection_cannot_have_is_refused_before_etcd_is_asked(name):
    gw = FakeEtcd()
    with pytest.raises(PolarDBError) as e:
        hm.ensure_state(Etcd(gw.endpoints, transport=gw), '/ns', name, 'paused', NOW)
    assert 'invalid cluster name' in e.value.msg
    assert gw.calls == []
