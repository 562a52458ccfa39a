"""Day-2 benchmark on the lab (make bench-day2): a client writes continuously
through the multi-host DSN while the day-2 playbooks run on cluster demo, N
rounds of: refresh_params with a reload parameter, with a restart parameter
(raised: replicas first, the RW by a switchover), back to the inventory's
(lowered: the RW first, in place), restart of the whole cluster by
switchover and in place, a minor downgrade and the upgrade back. Per run: the
playbook's wall time, the write unavailability (longest gap between
acknowledged writes), acknowledged ids missing afterwards, changed count.
Results go to docs/benchmarks/day2-results.json, summarised in
docs/benchmarks.md by day2_doc.py. Measures; never asserts a timing."""
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

from labtools import LAB_INVENTORY, VENV_BIN, Writer, lab_dsn  # noqa: E402

sys.path.insert(0, HERE)
from day2_doc import RESULTS, summarize  # noqa: E402

OLDER = '15.18-0+deb12u1'


def _playbook(name, *extra, inventories=(), cluster='demo'):
    """playbooks/<name>.yml on the lab's inventory (and ``inventories``), for
    ``cluster`` (None: no -e cluster=); returns (process, seconds)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
               PATH=VENV_BIN + os.pathsep + os.environ['PATH'])
    argv = [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(ROOT, 'playbooks', name + '.yml'),
            '-i', LAB_INVENTORY]
    for inv in inventories:
        argv += ['-i', inv]
    if cluster:
        argv += ['-e', 'cluster=' + cluster]
    started = time.monotonic()
    proc = subprocess.run(argv + list(extra), capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    return proc, time.monotonic() - started


def _changed(output):
    total = 0
    for line in output.splitlines():
        if ' changed=' in line and ' ok=' in line:
            total += int(line.split(' changed=')[1].split()[0])
    return total


def _installed_version():
    out = subprocess.run(['ssh', '-i', '/var/lib/polardb-stack-lab/ssh/id_ed25519', '-o', 'StrictHostKeyChecking=no',
                          '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@10.213.77.11',
                          "dpkg-query -W -f '${Version}' postgresql-15"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def measure(lab, kind, name, *extra):
    writer = Writer(lab_dsn(lab)).start()
    time.sleep(1.5)
    since = time.monotonic()
    proc, wall = _playbook(name, *extra)
    time.sleep(1.5)
    writer.stop()
    run = {'kind': kind, 'rc': proc.returncode, 'playbook_s': round(wall, 2),
           'write_gap_s': round(writer.longest_gap(since) or 0, 3), 'acked': len(writer.acked),
           'missing': len(writer.missing()), 'changed': _changed(proc.stdout)}
    print('%-28s rc=%d %6.1f s gap %.3f s acked %d missing %d' % (
        kind, run['rc'], wall, run['write_gap_s'], run['acked'], run['missing']), flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep='\n')
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--results', default=RESULTS)
    args = parser.parse_args(argv)
    import yaml
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    newer = _installed_version()
    runs = []
    for _round in range(args.rounds):
        runs.append(measure(lab, 'refresh: reload only', 'refresh_params',
                            '-e', json.dumps({'polardb_parameters': {'work_mem': '6MB'}})))
        runs.append(measure(lab, 'refresh: restart, raise', 'refresh_params',
                            '-e', json.dumps({'polardb_parameters': {'work_mem': '6MB', 'max_connections': 120}})))
        runs.append(measure(lab, 'refresh: restart, lower', 'refresh_params',
                            '-e', 'polardb_restart_strategy=in_place'))
        runs.append(measure(lab, 'refresh: nothing to do', 'refresh_params'))
        runs.append(measure(lab, 'restart: rolling, switchover', 'restart'))
        runs.append(measure(lab, 'restart: rolling, in place', 'restart', '-e', 'polardb_restart_strategy=in_place'))
        runs.append(measure(lab, 'minor downgrade', 'minor_upgrade', '-e', 'version=' + OLDER,
                            '-e', 'polardb_allow_downgrade=true'))
        runs.append(measure(lab, 'minor upgrade', 'minor_upgrade', '-e', 'version=' + newer))
    write_results(args.results, runs, versions={'older': OLDER, 'newer': newer})
    return 0


def write_results(path, runs, **more):
    """The results file of a day-2 benchmark: where and how it was measured, the runs, their summary."""
    result = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d'),
        'lab': '3 nspawn hosts, PostgreSQL 15 (Debian), one LUN per node on the lab FUSE array, TLS, 2-core VM',
        'client': 'one autocommit INSERT every 5 ms through the multi-host DSN (target_session_attrs=read-write)',
        'runs': runs,
        'summary': summarize(runs),
    }
    result.update(more)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
        f.write('\n')
    print('written: %s' % path)


if __name__ == '__main__':
    sys.exit(main())
