"""Fixtures for integration tests against the lab: real hosts, real engines,
real (lab) LUNs. Nothing here replaces an adapter."""
import os
import re
import subprocess
import time

import pytest
import yaml

from labtools import LAB_INVENTORY, LAB_PLAYBOOK, ROOT, VENV_BIN, Writer, lab_dsn, log_run


def _lab():
    if not os.path.exists(LAB_INVENTORY):
        pytest.skip('the lab is not up (no %s): run make lab-up' % LAB_INVENTORY)
    with open(LAB_INVENTORY) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='session')
def lab():
    """The lab's inventory as data: hosts with their addresses and LUN WWIDs."""
    return _lab()


@pytest.fixture
def writer(lab):
    """A client writing through the multi-host DSN for the whole test (stopped at its end)."""
    # one write every 20 ms (the benchmarks write every 5 ms): enough to catch a lost
    # write, and it leaves the CPU the lab shares with its array to the test
    w = Writer(lab_dsn(lab), pause=0.02).start()
    time.sleep(1.5)
    yield w
    w.stop()


@pytest.fixture(scope='session')
def lab_hosts(lab):
    return lab['all']['children']['lab_hosts']['hosts']


@pytest.fixture(scope='session')
def ssh(lab, lab_hosts):
    key = lab['all']['vars']['ansible_ssh_private_key_file']

    def run(host, command, check=True, timeout=120):
        address = lab_hosts[host]['ansible_host']
        proc = subprocess.run(
            ['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
             '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
             'root@' + address, command],
            capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, '%s: %s\n%s%s' % (host, command, proc.stdout, proc.stderr)
        return proc
    return run


RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)'
                   r'\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)', re.M)


class PlaybookRun(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.recap = {m.group(1): dict(zip(('ok', 'changed', 'unreachable', 'failed', 'skipped'),
                                           map(int, m.groups()[1:6])))
                      for m in RECAP.finditer(self.output)}

    def changed(self):
        return {h: r['changed'] for h, r in self.recap.items() if r['changed']}


@pytest.fixture(scope='session')
def playbook():
    def run(name, *extra_args, inventories=(), check=False, timeout=1200):
        """playbooks/<name>.yml, or the lab's playbook for name 'lab'."""
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_NOCOLOR='1', PATH=VENV_BIN + os.pathsep + os.environ['PATH'])
        path = LAB_PLAYBOOK if name == 'lab' else os.path.join(ROOT, 'playbooks', name + '.yml')
        argv = [os.path.join(VENV_BIN, 'ansible-playbook'), path, '-i', LAB_INVENTORY]
        for inv in inventories:
            argv += ['-i', str(inv)]
        if check:
            argv += ['--check', '--diff']
        started = time.monotonic()
        proc = subprocess.run(argv + list(extra_args), capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=timeout, check=False)
        # where a slow test spends its time (pytest shows it with the test's output)
        took = time.monotonic() - started
        print('playbook %s%s %s: rc=%d in %.1f s' % (name, ' --check' if check else '', ' '.join(extra_args),
                                                     proc.returncode, took))
        log_run(name, (['--check'] if check else []) + list(extra_args), proc.returncode, took)
        return PlaybookRun(proc)
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the engines' journal of every lab host: CI
    keeps no host, so this is the only place the engine's own reason survives."""
    outcome = yield
    report = outcome.get_result()
    if report.when != 'call' or not report.failed or not os.path.exists(LAB_INVENTORY):
        return
    lab_hosts = _lab()['all']['children']['lab_hosts']['hosts']
    key = _lab()['all']['vars']['ansible_ssh_private_key_file']
    for host, hv in sorted(lab_hosts.items()):
        try:
            proc = subprocess.run(
                ['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                 '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3',
                 'root@' + hv['ansible_host'],
                 "journalctl -u 'polardb@*' -n 15 --no-pager -o short-precise | grep -v 'Failed to kill control group'"],
                capture_output=True, text=True, timeout=20, check=False)
            text = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            text = '(no answer in 20 s)'
        report.sections.append(('engine journal of %s' % host, text))
