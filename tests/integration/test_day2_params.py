"""refresh_params.yml and restart.yml on the lab's cluster "demo" (issue 8,
parts 1 and 3), with a client writing through the multi-host DSN: a reload
parameter reaches every engine without a restart; a restart parameter
restarts the replicas one at a time and the RW by a switchover; a second run
changes nothing; refusals change nothing (fingerprint); lowering a
hot-standby parameter goes RW first, in place. The module's teardown puts the
inventory's parameters back, so later tests find the cluster as created."""
import json

import pytest

from labtools import assert_refused, no_lock_left, one_line, settle, sql, the_rw


def params_arg(params):
    return json.dumps({'polardb_parameters': params})


def started(ssh, hosts):
    """{host: the engine's start time}: a restart changes it."""
    return {h: sql(ssh, h, 'select pg_postmaster_start_time()') for h in sorted(hosts)}


def setting(ssh, hosts, name):
    return {h: sql(ssh, h, 'show %s' % name) for h in sorted(hosts)}


def check_writer(ssh, lab_hosts, writer):
    rw = settle(ssh, lab_hosts, writer)
    streaming = sql(ssh, rw, "select count(*) from pg_stat_replication where state = 'streaming'")
    assert int(streaming) == len(lab_hosts) - 1
    no_lock_left(ssh, lab_hosts)
    return rw


@pytest.fixture(scope='module', autouse=True)
def inventory_parameters_back(playbook, lab):
    yield
    # lowering max_connections back to the inventory's needs the RW restarted first, in place
    run = playbook('refresh_params', '-e', 'cluster=demo', '-e', 'polardb_restart_strategy=in_place')
    assert run.rc == 0, run.output[-4000:]


def test_refresh_reloads_and_restarts_rolling_then_changes_nothing(playbook, ssh, lab, lab_hosts, writer):
    old_rw = the_rw(ssh, lab_hosts)
    before = started(ssh, lab_hosts)
    wanted = {'work_mem': '6MB', 'max_connections': int(setting(ssh, [old_rw], 'max_connections')[old_rw]) + 20}

    preview = playbook('refresh_params', '-e', 'cluster=demo', '-e', params_arg(wanted), check=True)
    assert preview.rc == 0, preview.output[-4000:]
    text = one_line(preview.output)
    assert 'CHECK MODE' in text and 'switchover on %s' % old_rw in text
    assert started(ssh, lab_hosts) == before
    assert set(setting(ssh, lab_hosts, 'work_mem').values()) == {'4MB'}

    run = playbook('refresh_params', '-e', 'cluster=demo', '-e', params_arg(wanted))
    assert run.rc == 0, run.output[-4000:]
    new_rw = check_writer(ssh, lab_hosts, writer)
    assert new_rw != old_rw, 'the RW restarts by a switchover'
    assert set(setting(ssh, lab_hosts, 'work_mem').values()) == {'6MB'}
    assert set(setting(ssh, lab_hosts, 'max_connections').values()) == {str(wanted['max_connections'])}
    after = started(ssh, lab_hosts)
    assert all(after[h] != before[h] for h in lab_hosts), (before, after)
    assert sql(ssh, new_rw, 'select count(*) from pg_settings where pending_restart') == '0'
    text = one_line(run.output)
    assert 'still pending a restart: nothing' in text and 'switchover %s -> %s' % (old_rw, new_rw) in text

    again = playbook('refresh_params', '-e', 'cluster=demo', '-e', params_arg(wanted))
    assert again.rc == 0, again.output[-4000:]
    assert again.changed() == {}
    assert started(ssh, lab_hosts) == after
    assert the_rw(ssh, lab_hosts) == new_rw


def test_a_reload_parameter_restarts_nothing(playbook, ssh, lab_hosts):
    before = started(ssh, lab_hosts)
    rw = the_rw(ssh, lab_hosts)
    mc = setting(ssh, [rw], 'max_connections')[rw]
    run = playbook('refresh_params', '-e', 'cluster=demo',
                   '-e', params_arg({'work_mem': '5MB', 'max_connections': int(mc), 'log_min_duration_statement': '2s'}))
    assert run.rc == 0, run.output[-4000:]
    assert set(setting(ssh, lab_hosts, 'log_min_duration_statement').values()) == {'2s'}
    assert set(setting(ssh, lab_hosts, 'work_mem').values()) == {'5MB'}
    assert started(ssh, lab_hosts) == before
    assert the_rw(ssh, lab_hosts) == rw
    assert 'write unavailability: none (reload only)' in one_line(run.output)


# (raising one parameter and lowering another, an unknown strategy: refused the
# same way, by the same code; their messages are unit-tested in test_param_refresh.py)
@pytest.mark.parametrize('why, params, extra, says', [
    ('invalid value', {'work_mem': 'lots'}, [], 'work_mem'),
    ('managed parameter', {'port': 5433}, [], 'parameter port is managed by polardb.stack'),
    ('lower by switchover', {'max_connections': 90}, [], 'polardb_restart_strategy=in_place'),
])
def test_refusals_change_nothing(playbook, ssh, lab_hosts, why, params, extra, says):
    assert_refused(playbook, ssh, lab_hosts, 'refresh_params', says, '-e', 'cluster=demo', '-e', params_arg(params), *extra)


def test_restart_one_replica_then_the_cluster(playbook, ssh, lab, lab_hosts, writer):
    rw = the_rw(ssh, lab_hosts)
    replica = sorted(h for h in lab_hosts if h != rw)[0]
    before = started(ssh, lab_hosts)

    preview = playbook('restart', '-e', 'cluster=demo', check=True)
    assert preview.rc == 0, preview.output[-4000:]
    text = one_line(preview.output)
    assert 'restart of cluster demo -- CHECK MODE' in text and 'switchover on %s' % rw in text
    assert preview.changed() == {}
    assert started(ssh, lab_hosts) == before
    no_lock_left(ssh, lab_hosts)

    refused = playbook('restart', '-e', 'cluster=demo', '-e', 'node=nosuch')
    assert refused.rc != 0 and 'node nosuch is not a node of this cluster' in one_line(refused.output)
    assert started(ssh, lab_hosts) == before

    one = playbook('restart', '-e', 'cluster=demo', '-e', 'node=' + replica)
    assert one.rc == 0, one.output[-4000:]
    mid = started(ssh, lab_hosts)
    assert [h for h in lab_hosts if mid[h] != before[h]] == [replica]
    assert the_rw(ssh, lab_hosts) == rw

    everything = playbook('restart', '-e', 'cluster=demo', '-e', 'polardb_restart_strategy=in_place')
    assert everything.rc == 0, everything.output[-4000:]
    after = started(ssh, lab_hosts)
    assert all(after[h] != mid[h] for h in lab_hosts), (mid, after)
    assert check_writer(ssh, lab_hosts, writer) == rw, 'in place: the RW stays where it was'
