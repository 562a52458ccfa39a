"""scale.yml on the lab's cluster "demo" (issue 8, part 2), with a client
writing through the multi-host DSN: a class sets the CPU and memory limits of
every engine's systemd unit (applied to the running unit) and the parameters
that follow from it, rolling (replicas first, the RW by a switchover); a
parameter the user set keeps its value across class changes; an unknown class
or one larger than a host is refused before anything changes. The module's
teardown takes the class away again (lowering max_connections: RW first, in
place).

The lab's hosts are containers without writable cgroup controllers: systemd
takes the limits (systemctl show), the kernel does not enforce them there."""
import json

import pytest

from labtools import assert_refused, no_lock_left, one_line, settle, sql, the_rw

USER = {'work_mem': '16MB'}


@pytest.fixture(scope='module', autouse=True)
def no_class_afterwards(playbook, lab):
    yield
    run = playbook('refresh_params', '-e', 'cluster=demo', '-e', 'polardb_restart_strategy=in_place')
    assert run.rc == 0, run.output[-4000:]


def shows(ssh, hosts, name):
    return set(sql(ssh, h, 'show %s' % name) for h in hosts)


@pytest.mark.parametrize('why, extra, says', [
    ('unknown class', ['-e', 'polardb_class=nosuch'], 'polardb_class nosuch is not a class (classes: large, medium'),
    ('larger than the host', ['-e', 'polardb_class=huge', '-e', json.dumps(
        {'polardb_instance_classes_extra': {'huge': {'cpus': 64, 'memory_mb': 9999999, 'parameters': {}}}})],
     'class huge needs 9999999 MB of memory, the host has'),
])
def test_refusals_change_nothing(playbook, ssh, lab_hosts, why, extra, says):
    assert_refused(playbook, ssh, lab_hosts, 'scale', says, '-e', 'cluster=demo', *extra)


@pytest.mark.parametrize('klass, memory, cpu, shared_buffers, max_connections', [
    ('medium', '4294967296', '2s', '1GB', '200'),
])
def test_scale_up_keeps_the_users_parameters(playbook, ssh, lab, lab_hosts, writer, klass, memory, cpu,
                                             shared_buffers, max_connections):
    old_rw = the_rw(ssh, lab_hosts)
    run = playbook('scale', '-e', 'cluster=demo', '-e', 'polardb_class=' + klass,
                   '-e', json.dumps({'polardb_parameters': USER}))
    assert run.rc == 0, run.output[-4000:]
    rw = settle(ssh, lab_hosts, writer)
    assert rw != old_rw, 'shared_buffers needs a restart: the RW restarts by a switchover'
    assert shows(ssh, lab_hosts, 'shared_buffers') == {shared_buffers}
    assert shows(ssh, lab_hosts, 'max_connections') == {max_connections}
    assert shows(ssh, lab_hosts, 'work_mem') == {USER['work_mem']}, 'the user\'s value survives the class'
    for h in lab_hosts:
        limits = ssh(h, 'systemctl show -P MemoryMax polardb@demo; systemctl show -P CPUQuotaPerSecUSec polardb@demo')
        assert limits.stdout.split() == [memory, cpu], (h, limits.stdout)
    no_lock_left(ssh, lab_hosts)
    # medium -> large, previewed: the class's parameters move, the user's work_mem does not
    preview = playbook('scale', '-e', 'cluster=demo', '-e', 'polardb_class=large',
                       '-e', json.dumps({'polardb_parameters': USER}), check=True)
    assert preview.rc == 0, preview.output[-4000:]
    text = one_line(preview.output)
    for h in lab_hosts:
        changes = text.split('write postgresql.conf and reload on %s: ' % h)[1].split('[skipped')[0]
        assert 'shared_buffers' in changes and 'max_connections' in changes and 'work_mem' not in changes.replace(
            'maintenance_work_mem', ''), changes
    assert shows(ssh, lab_hosts, 'shared_buffers') == {shared_buffers}
    status = playbook('status', '-e', 'cluster=demo', '-e', 'polardb_class=' + klass)
    assert 'instance class: %s' % ', '.join('%s %s' % (h, klass) for h in sorted(lab_hosts)) in one_line(status.output)
