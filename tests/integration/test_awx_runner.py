"""The lifecycle playbooks through ansible-runner, the engine AWX / Automation
Controller runs every job with (docs/awx.md): the same call AWX makes
(private data dir, project dir, inventory, extra vars, the awx_display
callback that turns the run into job events), against the lab's cluster
"demo". What AWX shows and stores are the events: they must carry the result
and never a password."""
import json
import os
import shlex

import pytest

from labtools import LAB_INVENTORY, ROOT, VENV_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(LAB_INVENTORY),
                                reason='the lab is not up (no %s): run make lab-up' % LAB_INVENTORY)

ansible_runner = pytest.importorskip('ansible_runner', reason='ansible-runner is not installed: run make venv')

CLUSTER = 'demo'
SECRETS = os.path.expanduser('~/.config/polardb-stack/secrets/%s' % CLUSTER)
PSQL = 'runuser -u postgres -- psql -XAtq -h /var/run/postgresql -p %d -d postgres -c %s'


@pytest.fixture(scope='module')
def passwords():
    found = {}
    for account in ('postgres', 'replicator', 'app'):
        path = os.path.join(SECRETS, account)
        if not os.path.exists(path):
            pytest.skip('cluster %s has no password file %s (create it with make create)' % (CLUSTER, path))
        with open(path) as f:
            found[account] = f.read().strip()
    assert all(found.values()), 'an empty password file in %s' % SECRETS
    return found


@pytest.fixture(scope='module')
def cluster_hosts(lab):
    group = lab['all']['children'].get('polardb_' + CLUSTER)
    if not group:
        pytest.skip('the lab inventory has no group polardb_%s' % CLUSTER)
    return sorted(group['hosts'])


def run_playbook(tmp_path, name, extravars, timeout=1800):
    """ansible_runner.run() as AWX calls it; the playbook from this repository,
    the lab's inventory, the repository's ansible.cfg (collections path)."""
    envvars = {
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'PATH': VENV_BIN + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin'),
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_NOCOLOR': '1',
    }
    private_data_dir = tmp_path / ('runner-' + name)
    private_data_dir.mkdir()
    return ansible_runner.run(
        private_data_dir=str(private_data_dir),
        project_dir=ROOT,
        playbook=os.path.join(ROOT, 'playbooks', name + '.yml'),
        inventory=LAB_INVENTORY,
        extravars=extravars,
        envvars=envvars,
        quiet=True,
        timeout=timeout,
    )


def describe(run):
    """The end of the run's output, for assertion messages."""
    try:
        text = run.stdout.read()
    except Exception as exc:  # pylint: disable=broad-except
        text = '(no stdout: %s)' % exc
    return 'status=%s rc=%s\n%s' % (run.status, run.rc, text[-4000:])


def assert_no_password_in_events(events, passwords):
    """Neither the text AWX shows (stdout) nor the event data it stores may
    hold a password of the cluster."""
    for ev in events:
        stdout = ev.get('stdout') or ''
        data = json.dumps(ev.get('event_data') or {})
        for account, secret in passwords.items():
            where = 'event %s %s (task %r)' % (ev.get('counter'), ev.get('event'),
                                               (ev.get('event_data') or {}).get('task'))
            assert secret not in stdout, 'the password of %s is in the stdout of %s' % (account, where)
            assert secret not in data, 'the password of %s is in the event data of %s' % (account, where)


def rw_nodes(ssh, hosts, port=5432):
    """The nodes whose engine says it is not in recovery, asked over ssh."""
    roles = {}
    for host in hosts:
        proc = ssh(host, PSQL % (port, shlex.quote('SELECT pg_is_in_recovery()')), check=False)
        roles[host] = proc.stdout.strip() or 'error: ' + proc.stderr.strip()
    return sorted(h for h, r in roles.items() if r == 'f'), roles


def test_switchover_through_ansible_runner_moves_the_rw(tmp_path, passwords, cluster_hosts, ssh, lab):
    if not os.path.exists(os.path.join(ROOT, 'playbooks', 'switchover.yml')):
        pytest.skip('switchover.yml not there yet')
    port = int(lab['all']['children']['polardb_' + CLUSTER].get('vars', {}).get('polardb_port', 5432))
    before, roles = rw_nodes(ssh, cluster_hosts, port)
    assert len(before) == 1, 'before the switchover: %s' % roles

    run = run_playbook(tmp_path, 'switchover', {'cluster': CLUSTER})
    assert run.status == 'successful' and run.rc == 0, describe(run)

    after, roles = rw_nodes(ssh, cluster_hosts, port)
    assert len(after) == 1, 'after the switchover: %s' % roles
    assert after != before, 'the RW is still %s' % before[0]

    # what AWX shows: the run's stats and the report, in the job events
    events = list(run.events)
    stats = [ev for ev in events if ev.get('event') == 'playbook_on_stats']
    assert len(stats) == 1, [ev.get('event') for ev in events][-10:]
    data = stats[0]['event_data']
    assert set(data['ok']) >= set(cluster_hosts), data['ok']
    assert not data.get('failures') and not data.get('dark'), data
    reports = [ev for ev in events if ev.get('event') == 'runner_on_ok'
               and ev['event_data'].get('task') == 'Switchover | Report']
    assert len(reports) == 1, 'no (single) ok event of the task "Switchover | Report"'
    lines = reports[0]['event_data']['res']['msg']
    assert isinstance(lines, list), lines
    assert 'switchover %s -> %s' % (before[0], after[0]) in ' '.join(lines), lines

    # (create_cluster runs through the same job template code; that it converges
    # with changed=0 is molecule's idempotence step)
    assert_no_password_in_events(events, passwords)
