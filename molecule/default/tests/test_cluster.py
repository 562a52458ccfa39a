"""Verify cluster "demo" on the lab: observable state only (services, files,
what the engines say, rows replicated)."""
import shlex
import time
import uuid

import pytest
import testinfra

CLUSTER = 'demo'
MOUNT = '/srv/polardb/%s' % CLUSTER
DATA = MOUNT + '/data'


def sql(host, query, db='postgres'):
    # root logs in as postgres over the local socket through the peer ident map.
    cmd = host.run('psql -XAtq -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -d %s -c %s'
                   % (db, shlex.quote(query)))
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


@pytest.fixture(scope='module')
def nodes(pytestconfig):
    inventory = pytestconfig.getoption('ansible_inventory')
    hosts = testinfra.get_hosts(['ansible://polardb_%s' % CLUSTER], ansible_inventory=inventory)
    assert len(hosts) == 3
    return {h.backend.get_hostname(): h for h in hosts}


@pytest.fixture(scope='module')
def roles(nodes):
    return {name: sql(h, 'select pg_is_in_recovery()') for name, h in nodes.items()}


def test_engine_service_runs_and_starts_at_boot(host):
    svc = host.service('polardb@%s' % CLUSTER)
    assert svc.is_running
    assert svc.is_enabled


def test_data_directory_is_private_and_on_the_lun(host):
    mount = host.mount_point(MOUNT)
    assert mount.exists
    assert mount.filesystem == 'xfs'
    assert mount.device.startswith('/dev/disk/by-id/wwn-0x') or host.run(
        'findmnt -n -o SOURCE %s' % MOUNT).stdout.strip().startswith('/dev/')
    data = host.file(DATA)
    assert data.is_directory
    assert data.user == 'postgres'
    assert data.mode == 0o700
    assert host.file(DATA + '/PG_VERSION').content_string.strip() == '15'


def test_no_trust_authentication(host):
    assert sql(host, "select count(*) from pg_hba_file_rules where auth_method = 'trust'") == '0'
    assert sql(host, "select count(*) from pg_hba_file_rules where type = 'host' "
                     "and auth_method <> 'scram-sha-256'") == '0'
    assert sql(host, 'show password_encryption') == 'scram-sha-256'


def test_exactly_one_rw_and_every_replica_streams_from_it(nodes, roles):
    rws = [n for n, in_recovery in roles.items() if in_recovery == 'f']
    assert len(rws) == 1, roles
    rw = rws[0]
    streaming = sql(nodes[rw], "select application_name || ':' || state from pg_stat_replication "
                               "order by application_name").splitlines()
    assert streaming == ['%s:streaming' % n for n in sorted(nodes) if n != rw]
    slots = sql(nodes[rw], "select slot_name || ':' || active from pg_replication_slots "
                           "order by slot_name").splitlines()
    assert slots == ['%s:true' % n for n in sorted(nodes) if n != rw]
    for name in nodes:
        if name != rw:
            assert sql(nodes[name], 'select status from pg_stat_wal_receiver') == 'streaming'


def test_a_row_written_on_the_rw_is_read_back_on_every_replica(nodes, roles):
    rw = [n for n, r in roles.items() if r == 'f'][0]
    token = uuid.uuid4().hex
    sql(nodes[rw], 'create table if not exists verify_rows (id text primary key, at timestamptz default now())')
    sql(nodes[rw], "insert into verify_rows (id) values ('%s')" % token)
    for name, h in nodes.items():
        if name == rw:
            continue
        deadline = time.time() + 30
        query = shlex.quote("select count(*) from verify_rows where id = '%s'" % token)
        # the table itself may not have been replayed yet: tolerate errors while waiting.
        while h.run('psql -XAtq -h /var/run/postgresql -U postgres -c %s' % query).stdout.strip() != '1':
            assert time.time() < deadline, 'row %s never reached %s' % (token, name)
            time.sleep(0.5)
        # and the replica refuses writes
        cmd = h.run('psql -XAtq -h /var/run/postgresql -U postgres -c %s'
                    % shlex.quote("insert into verify_rows (id) values ('x')"))
        assert cmd.rc != 0 and 'read-only transaction' in cmd.stderr
