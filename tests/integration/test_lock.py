"""The operation lock as a lease on the lab's cluster "demo": two runs at once
-> exactly one proceeds; a holder killed with SIGKILL -> the next run, without
any flag, is refused while the lease runs and resumes once it expired;
create_cluster and destroy_cluster refuse while another operation holds it.
Observable state only: which node is the RW, lock files on the hosts, engines."""
import json
import os
import signal
import subprocess
import time

from labtools import one_line, read_until, start_playbook, the_rw, wait_streaming

LOCK = '/var/lib/polardb-stack/locks/demo.json'
SHORT_LEASE = ('-e', 'polardb_lock_lease_seconds=10')
# the killed holder's: the next run's first look (ansible's start-up, the topology)
# comes before it expired, even on a loaded machine
KILLED_LEASE = 25


def locks(ssh, lab_hosts):
    """The lock record on each host (None: no file)."""
    out = {}
    for h in lab_hosts:
        proc = ssh(h, 'cat %s' % LOCK, check=False)
        out[h] = json.loads(proc.stdout) if proc.returncode == 0 else None
    return out


def heartbeats(run_id):
    """Heartbeat processes of a run still alive on the controller."""
    ps = subprocess.run(['ps', '-eo', 'pid,args'], capture_output=True, text=True, check=True).stdout
    return [line for line in ps.splitlines() if 'heartbeat.yml' in line and run_id in line]


def test_two_concurrent_runs_exactly_one_proceeds(ssh, lab_hosts):
    old = the_rw(ssh, lab_hosts)
    targets = sorted(h for h in lab_hosts if h != old)
    runs = [start_playbook('switchover', '-e', 'target=' + t) for t in targets]
    outs = [one_line(p.communicate(timeout=600)[0]) for p in runs]
    rcs = [p.returncode for p in runs]
    assert sorted(rc == 0 for rc in rcs) == [False, True], '\n\n'.join(o[-3000:] for o in outs)
    winner, loser = (0, 1) if rcs[0] == 0 else (1, 0)
    # the loser names the run that holds the lock, and took nothing
    assert 'Cluster demo' in outs[loser] and 'Nothing was changed' in outs[loser], outs[loser][-3000:]
    assert 'switchover' in outs[loser] and ' by run ' in outs[loser]
    recap = outs[loser][outs[loser].rindex('PLAY RECAP'):]
    assert all('changed=0' in part for part in recap.split('ok=')[1:]), recap
    # exactly one switchover happened: the winner's
    assert the_rw(ssh, lab_hosts) == targets[winner]
    wait_streaming(ssh, lab_hosts, targets[winner])
    assert locks(ssh, lab_hosts) == dict.fromkeys(lab_hosts)


def test_a_killed_holder_is_resumed_after_its_lease_without_a_flag(playbook, ssh, lab_hosts):
    old = the_rw(ssh, lab_hosts)
    proc = start_playbook('switchover', '-e', 'polardb_lock_lease_seconds=%d' % KILLED_LEASE)
    read_until(proc, "Switchover | Check mode ends with the plan")  # the lock is taken, nothing changed yet (its heartbeat started)
    held = locks(ssh, lab_hosts)
    run_id = held[old]['owner']['run_id']
    target = held[old]['params']['to']
    assert all(rec['owner']['run_id'] == run_id and rec['lease_seconds'] == KILLED_LEASE for rec in held.values()), held
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    # right away, without waiting: refused, naming the dead run, nothing changed
    refused = playbook('switchover', '-e', 'cluster=demo', '-e', 'polardb_lock_wait_seconds=0')
    text = one_line(refused.output)
    assert refused.rc != 0
    assert 'Cluster demo is locked by switchover' in text and 'run %s' % run_id in text, text[-3000:]
    assert 'That run is still going' in text and 'Nothing was changed' in text
    assert refused.changed() == {}
    assert {h: (rec or {}).get('owner', {}).get('run_id') for h, rec in locks(ssh, lab_hosts).items()} == \
        dict.fromkeys(lab_hosts, run_id)

    # the dead run's heartbeat notices that its run is gone and ends
    deadline = time.time() + 60
    while heartbeats(run_id):
        assert time.time() < deadline, heartbeats(run_id)
        time.sleep(1)

    # the next run, no flag: waits for the lease to expire, then resumes the recorded switchover
    run = playbook('switchover', '-e', 'cluster=demo')
    text = one_line(run.output)
    assert run.rc == 0, text[-4000:]
    assert 'Resuming switchover' in text and 'of run %s' % run_id in text and 'its lease expired' in text
    assert the_rw(ssh, lab_hosts) == target
    wait_streaming(ssh, lab_hosts, target)
    assert locks(ssh, lab_hosts) == dict.fromkeys(lab_hosts)


def test_create_and_destroy_refuse_while_another_operation_holds_the_lock(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    proc = start_playbook('switchover', *SHORT_LEASE)
    try:
        read_until(proc, "Switchover | Check mode ends with the plan")  # the lock is held (its heartbeat started)
        os.killpg(proc.pid, signal.SIGSTOP)  # the holder is alive (stopped): its heartbeat keeps renewing
        run_id = locks(ssh, lab_hosts)[rw]['owner']['run_id']
        for name, extra in (('create_cluster', ()), ('destroy_cluster', ('-e', 'confirm_destroy=demo'))):
            run = playbook(name, '-e', 'cluster=demo', *extra)
            text = one_line(run.output)
            assert run.rc != 0, '%s was not refused:\n%s' % (name, text[-3000:])
            assert 'Cluster demo is locked by switchover' in text and 'run %s' % run_id in text, text[-3000:]
            assert 'That run is still going' in text and 'Nothing was changed' in text
            assert run.changed() == {}, (name, run.changed())
        # nothing was destroyed: every engine still answers, the same RW, the lock still the holder's
        assert the_rw(ssh, lab_hosts) == rw
        assert {h: rec['owner']['run_id'] for h, rec in locks(ssh, lab_hosts).items()} == \
            dict.fromkeys(lab_hosts, run_id)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-3000:]
    new = the_rw(ssh, lab_hosts)
    assert new != rw
    wait_streaming(ssh, lab_hosts, new)
    assert locks(ssh, lab_hosts) == dict.fromkeys(lab_hosts)
