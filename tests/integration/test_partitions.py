"""Runs that survive a partition and a split brain, on the lab's cluster "demo"
(healthy at the start; the tests depend on each other's order and the file ends
with a healthy 3-node cluster):
1. the RW is cut off the network (not powered off) while an SSH master to it,
   made without keepalives, is alive: failover.yml finishes all the same;
2. rebuild_node brings the isolated old RW back once it is reachable again;
3. a split brain (a replica promoted behind the collection's back, both nodes
   taking writes): rebuild_node refuses without -e source=, and with it fences
   the loser, reports the discarded WAL, and rewinds it onto the survivor; what
   only the loser had written is gone, what the survivor has is everywhere;
4. a replica whose slot lost its WAL (max_slot_wal_keep_size) is rebuilt with a
   base backup instead of a rewind that could never stream.
Timings are printed, never asserted; a bound on each run only turns a hang into
a failure."""
import os
import re
import subprocess
import time
import uuid

import pytest

from labtools import LAB_INVENTORY, ROOT, VENV_BIN, fault, one_line, roles, sql, streams_from, the_rw

STATE = {}


def healthy(ssh, lab_hosts, rw):
    assert the_rw(ssh, lab_hosts) == rw
    for h in lab_hosts:
        if h != rw:
            streams_from(ssh, h, lab_hosts[rw]['ansible_host'])


def ssh_masters(address):
    """PIDs of ssh processes with a TCP connection to ``address``:22 (a ControlPersist
    master renames itself to "ssh: <socket> [mux]", so it is found by its socket)."""
    out = subprocess.run(['ss', '-Htnp', 'state', 'established', 'dst', address + ':22'],
                         capture_output=True, text=True, check=True).stdout
    return sorted({int(pid) for pid in re.findall(r'"ssh",pid=(\d+)', out)})


def test_failover_with_the_rw_isolated_behind_a_live_ssh_master(playbook, ssh, lab_hosts):
    old = the_rw(ssh, lab_hosts)
    address = lab_hosts[old]['ansible_host']
    for pid in ssh_masters(address):
        os.kill(pid, 15)
    # the master an earlier run would leave with a configuration that has no keepalives
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_SSH_ARGS=(
        '-o ControlMaster=auto -o ControlPersist=900s -o StrictHostKeyChecking=no '
        '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'))
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible'), old, '-i', LAB_INVENTORY, '-m', 'ansible.builtin.ping'],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    masters = ssh_masters(address)
    assert masters, 'no SSH master to %s' % address
    fault(playbook, old, 'isolate')
    try:
        started = time.time()
        # 8 minutes: the hang this guards against lasted over ten
        run = playbook('failover', '-e', 'cluster=demo', timeout=480)
        took = time.time() - started
        assert run.rc == 0, run.output[-5000:]
        out = one_line(run.output)
        assert '-e node=%s -e source=%s' % (old, the_rw(ssh, sorted(h for h in lab_hosts if h != old))) in out
        print('failover with %s isolated: %.1f s; %s' % (old, took, out[out.index('failover %s -> ' % old):][:240]))
        survivors = sorted(h for h in lab_hosts if h != old)
        new = the_rw(ssh, survivors)
        for h in survivors:
            if h != new:
                streams_from(ssh, h, lab_hosts[new]['ansible_host'])
        STATE.update(old=old, new=new)
    finally:
        fault(playbook, old, 'restore')


def test_rebuild_node_brings_the_isolated_rw_back(playbook, ssh, lab_hosts):
    if 'old' not in STATE:
        pytest.skip('needs the isolation test before it')
    # cut off, not powered off: back on the network it still runs as a primary (fenced,
    # its writes fail), so the engines show two RWs and the failover's report names the source
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + STATE['old'], '-e', 'source=' + STATE['new'])
    assert run.rc == 0, run.output[-5000:]
    healthy(ssh, lab_hosts, STATE['new'])


def test_a_split_brain_is_refused_without_a_named_source(playbook, ssh, lab_hosts):
    loser = the_rw(ssh, lab_hosts)
    survivor, follower = sorted(h for h in lab_hosts if h != loser)
    # a replica promoted behind the collection's back: two nodes take writes
    sql(ssh, survivor, 'select pg_promote(true, 60)')
    assert sorted(h for h, r in roles(ssh, lab_hosts).items() if r == 'f') == sorted([loser, survivor])
    sql(ssh, loser, 'create table if not exists split_brain(x text)')
    sql(ssh, survivor, 'create table if not exists split_brain(x text)')
    token = uuid.uuid4().hex
    sql(ssh, loser, "insert into split_brain values ('only-on-%s-%s')" % (loser, token))
    sql(ssh, survivor, "insert into split_brain values ('kept-%s')" % token)
    STATE.update(loser=loser, survivor=survivor, follower=follower, token=token)

    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + loser)
    assert run.rc != 0
    out = one_line(run.output)
    assert 'a split brain): name the one that survives with -e source=NODE' in out, out[-3000:]
    assert 'Nothing was changed' in out
    assert run.changed() == {}
    assert sorted(h for h, r in roles(ssh, lab_hosts).items() if r == 'f') == sorted([loser, survivor])


def test_a_split_brain_is_recovered_with_source(playbook, ssh, lab, lab_hosts):
    if 'loser' not in STATE:
        pytest.skip('needs the split brain made by the test before it')
    loser, survivor, follower, token = STATE['loser'], STATE['survivor'], STATE['follower'], STATE['token']
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + loser, '-e', 'source=' + survivor)
    assert run.rc == 0, run.output[-5000:]
    out = one_line(run.output)
    assert 'Split brain resolved: %s was fenced and stopped' % loser in out, out[-3000:]
    # from the divergence point when pg_rewind ran (it prints it), all of it when a base backup replaced it
    assert re.search(r'discarded on %s: WAL (from \S+ \(timeline \d+\)|since it diverged \(all of its data: base backup\)) '
                     r'to \S+' % loser, out), out[-3000:]
    print(out[out.index('rebuild of %s' % loser):][:500])
    assert sorted(h for h, r in roles(ssh, lab_hosts).items() if r == 'f') == [survivor]
    streams_from(ssh, loser, lab_hosts[survivor]['ansible_host'])
    # what only the loser wrote after the split is gone; the survivor's rows are on it
    assert sql(ssh, loser, "select count(*) from split_brain where x = 'kept-%s'" % token) == '1'
    assert sql(ssh, loser, "select count(*) from split_brain where x like 'only-on-%%-%s'" % token) == '0'
    assert sql(ssh, survivor, "select count(*) from split_brain where x like 'only-on-%%-%s'" % token) == '0'
    # the node that followed the loser got the loser's WAL: it is rebuilt next, as the report says
    assert '%s replicated from %s: rebuild it next' % (follower, loser) in out
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + follower)
    assert run.rc == 0, run.output[-5000:]
    healthy(ssh, lab_hosts, survivor)
    assert sql(ssh, follower, "select count(*) from split_brain where x like 'only-on-%%-%s'" % token) == '0'


def test_rebuild_copes_with_a_slot_that_lost_its_wal(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    replica = sorted(h for h in lab_hosts if h != rw)[0]
    slot = replica.lower()
    ssh(replica, 'systemctl stop polardb@demo.service')
    try:
        for q in ("alter system set max_slot_wal_keep_size = '32MB'", "alter system set wal_keep_size = 0",
                  'select pg_reload_conf()'):
            sql(ssh, rw, q)
        sql(ssh, rw, 'create table if not exists wal_filler(x bigint)')
        deadline = time.time() + 300
        while sql(ssh, rw, "select wal_status from pg_replication_slots where slot_name = '%s'" % slot) != 'lost':
            assert time.time() < deadline, 'the slot of %s never lost its WAL' % replica
            sql(ssh, rw, 'insert into wal_filler select generate_series(1, 300000)')
            sql(ssh, rw, 'select pg_switch_wal()')
            sql(ssh, rw, 'checkpoint')
        sql(ssh, rw, 'truncate wal_filler')
    finally:
        for q in ('alter system reset max_slot_wal_keep_size', 'alter system reset wal_keep_size',
                  'select pg_reload_conf()'):
            sql(ssh, rw, q)
    run = playbook('rebuild_node', '-e', 'cluster=demo', '-e', 'node=' + replica)
    assert run.rc == 0, run.output[-5000:]
    out = one_line(run.output)
    assert 'its replication slot on %s lost the WAL it needs (wal_status lost)' % rw in out, out[-3000:]
    assert 'rebuild of %s: base backup from %s' % (replica, rw) in out
    healthy(ssh, lab_hosts, rw)
    assert sql(ssh, rw, "select wal_status from pg_replication_slots where slot_name = '%s'" % slot) == 'reserved'
