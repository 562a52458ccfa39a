"""Kubernetes benchmark on the lab (make bench-k8s): the lab's control plane and
reconcile.yml against cluster "demo", declared as a PolarDBCluster and
reconciled as the reconciler's service account, a client writing throughout.
Per run: the control plane's start from cached binaries (until /readyz and the
default namespace); a declared cluster to phase Running (the module's apply,
then one reconcile); a new cluster declared on blank LUNs to phase Running (one
reconcile creates it) and, deleted, to gone (one reconcile removes its engines); a reconcile of the converged cluster (wall time, changed
tasks, which status fields it wrote); a switchover by a new spec.primary
(wall time, write gap, acknowledged writes missing). Results go to
docs/benchmarks/k8s-results.json, summarised in docs/benchmarks.md
(k8s_doc.py). Measures; never asserts a timing."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, HERE)

import yaml  # noqa: E402

from k8stools import ansible_env, k8s_lab, setup_namespace  # noqa: E402
from labtools import LAB_INVENTORY, VENV_BIN, Writer, lab_dsn  # noqa: E402
from bench_ha import LAB_DESCRIPTION, the_rw  # noqa: E402
from k8s_doc import summarize  # noqa: E402

RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'k8s-results.json')
NAMESPACE = 'bench'
K8S_ENV = dict(POLARDB_K8S_PORT='16643', POLARDB_K8S_DIR='/var/lib/polardb-stack-lab/k8s-bench')
ADMIN = os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'admin.kubeconfig')
DEMO = '/apis/stack.polardb.io/v1alpha1/namespaces/%s/polardbclusters/demo' % NAMESPACE
ENV = ansible_env()
RECAP = re.compile(r'^localhost\s+:\s+ok=\d+\s+changed=(\d+)', re.M)


def run(argv, timeout=900):
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit('%s failed (rc=%d):\n%s' % (' '.join(argv[:3]), proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
    return time.monotonic() - t0, proc.stdout


def setup():
    k8s_lab('down', env=K8S_ENV)
    run([os.path.join(ROOT, 'lab', 'k8s', 'build.sh')], timeout=3600)
    starts = []
    for attempt in range(3):
        k8s_lab('down', env=K8S_ENV)
        t0 = time.monotonic()
        k8s_lab('up', env=K8S_ENV)
        starts.append(round(time.monotonic() - t0, 2))
    d = os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'bench')
    os.makedirs(d, exist_ok=True)
    ids = setup_namespace(ADMIN, NAMESPACE, d)
    source = os.path.join(d, 'clusters.k8s.yml')
    with open(source, 'w') as f:
        f.write('plugin: polardb.stack.cluster_resources\nnamespaces: [%s]\nkubeconfig: %s\n' % (NAMESPACE, ids['reconciler']))
    ids.update(source=source, starts=starts)
    return ids


def declare(k8s, name='demo', **args):
    return run([os.path.join(VENV_BIN, 'ansible'), 'localhost', '-m', 'polardb.stack.cluster_resource', '-a',
                json.dumps(dict(args, name=name, namespace=NAMESPACE, kubeconfig=k8s['editor']))])[0]


def reconcile(k8s, cluster='demo'):
    took, out = run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/reconcile.yml', '-i', LAB_INVENTORY,
                     '-i', k8s['source'], '-e', 'cluster=' + cluster, '-e', 'polardb_k8s_kubeconfig=' + k8s['reconciler']])
    changed = RECAP.findall(out)
    return took, int(changed[-1]) if changed else None


def status(k8s, name='demo'):
    return k8s['admin'].call('GET', DEMO.replace('/demo', '/' + name))[1]


def create_and_delete(k8s, lab, hosts):
    """A new 2-node cluster declared on the spare LUNs (port 5433) -> phase Running (one reconcile creates it);
    then deleted -> gone from the API (one reconcile removes its engines; deletionPolicy Wipe, so that the next
    creation starts from blank LUNs again)."""
    lab_hosts = lab['all']['children']['lab_hosts']['hosts']
    nodes = [dict(name='f' + h[-1], host=lab_hosts[h]['ansible_host'], wwid=lab_hosts[h]['lab_luns']['spare' + h[-1]],
                  port=5433) for h in hosts[:2]]
    t0 = time.monotonic()
    declare(k8s, name='fresh', primary=nodes[0]['name'], replicas=1, nodes=nodes, deletion_policy='Wipe')
    took = reconcile(k8s, 'fresh')[0]
    phase = (status(k8s, 'fresh').get('status') or {}).get('phase')
    created = dict(kind='created_to_running', seconds=round(time.monotonic() - t0, 2), reconcile_s=round(took, 2),
                   phase=phase)
    t0 = time.monotonic()
    declare(k8s, name='fresh', state='absent')
    took = reconcile(k8s, 'fresh')[0]
    gone = k8s['admin'].call('GET', DEMO.replace('/demo', '/fresh'))[0] == 404
    return [created, dict(kind='deleted_to_gone', seconds=round(time.monotonic() - t0, 2), reconcile_s=round(took, 2),
                          gone=gone)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--noop', type=int, default=5)
    parser.add_argument('--switchovers', type=int, default=3)
    parser.add_argument('--creations', type=int, default=2)
    parser.add_argument('--pace', type=float, default=0.005)
    args = parser.parse_args()
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    hosts = sorted(lab['all']['children']['polardb_demo']['hosts'])
    lab_hosts = lab['all']['children']['lab_hosts']['hosts']
    k8s = setup()
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = [dict(kind='control_plane_start', seconds=s) for s in k8s['starts']]
    # a resource left by an earlier run: its finalizer (held by reconcile) would keep it
    k8s['admin'].call('PATCH', DEMO, {'metadata': {'finalizers': None}}, content_type='application/merge-patch+json')
    k8s['admin'].call('DELETE', DEMO)
    rw = the_rw(lab, hosts)
    nodes = [dict(name=h, host=lab_hosts[h]['ansible_host'],
                  wwid=lab['all']['children']['polardb_demo']['hosts'][h]['polardb_lun_wwid']) for h in hosts]
    t0 = time.monotonic()
    declare(k8s, primary=rw, replicas=len(hosts) - 1, nodes=nodes)
    took, changed = reconcile(k8s)
    runs.append(dict(kind='declared_to_running', seconds=round(time.monotonic() - t0, 2), reconcile_s=round(took, 2),
                     phase=status(k8s)['status']['phase']))
    for attempt in range(args.noop):
        before = status(k8s)
        took, changed = reconcile(k8s)
        after = status(k8s)
        written = sorted(k for k in set(before['status']) | set(after['status'])
                         if before['status'].get(k) != after['status'].get(k))
        runs.append(dict(kind='noop_reconcile', seconds=round(took, 2), changed=changed, status_written=written,
                         spec_unchanged=before['spec'] == after['spec']))
    for attempt in range(args.creations):
        runs += create_and_delete(k8s, lab, hosts)
    writer = Writer(lab_dsn(lab), table='k8s_bench_writes', pause=args.pace).start()
    try:
        for attempt in range(args.switchovers):
            rw = the_rw(lab, hosts)
            target = sorted(h for h in hosts if h != rw)[0]
            mark = time.monotonic()
            declare(k8s, primary=target)
            took, changed = reconcile(k8s)
            time.sleep(1)
            st = status(k8s)['status']
            runs.append(dict(kind='switchover', seconds=round(took, 2), write_gap_s=round(writer.longest_gap(since=mark), 3),
                             rw=st['rw'], wanted=target, missing=len(writer.missing())))
    finally:
        writer.stop()
    k8s_lab('down', env=K8S_ENV)
    result = {'date': started, 'lab': LAB_DESCRIPTION, 'client': 'one autocommit INSERT every %.3f s through the '
              'multi-host DSN (switchovers only)' % args.pace,
              'control_plane': 'kube-apiserver and kube-controller-manager v1.35.4, etcd v3.6.16, built from Go modules',
              'runs': runs, 'summary': summarize(runs)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write('\n')
    print(json.dumps(result['summary'], indent=1))


if __name__ == '__main__':
    main()
