"""Validation before any change (issue 7, part 2) and bounded WAL (part 7),
against the lab's live, converged cluster "demo" (1 RW + 2 replicas).

Every bad input is refused (rc != 0) with a message naming the input, and
leaves unchanged, on every node: the sha256 of every managed file and the
engine's control data, postmaster start and configuration load times (a
reload or restart would move them)."""
import json
import re
import shlex

import pytest
import yaml

from labtools import one_line

MANAGED = '/etc/polardb-stack/demo'
PSQL = "cd / && runuser -u postgres -- psql -XAtq -h /var/run/postgresql -d postgres -c "
# pg_controldata lines that move while an idle engine runs (not a change of ours)
VOLATILE = re.compile(r'^(pg_control last modified|Minimum recovery ending location|Min recovery ending loc)')


def fingerprint(ssh, host):
    files = ssh(host, 'find %s /etc/systemd/system/polardb@.service -type f | sort | xargs sha256sum' % MANAGED).stdout
    control = ssh(host, 'LC_ALL=C /usr/lib/postgresql/15/bin/pg_controldata -D /srv/polardb/demo/data').stdout
    control = '\n'.join(line for line in control.splitlines() if not VOLATILE.match(line))
    engine = ssh(host, PSQL + shlex.quote('select pg_postmaster_start_time(), pg_conf_load_time()')).stdout
    return {'files': files, 'control': control, 'engine': engine}


@pytest.fixture(scope='module')
def nodes(lab_hosts):
    return sorted(lab_hosts)


@pytest.fixture(scope='module')
def quiet_cluster(ssh, nodes, playbook):
    """A healthy demo with a fresh checkpoint on the RW and restartpoints on the
    replicas, so that no timed checkpoint moves the control data mid-test."""
    run = playbook('status', '-e', 'cluster=demo')
    assert run.rc == 0 and 'healthy: yes' in run.output, run.output[-3000:]
    roles = {h: ssh(h, PSQL + shlex.quote('select pg_is_in_recovery()')).stdout.strip() for h in nodes}
    rw = [h for h, r in roles.items() if r == 'f']
    assert len(rw) == 1, roles
    ssh(rw[0], PSQL + 'checkpoint')
    for h in nodes:
        if h != rw[0]:
            ssh(h, PSQL + 'checkpoint')   # a restartpoint on a replica
    return rw[0]


def refused(playbook, ssh, nodes, args, *fragments):
    before = {h: fingerprint(ssh, h) for h in nodes}
    run = playbook('create_cluster', '-e', 'cluster=demo', *args)
    text = one_line(run.output)
    assert run.rc != 0, text[-3000:]
    for fragment in fragments:
        assert fragment in text, 'expected %r in:\n%s' % (fragment, text[-3000:])
    assert 'Nothing was changed' in text
    assert 'Engine | Install' not in text, 'the run went past preflight'
    assert run.changed() == {}, run.changed()
    assert {h: fingerprint(ssh, h) for h in nodes} == before
    return text


def params(**values):
    return ['-e', json.dumps({'polardb_parameters': values})]


# The inputs. The parameter ones are checked at the same step as the
# parameter values below, so they are named in that group's run; this one is
# refused at an earlier step (the settings), in its own run.
CASES = {
    'sync_replicas_7': (['-e', 'polardb_synchronous_replicas=7'],
                        ["polardb_synchronous_replicas='7' must be an integer from 0 to 2"]),
}

# Our own, several bad inputs per run: preflight names every problem it finds
# at one step, so one refused run shows that each of them is caught (each
# fragment must be in the message). A group holds inputs that the same step
# checks: the settings and parameter names on the controller, then the
# parameter values against the engines.
GROUPS = {
    'settings_and_names': ([
        '-e', json.dumps({
            'polardb_synchronous_replicas': -1, 'polardb_port': 70000, 'polardb_fstype': 'btrfs',
            'polardb_fence_driver': 'stonith', 'polardb_wait_timeout': 0, 'polardb_switchover_max_lag_bytes': -1,
            'polardb_client_networks': ['10.0.0.0/33'], 'polardb_max_slot_wal_keep_size': 'lots',
            'polardb_wal_segment_size_mb': 3, 'polardb_parameters': {'ssl': 'off'}})], [
        'polardb_synchronous_replicas=', 'polardb_port=', 'must be an integer from 1 to 65535',
        "polardb_fstype='btrfs' must be one of xfs, ext4", "polardb_fence_driver='stonith' must be one of",
        'polardb_wait_timeout=', 'must be an integer >= 1', 'polardb_switchover_max_lag_bytes=',
        "polardb_client_networks: '10.0.0.0/33' is not a network",
        "polardb_max_slot_wal_keep_size='lots' must be auto, -1", 'parameter ssl is managed by polardb.stack',
        'polardb_wal_segment_size_mb=', 'must be one of 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024']),
    'interval_and_not_a_mapping': (['-e', 'polardb_wait_interval=600', '-e', 'polardb_parameters=lots'], [
        'polardb_wait_interval=600 must not exceed polardb_wait_timeout=300',
        'polardb_parameters must be a mapping']),
    # with the parameter inputs: shared_buffers=lots, max_connections=-5, no_such_param
    'parameter_values': (params(shared_buffers='lots', max_connections='-5', no_such_param='1',
                                work_mem='128mb', checkpoint_timeout='2d', wal_level='archive',
                                hot_standby='maybe', wal_segment_size='32MB', shared_bufers='1GB'), [
        "shared_buffers='lots': not an integer", "max_connections='-5' (-5) is outside the valid range 1 .. 262143",
        'no_such_param is not a parameter of this engine',
        "work_mem='128mb': invalid unit 'mb'", "checkpoint_timeout='2d'", 'outside the valid range',
        "wal_level='archive': allowed values are minimal, replica, logical", "hot_standby='maybe': not a boolean",
        'wal_segment_size cannot be set', 'set polardb_wal_segment_size_mb before the cluster is created',
        'shared_bufers is not a parameter', 'did you mean shared_buffers']),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(case, quiet_cluster, playbook, ssh, nodes):
    args, fragments = CASES[case]
    refused(playbook, ssh, nodes, args, *fragments)


@pytest.mark.parametrize('group', sorted(GROUPS))
def test_each_of_several_bad_inputs_is_named_and_nothing_changes(group, quiet_cluster, playbook, ssh, nodes):
    args, fragments = GROUPS[group]
    refused(playbook, ssh, nodes, args, *fragments)


def test_a_refused_first_creation_leaves_nothing_on_the_host(playbook, ssh, lab_hosts, tmp_path):
    wwid = lab_hosts['pdb3']['lab_luns']['spare3']
    device = '/dev/disk/by-id/wwn-0x' + wwid
    inv = tmp_path / 'negv.yml'
    inv.write_text(yaml.safe_dump({'all': {'children': {'polardb_negv': {
        # its own port: the lab's hosts run cluster demo's engines on 5432
        'vars': {'polardb_initial_primary': 'v1', 'polardb_port': 5499},
        'hosts': {'v1': {'ansible_host': lab_hosts['pdb3']['ansible_host'], 'polardb_lun_wwid': wwid}}}}}}))
    state = ('test -e /etc/polardb-stack/negv && echo conf; grep -c " /srv/polardb/negv " /etc/fstab || true; '
             'test -e /srv/polardb/negv && echo mountpoint; blkid -p %s || true; '
             'dd if=%s bs=1M count=4 status=none | sha256sum' % (device, device))
    before = ssh('pdb3', state).stdout
    assert 'TYPE=' not in before, 'the spare LUN is not blank: %s' % before
    run = playbook('create_cluster', '-e', 'cluster=negv', '-e', 'polardb_parameter_catalog=shipped',
                   *params(shared_buffers='lots'), inventories=[inv])
    text = one_line(run.output)
    assert run.rc != 0, text[-3000:]
    assert "shared_buffers='lots': not an integer" in text and 'Nothing was changed' in text
    assert run.changed() == {}, run.changed()
    assert ssh('pdb3', state).stdout == before


def test_status_shows_each_slots_retained_wal_and_the_bound(playbook, ssh, quiet_cluster, nodes):
    rw = quiet_cluster
    keep = ssh(rw, PSQL + shlex.quote('show max_slot_wal_keep_size')).stdout.strip()
    # derived from the 2 GiB lab LUN: a quarter of it
    assert keep == '512MB'
    run = playbook('status', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-3000:]
    text = run.output
    assert 'slot_wal_bytes' in text and 'wal_status' in text
    rows = [line.strip().lstrip('-').strip().strip('"').strip("'").split()
            for line in text.splitlines() if ':5432' in line and 'pdb' in line]
    replicas = [r for r in rows if r[0] != rw]
    assert len(replicas) == len(nodes) - 1, rows
    # ... slot_wal_bytes wal_status pending_restart
    for r in replicas:
        assert r[-2] == 'reserved' and r[-3].isdigit(), r
    assert 'max_slot_wal_keep_size on the RW %s: 512MB' % rw in text
    # the slots the table shows are the RW's own
    slots = ssh(rw, PSQL + shlex.quote("select string_agg(slot_name || ':' || wal_status, ' ' order by slot_name) "
                                       "from pg_replication_slots")).stdout.split()
    assert slots == ['%s:reserved' % r[0] for r in sorted(replicas)]


def test_a_converge_with_another_wal_segment_size_keeps_the_clusters_and_says_so(quiet_cluster, playbook, ssh, nodes):
    """The lab's inventory makes demo with 4 MB segments; asking for 16 on the
    live cluster changes nothing (the size is fixed at initdb) and says so."""
    assert {h: ssh(h, PSQL + shlex.quote('show wal_segment_size')).stdout.strip() for h in nodes} == \
        {h: '4MB' for h in nodes}
    before = {h: fingerprint(ssh, h) for h in nodes}
    run = playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_wal_segment_size_mb=16')
    text = one_line(run.output)
    assert run.rc == 0, text[-3000:]
    assert 'was made with 4 MB WAL segments, not 16: the size is fixed when a cluster is created' in text, \
        text[-3000:]
    assert run.changed() == {}, run.changed()
    assert {h: fingerprint(ssh, h) for h in nodes} == before
