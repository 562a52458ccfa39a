"""Paths and small helpers shared by the integration tests."""
import os
import re
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# POLARDB_LAB_INVENTORY: run against another lab (a second lab's inventory).
LAB_INVENTORY = os.environ.get('POLARDB_LAB_INVENTORY') or os.path.join(ROOT, 'inventories', 'lab', 'hosts.yml')
# POLARDB_LAB_VARS: a vars file of that lab's overrides, for lab/lab.yml (faults).
LAB_VARS = os.environ.get('POLARDB_LAB_VARS') or ''
# The lab's playbook: not a collection playbook (lab/ is not in the Galaxy tarball).
LAB_PLAYBOOK = os.path.join(ROOT, 'lab', 'lab.yml')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


def log_run(name, argv, rc, seconds):
    """One line of $POLARDB_RUN_LOG (JSON) per playbook run: which test ran which
    playbook, how it ended, how long it took (tests/tools/run_log.py sums them up)."""
    path = os.environ.get('POLARDB_RUN_LOG')
    if not path:
        return
    import json
    test = (os.environ.get('PYTEST_CURRENT_TEST') or '').rsplit(' ', 1)[0]
    with open(path, 'a') as f:
        f.write(json.dumps(dict(test=test, playbook=name, args=' '.join(argv), rc=rc, seconds=round(seconds, 2))) + '\n')


def one_line(text):
    """Ansible folds long messages; compare on single spaces."""
    return re.sub(r'\s+', ' ', text)


def lab_dsn(lab, cluster='demo', session_attrs='read-write', secrets_dir=None):
    """The application's multi-host DSN for a cluster of the lab (as `make dsn`):
    over TLS, every node's certificate checked against the cluster's CA."""
    from urllib.parse import quote
    secrets_dir = secrets_dir or os.path.expanduser('~/.config/polardb-stack/secrets/%s' % cluster)
    with open(os.path.join(secrets_dir, 'app')) as f:
        password = f.read().split()[0]
    group = lab['all']['children']['polardb_%s' % cluster]['hosts']
    hosts = lab['all']['children']['lab_hosts']['hosts']
    addresses = ','.join('%s:5432' % hosts[h]['ansible_host'] for h in sorted(group))
    # tcp_user_timeout: a powered-off RW must not hang the client for minutes.
    return ('postgresql://app:%s@%s/app?target_session_attrs=%s&connect_timeout=2'
            '&tcp_user_timeout=2000&keepalives_idle=1&keepalives_interval=1&keepalives_count=2'
            '&sslmode=verify-full&sslrootcert=%s'
            % (quote(password, safe=''), addresses, session_attrs, quote(lab_ca(cluster, secrets_dir), safe='/')))


def lab_ca(cluster='demo', secrets_dir=None):
    """The cluster's CA certificate on the controller (made by create_cluster)."""
    secrets_dir = secrets_dir or os.path.expanduser('~/.config/polardb-stack/secrets/%s' % cluster)
    return os.path.join(secrets_dir, 'tls', 'ca.crt')


class Writer(object):
    """A client that writes continuously through the multi-host DSN: one
    autocommit insert per attempt, each with a new id and the client's clock,
    recording every id the server acknowledged and when."""

    def __init__(self, dsn, table='ha_writes', pause=0.005):
        import threading
        self.dsn, self.table, self.pause = dsn, table, pause
        self.acked = []          # (id, monotonic time of the acknowledgement)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self):
        import psycopg
        return psycopg.connect(self.dsn, autocommit=True)

    def prepare(self):
        with self._connect() as conn:
            conn.execute('create table if not exists %s (id bigint primary key, client_ts double precision, '
                         'server_ts timestamptz default clock_timestamp())' % self.table)
            row = conn.execute('select coalesce(max(id), 0) from %s' % self.table).fetchone()
        self.next_id = row[0] + 1
        return self

    def start(self):
        self.prepare()
        self._thread.start()
        return self

    def _run(self):
        import time as _time
        conn = None
        while not self._stop.is_set():
            attempt = self.next_id
            self.next_id += 1
            try:
                if conn is None:
                    conn = self._connect()
                conn.execute('insert into %s (id, client_ts) values (%%s, %%s)' % self.table,
                             (attempt, _time.time()))
                self.acked.append((attempt, _time.monotonic()))
            except Exception:  # any failure: the attempt is not acknowledged, reconnect
                self.errors += 1
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                _time.sleep(0.01)
            _time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        return self

    def longest_gap(self, since=None):
        """Longest time between two consecutive acknowledgements (seconds)."""
        times = [ack[1] for ack in self.acked if since is None or ack[1] >= since]
        return max((b - a for a, b in zip(times, times[1:])), default=None)

    def missing(self):
        """Acknowledged ids that the current RW does not have (must be empty)."""
        ids = [ack[0] for ack in self.acked]
        if not ids:
            return []
        with self._connect() as conn:
            have = {r[0] for r in conn.execute('select id from %s where id between %%s and %%s' % self.table,
                                               (min(ids), max(ids)))}
        return sorted(set(ids) - have)


def lab_state_dir():
    """The state directory of the lab under test (a second lab names its own)."""
    if LAB_VARS:
        import yaml
        with open(LAB_VARS) as f:
            return (yaml.safe_load(f) or {}).get('lab_state_dir') or '/var/lib/polardb-stack-lab'
    return '/var/lib/polardb-stack-lab'


# What a run that must change nothing may not change, per node: the managed files,
# the engine process (a restart changes its pid and start time), its role and
# timeline (of its WAL: a replica's checkpoint timeline moves at a restartpoint
# long after a switchover), its replication slots and the lock directory.
FINGERPRINT = r'''
cd /tmp
find /etc/polardb-stack/{cluster} /etc/systemd/system/polardb@.service -type f 2>/dev/null | sort | xargs -r sha256sum
echo "fs: $(findmnt -no SOURCE,FSTYPE,OPTIONS /srv/polardb/{cluster} 2>/dev/null)"
echo "lun bytes: $(blockdev --getsize64 "$(findmnt -no SOURCE /srv/polardb/{cluster})" 2>/dev/null)"
echo "fs bytes: $(df -B1 --output=size /srv/polardb/{cluster} 2>/dev/null | tail -1)"
echo "pid: $(head -n 3 /srv/polardb/{cluster}/data/postmaster.pid 2>/dev/null | tr '\n' ' ')"
runuser -u postgres -- psql -XAtq -h /var/run/postgresql -c "select 'role: ' || pg_is_in_recovery() || ' tli ' \
  || coalesce(CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli::text FROM pg_stat_wal_receiver)
                   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END, '?')" 2>&1
runuser -u postgres -- psql -XAtq -h /var/run/postgresql -c "select 'slot: ' || slot_name from pg_replication_slots order by 1" 2>&1
echo "locks: $(ls -A /var/lib/polardb-stack/locks 2>/dev/null | tr '\n' ' ')"
'''


def cluster_fingerprint(ssh, hosts, cluster='demo'):
    """{node: text} of FINGERPRINT, plus the array's registrations and fences."""
    import json
    import subprocess
    out = {h: ssh(h, FINGERPRINT.replace('{cluster}', cluster), check=False).stdout for h in sorted(hosts)}
    proc = subprocess.run([os.path.join(lab_state_dir(), 'bin', 'lab-array'), 'status'],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out['array'] = json.loads(proc.stdout)
    return out


# SQL on a lab host, as postgres over the local socket (no password, no TLS).
PSQL = 'cd /tmp && runuser -u postgres -- psql -XAtq -h /var/run/postgresql -U postgres -d postgres -c %s'


def sql(ssh, host, query, check=True):
    return ssh(host, PSQL % "'%s'" % query.replace("'", "'\"'\"'"), check=check).stdout.strip()


def roles(ssh, hosts):
    """{host: 'f' (accepts writes) | 't' (in recovery) | '' (no answer)}."""
    return {h: sql(ssh, h, 'select pg_is_in_recovery()', check=False) for h in hosts}


def the_rw(ssh, hosts):
    """The one node that accepts writes (asserts there is exactly one)."""
    found = roles(ssh, hosts)
    rws = [h for h, r in found.items() if r == 'f']
    assert len(rws) == 1, found
    return rws[0]


def streams_from(ssh, host, rw_ip, timeout=90):
    """Wait until ``host``'s WAL receiver streams from ``rw_ip``."""
    import time
    deadline = time.time() + timeout
    while True:
        got = sql(ssh, host, "select sender_host || ':' || status from pg_stat_wal_receiver", check=False)
        if got == rw_ip + ':streaming':
            return
        assert time.time() < deadline, '%s replicates as %r, not from %s' % (host, got, rw_ip)
        time.sleep(0.5)


def fault(playbook, host, action):
    """Power a lab host off, cut it off the network, or restore it."""
    extra = ['-e', '@' + LAB_VARS] if LAB_VARS else []
    run = playbook('lab', *extra, '-e', 'lab_state=fault', '-e', 'lab_fault_host=' + host,
                   '-e', 'lab_fault_action=' + action)
    assert run.rc == 0, run.output[-3000:]


def wait_streaming(ssh, lab_hosts, rw, timeout=90):
    """Wait until every other node streams from ``rw`` (its pg_stat_replication)."""
    import time
    want = ['%s:streaming' % h for h in sorted(lab_hosts) if h != rw]
    deadline = time.time() + timeout
    while True:
        got = sql(ssh, rw, "select application_name || ':' || state from pg_stat_replication order by 1",
                  check=False).splitlines()
        if got == want:
            return
        assert time.time() < deadline, 'replicas of %s: %s' % (rw, got)
        time.sleep(0.5)


def no_lock_left(ssh, hosts, cluster='demo'):
    for h in hosts:
        assert ssh(h, 'test -e /var/lib/polardb-stack/locks/%s.json' % cluster, check=False).returncode != 0, h


def start_playbook(name, *extra):
    """playbooks/<name>.yml for cluster demo in the background, its output on a pipe
    (for tests that kill or race runs)."""
    import subprocess
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', PATH=VENV_BIN + os.pathsep + os.environ['PATH'])
    return subprocess.Popen(
        [os.path.join(VENV_BIN, 'ansible-playbook'), os.path.join(ROOT, 'playbooks', name + '.yml'),
         '-i', LAB_INVENTORY, '-e', 'cluster=demo'] + list(extra),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def read_until(proc, marker, timeout=180):
    """Read a started playbook's output until a line holds ``marker``."""
    import time
    deadline = time.time() + timeout
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return ''.join(seen)
        assert time.time() < deadline, 'no %r in:\n%s' % (marker, ''.join(seen)[-3000:])
    raise AssertionError('the run ended before %r:\n%s' % (marker, ''.join(seen)[-3000:]))


def settle(ssh, lab_hosts, writer):
    """After an operation: stop the client, wait until every node streams from
    the one RW, check that nothing acknowledged is missing; returns the RW."""
    time.sleep(1.5)
    writer.stop()
    rw = the_rw(ssh, lab_hosts)
    wait_streaming(ssh, lab_hosts, rw)
    assert len(writer.acked) > 50, 'the client barely wrote (%d acks, %d errors)' % (len(writer.acked), writer.errors)
    assert writer.missing() == []
    print('longest gap between acknowledged writes: %.3f s' % writer.longest_gap())
    return rw


def assert_refused(playbook, ssh, lab_hosts, name, says, *args):
    """playbooks/<name>.yml with ``args`` is refused with a message saying
    ``says`` and "Nothing was changed", and nothing changed: no task reports a
    change and the cluster's fingerprint is the same."""
    before = cluster_fingerprint(ssh, lab_hosts)
    run = playbook(name, *args)
    assert run.rc != 0, (name, args)
    text = one_line(run.output)
    assert says in text and 'Nothing was changed' in text, text[-2000:]
    assert run.changed() == {}
    assert cluster_fingerprint(ssh, lab_hosts) == before
    return run


def wait_for(what, probe, timeout=60, interval=0.5, until=bool):
    """``probe()`` once ``until`` holds for it; fails after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        got = probe()
        if until(got):
            return got
        assert time.time() < deadline, 'no %s within %s s: %s' % (what, timeout, got)
        time.sleep(interval)


def history(keys):
    """The cluster manager's failover records among ``keys`` ({key under the cluster's prefix: value})."""
    return sorted(k for k in keys if k.startswith('history/'))


def failed_over_by_the_manager(ssh, lab_hosts, writer, old, lost, read_keys, earlier):
    """After the RW ``old`` was lost (at ``lost``, time.monotonic()), with no playbook: the one replica
    promoted, a write acknowledged by it, the other replicas streaming from it, and in the manager's
    keys (``read_keys(new)``) the failover done, the new RW on record and holding the leader key; the
    writer stopped, nothing it was acknowledged lost. (new RW, seconds from the loss to its first
    acknowledged write)."""
    survivors = sorted(h for h in lab_hosts if h != old)
    new = wait_for('a new RW', lambda: [h for h in survivors if sql(ssh, h, 'select pg_is_in_recovery()',
                                                                    check=False) == 'f'], timeout=60)
    assert len(new) == 1, new
    new = new[0]
    wait_for('an acknowledged write on the new RW', lambda: any(ack[1] > lost for ack in writer.acked), timeout=30)
    first = min(ack[1] for ack in writer.acked if ack[1] > lost)
    for h in survivors:
        if h != new:
            streams_from(ssh, h, lab_hosts[new]['ansible_host'])
    keys = wait_for('the failover in the history', lambda: read_keys(new),
                    until=lambda k: len(history(k)) > len(earlier) and 'failover' not in k)
    hist = [keys[k] for k in history(keys) if k not in earlier]
    assert len(hist) == 1 and (hist[0]['from'], hist[0]['to'], hist[0]['state']) == (old, new, 'done'), hist
    assert keys['rw']['node'] == new and keys['leader']['node'] == new
    writer.stop()
    assert writer.missing() == []
    return new, first - lost
