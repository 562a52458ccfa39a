"""failover.yml and rebuild_node.yml on the lab's cluster "demo" (run after the
switchover tests; the tests depend on each other's order and the file ends with
a healthy 3-node cluster):
1. a failover while the RW is healthy is refused and changes nothing;
2. the RW's host loses power: failover makes another node the RW, the other
   replica streams from it, and once the old RW's host is back, its LUN refuses
   its writes (fenced at the array) and its engine accepts none;
3. rebuild_node brings the old RW back as a streaming replica of the new RW.
Timings are printed, never asserted."""
import hashlib
import time
import uuid

import pytest

from labtools import PSQL, fault, no_lock_left, one_line, sql, streams_from, the_rw

STATE = {}


def test_failover_is_refused_while_the_rw_is_healthy(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    run = playbook('failover', '-e', 'cluster=demo')
    assert run.rc != 0
    out = one_line(run.output)
    assert 'Failover of cluster demo refused: the RW %s answers' % rw in out, out[-3000:]
    assert 'Nothing was changed' in out
    assert run.changed() == {}
    assert the_rw(ssh, lab_hosts) == rw
    no_lock_left(ssh, lab_hosts)


def test_failover_after_a_power_cut_of_the_rw_fences_it(playbook, ssh, lab, lab_hosts):
    old = the_rw(ssh, lab_hosts)
    wwid = lab['all']['children']['polardb_demo']['hosts'][old]['polardb_lun_wwid']
    # Dirty pages make the new RW's first checkpoint after its promotion a slow,
    # spread one: the rebuild below must not depend on it having finished.
    sql(ssh, old, 'drop table if exists failover_dirty; create table failover_dirty as select g, repeat($$x$$, 200) as pad from generate_series(1, 200000) g')
    fault(playbook, old, 'poweroff')
    started = time.time()
    try:
        run = playbook('failover', '-e', 'cluster=demo')
        took = time.time() - started
        assert run.rc == 0, run.output[-5000:]
        out = one_line(run.output)
        assert 'failover %s -> ' % old in out
        # the fence driver the inventory names (the lab: command, through lab-fence) preempted the old RW's key
        old_key = '0x' + hashlib.sha1(('demo/%s' % old).encode()).hexdigest()[:16]
        assert 'preempt and abort key %s (%s)' % (old_key, old) in out, out[-3000:]
        print('failover playbook: %.1f s; %s' % (took, out[out.index('failover %s -> ' % old):][:300]))
        survivors = sorted(h for h in lab_hosts if h != old)
        new = the_rw(ssh, survivors)
        STATE.update(old=old, new=new)
        for h in survivors:
            if h != new:
                streams_from(ssh, h, lab_hosts[new]['ansible_host'])
        no_lock_left(ssh, survivors)
    finally:
        fault(playbook, old, 'restore')
    # Back from the power cut, the old RW cannot write to its LUN: the new RW preempted
    # its registration at the array. Writing back the block just read (harmless if the
    # fence did not hold) fails with an I/O error; its engine accepts no writes.
    dev = '/dev/disk/by-id/wwn-0x' + wwid
    proc = ssh(old, 'n=$(( $(blockdev --getsize64 %s) / 4096 - 1 )); '
                    'dd if=%s of=%s bs=4096 count=1 skip=$n seek=$n iflag=direct oflag=direct conv=notrunc'
                    % (dev, dev, dev), check=False)
    assert proc.returncode != 0 and 'Input/output error' in proc.stderr, proc.stderr
    proc = ssh(old, PSQL % "'create table failover_fenced(x int)'", check=False)
    assert proc.returncode != 0, proc.stdout


def test_rebuild_node_makes_the_old_rw_a_replica_of_the_new_one(playbook, ssh, lab_hosts):
    if 'old' not in STATE:
        pytest.skip('needs the failover test before it')
    old, new = STATE['old'], STATE['new']
    started = time.time()
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + old)
    assert run.rc == 0, run.output[-5000:]
    out = one_line(run.output)
    assert 'rebuild of %s: ' % old in out
    # a node that crashed as the RW is rewound, not copied again
    assert 'rebuild of %s: rewind from %s' % (old, new) in out, out[out.index('rebuild of %s: ' % old):][:300]
    print('rebuild_node: %.1f s; %s' % (time.time() - started, out[out.index('rebuild of %s: ' % old):][:200]))
    assert the_rw(ssh, lab_hosts) == new
    for h in lab_hosts:
        if h != new:
            streams_from(ssh, h, lab_hosts[new]['ansible_host'])
    token = uuid.uuid4().hex
    sql(ssh, new, 'create table if not exists failover_check(x text)')
    sql(ssh, new, "insert into failover_check values ('%s')" % token)
    deadline = time.time() + 30
    while sql(ssh, old, "select count(*) from failover_check where x = '%s'" % token, check=False) != '1':
        assert time.time() < deadline, 'the row written on %s never reached %s' % (new, old)
        time.sleep(0.5)
    # the rebuilt node writes its own LUN again (it took its registration back)
    ssh(old, 'touch /srv/polardb/demo/.fence-check && sync && rm /srv/polardb/demo/.fence-check')
    no_lock_left(ssh, lab_hosts)
