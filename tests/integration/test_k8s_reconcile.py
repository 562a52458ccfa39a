"""reconcile.yml on the lab: cluster "demo" declared as a PolarDBCluster on a real
kube-apiserver (a control plane of its own, beside the one of test_k8s_api),
reconciled as the reconciler's service account, a client writing throughout.
The resource's status must say what the engines say; a new spec.primary is a
switchover that loses nothing; a converged cluster's reconcile changes nothing
but its live readings (heartbeat, replica lag); check mode writes nothing."""
import json
import os
import re
import subprocess
import time

import pytest

from k8stools import ansible_env, k8s_lab, setup_namespace
from labtools import LAB_INVENTORY, ROOT, VENV_BIN, log_run, no_lock_left, one_line, settle, sql, the_rw

NAMESPACE = 'lab-clusters'
# a second control plane: test_k8s_api's (make test runs it beside these tests) has the default port and directory
K8S_ENV = dict(POLARDB_K8S_PORT='16543', POLARDB_K8S_DIR='/var/lib/polardb-stack-lab/k8s-reconcile')
ADMIN = os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'admin.kubeconfig')
DEMO = '/apis/stack.polardb.io/v1alpha1/namespaces/%s/polardbclusters/demo' % NAMESPACE


@pytest.fixture(scope='module')
def k8s(lab, tmp_path_factory):
    # cached binaries return at once; make test builds them beside these tests (build.sh waits for that build)
    subprocess.run([os.path.join(ROOT, 'lab', 'k8s', 'build.sh')], check=True, timeout=3600,
                   stdout=subprocess.DEVNULL)
    k8s_lab('up', env=K8S_ENV)
    d = tmp_path_factory.mktemp('k8s-reconcile')
    ids = setup_namespace(ADMIN, NAMESPACE, d)
    source = d / 'clusters.k8s.yml'
    source.write_text('plugin: polardb.stack.cluster_resources\nnamespaces: [%s]\nkubeconfig: %s\n'
                      % (NAMESPACE, ids['reconciler']))
    # no colour (ansible_env): the recap is read as text
    ids.update(source=str(source), env=ansible_env())
    yield ids
    k8s_lab('down', env=K8S_ENV)


def reconcile(k8s, *extra, check=False):
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/reconcile.yml', '-i', LAB_INVENTORY,
            '-i', k8s['source'], '-e', 'cluster=demo', '-e', 'polardb_k8s_kubeconfig=' + k8s['reconciler']]
    if check:
        argv += ['--check']
    started = time.monotonic()
    proc = subprocess.run(argv + list(extra), capture_output=True, text=True, cwd=ROOT, env=k8s['env'],
                          timeout=900, check=False)
    took = time.monotonic() - started
    print('reconcile%s: rc=%d in %.1f s' % (' --check' if check else '', proc.returncode, took))
    log_run('reconcile', argv[2:], proc.returncode, took)
    return proc


def declare(k8s, **args):
    argv = [os.path.join(VENV_BIN, 'ansible'), 'localhost', '-m', 'polardb.stack.cluster_resource', '-a',
            json.dumps(dict(args, name='demo', namespace=NAMESPACE, kubeconfig=k8s['editor']))]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=k8s['env'], timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def demo_nodes(lab, lab_hosts):
    wwids = lab['all']['children']['polardb_demo']['hosts']
    return [dict(name=h, host=lab_hosts[h]['ansible_host'], wwid=wwids[h]['polardb_lun_wwid']) for h in sorted(lab_hosts)]


def status(k8s):
    code, obj = k8s['admin'].call('GET', DEMO)
    assert code == 200, obj
    return obj.get('status') or {}


def settled(st):
    """A status without its live readings: the heartbeat, and each replica's lag (the writer runs)."""
    out = dict((k, v) for k, v in st.items() if k != 'heartbeat')
    out['instances'] = [dict((k, v) for k, v in i.items() if k != 'lagBytes') for i in st['instances']]
    return out


def test_reconcile_reports_what_the_engines_say_and_switches_over_to_a_new_primary(k8s, lab, lab_hosts, ssh, writer):
    rw = the_rw(ssh, lab_hosts)
    declare(k8s, primary=rw, replicas=2, nodes=demo_nodes(lab, lab_hosts))

    preview = reconcile(k8s, check=True)
    assert preview.returncode == 0, preview.stdout[-4000:]
    assert 'nothing to change' in preview.stdout
    assert status(k8s) == {}  # check mode wrote nothing

    first = reconcile(k8s)
    assert first.returncode == 0, first.stdout[-4000:]
    st = status(k8s)
    assert st['phase'] == 'Running' and st['rw'] == rw and st['ready'] == '3/3', st
    roles = dict((i['name'], (i['role'], i['state'])) for i in st['instances'])
    for h in lab_hosts:
        in_recovery = sql(ssh, h, 'select pg_is_in_recovery()')
        assert roles[h] == (('replica', 'streaming') if in_recovery == 't' else ('rw', 'running')), (h, roles)
    assert st['applied']['primary'] == rw and st['observedGeneration'] == 1
    assert st['conditions'][0]['type'] == 'Ready' and st['conditions'][0]['status'] == 'True'

    # converged: nothing changes but the heartbeat
    again = reconcile(k8s)
    assert again.returncode == 0, again.stdout[-4000:]
    recap = re.findall(r'^(\S+)\s+: ok=\d+\s+changed=(\d+)', again.stdout, re.M)
    assert recap and all(item[1] == '0' for item in recap), recap
    later = status(k8s)
    assert settled(later) == settled(st)

    # a new desired RW: the reconcile switches over, nothing acknowledged is lost
    target = sorted(h for h in lab_hosts if h != rw)[0]
    declare(k8s, primary=target)
    moved = reconcile(k8s)
    assert moved.returncode == 0, moved.stdout[-4000:]
    assert settle(ssh, lab_hosts, writer) == target
    for h in lab_hosts:
        if h != target:
            assert sql(ssh, h, 'select sender_host from pg_stat_wal_receiver') == lab_hosts[target]['ansible_host']
    st = status(k8s)
    assert st['rw'] == target and st['phase'] == 'Running' and st['applied']['primary'] == target, st
    assert st['observedGeneration'] == 2
    assert st['lastOperation']['result'] == 'Succeeded' and st['lastOperation']['message'] == 'ran: switchover ' + target
    no_lock_left(ssh, lab_hosts)
    assert k8s['admin'].call('GET', '/apis/coordination.k8s.io/v1/namespaces/%s/leases/polardb-lock-demo'
                             % NAMESPACE)[0] == 404


def test_a_change_reconcile_cannot_make_yet_is_refused_before_anything_changes(k8s, lab_hosts, ssh):
    rw = the_rw(ssh, lab_hosts)
    declare(k8s, parameters={'work_mem': '8MB'})
    run = reconcile(k8s)
    assert run.returncode != 0
    assert 'refresh_params (spec.parameters changed) is not run by reconcile.yml yet: run playbooks/refresh_params.yml' \
        in one_line(run.stdout)
    assert sql(ssh, rw, 'show work_mem') == '4MB' and the_rw(ssh, lab_hosts) == rw
    st = status(k8s)
    assert st['lastOperation']['result'] == 'Failed' and st['conditions'][0]['reason'] == 'Refused'
    assert st['observedGeneration'] == 2  # the refused generation 3 is not observed
    declare(k8s, parameters={})
