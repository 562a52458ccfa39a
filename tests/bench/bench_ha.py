"""HA benchmark on the lab (make bench-ha): a client writes continuously through
the multi-host DSN while the cluster is switched over N times idle, N times
under a pgbench load, and failed over M times (the RW's host powered off). Per
run: write unavailability (longest gap between acknowledged writes), the
switchover module's window split into its phases, the playbook's wall time
split into its phases (from the ansible.posix.jsonl events), acknowledged ids
missing afterwards. Results go to a JSON file (docs/benchmarks/ha-results.json),
summarised in docs/benchmarks.md. Measures; never asserts a timing."""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import yaml  # noqa: E402

from labtools import LAB_INVENTORY, LAB_PLAYBOOK, LAB_VARS, VENV_BIN, Writer, lab_dsn  # noqa: E402

sys.path.insert(0, HERE)
from benchmarks_doc import group, summarize  # noqa: E402


# a second lab (POLARDB_LAB_VARS): its faults go to its own hosts
LAB_EXTRA = ('-e', '@' + LAB_VARS) if LAB_VARS else ()
LAB_DESCRIPTION = ('3 nspawn hosts, PostgreSQL 15 (Debian), one LUN per node on the lab FUSE array, '
                   'TLS (verify-full), 2-core VM')


# The load of the "under load" switchovers: pgbench's TPC-B-like script at a
# fixed rate (so runs compare), on the RW through the same multi-host DSN.
PGBENCH_SCALE = 10
PGBENCH_ARGS = ['-c', '8', '-j', '2', '-R', '400', '-n', '-P', '1', '-T', '300']
LOAD_DESCRIPTION = 'pgbench scale %d, %s' % (PGBENCH_SCALE, ' '.join(PGBENCH_ARGS[:6]))

# Where a playbook's time goes: tasks by name (first match wins); the rest is
# "checks" before the critical section and "other" after it; "startup" is the
# wall time outside every task (ansible's start, plays, includes).
PHASES = (
    ('critical_section', ('Stop writes, wait for the target',)),
    ('lock', ('Lock |', 'operation lock', 'in the lock')),
    ('rejoin', ('Follow the RW', 'Replicate from nobody', 'replicates from nobody', 'follow it')),
    ('waits', ('waiting until', 'Wait until')),
    ('discovery', ('Topology | Ask every engine',)),
)
TPS = re.compile(r'progress: [0-9.]+ s, ([0-9.]+) tps')


def _ts(text):
    return datetime.datetime.fromisoformat(text.rstrip('Z')).timestamp()


def playbook_events(output):
    events = []
    for line in output.splitlines():
        if line.startswith('{'):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return events


def phases(events, wall):
    """Seconds per phase of one playbook run, from its jsonl events."""
    spans = {}
    for e in events:
        task = e.get('task')
        if not task or 'end' not in task.get('duration', {}):
            continue
        span = spans.setdefault(task['id'], [task['name'], _ts(task['duration']['start']), 0.0])
        span[2] = max(span[2], _ts(task['duration']['end']))
    out = dict.fromkeys(('startup', 'discovery', 'checks', 'lock', 'critical_section', 'rejoin', 'waits',
                         'other'), 0.0)
    seen_critical = False
    for name, start, end in sorted(spans.values(), key=lambda s: s[1]):
        phase = next((p for p, needles in PHASES if any(n in name for n in needles)), None)
        if phase == 'critical_section':
            seen_critical = True
        out[phase or ('other' if seen_critical else 'checks')] += end - start
    out['startup'] = max(0.0, wall - sum(out.values()))
    return {k: round(v, 3) for k, v in out.items()}


def module_timings(events, action='polardb.stack.switchover'):
    for e in events:
        for result in (e.get('hosts') or {}).values():
            if result.get('action') == action and not result.get('skipped') and 'timings' in result:
                return result['timings']
    return None


def playbook(name, *args, jsonl=False):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', PATH=VENV_BIN + os.pathsep + os.environ['PATH'])
    if jsonl:
        env.update(ANSIBLE_STDOUT_CALLBACK='ansible.posix.jsonl')
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


def wal_segment_mb(lab, hosts):
    """The WAL segment size of cluster demo (MB), as its RW says."""
    rw = the_rw(lab, hosts)
    out = ssh(lab, rw, "psql -XAtq -h /var/run/postgresql -U postgres -c "
                       "\"select setting::bigint / 1048576 from pg_settings where name = 'wal_segment_size'\"")
    return int(out.stdout.strip())


def pgbench(lab, *args):
    env = dict(os.environ, PGCONNECT_TIMEOUT='2')
    return ['pgbench'] + list(args) + [lab_dsn(lab)], env


def pgbench_init(lab):
    argv, env = pgbench(lab, '-i', '-s', str(PGBENCH_SCALE), '-q')
    subprocess.run(argv, env=env, check=True, capture_output=True, text=True)


class Load(object):
    """pgbench on the RW while a switchover runs; its clients end with the old RW."""

    def __init__(self, lab):
        argv, env = pgbench(lab, *PGBENCH_ARGS)
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            err = self.proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            err = self.proc.communicate()[1]
        rates = [float(m) for m in TPS.findall(err or '')]
        return round(sum(rates[:3]) / len(rates[:3]), 1) if rates else None


def measure(lab, kind, args, settle=1.5, before=None, load=None):
    writer = Writer(lab_dsn(lab)).start()
    if load:
        load = Load(lab)
        settle = 3.0
    time.sleep(settle)
    if before:
        before()
    rc, wall, t0, output = playbook(kind, *args, jsonl=True)
    time.sleep(1.5)
    writer.stop()
    tps = load.stop() if load else None
    acked_after = [ack[1] for ack in writer.acked if ack[1] >= t0]
    gap = writer.longest_gap(since=t0 - settle)
    run = {'kind': kind, 'rc': rc, 'playbook_s': round(wall, 3),
           'write_unavailable_s': round(gap, 3) if gap is not None else None,
           'acked': len(writer.acked), 'missing': len(writer.missing()),
           'first_ack_after_start_s': round(acked_after[0] - t0, 3) if acked_after else None}
    run['load'] = LOAD_DESCRIPTION if load else 'idle'
    if tps is not None:
        run['load_tps'] = tps
    events = playbook_events(output)
    run['phases'] = phases(events, wall)
    timings = module_timings(events)
    if timings:
        run['module'] = timings
    for line in output.splitlines():
        m = re.search(r'(switchover \S+ -> \S+: writes unavailable [^"]*?playbook [0-9.]+ s'
                      r'|failover [^"]*?writable after [0-9.]+ s[^"]*?playbook [0-9.]+ s)', line)
        if m:
            run['reported'] = m.group(1)
            w = re.search(r'writable after ([0-9.]+) s', m.group(1))
            if w:
                run['writable_after_s'] = float(w.group(1))
    if rc != 0:
        run['error_tail'] = output[-1500:]
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--switchovers', type=int, default=10)
    ap.add_argument('--loaded-switchovers', type=int, default=10)
    ap.add_argument('--sync-switchovers', type=int, default=5,
                    help='idle switchovers with synchronous replication (a quorum of one replica)')
    ap.add_argument('--converges', type=int, default=3,
                    help='create_cluster re-runs on the converged cluster (wall time, changed count)')
    ap.add_argument('--failovers', type=int, default=5)
    ap.add_argument('--out', default=os.path.join(ROOT, 'docs', 'benchmarks',
                                                  'ha-results.json'))
    ap.add_argument('--merge', action='store_true',
                    help='keep the runs of the kinds not measured this time (a count of 0) from --out')
    args = ap.parse_args()
    kept = []
    if args.merge and os.path.exists(args.out):
        with open(args.out) as f:
            previous = json.load(f)
        measured = {'switchover': args.switchovers, 'switchover_under_load': args.loaded_switchovers,
                    'switchover_sync': args.sync_switchovers,
                    'failover': args.failovers, 'converge': args.converges}
        kept = [r for r in previous['runs'] if not measured.get(group(r))]
        for r in kept:
            r.setdefault('measured', previous['date'][:10])
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    hosts = sorted(lab['all']['children']['polardb_demo']['hosts'])
    segment_mb = wal_segment_mb(lab, hosts)
    runs = []
    for i in range(args.switchovers):
        run = measure(lab, 'switchover', ['-e', 'cluster=demo'])
        print('switchover %d: %s' % (i + 1, json.dumps(run)), flush=True)
        runs.append(run)
    if args.loaded_switchovers:
        pgbench_init(lab)
    for i in range(args.loaded_switchovers):
        run = measure(lab, 'switchover', ['-e', 'cluster=demo'], load=True)
        print('switchover under load %d: %s' % (i + 1, json.dumps(run)), flush=True)
        runs.append(run)
    if args.sync_switchovers:
        playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=1')
        for i in range(args.sync_switchovers):
            run = measure(lab, 'switchover', ['-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=1'])
            run['replication'] = 'synchronous'
            print('switchover, synchronous replication %d: %s' % (i + 1, json.dumps(run)), flush=True)
            runs.append(run)
        playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=0')
    for i in range(args.converges):
        rc, wall, t0, output = playbook('create_cluster', '-e', 'cluster=demo', jsonl=True)
        events = playbook_events(output)
        stats = next((e['stats'] for e in events if e.get('_event') == 'v2_playbook_on_stats'), {})
        run = {'kind': 'converge', 'rc': rc, 'playbook_s': round(wall, 3),
               'changed': sum(h.get('changed', 0) for h in stats.values()),
               'tasks': sum(h.get('ok', 0) + h.get('changed', 0) for h in stats.values()),
               'phases': phases(events, wall)}
        if rc != 0:
            run['error_tail'] = output[-1500:]
        print('converge %d: %s' % (i + 1, json.dumps(run)), flush=True)
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
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    for r in runs:
        r['measured'] = today
        r['wal_segment_mb'] = segment_mb
    runs = kept + runs
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
