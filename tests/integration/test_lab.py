# Copyright: polardb.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself, checked from the outside (run as root against an up lab).

    make lab-up && .venv/bin/pytest -q tests/integration/test_lab.py
    # a second lab: POLARDB_LAB_VARS=/path/labN.yml (its state dir, bridge, subnet)

Asserts on observable state only: hosts answer ssh and run systemd, each host
sees its LUNs by WWID with the right size, a shared LUN is shared, and the
array fences like a SAN (EIO for one host's writes, at once, kept across a
power cut of that host). POLARDB_LAB_TEST_ABSENT=1 adds a last test that
tears the lab down and checks that nothing is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from labtools import LAB_PLAYBOOK, LAB_VARS

REPO = Path(__file__).resolve().parents[2]
# POLARDB_LAB_VARS: the overrides of a second lab (as `make lab-up LAB_VARS=...`)
_OVERRIDES = yaml.safe_load(Path(LAB_VARS).read_text()) if LAB_VARS else {}
STATE_DIR = Path(_OVERRIDES.get('lab_state_dir', '/var/lib/polardb-stack-lab'))
STATE = STATE_DIR / 'state.json'
KEY = STATE_DIR / 'ssh' / 'id_ed25519'
LAB_ARRAY = STATE_DIR / 'bin' / 'lab-array'
SUBNET = _OVERRIDES.get('lab_subnet', '10.213.77.0/24')
BRIDGE = _OVERRIDES.get('lab_bridge', 'pdblab0')


def _lab():
    if os.geteuid() != 0:
        pytest.skip('the lab tests run as root (they use the machine side of the lab)')
    if not STATE.exists():
        pytest.skip('the lab is not up (no %s): run `make lab-up` first' % STATE)
    state = json.loads(STATE.read_text())
    down = [n for n, h in state['hosts'].items() if not h['running']]
    if down or not state['array']['running']:
        pytest.skip('the lab is not fully up (hosts down: %s, array running: %s)'
                    % (down, state['array']['running']))
    return state


@pytest.fixture(scope='module')
def lab():
    return _lab()


def ssh(state, host, command, check=True, stdin=None, timeout=60):
    argv = ['ssh', '-i', str(KEY), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3',
            '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
            'root@' + state['hosts'][host]['ip'], command]
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('%s: %r failed (%d): %s' % (host, command, proc.returncode, proc.stderr.decode()))
    return proc


def array(*args, check=True):
    proc = subprocess.run([str(LAB_ARRAY), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError('lab-array %s failed: %s' % (' '.join(args), proc.stderr))
    return proc


def playbook(*extra):
    binary = REPO / '.venv' / 'bin' / 'ansible-playbook'
    argv = [str(binary) if binary.exists() else 'ansible-playbook', LAB_PLAYBOOK,
            *(['-e', '@' + LAB_VARS] if LAB_VARS else []), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0')
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc


def device(state, host, lun):
    return state['hosts'][host]['luns'][lun]['device']


# Writes to a LUN from inside a host; exit status 5 = EIO.
WRITE_FSYNC = r'''
import os, sys
path = sys.argv[1]
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b'x' * 8192)
    os.fsync(fd)
    os.close(fd)
except OSError as exc:
    print(exc)
    sys.exit(5 if exc.errno == 5 else 1)
'''

RAW_DIRECT_WRITE = r'''
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
buf = mmap.mmap(-1, 4096)
buf.write(sys.stdin.buffer.read(4096))
try:
    os.pwritev(fd, [buf], int(sys.argv[2]) * 4096)
except OSError as exc:
    print(exc)
    sys.exit(5 if exc.errno == 5 else 1)
'''

RAW_DIRECT_READ = r'''
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
os.preadv(fd, [buf], int(sys.argv[2]) * 4096)
sys.stdout.buffer.write(buf[:])
'''


def py(script):
    return "python3 -c '%s'" % script.replace("'", "'\"'\"'")


def raw_write(state, host, lun, block, data, check=True):
    return ssh(state, host, py(RAW_DIRECT_WRITE) + ' %s %d' % (device(state, host, lun), block),
               stdin=data, check=check)


def raw_read(state, host, lun, block):
    return ssh(state, host, py(RAW_DIRECT_READ) + ' %s %d' % (device(state, host, lun), block)).stdout


# ---------------------------------------------------------------------------

def test_hosts_answer_ssh_and_run_systemd(lab):
    for host in lab['hosts']:
        out = ssh(lab, host, 'hostname; systemctl is-system-running', check=False).stdout.decode().split()
        assert out[0] == host
        assert out[1] in ('running', 'degraded'), (host, out)


def test_hosts_see_their_luns_by_wwid_with_the_right_size(lab):
    for host, info in lab['hosts'].items():
        for lun, spec in info['luns'].items():
            assert spec['device'] == '/dev/disk/by-id/wwn-0x' + spec['wwid']
            size = ssh(lab, host, 'blockdev --getsize64 ' + spec['device']).stdout.decode().strip()
            # at least the size the lab made; expand_storage (test_day2_topology) grows the data LUNs
            assert int(size) >= lab['luns'][lun]['bytes'], (host, lun, size)


def test_wwids_are_naa6_and_stable(lab):
    for lun, spec in lab['luns'].items():
        assert len(spec['wwid']) == 32 and spec['wwid'].startswith('6001405'), lun
    assert len({spec['wwid'] for spec in lab['luns'].values()}) == len(lab['luns'])


def test_dirty_lun_already_holds_a_file_system(lab):
    out = ssh(lab, 'pdb1', 'blkid -o value -s TYPE ' + device(lab, 'pdb1', 'dirty1')).stdout.decode().strip()
    assert out == 'ext4'


def test_shared_lun_written_by_one_host_is_read_by_the_other(lab):
    data = os.urandom(4096)
    raw_write(lab, 'pdb1', 'shared1', 1000, data)
    assert raw_read(lab, 'pdb2', 'shared1', 1000) == data
    data = os.urandom(4096)
    raw_write(lab, 'pdb2', 'shared1', 1001, data)
    assert raw_read(lab, 'pdb1', 'shared1', 1001) == data


def test_persistent_reservations_fence_the_preempted_host(lab):
    """write-exclusive-all-registrants: only registered initiators write."""
    try:
        array('register', 'pdb1', 'shared1', '0x1')
        array('register', 'pdb2', 'shared1', '0x2')
        array('reserve', 'pdb1', 'shared1', '0x1', '--type', 'write-exclusive-all-registrants')
        assert raw_write(lab, 'pdb1', 'shared1', 2000, os.urandom(4096)).returncode == 0
        assert raw_write(lab, 'pdb2', 'shared1', 2001, os.urandom(4096)).returncode == 0
        # pdb2 takes over: pdb1's registration goes, and with it its writes
        array('preempt', 'pdb2', 'shared1', '0x2', '0x1')
        assert raw_write(lab, 'pdb1', 'shared1', 2000, os.urandom(4096), check=False).returncode == 5
        assert raw_write(lab, 'pdb2', 'shared1', 2001, os.urandom(4096)).returncode == 0
        assert raw_read(lab, 'pdb1', 'shared1', 2001)  # reads stay allowed
        status = json.loads(array('status', 'shared1').stdout)
        assert status['reservation']['holder'] == 'pdb2'
        assert status['write_allowed'] == {'pdb1': False, 'pdb2': True}
    finally:
        array('clear', 'pdb2', 'shared1', '0x2', check=False)
        array('clear', 'pdb1', 'shared1', '0x1', check=False)
    assert raw_write(lab, 'pdb1', 'shared1', 2000, os.urandom(4096)).returncode == 0


def test_control_endpoint_names_the_caller_by_address(lab):
    listen = lab['array']['listen']
    request = ("import json, urllib.request as u; "
               "print(u.urlopen('http://%s/v1/status', timeout=5).read().decode())" % listen)
    out = json.loads(ssh(lab, 'pdb2', 'python3 -c "%s"' % request).stdout)
    assert out['host'] == 'pdb2'
    assert set(out['luns']) == set(lab['hosts']['pdb2']['luns'])
    # register through the endpoint, as the fencing driver will
    post = ("import json, urllib.request as u; "
            "r = u.Request('http://%s/v1/pr/register', data=json.dumps({'lun': '%s', 'key': '0x22'}).encode(), "
            "method='POST'); print(u.urlopen(r, timeout=5).read().decode())"
            % (listen, lab['luns']['spare2']['wwid']))
    try:
        out = json.loads(ssh(lab, 'pdb2', 'python3 -c "%s"' % post).stdout)
        assert out['lun'] == 'spare2' and out['state']['registrations'] == {'pdb2': '0x22'}
    finally:
        array('register', 'pdb2', 'spare2', '0', check=False)
    # not a lab host: refused (the machine itself calls from the bridge address)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen('http://%s/v1/status' % listen, timeout=5)
    assert err.value.code == 403


def lab_fence(lab, host, action, lun, key, victim_key='', check=True):
    """The lab's fence command in a host, as storage_fence's command driver runs it."""
    command = ('/usr/local/sbin/lab-fence --array http://%s %s --lun %s --key %s --victim-key "%s"'
               % (lab['array']['listen'], action, lab['luns'][lun]['wwid'], key, victim_key))
    return ssh(lab, host, command, check=check)


def test_lab_fence_cli_speaks_the_fence_command_contract(lab):
    """register, reserve, fence, release and status through lab-fence in the hosts:
    the fenced host's writes fail with EIO; exit 2 for a conflict, 3 for a LUN the
    host does not see."""
    try:
        lab_fence(lab, 'pdb1', 'register', 'shared1', '0xa1')
        lab_fence(lab, 'pdb1', 'reserve', 'shared1', '0xa1')
        status = json.loads(lab_fence(lab, 'pdb2', 'status', 'shared1', '0xa2').stdout)
        assert (status['registrations'], status['reserved']) == (['0xa1'], True)
        assert raw_write(lab, 'pdb2', 'shared1', 3000, os.urandom(4096), check=False).returncode == 5
        # pdb2 cannot fence pdb1 before it is registered itself: a conflict
        proc = lab_fence(lab, 'pdb2', 'fence', 'shared1', '0xa2', '0xa1', check=False)
        assert proc.returncode == 2, proc.stderr
        assert b'RESERVATION CONFLICT' in proc.stderr
        lab_fence(lab, 'pdb2', 'register', 'shared1', '0xa2')
        lab_fence(lab, 'pdb2', 'fence', 'shared1', '0xa2', '0xa1')
        status = json.loads(lab_fence(lab, 'pdb1', 'status', 'shared1', '0xa1').stdout)
        assert (status['registrations'], status['reserved']) == (['0xa2'], True)
        assert raw_write(lab, 'pdb1', 'shared1', 3000, os.urandom(4096), check=False).returncode == 5
        assert raw_write(lab, 'pdb2', 'shared1', 3001, os.urandom(4096)).returncode == 0
        lab_fence(lab, 'pdb2', 'release', 'shared1', '0xa2')
        status = json.loads(lab_fence(lab, 'pdb1', 'status', 'shared1', '0xa1').stdout)
        assert (status['registrations'], status['reserved']) == ([], False)
        assert raw_write(lab, 'pdb1', 'shared1', 3000, os.urandom(4096)).returncode == 0
        # shared1 is not mapped to pdb3
        proc = lab_fence(lab, 'pdb3', 'status', 'shared1', '0xa3', check=False)
        assert proc.returncode == 3, proc.stderr
    finally:
        array('clear', 'pdb2', 'shared1', '0xa2', check=False)
        array('clear', 'pdb1', 'shared1', '0xa1', check=False)


def test_fence_refuses_writes_at_once_and_survives_a_power_cut(lab):
    dev = device(lab, 'pdb1', 'spare1')
    mnt = '/mnt/lab-spare1'
    write = py(WRITE_FSYNC)
    ssh(lab, 'pdb1', 'mkfs.ext4 -q -F %s && mkdir -p %s && mount %s %s' % (dev, mnt, dev, mnt))
    try:
        assert ssh(lab, 'pdb1', '%s %s/before' % (write, mnt), check=False).returncode == 0

        array('fence', 'pdb1', 'spare1')
        proc = ssh(lab, 'pdb1', '%s %s/during' % (write, mnt), check=False)
        assert proc.returncode == 5, proc.stdout  # Input/output error, through the file system
        assert b'Input/output error' in proc.stdout
        # reads still allowed (a block the file system did not touch: a direct read
        # of a block with a failed write in the page cache reports that failure)
        assert len(raw_read(lab, 'pdb1', 'spare1', 500000)) == 4096
        assert raw_write(lab, 'pdb1', 'spare1', 100000, bytes(4096), check=False).returncode == 5

        array('unfence', 'pdb1', 'spare1')
        # the file system saw write errors: recover it as after a real fence
        ssh(lab, 'pdb1', 'umount %s; e2fsck -fy %s >/dev/null; mount %s %s' % (mnt, dev, dev, mnt), check=False)
        assert ssh(lab, 'pdb1', '%s %s/after' % (write, mnt), check=False).returncode == 0
        ssh(lab, 'pdb1', 'umount %s' % mnt)

        # the fence is the array's: it outlives the host
        array('fence', 'pdb1', 'spare1')
        playbook('-e', 'lab_state=fault', '-e', 'lab_fault_host=pdb1', '-e', 'lab_fault_action=poweroff')
        assert ssh(lab, 'pdb1', 'true', check=False, timeout=20).returncode != 0
        assert json.loads(array('status', 'spare1').stdout)['fenced'] == ['pdb1']
        playbook('-e', 'lab_state=fault', '-e', 'lab_fault_host=pdb1', '-e', 'lab_fault_action=restore')
        assert raw_write(lab, 'pdb1', 'spare1', 100000, bytes(4096), check=False).returncode == 5
        array('unfence', 'pdb1', 'spare1')
        assert raw_write(lab, 'pdb1', 'spare1', 100000, bytes(4096)).returncode == 0
    finally:
        array('unfence', 'pdb1', 'spare1', check=False)
        ssh(lab, 'pdb1', 'umount %s' % mnt, check=False)


def test_isolate_cuts_the_network_and_restore_brings_it_back(lab):
    playbook('-e', 'lab_state=fault', '-e', 'lab_fault_host=pdb3', '-e', 'lab_fault_action=isolate')
    try:
        assert ssh(lab, 'pdb3', 'true', check=False, timeout=20).returncode != 0
        state = json.loads(STATE.read_text())
        assert state['hosts']['pdb3']['running'] and state['hosts']['pdb3']['isolated']
    finally:
        playbook('-e', 'lab_state=fault', '-e', 'lab_fault_host=pdb3', '-e', 'lab_fault_action=restore')
    assert ssh(lab, 'pdb3', 'systemctl is-system-running', check=False).stdout.strip() in (b'running', b'degraded')


def leftovers():
    """What of the lab is still on the machine (empty when it is down)."""
    found = []
    if Path('/sys/class/net/' + BRIDGE).exists():
        found.append('link ' + BRIDGE)
    losetup = subprocess.run(['losetup', '-a'], capture_output=True, text=True, check=True).stdout
    found += [line for line in losetup.splitlines() if str(STATE_DIR) in line]
    with open('/proc/self/mountinfo', encoding='utf-8') as handle:
        found += [line for line in handle if 'labarray' in line or str(STATE_DIR) in line]
    for table in ('filter', 'nat'):
        rules = subprocess.run(['iptables', '-t', table, '-S'], capture_output=True, text=True, check=True).stdout
        found += [rule for rule in rules.splitlines() if SUBNET in rule or BRIDGE in rule]
    if (STATE_DIR / 'hosts').exists() or STATE.exists():
        found.append('state in ' + str(STATE_DIR))
    return found


@pytest.mark.skipif(os.environ.get('POLARDB_LAB_TEST_ABSENT') != '1',
                    reason='tears the lab down: set POLARDB_LAB_TEST_ABSENT=1')
def test_absent_leaves_nothing_behind():
    if os.geteuid() != 0 or shutil.which('iptables') is None:
        pytest.skip('needs root and iptables')
    playbook('-e', 'lab_state=absent')
    assert leftovers() == []
    assert KEY.exists()  # the key is kept: hosts of the next lab accept it
