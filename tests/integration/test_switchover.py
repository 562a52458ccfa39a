"""switchover.yml on the lab's cluster "demo", with a client writing through
the multi-host DSN the whole time: nothing acknowledged may be lost, the new RW
is the only RW and every other node streams from it. Refusals change nothing.
Timings are printed (make bench-ha measures them), never asserted."""
import os
import re
import signal
import time

import pytest

from labtools import no_lock_left, one_line, read_until, settle, sql, start_playbook, the_rw, wait_streaming


def check_after(ssh, lab_hosts, lab, writer, new_rw):
    assert settle(ssh, lab_hosts, writer) == new_rw
    new_rw_ip = lab_hosts[new_rw]['ansible_host']
    for h in lab_hosts:
        if h != new_rw:
            assert sql(ssh, h, 'select sender_host from pg_stat_wal_receiver') == new_rw_ip
    no_lock_left(ssh, lab_hosts)


def test_switchover_to_a_named_target_loses_nothing(playbook, ssh, lab, lab_hosts, writer):
    old = the_rw(ssh, lab_hosts)
    target = sorted(h for h in lab_hosts if h != old)[0]
    run = playbook('switchover', '-e', 'cluster=demo', '-e', 'target=' + target)
    assert run.rc == 0, run.output[-4000:]
    assert 'switched over from %s to %s: writes unavailable' % (old, target) in one_line(run.output)
    # each node's rejoin step released its lock record: the release task ran no module anywhere
    release = run.output.split('Lock | Release the operation lock on every node]', 1)[1].split('TASK [', 1)[0]
    assert sorted(re.findall(r'skipping: \[(\w+)\]', release)) == sorted(lab_hosts), release
    check_after(ssh, lab_hosts, lab, writer, target)


# (a switchover without a target: test_awx_runner's switchover job, which checks the RW moved)


def test_switchover_to_a_stopped_replica_is_refused(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    target = sorted(h for h in lab_hosts if h != rw)[0]
    ssh(target, 'systemctl stop polardb@demo')
    try:
        run = playbook('switchover', '-e', 'cluster=demo', '-e', 'target=' + target)
        text = one_line(run.output)
        assert run.rc != 0
        assert 'Switchover of cluster demo refused' in text and 'Nothing was changed' in text
        assert the_rw(ssh, lab_hosts) == rw
        no_lock_left(ssh, lab_hosts)
    finally:
        ssh(target, 'systemctl start polardb@demo')
    wait_streaming(ssh, lab_hosts, rw)


def test_switchover_to_a_lagging_replica_is_refused(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    target = sorted(h for h in lab_hosts if h != rw)[0]
    sql(ssh, target, 'select pg_wal_replay_pause()')
    try:
        sql(ssh, rw, 'create table if not exists lag_fill (x text); '
                     'insert into lag_fill select repeat(md5(g::text), 10) from generate_series(1, 5000) g')
        run = playbook('switchover', '-e', 'cluster=demo', '-e', 'target=' + target,
                       '-e', 'polardb_switchover_max_lag_bytes=65536')
        text = one_line(run.output)
        assert run.rc != 0
        assert 'refused' in text and 'lag' in text and 'Nothing was changed' in text
        assert the_rw(ssh, lab_hosts) == rw
        no_lock_left(ssh, lab_hosts)
    finally:
        sql(ssh, target, 'select pg_wal_replay_resume()')
    wait_streaming(ssh, lab_hosts, rw)


def test_a_second_operation_is_refused_while_one_runs(playbook, ssh, lab_hosts):
    first = start_playbook('switchover')
    try:
        read_until(first, "Switchover | Check mode ends with the plan")  # it holds the lock (its heartbeat started)
        # held still while the second run looks: a switchover is over in seconds
        os.killpg(first.pid, signal.SIGSTOP)
        second = playbook('switchover', '-e', 'cluster=demo', '-e', 'polardb_lock_wait_seconds=0')
        text = one_line(second.output)
        assert second.rc != 0
        assert 'Cluster demo is locked by switchover' in text and 'That run is still going' in text
        assert second.changed() == {}
    finally:
        os.killpg(first.pid, signal.SIGCONT)
        out = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out[-3000:]
    wait_streaming(ssh, lab_hosts, the_rw(ssh, lab_hosts))
    no_lock_left(ssh, lab_hosts)


# (killed right after the lock is recorded, before anything changed: test_lock's
# killed holder, resumed after its lease)
@pytest.mark.parametrize('marker', [
    'Handover | Stop writes, wait for the target',                # inside the critical section
    'polardb.stack.instance : Instance | ',                       # old RW stopped, target promoted: the rejoin starts
])
def test_an_interrupted_switchover_is_resumed_by_the_next_run(playbook, ssh, lab, lab_hosts, writer, marker):
    old = the_rw(ssh, lab_hosts)
    # a short lease: the next run waits for it to expire before it resumes
    proc = start_playbook('switchover', '-e', 'polardb_lock_lease_seconds=15')
    read_until(proc, marker)
    if 'Stop writes' in marker:
        time.sleep(0.15)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = playbook('switchover', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-4000:]
    new = the_rw(ssh, lab_hosts)
    assert new != old
    check_after(ssh, lab_hosts, lab, writer, new)


def test_with_synchronous_replication_the_followers_stream_from_the_target_before_the_stop(
        playbook, ssh, lab, lab_hosts, writer):
    """Synchronous replication (a quorum of one replica): before the stop the other replica streams from the
    target (cascading), so the new RW's first commits find a replica at once; nothing acknowledged is lost and
    every node streams from the new RW. Refused in the critical section (the target's replay paused: it cannot
    catch up), the other replica streams from the old RW again; the same command, once the target replays,
    resumes and finishes. The cluster goes back to asynchronous replication at the end."""
    sync = ('-e', 'polardb_synchronous_replicas=1', '-e', 'polardb_lock_lease_seconds=10')
    run = playbook('create_cluster', '-e', 'cluster=demo', *sync)
    assert run.rc == 0, run.output[-4000:]
    old = the_rw(ssh, lab_hosts)
    target, other = sorted(h for h in lab_hosts if h != old)
    assert sql(ssh, old, 'show synchronous_standby_names') == 'ANY 1 (%s, %s)' % (target, other)
    try:
        run = playbook('switchover', '-e', 'cluster=demo', '-e', 'target=' + target, *sync)
        assert run.rc == 0, run.output[-4000:]
        text = one_line(run.output)
        assert 'switched over from %s to %s: writes unavailable' % (old, target) in text
        # re-pointed before the stop: the rejoin after it found the other replica in place
        assert '%s: replica of %s, streaming; nothing to change' % (other, target) in text, text[-3000:]
        wait_streaming(ssh, lab_hosts, target)
        # the new RW counts both for its commits: the cascaded one went on streaming across the promotion
        assert sql(ssh, target, "select string_agg(application_name || ':' || sync_state, ',' order by application_name) "
                                "from pg_stat_replication") == '%s:quorum,%s:quorum' % tuple(sorted([old, other]))
        assert sql(ssh, target, 'select slot_name from pg_replication_slots where active and slot_name = '
                                "'%s'" % other) == other

        # refused in the critical section: the other replica follows the old RW (now target) again
        rw, target = target, old
        sql(ssh, target, 'select pg_wal_replay_pause()')
        try:
            run = playbook('switchover', '-e', 'cluster=demo', '-e', 'target=' + target, *sync)
            text = one_line(run.output)
            assert run.rc != 0
            assert 'cannot keep up with this RW, nothing was changed' in text, text[-3000:]
            assert 'The followers %s stream from %s again' % (other, rw) in text, text[-3000:]
            assert the_rw(ssh, lab_hosts) == rw
            assert sql(ssh, other, 'select sender_host from pg_stat_wal_receiver') == lab_hosts[rw]['ansible_host']
        finally:
            sql(ssh, target, 'select pg_wal_replay_resume()')
        # the lock was kept: the same command resumes it once its lease expired
        run = playbook('switchover', '-e', 'cluster=demo', *sync)
        assert run.rc == 0, run.output[-4000:]
        assert 'Resuming switchover {"from": "%s", "to": "%s"}' % (rw, target) in one_line(run.output)
        check_after(ssh, lab_hosts, lab, writer, target)
    finally:
        run = playbook('create_cluster', '-e', 'cluster=demo')
        assert run.rc == 0, run.output[-4000:]
    assert sql(ssh, the_rw(ssh, lab_hosts), 'show synchronous_standby_names') == ''
