"""--check on a live cluster: every lifecycle playbook prints its plan and changes
nothing anywhere: not the managed files, not the engines (no restart, no promote,
same roles and timelines, same slots), not the LUNs and file systems (their
sizes), not the array's registrations and fences, not the locks. Runs against
the lab's healthy cluster "demo"."""
import pytest

from labtools import cluster_fingerprint, one_line

# operation -> its preview: --check --diff and the extra vars a real run would need
RUNS = {
    'switchover': ['--check', '--diff'],
    # force: the RW answers, and a forced failover would promote a replica (the trap:
    # postgresql_query "simulates" pg_promote() by rolling back, which cannot undo it)
    'failover': ['--check', '--diff', '-e', 'force=true'],
    'rebuild_node': ['--check', '--diff', '-e', 'node={replica}'],
    'destroy_cluster': ['--check', '--diff', '-e', 'confirm_destroy=demo'],
    # (create_cluster's own preview: add_node below, and test_create_cluster's fleet --check, whose log
    # is demo's create_cluster --check)
    # day-2: a rolling restart by switchover, a LUN grown on the array, a replica removed
    'restart': ['--check', '--diff'],
    'expand_storage': ['--check', '--diff', '-e', 'size=8G'],
    'remove_node': ['--check', '--diff', '-e', 'node={replica}'],
    # a node already streaming: add_node converges it (create_cluster's preview)
    'add_node': ['--check', '--diff', '-e', 'node={replica}'],
    'scale': ['--check', '--diff', '-e', 'polardb_class=medium'],
}
# the plan printed under another operation's name: add_node is create_cluster
# with one node named, scale is refresh_params with a class
PLANNED_AS = {'add_node': 'create_cluster', 'scale': 'refresh_params'}


def replicas(ssh, hosts):
    out = {h: ssh(h, "cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql -c "
                     "'select pg_is_in_recovery()'", check=False).stdout.strip() for h in hosts}
    assert sorted(out.values()) == ['f', 't', 't'], out
    return sorted(h for h, r in out.items() if r == 't')


@pytest.mark.parametrize('operation', sorted(RUNS))
def test_check_mode_prints_the_plan_and_changes_nothing(operation, playbook, ssh, lab_hosts):
    replica = replicas(ssh, lab_hosts)[0]
    before = cluster_fingerprint(ssh, lab_hosts)
    run = playbook(operation, '-e', 'cluster=demo', *[a.format(replica=replica) for a in RUNS[operation]])
    assert run.rc == 0, run.output[-5000:]
    out = one_line(run.output)
    assert '%s of cluster demo -- CHECK MODE: nothing is changed' % PLANNED_AS.get(operation, operation) in out, \
        out[-3000:]
    # what cannot be simulated is named: for a converged cluster's converge, only the wait
    assert '[skipped in check mode]' in out
    assert 'write unavailability: ' in out
    assert run.changed() == {}, run.changed()
    assert cluster_fingerprint(ssh, lab_hosts) == before
