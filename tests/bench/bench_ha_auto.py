"""Automatic failover benchmark on the lab (make bench-ha-auto): with the cluster
manager enabled (playbooks/ha.yml) and a client writing through the multi-host
DSN, the RW's host is powered off N times and cut off the network M times; no
playbook fails over. Per run: write unavailability (longest gap between
acknowledged writes: host lost -> first acknowledged write on the new RW, to
the client's pace), the manager's own times from its history record (old RW's
last report -> decision -> promoted), acknowledged writes missing. Then the
cases that must NOT fail over (the RW's agent frozen, the RW's etcd member
stopped, the RW's engine crashed (its unit restarts it), the RW saturated by
pgbench and a CPU hog, the controller gone) are
watched for a while each: a new history entry is a false failover. Results go to
docs/benchmarks/ha-auto-results.json, summarised in docs/benchmarks.md
(ha_auto_doc.py). With --store kubernetes the manager keeps its state on a
Kubernetes API server of its own (started here, reached by the hosts on the lab
bridge) instead of etcd: results in ha-auto-k8s-results.json, no etcd member
to stop. Measures; never asserts a timing."""
import argparse
import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, HERE)

import yaml  # noqa: E402

from labtools import LAB_INVENTORY, Writer, lab_dsn  # noqa: E402
import k8stools  # noqa: E402
from bench_ha import LAB_DESCRIPTION, LAB_EXTRA, Load, pgbench_init, playbook, ssh, the_rw  # noqa: E402
from ha_auto_doc import summarize  # noqa: E402

RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'ha-auto-results.json')
RESULTS_K8S = os.path.join(ROOT, 'docs', 'benchmarks', 'ha-auto-k8s-results.json')
# --store kubernetes: a control plane of its own, and the playbooks' extra vars for it (STORE)
K8S_ENV = dict(POLARDB_K8S_PORT='16743', POLARDB_K8S_DIR='/var/lib/polardb-stack-lab/k8s-bench-ha')
K8S_NAMESPACE = 'bench-ha'
STORE = {'vars': ()}
PREFIX = '/polardb-stack/demo/'
ETCDCTL = ('ETCDCTL_API=3 etcdctl --endpoints=https://%s:2379 --cacert=/etc/polardb-stack/_etcd/ca.crt '
           '--cert=/etc/polardb-stack/_etcd/node.crt --key=/etc/polardb-stack/_etcd/node.key --command-timeout=5s ')
WATCH_S = 30
# every playbook of the benchmark keeps synchronous replication on (a quorum of one
# replica): the promoted replica has every acknowledged write
SYNC = ('-e', 'polardb_synchronous_replicas=1')


def etcd_keys(lab, host):
    """What the cluster manager holds for cluster demo: in etcd (read with etcdctl on ``host``), or
    on the Kubernetes API (read as its admin)."""
    if 'admin' in STORE:
        return k8stools.ha_keys(STORE['admin'], K8S_NAMESPACE, PREFIX)
    ip = lab['all']['children']['lab_hosts']['hosts'][host]['ansible_host']
    out = ssh(lab, host, ETCDCTL % ip + 'get --prefix %s -w json' % PREFIX)
    if out.returncode != 0:
        return {}
    return dict((base64.b64decode(kv['key']).decode()[len(PREFIX):], json.loads(base64.b64decode(kv['value'])))
                for kv in json.loads(out.stdout).get('kvs') or [])


def history(keys):
    return dict((k, v) for k, v in keys.items() if k.startswith('history/'))


def must(rc_took_t0_out, what):
    rc, took, dummy, out = rc_took_t0_out
    if rc != 0:
        raise SystemExit('%s failed (rc=%d):\n%s' % (what, rc, out[-3000:]))
    return took


def wait(probe, timeout, until=bool):
    """``probe()`` once ``until`` holds for it, within ``timeout`` seconds (else None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if until(got):
            return got
        time.sleep(0.3)
    return None


def failover_run(lab, hosts, action, pace):
    old = the_rw(lab, hosts)
    survivors = [h for h in hosts if h != old]
    before = history(etcd_keys(lab, survivors[0]))
    writer = Writer(lab_dsn(lab), pause=pace).start()
    time.sleep(2)
    must(playbook('lab', *LAB_EXTRA, '-e', 'lab_state=fault', '-e', 'lab_fault_host=' + old,
                  '-e', 'lab_fault_action=' + action), 'fault ' + action)
    run = {'kind': action, 'old_rw': old, 'rc': 0}
    new = wait(lambda: the_rw(lab, survivors), 60)
    wait(lambda: len(writer.acked) and writer.acked[-1][1] > time.monotonic() - 0.5, 30)
    time.sleep(1.5)
    writer.stop()
    keys = wait(lambda: etcd_keys(lab, new or survivors[0]), 30,
                until=lambda k: len(history(k)) > len(before) and 'failover' not in k) or {}
    added = [v for k, v in sorted(history(keys).items()) if k not in before]
    h = added[-1] if added else {}
    run.update(new_rw=new, write_gap_s=round(writer.longest_gap() or 0, 3), missing=len(writer.missing()),
               acked=len(writer.acked), state=h.get('state'),
               detect_s=round(h['decided_at'] - h['old_last_report_at'], 3) if h.get('old_last_report_at') else None,
               takeover_s=round(h['promoted_at'] - h['decided_at'], 3) if h.get('promoted_at') else None,
               old_lsn=h.get('old_lsn_last_seen'), new_received=h.get('to_lsn'))
    if not new or not h:
        run['rc'] = 1
    must(playbook('lab', *LAB_EXTRA, '-e', 'lab_state=fault', '-e', 'lab_fault_host=' + old,
                  '-e', 'lab_fault_action=restore'), 'restore')
    time.sleep(2)
    run['rebuild_s'] = round(must(playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + old, *SYNC,
                                           *STORE['vars']),
                                  'rebuild'), 1)
    print(json.dumps(run), flush=True)
    return run


def no_failover_case(lab, hosts, case):
    rw = the_rw(lab, hosts)
    others = [h for h in hosts if h != rw]
    before = history(etcd_keys(lab, others[0]))
    writer = Writer(lab_dsn(lab), pause=0.02).start()
    time.sleep(1)
    undo, load = None, None
    if case == 'agent_frozen':
        pid = ssh(lab, rw, 'systemctl show -p MainPID --value polardb-ha@demo.service').stdout.strip()
        ssh(lab, rw, 'kill -STOP ' + pid)
        undo = 'kill -CONT ' + pid
    elif case == 'etcd_member_stopped':
        ssh(lab, rw, 'systemctl stop etcd')
        undo = 'systemctl start etcd'
    elif case == 'engine_crashed':
        ssh(lab, rw, 'systemctl kill --signal=SIGKILL --kill-whom=main polardb@demo.service')
    elif case == 'rw_saturated':
        ssh(lab, rw, 'nohup sh -c "for i in 1 2 3 4; do timeout %d sh -c \'while :; do :; done\' & done" '
                     '>/dev/null 2>&1 &' % WATCH_S)
        load = Load(lab)
    # controller_gone: nothing runs on the controller but this watch
    time.sleep(WATCH_S)
    if undo:
        ssh(lab, rw, undo)
    tps = load.stop() if load else None
    writer.stop()
    after = history(etcd_keys(lab, others[0]))
    run = {'kind': 'no_failover', 'case': case, 'rw': rw, 'watched_s': WATCH_S, 'rc': 0,
           'false_failovers': len(set(after) - set(before)), 'rw_after': the_rw(lab, hosts),
           'write_gap_s': round(writer.longest_gap() or 0, 3), 'missing': len(writer.missing()), 'tps': tps}
    print(json.dumps(run), flush=True)
    if run['false_failovers']:
        # put the cluster back for the next case
        old = rw
        playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + old, *SYNC, *STORE['vars'])
    time.sleep(8)  # the agents settle (a frozen agent's new lease, etcd back)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--poweroffs', type=int, default=10)
    parser.add_argument('--isolations', type=int, default=5)
    parser.add_argument('--pace', type=float, default=0.005, help='seconds between two client writes')
    parser.add_argument('--store', choices=('etcd', 'kubernetes'), default='etcd',
                        help="the cluster manager's store: etcd, or the Kubernetes API in its place")
    args = parser.parse_args()
    if args.store == 'kubernetes':
        subprocess.run([os.path.join(ROOT, 'lab', 'k8s', 'build.sh')], check=True, timeout=3600,
                       stdout=subprocess.DEVNULL)
        STORE.update(k8stools.ha_store(K8S_ENV, K8S_NAMESPACE, tempfile.mkdtemp(prefix='bench-ha-k8s-')))
    try:
        return bench(args)
    finally:
        if args.store == 'kubernetes':
            k8stools.k8s_lab('down', env=K8S_ENV)


def bench(args):
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    hosts = sorted(lab['all']['children']['polardb_demo']['hosts'])
    must(playbook('create_cluster', '-e', 'cluster=demo', *SYNC), 'create_cluster (synchronous replication on)')
    must(playbook('ha', '-e', 'cluster=demo', *SYNC, *STORE['vars']), 'ha.yml')
    pgbench_init(lab)
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = []
    for i in range(max(args.poweroffs, args.isolations)):
        if i < args.poweroffs:
            runs.append(failover_run(lab, hosts, 'poweroff', args.pace))
        if i < args.isolations:
            runs.append(failover_run(lab, hosts, 'isolate', args.pace))
    for case in ('agent_frozen', 'etcd_member_stopped', 'engine_crashed', 'rw_saturated', 'controller_gone'):
        if case != 'etcd_member_stopped' or args.store == 'etcd':
            runs.append(no_failover_case(lab, hosts, case))
    must(playbook('ha', '-e', 'cluster=demo', '-e', 'state=disabled', *STORE['vars']), 'ha.yml disabled')
    result = {'date': started, 'lab': LAB_DESCRIPTION,
              'client': 'one autocommit INSERT every %.3f s through the multi-host DSN' % args.pace,
              'settings': 'synchronous replication (ANY 1 of the replicas), polardb_ha_ttl 6, polardb_ha_interval 1, '
                          'polardb_ha_probe_timeout 0.5, ' + (
                              'etcd 3.4.23 (heartbeat 100 ms, election 1000 ms) on the three hosts' if args.store == 'etcd'
                              else 'the Kubernetes API in etcd\'s place: kube-apiserver %s on the lab\'s machine, '
                                   'reached by the hosts on the lab bridge' % os.environ.get('K8S_VERSION', 'v1.35.4')),
              'store': args.store, 'runs': runs, 'summary': summarize(runs)}
    results = RESULTS if args.store == 'etcd' else RESULTS_K8S
    os.makedirs(os.path.dirname(results), exist_ok=True)
    with open(results, 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write('\n')
    print(json.dumps(result['summary'], indent=1))


if __name__ == '__main__':
    main()
