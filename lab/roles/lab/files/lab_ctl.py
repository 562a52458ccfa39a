# Copyright: polardb.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab-ctl: process and device plumbing of the polardb.stack lab.

The lab role writes the desired lab to CONFIG (JSON) and calls one
subcommand per step; each prints one JSON object with ``changed`` so the
role reports honestly.  Steps converge from whatever a killed session left
behind: dead nspawn PIDs, a FUSE mount without its daemon, loop devices on
deleted or stale paths.

  plan                   role variables (stdin) -> the lab configuration
  rootfs                 each host has its copy of the image and its own files
  array                  the SAN array (FUSE daemon) is up and mounted
  luns                   backing files exist (grown, pre-formatted) and each
                         host has one loop device per mapped LUN
  hosts                  every host's systemd-nspawn runs with the wanted flags
  wait                   every host answers ssh and is running/degraded
  poweroff|isolate|restore HOST   fault injection
  down                   stop hosts (by PID), detach loops, stop the array
  state                  print the lab state (also kept in STATE_DIR/state.json)

Containers are ended by the PIDs recorded when they were started (checked
against the process start time), never by name.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_CONFIG = '/var/lib/polardb-stack-lab/config.json'


class LabError(Exception):
    pass


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def run(argv, check=True):
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError('%s failed (%d): %s' % (shlex.join(argv), proc.returncode, proc.stderr.strip()))
    return proc


def load_json(path, default=None):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return default


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=os.path.dirname(path))
    with os.fdopen(fd, 'w', encoding='utf-8') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')
    os.rename(tmp, path)


def proc_start_time(pid):
    """Start time (clock ticks since boot) of a live, non-zombie PID, else None."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None
    if fields[0] in ('Z', 'X'):
        return None
    return int(fields[19])


def alive(record):
    """A recorded {pid, start} still names the same live process."""
    if not record or not record.get('pid'):
        return False
    start = proc_start_time(record['pid'])
    return start is not None and start == record.get('start')


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid), encoding='utf-8') as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


def pidns_init(pid):
    """True if PID is the init (PID 1) of a PID namespace below ours."""
    try:
        with open('/proc/%d/status' % pid, encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('NSpid:'):
                    fields = line.split()[1:]
                    return len(fields) > 1 and fields[-1] == '1'
    except (FileNotFoundError, ProcessLookupError):
        pass
    return False


def inits_of(rootfs):
    """Live container inits whose root directory is ROOTFS (same device and
    inode): finds a host's init even when its nspawn died and left it behind."""
    try:
        st = os.stat(rootfs)
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            root = os.stat('/proc/%d/root' % pid)
        except OSError:
            continue
        if (root.st_dev, root.st_ino) == (st.st_dev, st.st_ino) and pidns_init(pid):
            start = proc_start_time(pid)
            if start is not None:
                found.append({'pid': pid, 'start': start})
    return found


def kill(record, sig=signal.SIGKILL):
    if alive(record):
        try:
            os.kill(record['pid'], sig)
        except ProcessLookupError:
            pass


def wait_dead(records, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(r) for r in records):
            return True
        time.sleep(0.05)
    return not any(alive(r) for r in records)


def mountinfo():
    """Mount points (unescaped) -> file system type."""
    mounts = {}
    with open('/proc/self/mountinfo', encoding='utf-8') as handle:
        for line in handle:
            left, right = line.split(' - ', 1)
            point = left.split()[4].replace('\\040', ' ')
            mounts[point] = right.split()[0]
    return mounts


def loop_devices():
    """/dev/loopN -> backing file (as the kernel names it)."""
    out = {}
    for name in sorted(os.listdir('/sys/block')):
        if not name.startswith('loop'):
            continue
        try:
            with open('/sys/block/%s/loop/backing_file' % name, encoding='utf-8') as handle:
                out['/dev/' + name] = handle.read().rstrip('\n')
        except (FileNotFoundError, OSError):
            continue
    return out


def link_exists(name):
    return os.path.exists('/sys/class/net/%s' % name)


# --------------------------------------------------------------------------
# the plan: role variables -> the full lab configuration
# --------------------------------------------------------------------------

UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def parse_size(size):
    text = str(size).strip().upper().removesuffix('IB').removesuffix('B')
    unit = text[-1] if text and text[-1] in UNITS else ''
    try:
        return int(float(text[:len(text) - len(unit)]) * UNITS[unit])
    except ValueError:
        raise LabError('invalid LUN size %r' % size) from None


def wwid_for(name):
    """NAA-6 style (32 hex): 6 + the LIO OUI 001405 + 25 hex derived from the name."""
    return '6001405' + hashlib.sha1(('polardb-stack-lab/' + name).encode()).hexdigest()[:25]


def plan(spec):
    """Expand the role's variables (hosts by count, LUNs by layout)."""
    network = ipaddress.ip_network(spec['subnet'])
    names = ['%s%d' % (spec['host_prefix'], i) for i in range(1, int(spec['host_count']) + 1)]
    # machine_prefix: the machine's name for nspawn and its veth (vb-<machine>), so a
    # second lab on the same machine can use the same host names without collisions
    hosts = [{'name': n, 'machine': spec.get('machine_prefix', '') + n,
              'ip': str(network.network_address + int(spec['ip_offset']) + i), 'luns': []}
             for i, n in enumerate(names, start=1)]
    by_name = {h['name']: h for h in hosts}
    luns = []
    for entry in spec['luns']:
        if entry.get('hosts') == 'each':
            # zoned: all -> <name><i> belongs to host i but is mapped to every host, as a
            # SAN zones a cluster's LUNs to all its hosts (a survivor can fence a dead owner)
            zoned = names if entry.get('zoned') == 'all' else None
            expanded = [dict(entry, name='%s%d' % (entry['name'], i), hosts=zoned or [n])
                        for i, n in enumerate(names, start=1)]
        else:
            expanded = [entry]
        for lun in expanded:
            mapped = names if lun.get('hosts') == 'all' else list(lun.get('hosts') or [])
            unknown = [h for h in mapped if h not in by_name]
            if unknown:
                raise LabError('LUN %s is mapped to unknown hosts %s' % (lun['name'], unknown))
            wwid = str(lun.get('wwid') or wwid_for(lun['name'])).lower()
            luns.append({'name': lun['name'], 'bytes': parse_size(lun['size']), 'hosts': mapped, 'wwid': wwid,
                         'preformat': lun.get('preformat') or None,
                         'file': os.path.join(spec['state_dir'], 'luns', lun['name'] + '.img')})
            for host in mapped:
                by_name[host]['luns'].append(lun['name'])
    seen = set()
    for lun in luns:
        if lun['name'] in seen or lun['wwid'] in seen:
            raise LabError('duplicate LUN name or WWID: %s' % lun['name'])
        seen.update((lun['name'], lun['wwid']))
    config = {k: spec[k] for k in ('state_dir', 'bridge', 'bridge_address', 'subnet', 'apt_archives', 'ssh_key', 'image')}
    config.update({
        'prefix': network.prefixlen,
        'hosts': hosts,
        'luns': luns,
        'array': {
            'python': os.path.join(spec['array_venv'], 'bin', 'python'),
            'bin': os.path.join(spec['state_dir'], 'lib', 'lab_array.py'),
            'mount': os.path.join(spec['state_dir'], 'array', 'mnt'),
            'config': os.path.join(spec['state_dir'], 'array', 'config.json'),
            'state': os.path.join(spec['state_dir'], 'array', 'reservations.json'),
            'listen': spec.get('array_listen') or '',
        },
    })
    # what the array daemon reads: who is who, which file serves which LUN to whom
    config['array_config'] = {
        'hosts': {h['name']: h['ip'] for h in hosts},
        'luns': {lun['name']: {'file': lun['file'], 'hosts': lun['hosts'], 'wwid': lun['wwid']} for lun in luns},
    }
    return config


# --------------------------------------------------------------------------
# the lab
# --------------------------------------------------------------------------

class Lab:
    def __init__(self, config_path, inline=None):
        cfg = json.loads(inline) if inline else load_json(config_path)
        if cfg is None:
            raise LabError('no lab configuration at %s (run the lab role)' % config_path)
        self.cfg = cfg
        self.state_dir = cfg['state_dir']
        self.array = cfg['array']
        self.hosts = {h['name']: h for h in cfg['hosts']}
        self.luns = {lun['name']: lun for lun in cfg['luns']}
        self.changes = []

    # ---- paths and records ------------------------------------------------
    def host_dir(self, name):
        return os.path.join(self.state_dir, 'hosts', name)

    def veth(self, name):
        """The machine side of a host's veth: nspawn names it vb-<machine name>."""
        return 'vb-' + self.hosts.get(name, {}).get('machine', name)

    def host_record(self, name):
        return load_json(os.path.join(self.host_dir(name), 'nspawn.json'), {}) or {}

    def save_host_record(self, name, record):
        write_json(os.path.join(self.host_dir(name), 'nspawn.json'), record)

    def array_record(self):
        return load_json(os.path.join(self.state_dir, 'array', 'serve.json'), {}) or {}

    def known_hosts(self):
        """Hosts in the configuration plus any with a record (a shrunk lab)."""
        names = set(self.hosts)
        base = os.path.join(self.state_dir, 'hosts')
        if os.path.isdir(base):
            names.update(os.listdir(base))
        return sorted(names)

    def changed(self, what):
        self.changes.append(what)

    # ---- hosts' root file systems -------------------------------------------
    def ensure_rootfs(self):
        """Each host boots from its own copy of the image (kept until absent)."""
        missing = [n for n in sorted(self.hosts) if not os.path.isdir(os.path.join(self.host_dir(n), 'rootfs'))]
        errors = []

        def copy(name):
            hdir = self.host_dir(name)
            os.makedirs(hdir, exist_ok=True)
            tmp = os.path.join(hdir, 'rootfs.tmp')
            run(['rm', '-rf', tmp])
            proc = run(['cp', '-a', '--reflink=auto', self.cfg['image'], tmp], check=False)
            if proc.returncode != 0:
                errors.append('copy for %s: %s' % (name, proc.stderr.strip()))
                return
            os.rename(tmp, os.path.join(hdir, 'rootfs'))

        # in parallel: three copies of ~320 MB take the time of one or two
        threads = [threading.Thread(target=copy, args=(n,)) for n in missing]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise LabError('; '.join(errors))
        for name in missing:
            self.changed('copied the image for %s' % name)
        with open(self.cfg['ssh_key'] + '.pub', encoding='utf-8') as handle:
            pubkey = handle.read()
        etc_hosts = ''.join('%s\t%s\n' % (h['ip'], h['name']) for h in self.cfg['hosts'])
        # the lab's fence command (storage_fence driver command), next to this file
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lab_fence.py'), encoding='utf-8') as handle:
            lab_fence = '#!/usr/bin/python3\n' + handle.read()
        for name, host in sorted(self.hosts.items()):
            root = os.path.join(self.host_dir(name), 'rootfs')
            files = {
                # sorts before Debian's 80-container-host0.network, which would
                # otherwise win and leave host0 with a link-local address only
                'etc/systemd/network/10-lab.network': (
                    '# polardb.stack lab\n[Match]\nName=host0\n\n[Network]\nAddress=%s/%d\nGateway=%s\n'
                    'LinkLocalAddressing=no\nIPv6AcceptRA=no\n'
                    % (host['ip'], self.cfg['prefix'], self.cfg['bridge_address'])),
                'etc/hostname': name + '\n',
                'etc/machine-id': hashlib.md5(('polardb-stack-lab/' + name).encode()).hexdigest() + '\n',
                'etc/hosts': ('127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n'
                              '\n# lab hosts\n%s' % (name, etc_hosts)),
                'root/.ssh/authorized_keys': pubkey,
            }
            for rel, content in files.items():
                if self.write_file(os.path.join(root, rel), content):
                    self.changed('%s: wrote /%s' % (name, rel))
            if self.write_file(os.path.join(root, 'usr/local/sbin/lab-fence'), lab_fence, mode=0o755):
                self.changed('%s: wrote /usr/local/sbin/lab-fence' % name)
            if not os.path.exists(os.path.join(root, 'etc/ssh/ssh_host_ed25519_key')):
                run(['ssh-keygen', '-A', '-f', root])  # host keys of its own
                self.changed('%s: generated ssh host keys' % name)

    @staticmethod
    def write_file(path, content, mode=None):
        mode = mode or (0o600 if '/.ssh/' in path else 0o644)
        try:
            with open(path, encoding='utf-8') as handle:
                if handle.read() == content and stat.S_IMODE(os.stat(path).st_mode) == mode:
                    return False
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + '.tmp', 'w', encoding='utf-8') as handle:
            handle.write(content)
        os.chmod(path + '.tmp', mode)
        os.rename(path + '.tmp', path)
        return True

    # ---- the array --------------------------------------------------------
    def array_healthy(self):
        mount = self.array['mount']
        if mountinfo().get(mount, '') != 'fuse.labarray':
            return False
        try:
            os.listdir(mount)
        except OSError:  # ENOTCONN: the daemon died under its mount
            return False
        return alive(self.array_record().get('serve'))

    def ensure_array(self):
        if self.array_healthy():
            return
        # A dead or half-dead array: whatever sits on it must go first.
        for name in self.known_hosts():
            self.stop_host(name, graceful=False)
        self.detach_loops(lambda path: True)
        self.stop_array()
        os.makedirs(self.array['mount'], exist_ok=True)
        log = open(os.path.join(self.state_dir, 'array', 'array.log'), 'ab')  # pylint: disable=consider-using-with
        argv = [self.array['python'], self.array['bin'], '--config', self.array['config'],
                '--state', self.array['state'], 'serve', self.array['mount']]
        if self.array.get('listen'):
            argv += ['--listen', self.array['listen']]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                start_new_session=True, close_fds=True)
        log.close()
        record = {'pid': proc.pid, 'start': proc_start_time(proc.pid), 'argv': argv}
        write_json(os.path.join(self.state_dir, 'array', 'serve.json'), {'serve': record})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError('lab-array exited (%s); see %s/array/array.log' % (proc.returncode, self.state_dir))
            if self.array_healthy():
                self.changed('array started (pid %d)' % proc.pid)
                return
            time.sleep(0.1)
        raise LabError('lab-array did not mount %s within 15 s' % self.array['mount'])

    def stop_array(self):
        mount = self.array['mount']
        if mount in mountinfo():
            # lazy: loop devices or a dead daemon must not keep us from converging
            if run(['umount', mount], check=False).returncode != 0:
                run(['umount', '-l', mount])
            self.changed('array unmounted')
        record = self.array_record().get('serve')
        if alive(record):
            kill(record, signal.SIGTERM)
            if not wait_dead([record], 5):
                kill(record)
                wait_dead([record], 5)
            self.changed('array stopped')

    # ---- LUNs -------------------------------------------------------------
    def lun_path(self, host, lun):
        return os.path.join(self.array['mount'], host, lun)

    def ours(self, backing):
        return backing.startswith(self.state_dir.rstrip('/') + '/')

    def detach_loops(self, predicate):
        for dev, backing in loop_devices().items():
            if self.ours(backing) and predicate(backing):
                run(['losetup', '-d', dev], check=False)
                self.changed('detached %s (%s)' % (dev, backing))

    def ensure_lun_files(self):
        for lun in self.luns.values():
            path = lun['file']
            size = int(lun['bytes'])
            if not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = path + '.tmp'
                run(['truncate', '-s', '0', tmp])
                run(['truncate', '-s', str(size), tmp])
                if lun.get('preformat'):
                    self.preformat(tmp, lun)
                os.rename(tmp, path)
                self.changed('created LUN %s (%d bytes)' % (lun['name'], size))
            elif os.path.getsize(path) < size:
                # growing a LUN: the file, then each loop device re-reads it
                run(['truncate', '-s', str(size), path])
                for dev, backing in loop_devices().items():
                    if backing.endswith('/' + lun['name']) and self.ours(backing):
                        run(['losetup', '-c', dev])
                self.changed('grew LUN %s to %d bytes' % (lun['name'], size))

    @staticmethod
    def preformat(path, lun):
        """A LUN that already holds a file system with a file on it."""
        with tempfile.TemporaryDirectory() as content:
            with open(os.path.join(content, 'README-lab.txt'), 'w', encoding='utf-8') as handle:
                handle.write('LUN %s was pre-formatted by the polardb.stack lab: foreign data.\n' % lun['name'])
            fstype = lun['preformat']
            if fstype.startswith('ext'):
                run(['mkfs.%s' % fstype, '-q', '-F', '-L', 'lab-' + lun['name'], '-d', content, path])
            else:
                run(['mkfs.%s' % fstype, '-q', '-f', '-L', 'lab-' + lun['name'][:8], path])

    def ensure_loops(self):
        wanted = {self.lun_path(h, lun['name']) for lun in self.luns.values() for h in lun['hosts']}
        # stale: deleted paths, paths no longer mapped, or a second loop on one path
        seen = set()
        for dev, backing in loop_devices().items():
            if not self.ours(backing):
                continue
            if backing not in wanted or backing in seen:
                run(['losetup', '-d', dev], check=False)
                self.changed('detached stale %s (%s)' % (dev, backing))
            seen.add(backing)
        have = {backing: dev for dev, backing in loop_devices().items() if self.ours(backing)}
        loops = {}
        for lun in self.luns.values():
            for host in lun['hosts']:
                path = self.lun_path(host, lun['name'])
                dev = have.get(path)
                if dev is None:
                    dev = run(['losetup', '-f', '--show', path]).stdout.strip()
                    self.changed('attached %s to %s' % (path, dev))
                loops.setdefault(host, {})[lun['name']] = dev
        return loops

    def current_loops(self):
        loops = {}
        for dev, backing in loop_devices().items():
            if backing.startswith(self.array['mount'].rstrip('/') + '/'):
                host, lun = backing[len(self.array['mount']):].strip('/').split('/', 1)
                loops.setdefault(host, {})[lun] = dev
        return loops

    # ---- hosts ------------------------------------------------------------
    def nspawn_argv(self, name, loops):
        host = self.hosts[name]
        argv = ['systemd-nspawn', '--quiet',
                '--directory=' + os.path.join(self.host_dir(name), 'rootfs'),
                '--machine=' + host.get('machine', name),
                '--hostname=' + name,
                # no systemd/dbus on the machine: no registration, no scope
                '--register=no', '--keep-unit',
                '--boot', '--console=read-only',
                '--network-bridge=' + self.cfg['bridge'],
                '--resolv-conf=copy-host',
                '--bind=%s:/var/cache/apt/archives' % os.path.join(self.cfg['apt_archives'], host.get('machine', name))]
        for lun in sorted(host['luns']):
            dev = loops.get(name, {}).get(lun)
            if dev is None:
                raise LabError('no loop device for LUN %s on %s' % (lun, name))
            argv.append('--bind=%s:/dev/disk/by-id/wwn-0x%s' % (dev, self.luns[lun]['wwid']))
        return argv

    def running(self, name):
        record = self.host_record(name)
        return alive(record.get('nspawn')) and alive(record.get('init'))

    def stop_host(self, name, graceful=True):
        """Stop a host by its recorded PIDs; graceful = ask its init to halt."""
        record = self.host_record(name)
        init = record.get('init')
        # an init whose nspawn was killed lives on, orphaned: find it by its root
        orphans = [p for p in inits_of(os.path.join(self.host_dir(name), 'rootfs')) if p != init]
        procs = [p for p in (init, record.get('nspawn')) if alive(p)] + orphans
        if not procs:
            return False
        if graceful and alive(init) and alive(record.get('nspawn')):
            kill(init, signal.SIGRTMIN + 4)  # systemd: poweroff
            wait_dead([record.get('nspawn')], 20)
        # power cut: the container's init dies and with it its PID namespace
        for proc in [init] + orphans:
            kill(proc)
        wait_dead([init] + orphans, 5)
        if not wait_dead([record.get('nspawn')], 5):
            kill(record.get('nspawn'))
            wait_dead([record.get('nspawn')], 5)
        self.changed('stopped %s' % name)
        return True

    def start_host(self, name, argv):
        hdir = self.host_dir(name)
        os.makedirs(os.path.join(self.cfg['apt_archives'], self.hosts[name].get('machine', name)), exist_ok=True)
        # a veth left by a container that died uncleanly would block the new one
        if link_exists(self.veth(name)):
            run(['ip', 'link', 'del', self.veth(name)], check=False)
        log = open(os.path.join(hdir, 'console.log'), 'ab')  # pylint: disable=consider-using-with
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                start_new_session=True, close_fds=True)
        log.close()
        nspawn = {'pid': proc.pid, 'start': proc_start_time(proc.pid)}
        init = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and init is None:
            if proc.poll() is not None:
                raise LabError('systemd-nspawn for %s exited (%s); see %s/console.log' % (name, proc.returncode, hdir))
            # nspawn forks an outer child that clones the container's init
            # (PID 1 in a new PID namespace): record that one
            kids = children(proc.pid)
            for pid in kids + [g for k in kids for g in children(k)]:
                if pidns_init(pid):
                    init = {'pid': pid, 'start': proc_start_time(pid)}
                    break
            else:
                time.sleep(0.02)
        if init is None:
            raise LabError('container %s did not start its init within 15 s' % name)
        self.save_host_record(name, {'nspawn': nspawn, 'init': init, 'argv': argv, 'isolated': False,
                                     'started': time.time()})
        self.changed('started %s (nspawn pid %d)' % (name, proc.pid))

    def ensure_hosts(self, loops):
        for name in sorted(self.hosts):
            argv = self.nspawn_argv(name, loops)
            record = self.host_record(name)
            if self.running(name):
                if record.get('argv') == argv:
                    if record.get('isolated') or not self.attached(name):
                        self.reconnect(name)
                    continue
                self.stop_host(name)  # the LUN layout changed: reboot with the new one
            else:
                self.stop_host(name, graceful=False)  # half-dead leftovers
            self.start_host(name, argv)
        for name in self.known_hosts():
            if name not in self.hosts:  # the lab shrank
                self.stop_host(name, graceful=False)

    # ---- network of a host ------------------------------------------------
    def attached(self, name):
        veth = self.veth(name)
        master = os.path.realpath('/sys/class/net/%s/master' % veth)
        try:
            with open('/sys/class/net/%s/operstate' % veth, encoding='utf-8') as handle:
                oper = handle.read().strip()
        except FileNotFoundError:
            return False
        return os.path.basename(master) == self.cfg['bridge'] and oper != 'down'

    def reconnect(self, name):
        veth = self.veth(name)
        run(['ip', 'link', 'set', 'dev', veth, 'master', self.cfg['bridge']])
        run(['ip', 'link', 'set', 'dev', veth, 'up'])
        record = self.host_record(name)
        record['isolated'] = False
        self.save_host_record(name, record)
        self.changed('reconnected %s' % name)

    def isolate(self, name):
        if not self.running(name):
            raise LabError('%s is not running' % name)
        record = self.host_record(name)
        if record.get('isolated') and not self.attached(name):
            return
        # the machine side of its veth goes down: the host keeps running, cut off
        run(['ip', 'link', 'set', 'dev', self.veth(name), 'down'])
        run(['ip', 'link', 'set', 'dev', self.veth(name), 'nomaster'])
        record['isolated'] = True
        self.save_host_record(name, record)
        self.changed('isolated %s' % name)

    def poweroff(self, name):
        # a power cut: SIGKILL the container's init (its PID namespace dies
        # with it), then its nspawn; loop devices and the array stay as they are
        if self.stop_host(name, graceful=False):
            self.changed('powered off %s' % name)

    def restore(self, name):
        if self.running(name):
            record = self.host_record(name)
            if record.get('isolated') or not self.attached(name):
                self.reconnect(name)
            return
        loops = self.current_loops()
        self.stop_host(name, graceful=False)
        self.start_host(name, self.nspawn_argv(name, loops))

    # ---- readiness ----------------------------------------------------------
    def wait_ready(self, names, timeout):
        results = {}
        started = time.monotonic()

        def probe(name):
            ip = self.hosts[name]['ip']
            ssh = ['ssh', '-i', self.cfg['ssh_key'], '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2',
                   '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                   '-o', 'LogLevel=ERROR', 'root@' + ip, 'systemctl', 'is-system-running']
            deadline = started + timeout
            last = ''
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection((ip, 22), timeout=1):
                        pass
                except OSError:
                    time.sleep(0.2)
                    continue
                proc = subprocess.run(ssh, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
                last = proc.stdout.strip() or proc.stderr.strip()
                if last in ('running', 'degraded'):
                    boot = self.host_record(name).get('started')
                    results[name] = {'state': last, 'seconds': round(time.monotonic() - started, 1),
                                     'since_boot': round(time.time() - boot, 1) if boot else None}
                    return
                time.sleep(0.3)
            results[name] = {'state': 'timeout', 'last': last, 'seconds': round(time.monotonic() - started, 1)}

        threads = [threading.Thread(target=probe, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = {n: r for n, r in results.items() if r['state'] == 'timeout'}
        if failed:
            raise LabError('hosts not ready after %d s: %s' % (timeout, json.dumps(failed, sort_keys=True)))
        return {'hosts': results, 'seconds': round(time.monotonic() - started, 1)}

    # ---- teardown -----------------------------------------------------------
    def down(self):
        for name in self.known_hosts():
            self.stop_host(name, graceful=False)
            if link_exists(self.veth(name)):
                run(['ip', 'link', 'del', self.veth(name)], check=False)
        self.detach_loops(lambda path: True)
        self.stop_array()

    # ---- state --------------------------------------------------------------
    def state(self):
        loops = self.current_loops()
        hosts = {}
        for name in sorted(self.hosts):
            record = self.host_record(name)
            hosts[name] = {
                'ip': self.hosts[name]['ip'],
                'running': self.running(name),
                'isolated': bool(record.get('isolated')),
                'pid': (record.get('nspawn') or {}).get('pid'),
                'init_pid': (record.get('init') or {}).get('pid'),
                'rootfs': os.path.join(self.host_dir(name), 'rootfs'),
                'luns': {lun: {'wwid': self.luns[lun]['wwid'], 'loop': loops.get(name, {}).get(lun),
                               'device': '/dev/disk/by-id/wwn-0x' + self.luns[lun]['wwid']}
                         for lun in sorted(self.hosts[name]['luns'])},
            }
        array = self.array_record().get('serve') or {}
        return {
            'bridge': self.cfg['bridge'], 'bridge_address': self.cfg['bridge_address'], 'subnet': self.cfg['subnet'],
            'array': {'pid': array.get('pid'), 'running': self.array_healthy(), 'mount': self.array['mount'],
                      'listen': self.array.get('listen'), 'state': self.array['state']},
            'hosts': hosts,
            'luns': {name: {'wwid': lun['wwid'], 'bytes': lun['bytes'], 'file': lun['file'],
                            'hosts': lun['hosts'], 'preformat': lun.get('preformat')}
                     for name, lun in sorted(self.luns.items())},
        }

    def save_state(self):
        write_json(os.path.join(self.state_dir, 'state.json'), self.state())


def main(argv=None):
    parser = argparse.ArgumentParser(prog='lab-ctl', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--config-json', default='', help='the configuration itself (teardown needs no file)')
    parser.add_argument('--timeout', type=int, default=120, help='seconds to wait for hosts (wait, restore)')
    parser.add_argument('command', choices=('plan', 'rootfs', 'array', 'luns', 'hosts', 'wait', 'poweroff', 'isolate', 'restore',
                                            'down', 'state'))
    parser.add_argument('host', nargs='?')
    args = parser.parse_args(argv)
    result = {}
    if args.command == 'plan':
        # stdin: the role's variables as JSON; stdout: the lab configuration
        try:
            print(json.dumps({'changed': False, 'config': plan(json.load(sys.stdin))}, sort_keys=True))
            return 0
        except (LabError, KeyError, ValueError) as exc:
            print(json.dumps({'failed': True, 'msg': 'plan: %s' % exc}))
            return 1
    try:
        lab = Lab(args.config, args.config_json)
        if args.command in ('poweroff', 'isolate', 'restore') and args.host not in lab.hosts:
            raise LabError('unknown host %r (hosts: %s)' % (args.host, ', '.join(sorted(lab.hosts))))
        if args.command == 'rootfs':
            lab.ensure_rootfs()
        elif args.command == 'array':
            lab.ensure_array()
        elif args.command == 'luns':
            lab.ensure_lun_files()
            result['loops'] = lab.ensure_loops()
        elif args.command == 'hosts':
            lab.ensure_hosts(lab.current_loops())
            lab.save_state()
        elif args.command == 'wait':
            result.update(lab.wait_ready(sorted(lab.hosts), args.timeout))
        elif args.command == 'poweroff':
            lab.poweroff(args.host)
            lab.save_state()
        elif args.command == 'isolate':
            lab.isolate(args.host)
            lab.save_state()
        elif args.command == 'restore':
            lab.restore(args.host)
            lab.save_state()
            result.update(lab.wait_ready([args.host], args.timeout))
        elif args.command == 'down':
            lab.down()
            prefix = lab.state_dir.rstrip('/') + '/'
            result['mounts_left'] = sorted(m for m in mountinfo() if m.startswith(prefix))
        elif args.command == 'state':
            result['state'] = lab.state()
    except LabError as exc:
        print(json.dumps({'failed': True, 'msg': str(exc)}))
        return 1
    result.update({'changed': bool(lab.changes), 'changes': lab.changes})
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
