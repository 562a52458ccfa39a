"""TLS on cluster "demo" of the lab: TCP without TLS is refused, clients and
replication run over TLS with the cluster's CA (verify-full), the certificates
are kept by a converge and renewed when the names they must carry change."""
import hashlib
import os
import re

import psycopg
import pytest

from labtools import lab_ca, one_line

SECRETS = os.path.expanduser('~/.config/polardb-stack/secrets/demo')
TLS_DIR = os.path.join(SECRETS, 'tls')


def password(user):
    with open(os.path.join(SECRETS, user)) as f:
        return f.read().split()[0]


def connect(address, host=None, user='app', dbname='app', **kw):
    """One connection to one node: ``address`` is dialled, ``host`` is the name checked."""
    params = dict(host=host or address, hostaddr=address, port=5432, user=user, dbname=dbname,
                  password=password(user), connect_timeout=5)
    params.update(kw)
    return psycopg.connect(**params)


def local_sql(ssh, host, query):
    """psql on the node's own socket as postgres (peer): no TCP, no TLS involved."""
    return ssh(host, "psql -XAtq -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -c %s"
               % ("'" + query.replace("'", "'\\''") + "'")).stdout.strip()


def the_rw(ssh, lab_hosts):
    rws = [h for h in sorted(lab_hosts) if local_sql(ssh, h, 'select pg_is_in_recovery()') == 'f']
    assert len(rws) == 1, rws
    return rws[0]


def tls_files():
    """Content hashes of the CA and node certificates and keys on the controller."""
    return {name: hashlib.sha256(open(os.path.join(TLS_DIR, name), 'rb').read()).hexdigest()
            for name in sorted(os.listdir(TLS_DIR))}


def node_files(ssh, lab_hosts):
    return {h: ssh(h, 'cd /etc/polardb-stack/demo && sha256sum ca.crt server.crt server.key').stdout
            for h in lab_hosts}


def tls_task_changes(output):
    """Hosts a task whose name has "TLS" in it reported changed for."""
    changes = []
    for block in re.split(r'\nTASK \[', output):
        title = block.split('\n', 1)[0]
        if 'TLS' in title:
            changes += ['%s: %s' % (title, line.strip()) for line in block.splitlines()
                        if line.startswith('changed:')]
    return changes


def test_plain_tcp_connections_are_refused(lab_hosts):
    for h, v in sorted(lab_hosts.items()):
        with pytest.raises(psycopg.OperationalError) as e:
            connect(v['ansible_host'], sslmode='disable')
        assert 'no encryption' in str(e.value), str(e.value)
        # physical replication too (the replication role from any address)
        with pytest.raises(psycopg.OperationalError) as e:
            connect(v['ansible_host'], user='replicator', dbname='postgres', replication='true',
                    sslmode='disable')
        assert 'no encryption' in str(e.value), str(e.value)


def test_verify_full_with_the_cluster_ca_works_by_address_and_by_name(lab_hosts):
    for h, v in sorted(lab_hosts.items()):
        for name in (v['ansible_host'], h):
            with connect(v['ansible_host'], host=name, sslmode='verify-full', sslrootcert=lab_ca()) as conn:
                ssl, version = conn.execute(
                    'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()').fetchone()
            assert ssl is True and version in ('TLSv1.2', 'TLSv1.3'), (h, name, version)


def test_verify_full_refuses_a_wrong_host_name(lab_hosts):
    address = lab_hosts['pdb1']['ansible_host']
    with pytest.raises(psycopg.OperationalError) as e:
        connect(address, host='wrong.example', sslmode='verify-full', sslrootcert=lab_ca())
    assert 'does not match host name "wrong.example"' in str(e.value), str(e.value)


def test_verify_full_refuses_another_ca(lab_hosts, tmp_path):
    # a CA of the same name that did not sign the node certificates
    other = tmp_path / 'other-ca.crt'
    other.write_text(open(os.path.join(TLS_DIR, 'pdb2.crt')).read())
    with pytest.raises(psycopg.OperationalError) as e:
        connect(lab_hosts['pdb1']['ansible_host'], sslmode='verify-full', sslrootcert=str(other))
    assert 'certificate verify failed' in str(e.value), str(e.value)


def test_every_walsender_runs_over_tls(ssh, lab_hosts):
    rw = the_rw(ssh, lab_hosts)
    rows = local_sql(ssh, rw, "select r.application_name || ':' || s.ssl || ':' || s.version "
                              "from pg_stat_replication r join pg_stat_ssl s using (pid) order by 1").split()
    assert rows == ['%s:true:TLSv1.3' % h for h in sorted(lab_hosts) if h != rw], rows
    for h in lab_hosts:
        if h != rw:
            conninfo = local_sql(ssh, h, 'show primary_conninfo')
            assert 'sslmode=verify-full' in conninfo and 'sslrootcert=/etc/polardb-stack/demo/ca.crt' in conninfo


def test_tls_files_and_settings_on_the_nodes(ssh, lab_hosts):
    for h in lab_hosts:
        listing = ssh(h, 'stat -c "%n %a %U" /etc/polardb-stack/demo/ca.crt /etc/polardb-stack/demo/server.crt '
                         '/etc/polardb-stack/demo/server.key').stdout.split('\n')
        assert listing[:3] == ['/etc/polardb-stack/demo/ca.crt 644 postgres',
                               '/etc/polardb-stack/demo/server.crt 644 postgres',
                               '/etc/polardb-stack/demo/server.key 600 postgres'], listing
        settings = local_sql(ssh, h, "select string_agg(name || '=' || setting, ' ' order by name) from pg_settings "
                                     "where name in ('ssl', 'ssl_min_protocol_version', 'ssl_key_file')")
        assert settings == ('ssl=on ssl_key_file=/etc/polardb-stack/demo/server.key '
                            'ssl_min_protocol_version=TLSv1.2'), settings
    for name in os.listdir(TLS_DIR):
        mode = os.stat(os.path.join(TLS_DIR, name)).st_mode & 0o777
        assert mode == (0o600 if name.endswith('.key') else 0o644), (name, oct(mode))
    assert os.stat(TLS_DIR).st_mode & 0o777 == 0o700


def replication_states(ssh, lab_hosts):
    """The RW and, from its pg_stat_replication, each replica's name:sync_state."""
    rw = the_rw(ssh, lab_hosts)
    return rw, local_sql(ssh, rw, "select application_name || ':' || sync_state "
                                  "from pg_stat_replication order by 1").split()


# One converge applies two inventory changes at once, as a DBA's converge
# often does (and a full converge is the costliest step of the suite): a
# further certificate name for one node, and synchronous replication.
def test_a_converge_renews_the_certificate_whose_names_changed_and_turns_on_synchronous_replication(
        playbook, ssh, lab_hosts, tmp_path):
    # (molecule's idempotence run already showed that a plain converge changes no TLS task)
    before, on_nodes = tls_files(), node_files(ssh, lab_hosts)
    # a further name for pdb3 only: its certificate is renewed, the others and the CA kept
    extra = tmp_path / 'extra-name.yml'
    extra.write_text('all:\n  hosts:\n    pdb3: {polardb_tls_extra_names: ["DNS:db.demo.test"]}\n')
    run = playbook('create_cluster', '-e', 'cluster=demo', '-e', 'polardb_synchronous_replicas=1',
                   inventories=[extra])
    try:
        assert run.rc == 0, run.output[-3000:]
        after = tls_files()
        assert sorted(k for k in after if after[k] != before[k]) == ['pdb3.crt']
        with connect(lab_hosts['pdb3']['ansible_host'], host='db.demo.test', sslmode='verify-full',
                     sslrootcert=lab_ca()) as conn:
            assert conn.execute('select 1').fetchone() == (1,)
        nodes_after = node_files(ssh, lab_hosts)
        assert {h: nodes_after[h] for h in lab_hosts if h != 'pdb3'} == {
            h: on_nodes[h] for h in lab_hosts if h != 'pdb3'}
        # synchronous replication is a quorum over the replicas; the RW's own name never counts
        rw, states = replication_states(ssh, lab_hosts)
        replicas = [h for h in sorted(lab_hosts) if h != rw]
        assert local_sql(ssh, rw, 'show synchronous_standby_names') == 'ANY 1 (%s)' % ', '.join(replicas)
        assert states == ['%s:quorum' % h for h in replicas]
    finally:
        run = playbook('create_cluster', '-e', 'cluster=demo')
    assert run.rc == 0, run.output[-3000:]
    assert one_line(' '.join(tls_task_changes(run.output))).count('changed: [pdb3') >= 1
    with pytest.raises(psycopg.OperationalError):
        connect(lab_hosts['pdb3']['ansible_host'], host='db.demo.test', sslmode='verify-full', sslrootcert=lab_ca())
    # two converges later, the CA and every other certificate and key are still the first ones
    final = tls_files()
    assert sorted(k for k in final if final[k] != before[k]) == ['pdb3.crt']
    rw, states = replication_states(ssh, lab_hosts)
    assert states == ['%s:async' % h for h in sorted(lab_hosts) if h != rw]
