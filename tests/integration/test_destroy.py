"""destroy_cluster keeps LUN data unless wipe=true: a destroyed cluster created
again comes back with its rows. (wipe=true, blank LUNs afterwards, and a new
cluster on blank LUNs: test_day2_topology's second cluster, destroyed with wipe.)"""
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
