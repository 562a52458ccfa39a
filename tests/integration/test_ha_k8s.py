"""The cluster manager with the Kubernetes API in etcd's place (polardb_ha_store:
kubernetes), on the lab's cluster "demo" after test_ha (its manager disabled),
synchronous replication on, a control plane of its own that the lab's hosts
reach on the bridge's address:
1. playbooks/ha.yml: k8s_setup's service account polardb-stack-ha-agent (a token
   from the TokenRequest API, bound only to ClusterRole polardb-stack-ha-agent)
   on the nodes in a 0600 file, never in the output; each agent's report is a
   ConfigMap owned by its Lease (holder: the node), the RW's agent holds the
   leader key; no etcd is needed; a re-run changes nothing; the token cannot
   read secrets nor write in another namespace;
2. the RW's host powered off, then the new RW's cut off the network, a client
   writing: a replica is promoted without any playbook, nothing acknowledged is
   lost, the other replica follows it, the failover is in the history; the old
   RW, back, accepts no writes (cut off, its agent stopped its engine) and is
   rebuilt by rebuild_node.yml; status.yml names the store and the failover;
3. disabled: the agents stop, their Leases and reports go.
What is checked is read as the admin, straight from the API server."""
import json
import os
import ssl
import subprocess
import time

import pytest

import k8stools
from k8stools import Api, ha_store, k8s_lab
from labtools import PSQL, ROOT, failed_over_by_the_manager, fault, history, one_line, streams_from, the_rw, wait_for

NAMESPACE = 'lab-ha'
# a third control plane: test_k8s_api's and test_k8s_reconcile's have theirs
K8S_ENV = dict(POLARDB_K8S_PORT='16643', POLARDB_K8S_DIR='/var/lib/polardb-stack-lab/k8s-ha')
ADMIN = os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'admin.kubeconfig')
# the lab bridge's address: where the hosts reach the machine
SERVER = 'https://10.213.77.1:%s' % K8S_ENV['POLARDB_K8S_PORT']
PREFIX = '/polardb-stack/demo/'
SYNC = ('-e', 'polardb_synchronous_replicas=1')
STATE = {}


@pytest.fixture(scope='module')
def k8s(lab, tmp_path_factory, playbook):
    subprocess.run([os.path.join(ROOT, 'lab', 'k8s', 'build.sh')], check=True, timeout=3600, stdout=subprocess.DEVNULL)
    store = ha_store(K8S_ENV, NAMESPACE, tmp_path_factory.mktemp('k8s-ha'))
    assert store['server'] == SERVER
    yield store
    # whatever failed, the later tests must not meet a manager acting on its own
    playbook('ha', '-e', 'cluster=demo', '-e', 'state=disabled', *store['vars'])
    k8s_lab('down', env=K8S_ENV)


def items(admin, resource):
    return k8stools.items(admin, NAMESPACE, resource)


def leases(admin):
    return k8stools.ha_leases(admin, NAMESPACE)


def ha_keys(admin):
    return k8stools.ha_keys(admin, NAMESPACE, PREFIX)


def test_enabled_on_the_kubernetes_api(playbook, ssh, lab_hosts, k8s):
    run = playbook('ha', '-e', 'cluster=demo', *(k8s['vars'] + SYNC))
    assert run.rc == 0, run.output[-5000:]
    assert k8s['token'] not in run.output
    rw = the_rw(ssh, lab_hosts)
    keys = wait_for('reports of all three agents', lambda: ha_keys(k8s['admin']),
                    until=lambda k: all('members/' + h in k for h in lab_hosts) and 'rw' in k and 'leader' in k)
    for h in lab_hosts:
        assert keys['members/' + h]['role'] == ('primary' if h == rw else 'replica'), keys
    assert keys['leader']['node'] == rw and keys['rw']['node'] == rw
    # each report is owned by its agent's Lease, which names the agent
    holders = sorted(lease['spec']['holderIdentity'] for lease in leases(k8s['admin']).values())
    assert holders == ['demo/%s' % h for h in sorted(lab_hosts)], holders
    for cm in items(k8s['admin'], 'configmaps'):
        if cm['metadata']['annotations']['stack.polardb.io/key'].startswith(PREFIX + 'members/'):
            assert cm['metadata']['ownerReferences'][0]['kind'] == 'Lease', cm['metadata']
    out = one_line(run.output)
    assert 'leader key: %s' % rw in out and 'store: the Kubernetes API %s answers' % SERVER in out, out[-3000:]
    for h in lab_hosts:
        assert ssh(h, 'systemctl is-active polardb-ha@demo.service').stdout.strip() == 'active'
        assert ssh(h, 'stat -c %a /etc/polardb-stack/demo/ha-k8s.token').stdout.strip() == '600'
        conf = json.loads(ssh(h, 'cat /etc/polardb-stack/demo/ha-agent.json').stdout)
        assert 'etcd' not in conf and conf['kubernetes']['server'] == SERVER
        assert k8s['token'] not in json.dumps(conf)
    # the agents' token: their keys and leases in their namespace, nothing else
    agent = Api(ADMIN)
    agent.ctx = ssl.create_default_context(cafile=os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'pki', 'ca.crt'))
    agent.headers = {'Authorization': 'Bearer ' + k8s['token']}
    assert agent.call('GET', '/api/v1/namespaces/%s/configmaps' % NAMESPACE)[0] == 200
    assert agent.call('GET', '/api/v1/namespaces/%s/secrets' % NAMESPACE)[0] == 403
    assert agent.call('POST', '/api/v1/namespaces/default/configmaps', dict(metadata=dict(name='x')))[0] == 403
    again = playbook('ha', '-e', 'cluster=demo', *(k8s['vars'] + SYNC))
    assert again.rc == 0 and again.changed() == {}, again.output[-3000:]


@pytest.mark.parametrize('action', ['poweroff', 'isolate'])
def test_the_rw_host_lost_is_failed_over_on_the_kubernetes_api(playbook, ssh, lab_hosts, writer, k8s, action):
    old = the_rw(ssh, lab_hosts)
    earlier = history(ha_keys(k8s['admin']))
    fault(playbook, old, action)
    lost = time.monotonic()
    try:
        new, took = failed_over_by_the_manager(ssh, lab_hosts, writer, old, lost, lambda new: ha_keys(k8s['admin']),
                                               earlier)
        print('RW host %s (the Kubernetes API as the store) -> first acknowledged write: %.1f s' % (action, took))
        STATE['failover'] = (old, new)
    finally:
        fault(playbook, old, 'restore')
    # back, the old RW accepts no writes: fenced, and cut off from the API server its agent stopped its engine
    time.sleep(3)
    proc = ssh(old, PSQL % "'create table ha_k8s_fenced(x int)'", check=False)
    assert proc.returncode != 0, proc.stdout
    if action == 'isolate':
        log = ssh(old, 'journalctl -u polardb-ha@demo.service --no-pager -o cat').stdout
        assert 'the Kubernetes API unreachable for' in log and 'stopping the engine (it may be replaced)' in log, \
            log[-2000:]
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + old, *(k8s['vars'] + SYNC))
    assert run.rc == 0, run.output[-5000:]
    streams_from(ssh, old, lab_hosts[new]['ansible_host'])
    wait_for('the rebuilt node\'s report', lambda: ha_keys(k8s['admin']).get('members/' + old, {}).get('role'),
             until=lambda role: role == 'replica')


def test_status_names_the_store_and_the_failover(playbook, k8s):
    run = playbook('status', '-e', 'cluster=demo', *k8s['vars'])
    assert run.rc == 0, run.output[-3000:]
    out = one_line(run.output)
    assert 'manager not paused' in out and 'store: the Kubernetes API %s answers' % SERVER in out, out[-3000:]
    if 'failover' in STATE:
        assert 'last automatic failover: %s -> %s, done' % STATE['failover'] in out, out[-3000:]


def test_disabled_the_agents_leases_and_reports_go(playbook, ssh, lab_hosts, k8s):
    run = playbook('ha', '-e', 'cluster=demo', '-e', 'state=disabled', *k8s['vars'])
    assert run.rc == 0, run.output[-3000:]
    assert leases(k8s['admin']) == {}
    keys = ha_keys(k8s['admin'])
    assert not any(k.startswith('members/') for k in keys) and 'leader' not in keys, keys
    for h in lab_hosts:
        assert ssh(h, 'systemctl is-active polardb-ha@demo.service', check=False).stdout.strip() == 'inactive'
