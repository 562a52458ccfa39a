# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file system on a LUN: may this device be formatted, mkfs, online grow.

The rule: a device is formatted only when it is blank (no signature blkid knows,
only zeros in the first MiB), or when the caller said ``force``. A file system
with our fstype and label is ours and left alone (grown when asked). Everything
else is refused before anything is written, and the refusal says what was found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import lun

FSTYPES = ('xfs', 'ext4')
# mkfs.xfs takes 12 characters, mke2fs 16.
LABEL_MAX = dict(xfs=12, ext4=16)
# mkfs and growfs leave a tail smaller than an allocation group (xfs) or a block
# group's overhead (ext4) unused; growing for less than this would be attempted,
# and "changed", on every run.
GROW_THRESHOLD = 16 * lun.MIB
TOOLS = {'wipefs': 'util-linux', 'mkfs.xfs': 'xfsprogs', 'xfs_info': 'xfsprogs', 'xfs_growfs': 'xfsprogs',
         'mkfs.ext4': 'e2fsprogs', 'dumpe2fs': 'e2fsprogs', 'resize2fs': 'e2fsprogs'}


def _tool(runner, name):
    path = runner.which(name)
    if not path:
        raise PolarDBError('%s is not installed on this host (package %s)' % (name, TOOLS.get(name, name)))
    return path


def validate(fstype, label):
    if fstype not in FSTYPES:
        raise PolarDBError('fstype must be one of %s, not %r' % (', '.join(FSTYPES), fstype))
    # Blanks would come back escaped from blkid and quoted in fstab; the owner
    # label never needs them.
    if not label or not re.match(r'^[!-~]+$', label):
        raise PolarDBError('label %r must be non-empty printable ASCII without blanks' % (label,), label=label)
    if len(label) > LABEL_MAX[fstype]:
        raise PolarDBError('label %r is %d characters long; %s labels hold at most %d'
                           % (label, len(label), fstype, LABEL_MAX[fstype]), label=label)


def _article(word):
    # "an xfs", "an ext4", "an LVM2_member"; "a gpt", "a btrfs"
    return 'an' if word[0] in 'aeiouxAEIOUFHLMNRSX' else 'a'


def describe(contents):
    """What a device holds, for people: 'an ext4 file system labelled 'x' (uuid …)'."""
    sig = contents['signature']
    found = []
    if sig.get('ambivalent'):
        found.append('several file system signatures at once (blkid: ambivalent result; `wipefs <device>` lists them)')
    elif sig.get('type'):
        kind = 'file system' if sig.get('usage') in (None, 'filesystem') else '%s signature' % sig['usage']
        what = '%s %s %s' % (_article(sig['type']), sig['type'], kind)
        what += " labelled '%s'" % sig['label'] if sig.get('label') else ' without a label'
        if sig.get('uuid'):
            what += ' (uuid %s)' % sig['uuid']
        found.append(what)
    if sig.get('pttype'):
        found.append('a %s partition table%s' % (sig['pttype'], ' (id %s)' % sig['ptuuid'] if sig.get('ptuuid') else ''))
    if not found and contents.get('nonzero_offset') is not None:
        found.append('data no signature matches (a non-zero byte at offset %d of the first MiB)'
                     % contents['nonzero_offset'])
    return ' and '.join(found) or 'nothing'


def is_ours(signature, fstype, label):
    return (signature.get('type') == fstype and signature.get('label') == label
            and not signature.get('pttype') and not signature.get('ambivalent'))


# --- sizes ----------------------------------------------------------------------------------

def parse_xfs_info(text):
    m = re.search(r'^data\s*=.*?\bbsize=(\d+)\s+blocks=(\d+)', text or '', re.M)
    if not m:
        raise PolarDBError('cannot read the data section size from xfs_info output', stdout=text)
    return int(m.group(1)) * int(m.group(2))


def parse_dumpe2fs(text):
    count = re.search(r'^Block count:\s+(\d+)', text or '', re.M)
    size = re.search(r'^Block size:\s+(\d+)', text or '', re.M)
    if not (count and size):
        raise PolarDBError('cannot read block count and size from dumpe2fs -h output', stdout=text)
    return int(count.group(1)) * int(size.group(1))


def filesystem_size(runner, fstype, device, mountpoint=None):
    """Bytes the file system spans (not the device)."""
    if fstype == 'xfs':
        # xfs_info takes the device only when the fs is not mounted (xfsprogs >= 5).
        return parse_xfs_info(runner.run([_tool(runner, 'xfs_info'), mountpoint or device]).stdout)
    return parse_dumpe2fs(runner.run([_tool(runner, 'dumpe2fs'), '-h', device]).stdout)


def mounted(runner, host, found):
    """For a LUN described by lun.find_lun, the xfs or ext4 file system mounted
    from it: {mountpoint (the first), root (owner and mode of its root
    directory), size_bytes, grow_needed (it spans less of the device than
    ensure_filesystem leaves alone)}; the last two None when its size cannot be
    read. None when none is mounted."""
    fstype = (found.get('signature') or {}).get('type')
    if fstype not in FSTYPES or not found.get('mountpoints'):
        return None
    mountpoint = found['mountpoints'][0]
    out = {'mountpoint': mountpoint, 'root': host.owner_mode(mountpoint), 'size_bytes': None, 'grow_needed': None}
    try:
        out['size_bytes'] = filesystem_size(runner, fstype, found['device'], mountpoint)
    except PolarDBError:
        return out
    out['grow_needed'] = found['size_bytes'] - out['size_bytes'] > GROW_THRESHOLD
    return out


# --- commands ---------------------------------------------------------------------------------

def format_commands(runner, fstype, label, device, discard):
    """wipefs + mkfs argv lists. Without ``discard`` mkfs.xfs keeps its own refusal
    of existing signatures as a second guard; mke2fs has none when stdin is not a
    terminal (checked with e2fsprogs 1.47), so for ext4 our probe is the guard."""
    cmds = []
    if discard:
        cmds.append([_tool(runner, 'wipefs'), '-a', device])
    if fstype == 'xfs':
        cmds.append([_tool(runner, 'mkfs.xfs')] + (['-f'] if discard else []) + ['-L', label, device])
    else:
        cmds.append([_tool(runner, 'mkfs.ext4'), '-q'] + (['-F'] if discard else []) + ['-L', label, device])
    return cmds


def grow_command(runner, fstype, device, mountpoint):
    if fstype == 'xfs':
        return [_tool(runner, 'xfs_growfs'), mountpoint]
    return [_tool(runner, 'resize2fs'), device]


def _in_use(host, blk):
    """Why writing to the whole device would pull it from under someone: mounts and
    holders of the device and of its partitions."""
    uses = []
    for dev in [blk] + lun.partitions(host, blk):
        name = '' if dev is blk else ' (partition %s)' % dev['name']
        uses.extend('mounted at %s%s' % (m, name) for m in lun.mountpoints(host, dev))
        uses.extend('held by %s%s' % (h, name) for h in lun.holders(host, dev))
    return uses


# --- the module's one call ------------------------------------------------------------------

def ensure_filesystem(runner, host, device, label, fstype='xfs', force=False, grow=True,
                      mountpoint=None, check_mode=False):
    """Make ``device`` carry our file system. Returns changed, created, grown,
    filesystem, diff, warnings (the module adds executed_commands)."""
    validate(fstype, label)
    blk = lun.block_device(host, device)
    contents = lun.probe_contents(runner, host, device)
    sig = contents['signature']
    dev_size = lun.device_size(host, blk)
    before = dict(fstype=sig.get('type'), label=sig.get('label'), size_bytes=None)
    result = dict(changed=False, created=False, grown=False, warnings=[])
    uuid = sig.get('uuid')

    if is_ours(sig, fstype, label):
        mounts = lun.mountpoints(host, blk)
        fs_size = before['size_bytes'] = filesystem_size(runner, fstype, device, mounts[0] if mounts else None)
        if grow:
            fs_size = _grow(runner, host, blk, fstype, device, fs_size, dev_size, mountpoint, check_mode, result)
    else:
        if contents['has_data'] and not force:
            hint = ''
            if sig.get('label') == label and sig.get('type') != fstype:
                hint = " It carries this cluster's label but is not %s." % fstype
            raise PolarDBError(
                'LUN %s already holds %s; refusing to format it.%s Set force: true to discard its contents.'
                % (device, describe(contents), hint),
                device=device, found=sig, nonzero_offset=contents['nonzero_offset'])
        uses = _in_use(host, blk)
        if uses:
            raise PolarDBError('LUN %s is in use (%s); refusing to format it%s.'
                               % (device, ', '.join(uses), ' even with force: true' if force else ''),
                               device=device, in_use=uses)
        if lun.read_only(host, blk):
            raise PolarDBError('LUN %s is read-only on %s; cannot format it.' % (device, host.hostname()),
                               device=device)
        result.update(changed=True, created=True)
        fs_size, uuid = dev_size, None
        if not check_mode:
            fs_size, uuid = _format(runner, host, fstype, label, device, discard=contents['has_data'])

    result['filesystem'] = dict(device=device, fstype=fstype, label=label, uuid=uuid,
                                size_bytes=fs_size, device_size_bytes=dev_size)
    result['diff'] = dict(before=before, after=dict(fstype=fstype, label=label, size_bytes=fs_size))
    return result


def _format(runner, host, fstype, label, device, discard):
    for argv in format_commands(runner, fstype, label, device, discard):
        # stdin is a pipe, never a terminal: mkfs cannot stop to ask (and "n" if it did).
        runner.run(argv, data='n')
    after = lun.probe_contents(runner, host, device)
    if not is_ours(after['signature'], fstype, label):
        raise PolarDBError('mkfs.%s on %s finished, yet blkid now finds %s' % (fstype, device, describe(after)),
                           device=device, found=after['signature'])
    return filesystem_size(runner, fstype, device), after['signature'].get('uuid')


def _mounted_at(host, blk, mountpoint):
    mounts = lun.mountpoints(host, blk)
    if mountpoint:
        if mounts and mountpoint.rstrip('/') not in [m.rstrip('/') for m in mounts]:
            raise PolarDBError('%s is mounted at %s, not at %s' % ('/dev/' + blk['name'], ', '.join(mounts), mountpoint),
                               mountpoints=mounts)
        return mountpoint if mounts else None
    return mounts[0] if mounts else None


def _grow(runner, host, blk, fstype, device, fs_size, dev_size, mountpoint, check_mode, result):
    if dev_size - fs_size <= GROW_THRESHOLD:
        return fs_size
    mounted_at = _mounted_at(host, blk, mountpoint)
    if not mounted_at:
        result['warnings'].append(
            'the file system on %s spans %d of the device\'s %d bytes but is not mounted: '
            'it is grown online, after it is mounted' % (device, fs_size, dev_size))
        return fs_size
    result.update(changed=True, grown=True)
    if check_mode:
        return dev_size
    runner.run(grow_command(runner, fstype, device, mounted_at))
    new_size = filesystem_size(runner, fstype, device, mounted_at)
    if new_size <= fs_size:
        result.update(changed=False, grown=False)
        result['warnings'].append('growing the file system on %s left it at %d bytes' % (device, new_size))
    return new_size
