"""create_cluster / status / dsn / destroy against the lab, after molecule has
converged cluster "demo". Bad input must fail with a clear error and change
nothing on any host."""
import os
import shlex
import subprocess
import time
import uuid

import yaml

from labtools import ROOT, one_line

UNKNOWN_WWID = '6001405ffffffffffffffffffffffff0'


def state_of(ssh, host, cluster, device=None):
    """What a run could have changed on a host for ``cluster``."""
    script = ('test -e /etc/polardb-stack/{c} && echo conf; grep -c " /srv/polardb/{c} " /etc/fstab || true; '
              'mountpoint -q /srv/polardb/{c} && echo mounted; '
              'dpkg -s postgresql-15 >/dev/null 2>&1 && echo engine-installed; true').format(c=cluster)
    if device:
        script += '; dd if=%s bs=1M count=1 status=none | sha256sum' % shlex.quote(device)
    return ssh(host, script).stdout


def negative_inventory(tmp_path, lab, lab_hosts, cluster, nodes, port=5499):
    """An inventory of one cluster with its own host aliases, so its host vars
    cannot clash with cluster demo's, and its own port (demo's engines listen
    on 5432 on the same hosts)."""
    hosts = {}
    for alias, (lab_host, wwid) in nodes.items():
        entry = {'polardb_lun_wwid': wwid}
        entry['ansible_host'] = lab_hosts[lab_host]['ansible_host'] if lab_host else '10.213.77.99'
        hosts[alias] = entry
    inv = {'all': {'children': {'polardb_' + cluster: {
        'vars': {'polardb_initial_primary': sorted(nodes)[0], 'polardb_port': port}, 'hosts': hosts}}}}
    path = tmp_path / ('%s.yml' % cluster)
    path.write_text(yaml.safe_dump(inv))
    return path


def assert_refused(run, *fragments):
    text = one_line(run.output)
    assert run.rc != 0, text[-3000:]
    for fragment in fragments:
        assert fragment in text, 'expected %r in:\n%s' % (fragment, text[-3000:])
    assert 'Engine | Install' not in text, 'the run went past preflight'
    assert run.changed() == {}, run.changed()


def test_unknown_wwid_is_refused(playbook, ssh, lab, lab_hosts, tmp_path):
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg1', {'n1': ('pdb3', UNKNOWN_WWID)})
    before = state_of(ssh, 'pdb3', 'neg1')
    run = playbook('create_cluster', '-e', 'cluster=neg1', inventories=[inv])
    assert_refused(run, 'n1', UNKNOWN_WWID)
    assert state_of(ssh, 'pdb3', 'neg1') == before


def test_lun_that_holds_a_file_system_is_refused(playbook, ssh, lab, lab_hosts, tmp_path):
    wwid = lab_hosts['pdb1']['lab_luns']['dirty1']
    device = '/dev/disk/by-id/wwn-0x' + wwid
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg2', {'n1': ('pdb1', wwid)})
    before = state_of(ssh, 'pdb1', 'neg2', device)
    run = playbook('create_cluster', '-e', 'cluster=neg2', inventories=[inv])
    assert_refused(run, 'already holds', 'ext4', 'polardb_storage_force=true')
    assert state_of(ssh, 'pdb1', 'neg2', device) == before


def test_unreachable_host_is_refused(playbook, ssh, lab, lab_hosts, tmp_path):
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg3', {
        'n1': ('pdb2', lab_hosts['pdb2']['lab_luns']['spare2']), 'ghost': (None, UNKNOWN_WWID)})
    device = '/dev/disk/by-id/wwn-0x' + lab_hosts['pdb2']['lab_luns']['spare2']
    before = state_of(ssh, 'pdb2', 'neg3', device)
    run = playbook('create_cluster', '-e', 'cluster=neg3', inventories=[inv])
    assert_refused(run, 'Cannot reach ghost', 'Nothing was changed')
    assert state_of(ssh, 'pdb2', 'neg3', device) == before


def test_same_lun_for_two_hosts_is_refused(playbook, ssh, lab, lab_hosts, tmp_path):
    wwid = lab_hosts['pdb1']['lab_luns']['shared1']
    device = '/dev/disk/by-id/wwn-0x' + wwid
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg4', {'n1': ('pdb1', wwid), 'n2': ('pdb2', wwid)})
    before = {h: state_of(ssh, h, 'neg4', device) for h in ('pdb1', 'pdb2')}
    run = playbook('create_cluster', '-e', 'cluster=neg4', inventories=[inv])
    assert_refused(run, 'is given to more than one host (n1, n2)')
    assert {h: state_of(ssh, h, 'neg4', device) for h in ('pdb1', 'pdb2')} == before


def test_a_port_taken_is_refused(playbook, ssh, lab, lab_hosts, tmp_path):
    wwid = lab_hosts['pdb1']['lab_luns']['spare1']
    device = '/dev/disk/by-id/wwn-0x' + wwid
    address = lab_hosts['pdb1']['ansible_host']
    before = state_of(ssh, 'pdb1', 'neg5', device)
    # by another cluster's node on the same host (cluster demo's pdb1 has 5432)
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg5', {'n1': ('pdb1', wwid)}, port=5432)
    run = playbook('create_cluster', '-e', 'cluster=neg5', inventories=[inv])
    assert_refused(run, 'n1: port 5432 on %s is also node pdb1 of cluster demo' % address, 'another polardb_port')
    # by a program that is not an engine of this cluster (sshd)
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'neg5', {'n1': ('pdb1', wwid)}, port=22)
    run = playbook('create_cluster', '-e', 'cluster=neg5', inventories=[inv])
    assert_refused(run, 'n1: port 22 on %s is taken by another program' % address, 'Nothing was changed')
    assert state_of(ssh, 'pdb1', 'neg5', device) == before


def test_a_fleet_run_keeps_a_failed_cluster_to_itself(playbook, ssh, lab, lab_hosts, tmp_path):
    """fleet.yml --check with demo and a cluster whose LUN no host has: both run at
    once, each in its own process and each with --check; "broken" is refused by its
    own preflight, demo's preview finishes beside it changing nothing; the fleet run
    fails naming broken, with each run's output in its log. (One run for both the
    fleet's preview and a failed cluster kept to itself; the fleet's real converge
    is make bench-day2's fleet figure.)"""
    from labtools import cluster_fingerprint
    inv = negative_inventory(tmp_path, lab, lab_hosts, 'broken', {'b1': ('pdb1', UNKNOWN_WWID)})
    before = cluster_fingerprint(ssh, lab_hosts)
    broken_before = state_of(ssh, 'pdb1', 'broken')
    logs = tmp_path / 'logs'
    run = playbook('fleet', '-e', 'clusters=demo,broken', '-e', 'polardb_fleet_log_dir=%s' % logs, inventories=[inv],
                   check=True)
    text = one_line(run.output)
    assert run.rc != 0, text[-3000:]
    assert 'create_cluster on 2 cluster(s) -- CHECK MODE: nothing is changed' in text, text[-3000:]
    assert run.changed() == {}, run.changed()
    assert 'demo: ok in ' in text and ', 3 node(s), 0 change(s)' in text, text[-3000:]
    assert 'broken: FAILED (rc 2)' in text and UNKNOWN_WWID in text, text[-3000:]
    assert 'The run of broken failed or did not finish' in text and 'the other clusters finished, unaffected' in text
    # each ran as its own create_cluster --check: demo's preview to its end, broken's refused at preflight
    demo_log, broken_log = (logs / 'demo.log').read_text(), (logs / 'broken.log').read_text()
    assert 'create_cluster of cluster demo -- CHECK MODE: nothing is changed' in one_line(demo_log) and 'failed=0' in demo_log
    assert '[skipped in check mode]' in one_line(demo_log)
    assert UNKNOWN_WWID in broken_log and 'Engine | Install' not in broken_log
    assert cluster_fingerprint(ssh, lab_hosts) == before
    assert state_of(ssh, 'pdb1', 'broken') == broken_before


def test_status_prints_the_topology(playbook):
    run = playbook('status', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-3000:]
    table = [line.strip().lstrip('-').strip().strip("'").split()
             for line in run.output.splitlines() if 'pdb' in line and ':5432' in line]
    roles = sorted(parts[2] for parts in table)
    assert roles[:1] == ['RW'] and roles.count('RW') == 1, table
    assert 'healthy: yes' in run.output


def test_dsn_writes_on_the_rw_and_reads_back_on_a_standby():
    env = dict(os.environ, PATH=os.path.join(ROOT, '.venv', 'bin') + os.pathsep + os.environ['PATH'])
    dsn = subprocess.run(['make', '-s', '--no-print-directory', 'dsn'], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=300, check=False).stdout.strip()
    assert dsn.startswith('postgresql://app:') and 'target_session_attrs=read-write' in dsn, dsn
    token = uuid.uuid4().hex

    def psql(url, query):
        return subprocess.run(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', url, '-c', query],
                              capture_output=True, text=True, timeout=60, check=False)

    write = psql(dsn, 'create table if not exists dsn_check (id text primary key); '
                      "insert into dsn_check values ('%s')" % token)
    assert write.returncode == 0, write.stderr
    standby = dsn.replace('target_session_attrs=read-write', 'target_session_attrs=standby')
    deadline = time.time() + 30
    while True:
        read = psql(standby, "select pg_is_in_recovery(), count(*) from dsn_check where id = '%s'" % token)
        if read.returncode == 0 and read.stdout.strip() == 't|1':
            break
        assert time.time() < deadline, read.stdout + read.stderr
        time.sleep(0.5)


def test_destroy_needs_the_cluster_named(playbook, ssh):
    run = playbook('destroy_cluster', '-e', 'cluster=demo')
    assert run.rc != 0
    assert 'needs -e confirm_destroy=demo' in one_line(run.output)
    assert ssh('pdb1', 'systemctl is-active polardb@demo').stdout.strip() == 'active'
