"""destroy_cluster keeps LUN data unless wipe=true: a destroyed cluster created
again comes back with its rows; a wiped one comes back empty."""
import time
import uuid

from test_switchover import sql, the_rw, wait_streaming


def gone(ssh, host):
    out = ssh(host, 'systemctl is-active polardb@demo; mountpoint -q /srv/polardb/demo && echo mounted; '
                    'test -e /etc/polardb-stack/demo && echo conf; grep -c /srv/polardb/demo /etc/fstab; true',
              check=False).stdout.split()
    return out == ['inactive', '0']


def test_destroy_keeps_the_data_and_create_brings_it_back(playbook, ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    token = uuid.uuid4().hex
    sql(ssh, rw, "create table if not exists keep_me (t text); insert into keep_me values ('%s')" % token)
    run = playbook('destroy_cluster', '-e', 'cluster=demo', '-e', 'confirm_destroy=demo')
    assert run.rc == 0, run.output[-3000:]
    for h in lab_hosts:
        assert gone(ssh, h), h
    run = playbook('create_cluster', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-3000:]
    assert the_rw(ssh, lab_hosts) == rw
    wait_streaming(ssh, lab_hosts, rw)
    for h in lab_hosts:
        deadline = time.time() + 30
        while sql(ssh, h, "select count(*) from keep_me where t = '%s'" % token, check=False) != '1':
            assert time.time() < deadline, h
            time.sleep(0.5)


def test_destroy_with_wipe_leaves_blank_luns_and_a_new_cluster_can_be_made(playbook, ssh, lab_hosts):
    sysid = sql(ssh, 'pdb1', 'select system_identifier from pg_control_system()')
    run = playbook('destroy_cluster', '-e', 'cluster=demo', '-e', 'confirm_destroy=demo', '-e', 'wipe=true')
    assert run.rc == 0, run.output[-3000:]
    for h in lab_hosts:
        assert gone(ssh, h), h
        wwid = lab_hosts[h]['lab_luns']['data' + h[-1]]
        assert ssh(h, 'blkid -p /dev/disk/by-id/wwn-0x%s' % wwid, check=False).returncode == 2, h
    run = playbook('create_cluster', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-3000:]
    rw = the_rw(ssh, lab_hosts)
    assert rw == 'pdb1'   # the inventory's initial primary: no node held data
    assert sql(ssh, rw, 'select system_identifier from pg_control_system()') != sysid
    assert sql(ssh, rw, "select to_regclass('keep_me') is null") == 't'
    wait_streaming(ssh, lab_hosts, rw)
