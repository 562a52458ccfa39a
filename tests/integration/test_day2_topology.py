"""Day-2 topology on the lab (issue 9), with a client writing to cluster
"demo" through the multi-host DSN throughout; nothing acknowledged is lost.

- remove_node / migrate_node / add_node: a replica leaves (engine stopped and
  disabled, LUN unmounted with its data kept, its slot dropped on the RW, the
  other nodes' pg_hba.conf without it); the RW moves to the freed host (join,
  switchover, removal), a replica moves to the old RW's host, and the last
  removed node joins again from its kept data; the RW is never removed; a
  removal that synchronous replication needs is refused.
- a second cluster on the same three hosts (own port, LUNs, units): its
  switchover does not touch demo.
- expand_storage: every LUN grown on the lab's array, every file system grown
  online, no engine restarted; a shrink is refused; a second run changes nothing."""
import time

from labtools import assert_refused, cluster_fingerprint, no_lock_left, one_line, settle, sql, the_rw


def blkid_type(ssh, host, wwid):
    return ssh(host, 'blkid -p -s TYPE -o value /dev/disk/by-id/wwn-0x%s' % wwid, check=False).stdout.strip()


def acked_rows_reach(ssh, node, writer, timeout=60):
    """Every row the client was acknowledged so far is on ``node`` (it replays them)."""
    ids = [ack[0] for ack in writer.acked]
    deadline = time.time() + timeout
    while True:
        # the client writes into the application's database
        have = set(int(i) for i in ssh(node, "cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql "
                                             "-d app -c 'select id from ha_writes where id between %d and %d'"
                                       % (min(ids), max(ids))).stdout.split())
        if have >= set(ids):
            return
        assert time.time() < deadline, '%d acknowledged rows missing on %s' % (len(set(ids) - have), node)
        time.sleep(0.5)


def removed(ssh, node):
    """Engine stopped and disabled, LUN unmounted and out of fstab, configuration gone."""
    state = ssh(node, 'systemctl is-active polardb@demo; systemctl is-enabled polardb@demo; '
                      'mountpoint -q /srv/polardb/demo && echo mounted; grep -c /srv/polardb/demo /etc/fstab; '
                      'test -e /etc/polardb-stack/demo && echo conf; true', check=False).stdout.split()
    return state == ['inactive', 'disabled', '0']


def test_remove_a_replica_then_migrate_the_rw_and_a_replica(playbook, ssh, lab, lab_hosts, writer):
    """remove_node frees a host; migrate_node moves the RW there (join, switchover,
    removal) and then a replica to the old RW's host; add_node brings the last
    removed node back from its kept data. The lab's three hosts each carry demo again."""
    rw = the_rw(ssh, lab_hosts)
    node = sorted(h for h in lab_hosts if h != rw)[-1]
    other = sorted(h for h in lab_hosts if h not in (rw, node))[0]
    address = lab_hosts[node]['ansible_host']
    wwid = lab['all']['children']['polardb_demo']['hosts'][node]['polardb_lun_wwid']

    assert_refused(playbook, ssh, lab_hosts, 'remove_node', 'is the RW of cluster demo and is never removed',
                   '-e', 'cluster=demo', '-e', 'node=' + rw)
    assert_refused(playbook, ssh, lab_hosts, 'remove_node', 'synchronous replication waits for 2 replica(s)',
                   '-e', 'cluster=demo', '-e', 'node=' + node, '-e', 'polardb_synchronous_replicas=2')

    # (remove_node's preview: test_check_mode)
    run = playbook('remove_node', '-e', 'cluster=demo', '-e', 'node=' + node)
    assert run.rc == 0, run.output[-4000:]
    text = one_line(run.output)
    assert 'removed %s from cluster demo' % node in text and 'delete %s from the inventory' % node in text
    # the node: engine stopped and disabled, LUN unmounted (and out of fstab), its data kept
    assert removed(ssh, node)
    assert blkid_type(ssh, node, wwid) == 'xfs'
    # the RW: streams to the other replica only, no slot for the node, the node's address gone from pg_hba
    assert sql(ssh, rw, "select string_agg(application_name, ',') from pg_stat_replication") == other
    assert sql(ssh, rw, 'select string_agg(slot_name, \',\' order by slot_name) from pg_replication_slots') == other
    assert sql(ssh, rw, "select count(*) from pg_hba_file_rules where address = '%s'" % address) == '0'
    assert node not in sql(ssh, rw, 'show synchronous_standby_names')
    no_lock_left(ssh, lab_hosts)
    assert the_rw(ssh, lab_hosts) == rw

    # migrate the RW to the freed host: refused input first, then the preview, then the move
    assert_refused(playbook, ssh, lab_hosts, 'migrate_node', 'pdb9 (to_host) is not in the inventory group polardb_demo',
                   '-e', 'cluster=demo', '-e', 'node=' + rw, '-e', 'to_host=pdb9')
    before = cluster_fingerprint(ssh, lab_hosts)
    preview = playbook('migrate_node', '-e', 'cluster=demo', '-e', 'node=' + rw, '-e', 'to_host=' + node, check=True)
    assert preview.rc == 0, preview.output[-3000:]
    text = one_line(preview.output)
    assert 'migrate_node of cluster demo -- CHECK MODE' in text and 'create_cluster of cluster demo -- CHECK MODE' in text
    # YAML doubles the quote of "switchover's" in the printed plan
    assert "critical section (%s is the RW)" % rw in text and '[skipped in check mode]' in text
    assert cluster_fingerprint(ssh, lab_hosts) == before
    assert removed(ssh, node) and the_rw(ssh, lab_hosts) == rw

    run = playbook('migrate_node', '-e', 'cluster=demo', '-e', 'node=' + rw, '-e', 'to_host=' + node)
    assert run.rc == 0, run.output[-4000:]
    assert '%s moved to %s in cluster demo' % (rw, node) in one_line(run.output)
    # the new host is the RW and streams to the other replica; the old RW is removed with its data kept
    assert the_rw(ssh, lab_hosts) == node
    assert sql(ssh, node, "select string_agg(application_name, ',') from pg_stat_replication") == other
    assert removed(ssh, rw)
    no_lock_left(ssh, lab_hosts)
    acked_rows_reach(ssh, node, writer)

    # migrate a replica to the old RW's host (it rejoins from its kept data): no switchover
    timeline = sql(ssh, node, 'select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)')
    run = playbook('migrate_node', '-e', 'cluster=demo', '-e', 'node=' + other, '-e', 'to_host=' + rw)
    assert run.rc == 0, run.output[-4000:]
    # no switchover: the RW stays on its timeline
    assert the_rw(ssh, lab_hosts) == node
    assert sql(ssh, node, 'select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)') == timeline
    assert sql(ssh, node, "select string_agg(application_name, ',') from pg_stat_replication") == rw
    assert sql(ssh, node, 'select string_agg(slot_name, \',\' order by slot_name) from pg_replication_slots') == rw
    assert removed(ssh, other)
    acked_rows_reach(ssh, rw, writer)

    run = playbook('add_node', '-e', 'cluster=demo', '-e', 'node=' + other)
    assert run.rc == 0, run.output[-4000:]
    assert '%s streams from %s' % (other, node) in one_line(run.output)
    # back: streaming through its own slot again, and every acknowledged write is on it
    assert sql(ssh, node, "select active from pg_replication_slots where slot_name = '%s'" % other) == 't'
    assert settle(ssh, lab_hosts, writer) == node
    acked_rows_reach(ssh, other, writer)


def test_a_second_cluster_on_the_same_hosts_is_independent(playbook, ssh, lab, lab_hosts, writer, tmp_path):
    """Cluster "duo": one node on each lab host (inventory hosts of its own, the
    same addresses), on the spare LUNs, port 5433, created with synchronous
    replication (its RW's first commits, the collection's own, must not wait for
    replicas that do not exist yet). Its switchover does not touch cluster demo,
    whose client keeps writing."""
    import yaml
    hosts = {'d%s' % h[-1]: {'ansible_host': v['ansible_host'], 'polardb_lun_wwid': v['lab_luns']['spare' + h[-1]]}
             for h, v in sorted(lab_hosts.items())}
    inv = tmp_path / 'duo.yml'
    inv.write_text(yaml.safe_dump({'all': {'children': {'polardb_duo': {
        'vars': {'polardb_initial_primary': 'd1', 'polardb_port': 5433, 'polardb_synchronous_replicas': 1},
        'hosts': hosts}}}}))
    demo_rw = the_rw(ssh, lab_hosts)
    demo_started = {h: sql(ssh, h, 'select pg_postmaster_start_time()') for h in sorted(lab_hosts)}

    def duo_sql(host, query):
        return ssh(host, "cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql -p 5433 -d postgres "
                         "-c \"%s\"" % query).stdout.strip()

    run = playbook('create_cluster', '-e', 'cluster=duo', inventories=[inv])
    try:
        assert run.rc == 0, run.output[-4000:]
        # its own engine, unit, mount and port next to demo's on every host
        for h in sorted(lab_hosts):
            units = ssh(h, 'systemctl is-active polardb@demo polardb@duo; findmnt -n -o TARGET /srv/polardb/duo').stdout
            assert units.split() == ['active', 'active', '/srv/polardb/duo'], (h, units)
        assert duo_sql('pdb1', 'select pg_is_in_recovery()') == 'f'
        assert duo_sql('pdb1', "select string_agg(application_name || ' ' || sync_state, ',' order by application_name) "
                               "from pg_stat_replication") == 'd2 quorum,d3 quorum'
        # the collection's default WAL segment size (the lab's inventory gives demo 4 MB)
        assert [duo_sql(h, 'show wal_segment_size') for h in ('pdb1', 'pdb2', 'pdb3')] == ['16MB'] * 3
        assert duo_sql('pdb1', 'select system_identifier from pg_control_system()') != \
            sql(ssh, 'pdb1', 'select system_identifier from pg_control_system()')

        run = playbook('switchover', '-e', 'cluster=duo', '-e', 'target=d2', inventories=[inv])
        assert run.rc == 0, run.output[-4000:]
        assert duo_sql('pdb2', 'select pg_is_in_recovery()') == 'f'
        assert duo_sql('pdb1', 'select pg_is_in_recovery()') == 't'
        # cluster demo: same RW, no engine restarted, nothing lost
        assert settle(ssh, lab_hosts, writer) == demo_rw
        assert {h: sql(ssh, h, 'select pg_postmaster_start_time()') for h in sorted(lab_hosts)} == demo_started
    finally:
        run = playbook('destroy_cluster', '-e', 'cluster=duo', '-e', 'confirm_destroy=duo', '-e', 'wipe=true',
                       inventories=[inv])
    assert run.rc == 0, run.output[-4000:]
    for h, v in sorted(lab_hosts.items()):
        assert blkid_type(ssh, h, v['lab_luns']['spare' + h[-1]]) == ''
        assert ssh(h, 'systemctl is-active polardb@demo').stdout.strip() == 'active'


def test_expand_storage_grows_every_lun_and_file_system_online(playbook, ssh, lab, lab_hosts, writer):
    wwids = {h: lab['all']['children']['polardb_demo']['hosts'][h]['polardb_lun_wwid'] for h in sorted(lab_hosts)}

    def sizes():
        """{node: (LUN bytes, file system bytes)} as the host sees them."""
        out = {}
        for h, wwid in wwids.items():
            lun = ssh(h, 'blockdev --getsize64 /dev/disk/by-id/wwn-0x%s' % wwid).stdout
            fs = ssh(h, 'df -B1 --output=size /srv/polardb/demo | tail -1').stdout
            out[h] = (int(lun), int(fs))
        return out

    before = sizes()
    started = {h: sql(ssh, h, 'select pg_postmaster_start_time()') for h in sorted(lab_hosts)}
    keep = {h: sql(ssh, h, 'show max_slot_wal_keep_size') for h in sorted(lab_hosts)}
    target = max(lun for lun, _fs in before.values()) + 512 * 1024 * 1024

    assert_refused(playbook, ssh, lab_hosts, 'expand_storage', 'a LUN is never shrunk',
                   '-e', 'cluster=demo', '-e', 'size=1G')

    run = playbook('expand_storage', '-e', 'cluster=demo', '-e', 'size=%d' % target)
    assert run.rc == 0, run.output[-4000:]
    after = sizes()
    for h in wwids:
        assert after[h][0] == target, (h, before[h], after[h])
        assert after[h][1] > before[h][1], (h, before[h], after[h])
    # online: no engine restarted; the parameter derived from the size follows it (reloaded)
    assert {h: sql(ssh, h, 'select pg_postmaster_start_time()') for h in sorted(lab_hosts)} == started
    assert all(sql(ssh, h, 'show max_slot_wal_keep_size') != keep[h] for h in lab_hosts), keep
    no_lock_left(ssh, lab_hosts)

    again = playbook('expand_storage', '-e', 'cluster=demo', '-e', 'size=%d' % target)
    assert again.rc == 0, again.output[-4000:]
    assert again.changed() == {}
    assert settle(ssh, lab_hosts, writer) in lab_hosts
