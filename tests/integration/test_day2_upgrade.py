"""minor_upgrade.yml on the lab's cluster "demo" (issue 8, part 4), with a
client writing through the multi-host DSN: Debian serves two minor versions
of PostgreSQL 15 (bookworm and bookworm-security). The cluster runs the newer
one (create_cluster installs it): a version not in the sources and an
unnamed downgrade are refused before anything changes; the named downgrade
and the upgrade back each go replicas first, then the RW by a switchover,
verified by version() on every node; a second run changes nothing."""
import pytest

from labtools import assert_refused, no_lock_left, one_line, settle, sql, the_rw

OLDER = '15.18-0+deb12u1'


def installed(ssh, hosts):
    return {h: ssh(h, "dpkg-query -W -f '${Version}' postgresql-15").stdout.strip() for h in sorted(hosts)}


def running(ssh, hosts):
    return {h: sql(ssh, h, 'select version()').split(' ')[1] for h in sorted(hosts)}


@pytest.fixture(scope='module')
def newer(playbook, ssh, lab_hosts):
    found = set(installed(ssh, lab_hosts).values())
    assert len(found) == 1, found
    version = found.pop()
    assert version != OLDER, 'the lab should run the newer minor version'
    yield version
    # whatever happened, leave the cluster on the version create_cluster installed
    if set(installed(ssh, lab_hosts).values()) != {version}:
        back = playbook('minor_upgrade', '-e', 'cluster=demo', '-e', 'version=' + version)
        assert back.rc == 0, back.output[-4000:]


def upgrade_to(playbook, ssh, lab_hosts, writer, version, *extra):
    old_rw = the_rw(ssh, lab_hosts)
    run = playbook('minor_upgrade', '-e', 'cluster=demo', '-e', 'version=' + version, *extra)
    assert run.rc == 0, run.output[-4000:]
    new_rw = settle(ssh, lab_hosts, writer)
    assert new_rw != old_rw, 'the RW restarts by a switchover'
    assert set(installed(ssh, lab_hosts).values()) == {version}
    assert set(running(ssh, lab_hosts).values()) == {version.split('-')[0]}
    no_lock_left(ssh, lab_hosts)
    return run


@pytest.mark.parametrize('why, extra, says', [
    ('not in the sources', ['-e', 'version=15.99-0+deb12u1'], 'version 15.99-0+deb12u1 of postgresql-15'),
    ('unnamed downgrade', ['-e', 'version=' + OLDER], 'a downgrade is refused unless named'),
])
def test_refusals_change_nothing(playbook, ssh, lab_hosts, newer, why, extra, says):
    packages = installed(ssh, lab_hosts)
    assert_refused(playbook, ssh, lab_hosts, 'minor_upgrade', says, '-e', 'cluster=demo', *extra)
    assert installed(ssh, lab_hosts) == packages


def test_named_downgrade(playbook, ssh, lab, lab_hosts, writer, newer):
    upgrade_to(playbook, ssh, lab_hosts, writer, OLDER, '-e', 'polardb_allow_downgrade=true')


def test_upgrade_replicas_first_then_the_rw_by_switchover(playbook, ssh, lab, lab_hosts, writer, newer):
    if set(installed(ssh, lab_hosts).values()) != {OLDER}:
        pytest.skip('needs the downgrade of the test before')
    preview = playbook('minor_upgrade', '-e', 'cluster=demo', '-e', 'version=' + newer, check=True)
    assert preview.rc == 0 and 'CHECK MODE' in one_line(preview.output)
    assert set(installed(ssh, lab_hosts).values()) == {OLDER}
    run = upgrade_to(playbook, ssh, lab_hosts, writer, newer)
    text = one_line(run.output)
    # the plan's order: every replica before the switchover of the RW
    assert text.index('3. restart on') < text.index('switchover on')
    again = playbook('minor_upgrade', '-e', 'cluster=demo', '-e', 'version=' + newer)
    assert again.rc == 0 and again.changed() == {}
