"""reconcile.yml on the lab: cluster "demo" declared as a PolarDBCluster on a real
kube-apiserver (a control plane of its own, beside the one of test_k8s_api),
reconciled as the reconciler's service account, a client writing throughout.
The resource's status must say what the engines say; a new spec.primary is a
switchover that loses nothing; a converged cluster's reconcile changes nothing
but its live readings (heartbeat, replica lag); check mode writes nothing."""
import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from k8stools import ansible_env, k8s_lab, setup_namespace
from labtools import (LAB_INVENTORY, ROOT, VENV_BIN, cluster_fingerprint, log_run, no_lock_left, one_line, read_until,
                      settle, sql, the_rw, wait_streaming)

NAMESPACE = 'lab-clusters'
# a second control plane: test_k8s_api's (make test runs it beside these tests) has the default port and directory
K8S_ENV = dict(POLARDB_K8S_PORT='16543', POLARDB_K8S_DIR='/var/lib/polardb-stack-lab/k8s-reconcile')
ADMIN = os.path.join(K8S_ENV['POLARDB_K8S_DIR'], 'admin.kubeconfig')
DEMO = '/apis/stack.polardb.io/v1alpha1/namespaces/%s/polardbclusters/demo' % NAMESPACE
LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/%s/leases/polardb-lock-demo' % NAMESPACE
# the reconciles killed on purpose hold their Lease this long (renewed every third of it while they live)
LEASE = 15


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
    # how to reach the hosts, as a user gives it beside the plugin: the lab's inventory without its group
    # polardb_demo, so that the cluster's nodes are what the resource says
    with open(LAB_INVENTORY, encoding='utf-8') as f:
        reach = yaml.safe_load(f)
    del reach['all']['children']['polardb_demo']
    (d / 'reach.yml').write_text(yaml.safe_dump(reach))
    # no colour (ansible_env): the recap is read as text
    ids.update(source=str(source), reach=str(d / 'reach.yml'), env=ansible_env())
    yield ids
    k8s_lab('down', env=K8S_ENV)


def playbook_argv(k8s, name, cluster, *extra):
    """ansible-playbook playbooks/<name>.yml for ``cluster``, its hosts from the resources
    (the inventory plugin) as the reconciler's service account sees them."""
    return [os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/%s.yml' % name, '-i', k8s['reach'],
            '-i', k8s['source'], '-e', 'cluster=' + cluster, '-e', 'polardb_k8s_kubeconfig=' + k8s['reconciler']] + list(extra)


def reconcile(k8s, *extra, check=False, cluster='demo'):
    argv = playbook_argv(k8s, 'reconcile', cluster, *(['--check'] if check else []))
    started = time.monotonic()
    proc = subprocess.run(argv + list(extra), capture_output=True, text=True, cwd=ROOT, env=k8s['env'],
                          timeout=900, check=False)
    took = time.monotonic() - started
    print('reconcile%s: rc=%d in %.1f s' % (' --check' if check else '', proc.returncode, took))
    log_run('reconcile', argv[2:], proc.returncode, took)
    return proc


def start_reconcile(k8s, *extra):
    """A reconcile in the background, in a process group of its own (killed as a whole)."""
    return subprocess.Popen(playbook_argv(k8s, 'reconcile', 'demo', *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=k8s['env'], start_new_session=True)


def lease_free(run):
    """The run, unless the Lease of an earlier (dead) run refused it: then None, to try again."""
    if run.returncode != 0 and 'is locked on the Kubernetes API' in one_line(run.stdout):
        return None
    return run


def wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, 'no %s after %d s' % (what, timeout)
        time.sleep(2)


def declare(k8s, name='demo', **args):
    argv = [os.path.join(VENV_BIN, 'ansible'), 'localhost', '-m', 'polardb.stack.cluster_resource', '-a',
            json.dumps(dict(args, name=name, namespace=NAMESPACE, kubeconfig=k8s['editor']))]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=k8s['env'], timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def demo_nodes(lab, lab_hosts):
    wwids = lab['all']['children']['polardb_demo']['hosts']
    return [dict(name=h, host=lab_hosts[h]['ansible_host'], wwid=wwids[h]['polardb_lun_wwid']) for h in sorted(lab_hosts)]


def status(k8s, name='demo'):
    code, obj = k8s['admin'].call('GET', DEMO.replace('/demo', '/' + name))
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
    assert k8s['admin'].call('GET', LEASE_PATH)[0] == 404


def test_replicas_parameters_by_the_spec_remove_and_add_a_node_and_reload(k8s, lab, lab_hosts, ssh, writer):
    """spec.replicas lowered: reconcile removes a replica (its data kept), the RW streams to the other only;
    killed in the middle of that, the run is marked Interrupted and the next run finishes the removal; a second
    reconcile beside the first is refused. Raised again: the node comes back from its data and streams;
    spec.parameters: reloaded on every node. The writer goes on throughout; nothing acknowledged is lost."""
    rw = the_rw(ssh, lab_hosts)
    nodes = demo_nodes(lab, lab_hosts)
    keep, leave = [n['name'] for n in nodes if n['name'] != rw]
    gen = status(k8s)['observedGeneration']
    declare(k8s, replicas=1)
    preview = reconcile(k8s, check=True)
    assert preview.returncode == 0, preview.stdout[-4000:]
    assert 'remove_node: %s runs but spec.replicas (1) leaves it out' % leave in one_line(preview.stdout)
    assert sql(ssh, rw, 'select count(*) from pg_stat_replication') == '2'

    # the reconcile is killed in the middle of the removal: the node's engine stopped, the RW not yet reconfigured
    proc = start_reconcile(k8s, '-e', 'polardb_reconcile_lease_seconds=%d' % LEASE)
    wait_for(lambda: k8s['admin'].call('GET', LEASE_PATH)[0] == 200 or proc.poll() is not None, 120, 'Lease')
    # a second reconcile meanwhile is refused, naming the first
    second = start_reconcile(k8s)
    deadline = time.monotonic() + 300
    while ssh(leave, 'systemctl is-active polardb@demo', check=False).stdout.strip() == 'active':
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.monotonic() < deadline, 'the removal did not start'
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    second_out = one_line(second.communicate(timeout=300)[0])
    assert second.returncode != 0 and 'is locked on the Kubernetes API' in second_out, second_out[-3000:]
    run_id = status(k8s)['lastOperation']['runId']  # the killed run's, recorded as its step started
    assert run_id in second_out, (run_id, second_out[-3000:])
    # the Lease's heartbeat sees the run gone and marks its step Interrupted
    st = wait_for(lambda: status(k8s).get('phase') == 'Interrupted' and status(k8s), 60, 'the Interrupted phase')
    last = st['lastOperation']
    assert (last['step'], last['node'], last['result']) == ('remove_node', leave, 'Interrupted'), st
    assert 'is gone; run reconcile again to resume it' in last['message']
    assert st['conditions'][0]['reason'] == 'Interrupted'

    # run again (once the dead run's Lease expired): it finishes the removal first
    run = wait_for(lambda: lease_free(reconcile(k8s, '-e', 'polardb_reconcile_lease_seconds=%d' % LEASE)), 120,
                   'a reconcile once the Lease expired')
    assert run.returncode == 0, run.stdout[-4000:]
    assert 'resuming remove_node %s of run %s' % (leave, last['runId']) in one_line(run.stdout)
    assert sql(ssh, rw, "select string_agg(application_name, ',') from pg_stat_replication") == keep
    assert sql(ssh, rw, "select string_agg(slot_name, ',') from pg_replication_slots") == keep
    # the node's engine stopped and disabled, its LUN's data kept (not named for wiping)
    assert ssh(leave, 'systemctl is-active polardb@demo; systemctl is-enabled polardb@demo',
               check=False).stdout.split() == ['inactive', 'disabled']
    wwid = [n['wwid'] for n in nodes if n['name'] == leave][0]
    assert ssh(leave, 'blkid -p -s TYPE -o value /dev/disk/by-id/wwn-0x%s' % wwid, check=False).stdout.strip() == 'xfs'
    st = status(k8s)
    assert sorted(i['name'] for i in st['instances']) == sorted([rw, keep]), st
    assert st['phase'] == 'Running' and st['ready'] == '2/2' and st['observedGeneration'] == gen + 1, st
    assert st['lastOperation']['message'] == 'ran: remove_node ' + leave and 'node' not in st['lastOperation']
    no_lock_left(ssh, lab_hosts)
    assert k8s['admin'].call('GET', LEASE_PATH)[0] == 404

    declare(k8s, replicas=2, parameters={'work_mem': '8MB'})
    run = reconcile(k8s)
    assert run.returncode == 0, run.stdout[-4000:]
    assert settle(ssh, lab_hosts, writer) == rw
    assert sql(ssh, rw, "select active from pg_replication_slots where slot_name = '%s'" % leave) == 't'
    assert sql(ssh, leave, 'select status from pg_stat_wal_receiver') == 'streaming'
    for h in lab_hosts:
        assert sql(ssh, h, 'show work_mem') == '8MB', h
    st = status(k8s)
    assert st['phase'] == 'Running' and st['ready'] == '3/3' and st['observedGeneration'] == gen + 2, st
    assert st['lastOperation']['message'] == 'ran: add_node %s, refresh_params' % leave
    assert st['applied']['parameters'] == {'work_mem': '8MB'}
    no_lock_left(ssh, lab_hosts)

    # a parameter dropped from the spec goes back to its default (the tests after these expect the lab's settings)
    declare(k8s, parameters={})
    run = reconcile(k8s)
    assert run.returncode == 0, run.stdout[-4000:]
    for h in lab_hosts:
        assert sql(ssh, h, 'show work_mem') == '4MB', h
    assert status(k8s)['lastOperation']['message'] == 'ran: refresh_params'


def test_a_new_resource_is_created_by_reconcile_and_deleted_keeping_its_data(k8s, lab_hosts, ssh, writer):
    """A resource never reconciled whose engines do not answer: reconcile creates the cluster (its RW where
    spec.primary says, its replica streaming), on the spare LUNs and port 5433 of two lab hosts, beside
    cluster demo, whose client keeps writing. Deleted, the resource stays (its finalizer) until a reconcile
    removed the engines; deletionPolicy Retain: the LUNs keep their data."""
    demo_rw = the_rw(ssh, lab_hosts)
    first, second = sorted(lab_hosts)[:2]
    nodes = [dict(name='f' + h[-1], host=lab_hosts[h]['ansible_host'], wwid=lab_hosts[h]['lab_luns']['spare' + h[-1]],
                  port=5433) for h in (first, second)]
    declare(k8s, name='fresh', primary='f' + first[-1], replicas=1, nodes=nodes)

    def fresh_sql(host, query):
        return ssh(host, "cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql -p 5433 -d postgres "
                         "-c \"%s\"" % query).stdout.strip()

    def file_systems():
        return [ssh(h, 'blkid -p -s TYPE -o value /dev/disk/by-id/wwn-0x%s' % n['wwid'], check=False).stdout.strip()
                for h, n in zip((first, second), nodes)]

    def engines():
        return [ssh(h, 'systemctl is-active polardb@fresh', check=False).stdout.strip() for h in (first, second)]

    try:
        preview = reconcile(k8s, check=True, cluster='fresh')
        assert preview.returncode == 0, preview.stdout[-4000:]
        assert 'create_cluster: no engine answers on any node of a cluster never reconciled' in one_line(preview.stdout)
        assert file_systems() == ['', ''] and status(k8s, 'fresh') == {}

        run = reconcile(k8s, cluster='fresh')
        assert run.returncode == 0, run.stdout[-4000:]
        assert fresh_sql(first, 'select pg_is_in_recovery()') == 'f'
        assert fresh_sql(first, 'select application_name, state from pg_stat_replication') == nodes[1]['name'] + '|streaming'
        assert file_systems() == ['xfs', 'xfs']
        st = status(k8s, 'fresh')
        assert st['phase'] == 'Running' and st['rw'] == nodes[0]['name'] and st['ready'] == '2/2', st
        assert st['observedGeneration'] == 1 and st['lastOperation']['message'] == 'ran: create_cluster ' + nodes[0]['name']
        assert dict((i['name'], i['role']) for i in st['instances']) == {nodes[0]['name']: 'rw', nodes[1]['name']: 'replica'}
        fresh = DEMO.replace('/demo', '/fresh')
        assert k8s['admin'].call('GET', fresh)[1]['metadata']['finalizers'] == ['stack.polardb.io/engines']
        fresh_sql(first, 'create table kept as select 42 as answer')
        fresh_sql(first, 'checkpoint')
        table_file = fresh_sql(first, "select pg_relation_filepath('kept')")
        # cluster demo: same RW, nothing lost
        assert settle(ssh, lab_hosts, writer) == demo_rw

        # deleted: held by the finalizer, the engines still run, until a reconcile removes them
        declare(k8s, name='fresh', state='absent')
        code, obj = k8s['admin'].call('GET', fresh)
        assert code == 200 and obj['metadata'].get('deletionTimestamp'), obj
        assert engines() == ['active', 'active']
        gone = reconcile(k8s, cluster='fresh')
        assert gone.returncode == 0, gone.stdout[-4000:]
        assert 'deleted: engines removed (every LUN keeps its data)' in one_line(gone.stdout)
        assert k8s['admin'].call('GET', fresh)[0] == 404
        assert engines() == ['inactive', 'inactive']
        assert file_systems() == ['xfs', 'xfs']
        # the data is there: mounted by hand, the RW's LUN still holds the table's file
        size = ssh(first, 'mkdir -p /mnt/fresh-kept && mount -o ro /dev/disk/by-id/wwn-0x%s /mnt/fresh-kept && '
                          'stat -c %%s /mnt/fresh-kept/data/%s; umount /mnt/fresh-kept' % (nodes[0]['wwid'], table_file)).stdout
        assert int(size) > 0, size
        assert settle(ssh, lab_hosts, writer) == demo_rw
    finally:
        # whatever happened: no engine of cluster fresh left, its LUNs blank for the tests after these
        subprocess.run(playbook_argv(k8s, 'destroy_cluster', 'fresh', '-e', 'confirm_destroy=fresh', '-e', 'wipe=true'),
                       capture_output=True, text=True, cwd=ROOT, env=k8s['env'], timeout=900, check=False)
        k8s['admin'].call('PATCH', DEMO.replace('/demo', '/fresh'), {'metadata': {'finalizers': None}},
                          content_type='application/merge-patch+json')
        k8s['admin'].call('DELETE', DEMO.replace('/demo', '/fresh'))
        for h, n in zip((first, second), nodes):
            ssh(h, 'wipefs -a -q /dev/disk/by-id/wwn-0x%s' % n['wwid'], check=False)
    assert file_systems() == ['', '']


MIB = 1024 * 1024


# last: the resource says a new engine version and storage size; then a lost instance is refused
def test_engine_version_and_storage_size_by_the_spec_then_a_lost_instance_is_refused(k8s, lab, lab_hosts, ssh, writer):
    rw = the_rw(ssh, lab_hosts)
    wwids = dict((n['name'], n['wwid']) for n in demo_nodes(lab, lab_hosts))

    def sizes():
        """{node: (LUN bytes, file system bytes)} as the host sees them."""
        return dict((h, (int(ssh(h, 'blockdev --getsize64 /dev/disk/by-id/wwn-0x%s' % w).stdout),
                         int(ssh(h, 'df -B1 --output=size /srv/polardb/demo | tail -1').stdout))) for h, w in wwids.items())

    before = sizes()
    started = dict((h, sql(ssh, h, 'select pg_postmaster_start_time()')) for h in sorted(lab_hosts))
    # the version installed everywhere (minor_upgrade's own test moves versions): the step runs and finds
    # nothing to install; the size 256 MiB above the largest LUN
    version = ssh(rw, "dpkg-query -W -f '${Version}' postgresql-15").stdout.strip()
    size = '%dMi' % (max(lun for lun, _fs in before.values()) // MIB + 256)
    declare(k8s, engine_version=version, storage_size=size)
    run = reconcile(k8s)
    assert run.returncode == 0, run.stdout[-4000:]
    after = sizes()
    for h in wwids:
        assert after[h][0] == int(size[:-2]) * MIB and after[h][1] > before[h][1], (h, before[h], after[h])
    # online, and no package changed: no engine restarted
    assert dict((h, sql(ssh, h, 'select pg_postmaster_start_time()')) for h in sorted(lab_hosts)) == started
    st = status(k8s)
    assert st['phase'] == 'Running', st
    assert (st['applied']['engineVersion'], st['applied']['storageSize']) == (version, size), st['applied']
    assert st['lastOperation']['result'] == 'Succeeded', st['lastOperation']
    assert 'minor_upgrade' in st['lastOperation']['message'] and 'expand_storage' in st['lastOperation']['message']
    assert settle(ssh, lab_hosts, writer) == rw
    no_lock_left(ssh, lab_hosts)

    # a replica whose engine does not answer: refused before anything changes, the generation not observed
    replica = sorted(h for h in lab_hosts if h != rw)[0]
    ssh(replica, 'systemctl stop polardb@demo')
    try:
        declare(k8s, parameters={'work_mem': '24MB'})
        gen = status(k8s)['observedGeneration']
        run = reconcile(k8s)
        assert run.returncode != 0
        assert '%s was an instance of the cluster and does not answer: rebuild it' % replica in one_line(run.stdout)
        assert sql(ssh, rw, 'show work_mem') != '24MB' and the_rw(ssh, lab_hosts) == rw
        st = status(k8s)
        assert st['lastOperation']['result'] == 'Failed' and st['conditions'][0]['reason'] == 'Refused'
        assert st['observedGeneration'] == gen
    finally:
        ssh(replica, 'systemctl start polardb@demo')
    assert settle(ssh, lab_hosts, writer) == rw


def lease_record(k8s):
    """The lock record the cluster's Lease holds, or None (no Lease)."""
    code, lease = k8s['admin'].call('GET', LEASE_PATH)
    if code == 404:
        return None
    assert code == 200, lease
    return json.loads(lease['metadata']['annotations']['stack.polardb.io/lock'])


def test_a_playbook_and_a_reconcile_never_run_at_once_on_a_declared_cluster(k8s, lab_hosts, ssh, writer):
    """switchover.yml run by hand on the declared cluster (its hosts from the inventory plugin, which also tells
    it the API server) takes the cluster's Lease beside the nodes' records: killed while it holds them, a
    reconcile is refused naming it, and running the playbook again resumes it once its Lease expired. The
    other way round, a reconcile's Lease refuses the playbook before anything changes; the next reconcile
    runs and reports the RW the playbook chose (spec.primary was applied before: a later move of the RW, by
    hand or by a failover, is not undone)."""
    declare(k8s, parameters={})  # the previous test left a change that it was refused
    code, obj = k8s['admin'].call('GET', DEMO)
    assert code == 200, obj
    primary = obj['spec']['primary']
    assert the_rw(ssh, lab_hosts) == primary
    target = sorted(h for h in lab_hosts if h != primary)[0]
    # no -e polardb_k8s_kubeconfig: the inventory plugin's kubeconfig is the playbook's
    switchover = [os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/switchover.yml', '-i', k8s['reach'],
                  '-i', k8s['source'], '-e', 'cluster=demo', '-e', 'polardb_lock_lease_seconds=%d' % LEASE]

    # the playbook holds the Lease (taken before the nodes' records), then dies
    proc = subprocess.Popen(switchover + ['-e', 'target=' + target], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=k8s['env'], start_new_session=True)
    read_until(proc, 'Lock | Take the lease on every node at once')
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    held = lease_record(k8s)
    assert held and held['operation'] == 'switchover' and held['params'] == {'from': primary, 'to': target}, held
    before = (cluster_fingerprint(ssh, lab_hosts), status(k8s))
    refused = reconcile(k8s)
    text = one_line(refused.stdout)
    assert refused.returncode != 0 and 'is locked on the Kubernetes API' in text, text[-3000:]
    assert 'switchover' in text and held['owner']['run_id'] in text, text[-3000:]
    assert (cluster_fingerprint(ssh, lab_hosts), status(k8s)) == before
    assert lease_record(k8s) == held

    # the same command again: it waits for the dead run's Lease to expire and finishes its switchover
    run = subprocess.run(switchover + ['-e', 'target=' + target], capture_output=True, text=True, cwd=ROOT,
                         env=k8s['env'], timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-4000:]
    assert 'Resuming switchover {"from": "%s", "to": "%s"} of run %s' % (primary, target, held['owner']['run_id']) \
        in one_line(run.stdout), one_line(run.stdout)[-3000:]
    assert the_rw(ssh, lab_hosts) == target
    wait_streaming(ssh, lab_hosts, target)
    assert lease_record(k8s) is None
    no_lock_left(ssh, lab_hosts)

    # a reconcile holds the Lease (it would switch back to spec.primary), then dies: the playbook is refused
    proc = start_reconcile(k8s, '-e', 'polardb_reconcile_lease_seconds=%d' % LEASE)
    read_until(proc, 'Reconcile | Discover the topology and plan')
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    held = lease_record(k8s)
    assert held and held['operation'] == 'reconcile', held
    before = cluster_fingerprint(ssh, lab_hosts)
    refused = subprocess.run(switchover + ['-e', 'target=' + primary, '-e', 'polardb_lock_wait_seconds=0'],
                             capture_output=True, text=True, cwd=ROOT, env=k8s['env'], timeout=600, check=False)
    text = one_line(refused.stdout)
    assert refused.returncode != 0, text[-3000:]
    assert 'Cluster demo is locked by reconcile' in text and held['owner']['run_id'] in text, text[-3000:]
    assert 'lease %s/polardb-lock-demo' % NAMESPACE in text and 'Nothing was changed' in text, text[-3000:]
    assert cluster_fingerprint(ssh, lab_hosts) == before
    assert lease_record(k8s) == held

    # the next reconcile, once the dead one's Lease expired
    run = wait_for(lambda: lease_free(reconcile(k8s, '-e', 'polardb_reconcile_lease_seconds=%d' % LEASE)), 120,
                   'a reconcile once the Lease expired')
    assert run.returncode == 0, run.stdout[-4000:]
    assert settle(ssh, lab_hosts, writer) == target
    st = status(k8s)
    assert st['rw'] == target and st['phase'] == 'Running' and st['ready'] == '3/3', st
    assert st['lastOperation']['result'] == 'Succeeded', st['lastOperation']
    assert lease_record(k8s) is None
    no_lock_left(ssh, lab_hosts)
