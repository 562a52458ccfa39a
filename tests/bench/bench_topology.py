"""Day-2 topology benchmark on the lab (make bench-day2): a client writes
continuously through the multi-host DSN to cluster demo while, per round, a
replica is removed, the RW migrated to the freed host (join, switchover,
removal), a replica migrated to the old RW's host, that replica's old host
added back from its kept data, and every LUN grown. Per run: the playbook's
wall time, the write unavailability (longest gap between acknowledged
writes), acknowledged ids missing afterwards, changed count.

Then the fleet figure: cluster fa (one node per lab host, on its own LUNs and
port) created alone by create_cluster, then clusters fa, fb, fc, fd created by
one fleet run, each time destroyed with wipe afterwards; the LUNs come from
tests/bench/fleet-lab.yml. Results go to docs/benchmarks/topology-results.json,
summarised in docs/benchmarks.md by topology_doc.py. Measures; never asserts a
timing."""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
sys.path.insert(0, HERE)

from labtools import LAB_INVENTORY  # noqa: E402
from bench_day2 import _changed, _playbook, measure, write_results  # noqa: E402
from topology_doc import RESULTS  # noqa: E402

FLEET = ['fa', 'fb', 'fc', 'fd']
KEY = '/var/lib/polardb-stack-lab/ssh/id_ed25519'


def _ssh(address, command):
    return subprocess.run(['ssh', '-i', KEY, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                           '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', 'root@' + address, command],
                          capture_output=True, text=True, check=False).stdout.strip()


def _roles(lab_hosts):
    """{host: 'f' | 't' | ''} of cluster demo."""
    return {h: _ssh(v['ansible_host'], "cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql "
                                       "-c 'select pg_is_in_recovery()'") for h, v in lab_hosts.items()}


def _lun_bytes(lab, host):
    wwid = lab['all']['children']['polardb_demo']['hosts'][host]['polardb_lun_wwid']
    address = lab['all']['children']['lab_hosts']['hosts'][host]['ansible_host']
    return int(_ssh(address, 'blockdev --getsize64 /dev/disk/by-id/wwn-0x%s' % wwid))


def _run(name, *extra, inventories=()):
    """A playbook on the fleet's clusters (each run names its own), its output shown when it failed."""
    proc, wall = _playbook(name, *extra, inventories=inventories, cluster=None)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep='\n')
    return proc, wall


def topology_round(lab, lab_hosts):
    """remove a replica, migrate the RW there, a replica to the old RW's host, add the last one back, grow the LUNs."""
    roles = _roles(lab_hosts)
    rw = [h for h, r in roles.items() if r == 'f'][0]
    node, other = sorted(h for h in lab_hosts if h != rw)
    runs = [measure(lab, 'remove_node (a replica)', 'remove_node', '-e', 'node=' + node),
            measure(lab, 'migrate_node (the RW)', 'migrate_node', '-e', 'node=' + rw, '-e', 'to_host=' + node),
            measure(lab, 'migrate_node (a replica)', 'migrate_node', '-e', 'node=' + other, '-e', 'to_host=' + rw),
            measure(lab, 'add_node (kept data)', 'add_node', '-e', 'node=' + other)]
    size = max(_lun_bytes(lab, h) for h in lab_hosts) + 256 * 1024 * 1024
    runs.append(measure(lab, 'expand_storage (+256 MiB)', 'expand_storage', '-e', 'size=%d' % size))
    return runs


def fleet_inventory(lab_hosts, names):
    """Clusters ``names``: one node per lab host (fa1 on pdb1 ...), LUNs <name><i>, ports from 5441."""
    import yaml
    children = {}
    for n, name in enumerate(names):
        hosts = {}
        for i, (host, v) in enumerate(sorted(lab_hosts.items()), start=1):
            hosts['%s%d' % (name, i)] = {'ansible_host': v['ansible_host'], 'polardb_lun_wwid': v['lab_luns'][name + str(i)]}
        children['polardb_' + name] = {'vars': {'polardb_initial_primary': name + '1', 'polardb_port': 5441 + n},
                                       'hosts': hosts}
    fd, path = tempfile.mkstemp(prefix='fleet-', suffix='.yml')
    with os.fdopen(fd, 'w') as f:
        yaml.safe_dump({'all': {'children': children}}, f)
    return path


def _destroy(names, inv):
    for name in names:
        proc, _wall = _run('destroy_cluster', '-e', 'cluster=' + name, '-e', 'confirm_destroy=' + name,
                           '-e', 'wipe=true', inventories=[inv])
        assert proc.returncode == 0, 'could not destroy %s: the next figure would be wrong' % name


def fleet_runs(lab_hosts, count):
    names = FLEET[:count]
    inv = fleet_inventory(lab_hosts, names)
    runs = []
    try:
        proc, wall = _run('create_cluster', '-e', 'cluster=' + names[0], inventories=[inv])
        runs.append({'kind': 'one cluster: create_cluster', 'clusters': 1, 'rc': proc.returncode,
                     'playbook_s': round(wall, 2), 'changed': _changed(proc.stdout)})
        print('%-28s rc=%d %6.1f s' % (runs[-1]['kind'], proc.returncode, wall), flush=True)
        _destroy(names[:1], inv)
        proc, wall = _run('fleet', '-e', 'clusters=' + ','.join(names), '-e', 'parallel=%d' % count, inventories=[inv])
        runs.append({'kind': '%d clusters: one fleet run' % count, 'clusters': count, 'rc': proc.returncode,
                     'playbook_s': round(wall, 2), 'changed': _changed(proc.stdout)})
        print('%-28s rc=%d %6.1f s' % (runs[-1]['kind'], proc.returncode, wall), flush=True)
    finally:
        _destroy(names, inv)
        os.unlink(inv)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--fleet', type=int, default=4, choices=range(2, len(FLEET) + 1))
    parser.add_argument('--results', default=RESULTS)
    args = parser.parse_args(argv)
    import yaml
    with open(LAB_INVENTORY) as f:
        lab = yaml.safe_load(f)
    lab_hosts = lab['all']['children']['lab_hosts']['hosts']
    runs = []
    for _round in range(args.rounds):
        runs += topology_round(lab, lab_hosts)
    write_results(args.results, runs, fleet=fleet_runs(lab_hosts, args.fleet))
    return 0


if __name__ == '__main__':
    sys.exit(main())
