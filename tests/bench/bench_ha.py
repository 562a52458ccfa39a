"""HA benchmark on the lab (make bench-ha): a client writes continuously through
the multi-host DSN while the cluster is switched over N times and failed over M
times (the RW's host powered off). Per run: write unavailability (longest gap
between acknowledged writes), playbook wall time, acknowledged ids missing
afterwards. Results go to a JSON file (docs/benchmarks/ha-results.json),
summarised in docs/benchmarks.md. Measures; never asserts a timing."""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import yaml  # noqa: E402

from labtools import LAB_INVENTORY, LAB_PLAYBOOK, LAB_VARS, VENV_BIN, Writer, lab_dsn  # noqa: E402

sys.path.insert(0, HERE)
from benchmarks_doc import summarize  # noqa: E402


# a second lab (POLARDB_LAB_VARS): its faults go to its own hosts
LAB_EXTRA = ('-e', '@' + LAB_VARS) if LAB_VARS else ()
LAB_DESCRIPTION = ('3 nspawn hosts, PostgreSQL 15 (Debian), one LUN per node on the lab FUSE array, '
                   'TLS (verify-full), 2-core VM')


def playbook(name, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', PATH=VENV_BIN + os.pathsep + os.environ['PATH'])
    t0 = time.monotonic()
    path = LAB_PLAYBOOK if name == 'lab' else os.path.join(ROOT, 'playbooks', name + '.yml')
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), path, '-i', LAB_INVENTORY] + list(args),
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, time.monotonic() - t0, t0, proc.stdout + proc.stderr


def ssh(lab, host, command):
    key = lab['all']['vars']['ansible_ssh_private_key_file']
    ip = lab['all']['children']['lab_hosts']['hosts'][host]['ansible_host']
    return subprocess.run(['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                           '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=3', 'root@' + ip, command],
                          capture_output=True, text=True, check=False, timeout=60)


def the_rw(lab, hosts):
    for h in hosts:
        out = ssh(lab, h, "psql -XAtq -h /var/run/postgresql -U postgres -c 'select pg_is_in_recovery()'")
        if out.stdout.strip() == 'f':
            return h
    return None


def measure(lab, kind, args, settle=1.5, before=None):
    writer = Writer(lab_dsn(lab)).start()
    time.sleep(settle)
    if before:
        before()
    rc, wall, t0, output = playbook(kind, *args)
    time.sleep(settle)
    writer.stop()
    acked_after = [ack[1] for ack in writer.acked if ack[1] >= t0]
    gap = writer.longest_gap(since=t0 - settle)
    run = {'kind': kind, 'rc': rc, 'playbook_s': round(wall, 3),
           'write_unavailable_s': round(gap, 3) if gap is not None else None,
           'acked': len(writer.acked), 'missing': len(writer.missing()),
           'first_ack_after_start_s': round(acked_after[0] - t0, 3) if acked_after else None}
    for line in output.splitlines():
        if ('writes unavailable' in line or 'writable after' in line) and 'playbook' in line:
            run['reported'] = line.strip().strip("-' ")
            if 'writable after' in line:
                run['writable_after_s'] = float(line.split('writable after ')[1].split(' s')[0])
    if rc != 0:
        run['error_tail'] = output[-1500:]
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--switchovers', type=int, default=10)
    ap.add_argument('--failovers', type=int, default=5)
    ap.add_argument('--out', default=os.path.join(ROOT, 'docs', 'benchmarks',
                                                  'ha-results.json'))
    args = ap.parse_args()
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    hosts = sorted(lab['all']['children']['polardb_demo']['hosts'])
    runs = []
    for i in range(args.switchovers):
        run = measure(lab, 'switchover', ['-e', 'cluster=demo'])
        print('switchover %d: %s' % (i + 1, json.dumps(run)), flush=True)
        runs.append(run)
    if args.failovers and os.path.exists(os.path.join(ROOT, 'playbooks', 'failover.yml')):
        # Synchronous replication: a failover to the most advanced replica loses nothing.
        playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=1')
        for i in range(args.failovers):
            victim = the_rw(lab, hosts)

            def poweroff(victim=victim):
                playbook('lab', *LAB_EXTRA, '-e', 'lab_state=fault', '-e', 'lab_fault_host=' + victim,
                         '-e', 'lab_fault_action=poweroff')
            run = measure(lab, 'failover', ['-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=1'],
                          before=poweroff)
            run['victim'] = victim
            print('failover %d: %s' % (i + 1, json.dumps(run)), flush=True)
            runs.append(run)
            playbook('lab', *LAB_EXTRA, '-e', 'lab_state=fault', '-e', 'lab_fault_host=' + victim, '-e', 'lab_fault_action=restore')
            rebuilt = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + victim,
                               '-e', 'polardb_synchronous_replicas=1')
            rc, out = rebuilt[0], rebuilt[3]
            if rc != 0:
                print('rebuild of %s failed:\n%s' % (victim, out[-2000:]), flush=True)
                break
        playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=0')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    summary = summarize(runs)
    result = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(), 'machine': os.uname().nodename,
              'lab': LAB_DESCRIPTION, 'summary': summary, 'runs': runs}
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps(summary, indent=2))
    print('results written to %s' % args.out)


if __name__ == '__main__':
    main()
