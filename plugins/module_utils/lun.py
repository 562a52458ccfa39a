# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A LUN on one host: found by WWID (udev by-id links, dm-multipath, SCSI rescan),
and what it is and holds (size, paths, holders, mounts, signatures, data).

Everything the host is asked goes through two adapters: ``runner`` for commands
(see runner.py) and ``HostFiles`` for /dev, /sys and /proc, so unit tests run
this file against recorded command output and a tmp_path tree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import glob
import os
import re
import socket
import stat

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

MIB = 1024 * 1024
MULTIPATH_CHOICES = ('auto', 'yes', 'no')


class HostFiles(object):
    """The host's /dev, /sys and /proc. ``root`` is '/' except in unit tests."""

    def __init__(self, root='/'):
        self.root = os.path.realpath(root)

    def _p(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _unroot(self, real):
        if self.root == '/':
            return real
        return '/' + os.path.relpath(real, self.root)

    def exists(self, path):
        return os.path.exists(self._p(path))

    def realpath(self, path):
        return self._unroot(os.path.realpath(self._p(path)))

    def read(self, path):
        with open(self._p(path)) as f:
            return f.read()

    def listdir(self, path):
        try:
            return sorted(os.listdir(self._p(path)))
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return []
            raise

    def glob(self, pattern):
        return sorted(self._unroot(p) for p in glob.glob(self._p(pattern)))

    def write(self, path, data):
        with open(self._p(path), 'w') as f:
            f.write(data)

    def owner_mode(self, path):
        """{uid, gid, mode ('0755')} of ``path``; None when it cannot be read."""
        try:
            st = os.stat(self._p(path))
        except OSError:
            return None
        return {'uid': st.st_uid, 'gid': st.st_gid, 'mode': '%04o' % stat.S_IMODE(st.st_mode)}

    def devno(self, path):
        """(major, minor) of a block device node, None when ``path`` is not one."""
        try:
            st = os.stat(self._p(path))
        except OSError:
            return None
        if not stat.S_ISBLK(st.st_mode):
            return None
        return os.major(st.st_rdev), os.minor(st.st_rdev)

    def forget_cached(self, path):
        # A LUN is shared: another host may have written it since this host last
        # read it. Dropping our clean cached pages makes blkid and read_head see
        # what is on the array, not a stale copy.
        fd = os.open(self._p(path), os.O_RDONLY)
        try:
            if hasattr(os, 'posix_fadvise'):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def read_head(self, path, size):
        chunks, left = [], size
        with open(self._p(path), 'rb') as f:
            while left > 0:
                chunk = f.read(min(left, MIB))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        return b''.join(chunks)

    def hostname(self):
        return socket.gethostname()


# --- WWID and where udev / multipath put it -------------------------------------------

def normalise_wwid(wwid):
    """``0x6001…``, ``36001…`` (scsi_id / multipath form), ``naa.6001…``, any case → ``6001…``."""
    w = (wwid or '').strip().lower()
    for prefix in ('0x', 'naa.'):
        if w.startswith(prefix):
            w = w[len(prefix):]
    # scsi_id prints NAA identifiers behind a "3" (its designator type), which makes
    # them one digit longer than the 16 or 32 hex digits of the NAA name itself.
    if len(w) in (17, 33) and w.startswith('3'):
        w = w[1:]
    if not w or not re.match(r'^[0-9a-f]+$', w):
        raise PolarDBError("'%s' is not a WWID: expected hex digits, optionally behind 0x or the "
                           "NAA designator 3 (as in /dev/disk/by-id/wwn-0x… or scsi-3…)" % wwid, wwid=wwid)
    return w


def multipath_candidates(wwid):
    return ['/dev/mapper/3' + wwid,
            '/dev/mapper/' + wwid,
            '/dev/disk/by-id/dm-uuid-mpath-3' + wwid]


def single_path_candidates(wwid):
    return ['/dev/disk/by-id/wwn-0x' + wwid,
            '/dev/disk/by-id/scsi-3' + wwid]


# --- multipath -ll -----------------------------------------------------------------------

# Line shapes from libmultipath print.c (0.9): the map line is "%n (%w) %d %s", or
# "%n %d %s" when the map is named by its WWID; then PRINT_MAP_PROPS, then per path
# group "|-+- " / "`-+- " + PRINT_PG_INDENT and per path "| |- " … + PRINT_PATH_INDENT
# ("%i %d %D %t %T %o": hcil, dev, dev_t, dm state, checker state, online state).
# Columns are padded, and the checker state may contain a blank ("i/o pending").
_MAP_RE = re.compile(r'^(?P<name>[^\s|]+)(?: \((?P<wwid>[^)\s]+)\))? (?P<sysfs>dm-\d+) (?P<vpr>.*?)\s*$')
_PG_RE = re.compile(r"^[|`]-\+- policy='(?P<policy>[^']*)' prio=(?P<prio>-?\d+) status=(?P<status>\S+)")
_PATH_RE = re.compile(r'^[| ] [|`]- (?P<hcil>\S+)\s+(?P<dev>\S+)\s+(?P<dev_t>\S+)\s+'
                      r'(?P<dm_state>active|failed|undef)\s+(?P<checker>\S+(?: \S+)?)\s+(?P<online>\S+)\s*$')
_PROP_RES = dict(size=re.compile(r"\bsize=(\S+)"), features=re.compile(r"\bfeatures='([^']*)'"),
                 hwhandler=re.compile(r"\bhwhandler='([^']*)'"), wp=re.compile(r"\bwp=(\S+)"))


def parse_multipath_ll(text):
    """Maps of ``multipath -ll`` output; lines that are not part of a map are ignored."""
    maps, current, group = [], None, None
    for line in (text or '').splitlines():
        m = _MAP_RE.match(line)
        if m and ' | ' not in line:
            vendor, _sep, product = m.group('vpr').partition(',')
            current = dict(name=m.group('name'), wwid=m.group('wwid') or m.group('name'),
                           sysfs=m.group('sysfs'), vendor=vendor, product=product,
                           size=None, features=None, hwhandler=None, wp=None, path_groups=[])
            maps.append(current)
            group = None
            continue
        if current is None:
            continue
        if line.startswith('size='):
            for key, rx in _PROP_RES.items():
                found = rx.search(line)
                current[key] = found.group(1) if found else None
            continue
        m = _PG_RE.match(line)
        if m:
            group = dict(policy=m.group('policy'), prio=int(m.group('prio')), status=m.group('status'), paths=[])
            current['path_groups'].append(group)
            continue
        m = _PATH_RE.match(line)
        if m and group is not None:
            dev = m.group('dev')
            group['paths'].append(dict(device=None if dev == '-' else dev, hcil=m.group('hcil'),
                                       dev_t=m.group('dev_t'), state=m.group('dm_state'),
                                       checker=m.group('checker'), online=m.group('online')))
    return maps


def multipath_paths(mpath):
    """Flat list of paths, each with the status of its path group."""
    paths = []
    for group in mpath['path_groups']:
        for p in group['paths']:
            p = dict(p)
            p['group_status'] = group['status']
            paths.append(p)
    return paths


def multipath_map(runner, wwid):
    """The map ``multipath -ll`` reports for ``wwid``, or None (also when multipath is not installed)."""
    tool = runner.which('multipath')
    if not tool:
        return None
    # Our own lookup decides: multipath exits non-zero when it has no such map or
    # no device-mapper, and both mean "no map" here.
    res = runner.run([tool, '-ll', '3' + wwid], check=False)
    for mpath in parse_multipath_ll(res.stdout):
        try:
            if normalise_wwid(mpath['wwid']) == wwid:
                return mpath
        except PolarDBError:
            continue
    return None


def rescan_scsi_hosts(runner, host):
    """Ask every SCSI host to scan for new LUNs; none (as in the lab) is not an error."""
    scanned = []
    for scan in host.glob('/sys/class/scsi_host/host*/scan'):
        try:
            host.write(scan, '- - -')
        except (IOError, OSError) as e:
            raise PolarDBError('SCSI rescan failed on %s: writing %s: %s' % (host.hostname(), scan, e),
                               path=scan)
        scanned.append(scan.split('/')[-2])
    udevadm = runner.which('udevadm') if scanned else None
    if udevadm:
        # New LUNs get their /dev/disk/by-id links from udev, after the scan returns.
        runner.run([udevadm, 'settle', '--timeout=30'], check=False)
    return scanned


# --- one block device: sysfs and mountinfo ----------------------------------------------

def block_device(host, path):
    """The kernel's view of ``path``: {devno, name, sysdir}. The node may be a bind mount
    (the lab presents LUNs that way) rather than a udev symlink, so the kernel name
    comes from the device number, not from the file name."""
    if not host.exists(path):
        raise PolarDBError('%s does not exist on %s' % (path, host.hostname()), device=path)
    devno = host.devno(path)
    if devno is None:
        raise PolarDBError('%s on %s is not a block device' % (path, host.hostname()), device=path)
    sysdir = '/sys/dev/block/%d:%d' % devno
    name = host.realpath(sysdir).rstrip('/').split('/')[-1]
    return dict(devno=devno, name=name, sysdir=sysdir)


def _sysfs_value(host, path, default=None):
    try:
        return host.read(path).strip()
    except (IOError, OSError):
        return default


def device_size(host, blk):
    return int(_sysfs_value(host, blk['sysdir'] + '/size', '0')) * 512


def read_only(host, blk):
    return _sysfs_value(host, blk['sysdir'] + '/ro', '0') == '1'


def holders(host, blk):
    return host.listdir(blk['sysdir'] + '/holders')


def partitions(host, blk):
    """Kernel partitions of the device (sub-directories with a ``partition`` file)."""
    found = []
    for entry in host.listdir(blk['sysdir']):
        sub = '%s/%s' % (blk['sysdir'], entry)
        if host.exists(sub + '/partition') and host.exists(sub + '/dev'):
            major, minor = _sysfs_value(host, sub + '/dev').split(':')
            found.append(dict(devno=(int(major), int(minor)), name=entry, sysdir=sub))
    return found


def _unescape_mountinfo(field):
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def mountpoints(host, blk):
    """Where the device is mounted in this mount namespace (/proc/self/mountinfo)."""
    want = '%d:%d' % blk['devno']
    found = []
    for line in _sysfs_value(host, '/proc/self/mountinfo', '').splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[2] == want:
            found.append(_unescape_mountinfo(fields[4]))
    return found


def multipath_dm(host, blk):
    """(dm name, dm uuid) when the device is a dm-multipath map, else None."""
    uuid = _sysfs_value(host, blk['sysdir'] + '/dm/uuid', '')
    if uuid.startswith('mpath-'):
        return _sysfs_value(host, blk['sysdir'] + '/dm/name'), uuid
    return None


# --- what the device holds ---------------------------------------------------------------

def parse_blkid_export(text):
    """``blkid -o export`` → dict; values escape blanks and specials with a backslash."""
    values = {}
    for line in (text or '').splitlines():
        key, sep, value = line.partition('=')
        if sep:
            values[key.strip()] = re.sub(r'\\(.)', r'\1', value)
    return values


def probe_signature(runner, device):
    """Signatures blkid finds with a low-level probe (-p: no cache, whole device)."""
    tool = runner.which('blkid')
    if not tool:
        raise PolarDBError('blkid (util-linux) is not installed: it is needed to look for existing data')
    res = runner.run([tool, '-p', '-o', 'export', device], check=False)
    if res.rc == 2:  # blkid: nothing found
        return {}
    if res.rc == 8:
        # Ambivalent: several file systems at once (a half-wiped LUN). Not ours, whatever they are.
        return dict(type=None, label=None, uuid=None, usage=None, pttype=None, ptuuid=None, ambivalent=True)
    if res.rc != 0:
        raise PolarDBError('blkid could not probe %s (rc=%d): %s' % (device, res.rc, (res.stderr or res.stdout).strip()),
                           rc=res.rc, stdout=res.stdout, stderr=res.stderr, device=device)
    values = parse_blkid_export(res.stdout)
    return dict(type=values.get('TYPE'), label=values.get('LABEL'), uuid=values.get('UUID'),
                usage=values.get('USAGE'), pttype=values.get('PTTYPE'), ptuuid=values.get('PTUUID'))


def first_nonzero_offset(data):
    stripped = data.lstrip(b'\0')
    return None if not stripped else len(data) - len(stripped)


def probe_contents(runner, host, device):
    """What ``device`` holds: {signature, has_data, nonzero_offset}. The one check both
    lun_info and lun_filesystem use before calling a device blank."""
    host.forget_cached(device)
    signature = probe_signature(runner, device)
    try:
        head = host.read_head(device, MIB)
    except (IOError, OSError) as e:
        raise PolarDBError('cannot read the first MiB of %s on %s: %s' % (device, host.hostname(), e), device=device)
    offset = first_nonzero_offset(head)
    return dict(signature=signature, has_data=bool(signature) or offset is not None, nonzero_offset=offset)


# --- lun_info ------------------------------------------------------------------------------

def _first_existing(host, candidates, looked):
    for path in candidates:
        if path not in looked:
            looked.append(path)
        if host.exists(path):
            return path
    return None


def _multipath_over(host, device):
    """A multipath map that holds ``device`` (a single path of it), as a /dev/mapper path."""
    blk = block_device(host, device)
    for holder in holders(host, blk):
        uuid = _sysfs_value(host, '/sys/class/block/%s/dm/uuid' % holder, '')
        name = _sysfs_value(host, '/sys/class/block/%s/dm/name' % holder)
        if uuid.startswith('mpath-') and name and host.exists('/dev/mapper/' + name):
            return '/dev/mapper/' + name
    return None


def _not_found(host, wwid, multipath, looked, mpath_tool, rescanned):
    where = host.hostname()
    if multipath == 'yes':
        msg = 'no multipath map for WWID %s on host %s' % (wwid, where)
    else:
        msg = 'no device with WWID %s on host %s' % (wwid, where)
    msg += ' (looked at %s' % ', '.join(looked)
    msg += '; multipath -ll has no map for it)' if mpath_tool else '; multipath is not installed)'
    if multipath == 'yes':
        single = [p for p in single_path_candidates(wwid) if host.exists(p)]
        if single:
            msg += '; a single-path device exists at %s: set multipath to auto or no to use it' % single[0]
    else:
        msg += '; is the LUN mapped to this host?'
        if not rescanned:
            msg += ' rescan: true scans the SCSI hosts first'
    return PolarDBError(msg, wwid=wwid, host=where, looked_at=looked)


def rescan_capacity(runner, host, blk, paths, map_name):
    """After the array grew a LUN: every SCSI path re-reads its capacity
    (``device/rescan``), then a multipath map takes the new size (``multipathd
    resize map``). A device without a SCSI device (a loop device; an NVMe
    namespace re-reads its own) needs nothing. Returns what was rescanned."""
    names = [p['device'] for p in paths if p.get('device')] or [blk['name']]
    done = []
    for name in names:
        rescan = '/sys/class/block/%s/device/rescan' % name
        if host.exists(rescan):
            try:
                host.write(rescan, '1')
            except (IOError, OSError) as e:
                raise PolarDBError('capacity rescan failed on %s: writing %s: %s' % (host.hostname(), rescan, e),
                                   path=rescan)
            done.append(name)
    if map_name:
        multipathd = runner.which('multipathd')
        if multipathd:
            runner.run([multipathd, 'resize', 'map', map_name])
            done.append(map_name)
    return done


def find_lun(runner, host, wwid, multipath='auto', rescan=False, resize=False):
    """Resolve ``wwid`` to a device and describe it (the ``lun`` of lun_info).
    ``resize``: re-read its capacity first (after the array grew it)."""
    if multipath not in MULTIPATH_CHOICES:
        raise PolarDBError('multipath must be one of %s, not %r' % (', '.join(MULTIPATH_CHOICES), multipath))
    wwid = normalise_wwid(wwid)
    if rescan:
        rescan_scsi_hosts(runner, host)

    looked, device, mpath = [], None, None
    if multipath != 'no':
        mpath = multipath_map(runner, wwid)
        candidates = multipath_candidates(wwid)
        if mpath:
            candidates.append('/dev/mapper/' + mpath['name'])
        device = _first_existing(host, candidates, looked)
    if device is None and multipath != 'yes':
        device = _first_existing(host, single_path_candidates(wwid), looked)
        if device is not None and multipath == 'auto':
            # The by-id names of a map can be missing (no udev in a container, an
            # alias): a map holding this path is still the device to use.
            device = _multipath_over(host, device) or device
    if device is None:
        raise _not_found(host, wwid, multipath, looked, runner.which('multipath'), rescan)

    blk = block_device(host, device)
    dm = multipath_dm(host, blk)
    if dm and mpath and mpath['sysfs'] == blk['name']:
        paths = multipath_paths(mpath)
    elif dm:
        # multipath -ll told us nothing (not installed, or another map): sysfs still
        # knows the path devices, not their states.
        paths = [dict(device=s, state=None) for s in host.listdir(blk['sysdir'] + '/slaves')]
    else:
        paths, mpath = [], None
    resized = rescan_capacity(runner, host, blk, paths, dm[0] if dm else None) if resize else None
    contents = probe_contents(runner, host, device)
    map_info = None
    if dm:
        map_info = dict(name=dm[0], sysfs=blk['name'])
        if mpath:
            map_info.update((k, mpath[k]) for k in ('vendor', 'product', 'size', 'features', 'hwhandler', 'wp'))
    found = dict(
        wwid=wwid,
        device=device,
        real_device='/dev/' + blk['name'],
        multipath=bool(dm),
        multipath_map=map_info,
        paths=paths,
        size_bytes=device_size(host, blk),
        read_only=read_only(host, blk),
        holders=holders(host, blk),
        mountpoints=mountpoints(host, blk),
        signature=contents['signature'],
        has_data=contents['has_data'],
    )
    if resize:
        found['rescanned'] = resized
    return found
