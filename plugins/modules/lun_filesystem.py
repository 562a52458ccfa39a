#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lun_filesystem
short_description: Put a file system on a LUN, refusing LUNs that hold anything else
version_added: 0.1.0
description:
  - Creates an xfs or ext4 file system with the owner O(label) on a blank LUN.
  - A LUN that already has a file system of this O(fstype) and O(label) is ours - no change,
    and it is grown online to the size of the device when it is mounted and the device grew.
  - Anything else - another file system or label, a partition table, an LVM or RAID signature,
    non-zero bytes where blkid finds nothing - fails before anything is written, and the
    message says what was found. O(force=true) discards it (C(wipefs -a), then mkfs).
  - Why a new module - M(community.general.filesystem) accepts any existing file system of the
    same type as its own and does not look for partition tables or unknown data, so it cannot
    tell a LUN this cluster owns from a LUN someone else's data lives on.
  - Mounting is left to M(ansible.posix.mount).
author:
  - polardb.stack developers (!UNKNOWN)
options:
  device:
    description:
      - The LUN, normally RV(polardb.stack.lun_info#module:lun.device).
    type: path
    required: true
  fstype:
    description:
      - File system to create.
    type: str
    choices: [xfs, ext4]
    default: xfs
  label:
    description:
      - The owner label - C(pdb-) and the first 8 hex digits of the SHA-1 of the cluster name.
        A file system with this label and O(fstype) is this cluster's.
      - Printable ASCII without blanks, at most 12 characters for xfs and 16 for ext4.
    type: str
    required: true
  force:
    description:
      - Discard whatever the LUN holds (C(wipefs -a)) and create the file system.
      - Even with V(true) a LUN that is mounted or held by another device is not touched.
    type: bool
    default: false
  grow:
    description:
      - Grow our file system online to the size of the device when it is mounted and the device is
        larger by more than 16 MiB (C(xfs_growfs) for xfs, C(resize2fs) for ext4).
    type: bool
    default: true
  mountpoint:
    description:
      - Where the file system is mounted, for the online grow of xfs. Found in C(/proc/self/mountinfo)
        when omitted; when given it must be one of the places the device is mounted.
    type: path
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - C(before) and C(after) hold C(fstype), C(label) and C(size_bytes) of the file system.
requirements:
  - blkid and wipefs (util-linux) on the host
  - xfsprogs for xfs, e2fsprogs for ext4
notes:
  - Runs as root. The device is probed with C(blkid -p) and its first MiB is read, with this host's
    cached pages of the device dropped first, since other hosts may have written the LUN.
  - Without O(force), C(mkfs.xfs) runs without C(-f), so it refuses existing signatures as a second
    guard. C(mkfs.ext4) has no such guard when not run from a terminal; the probe is the guard.
seealso:
  - module: polardb.stack.lun_info
  - module: ansible.posix.mount
"""

EXAMPLES = r"""
- name: Find the cluster LUN
  polardb.stack.lun_info:
    wwid: "{{ polardb_lun_wwid }}"
  register: lun

- name: Create the cluster's file system (refuses a LUN that holds anything else)
  polardb.stack.lun_filesystem:
    device: "{{ lun.lun.device }}"
    fstype: xfs
    label: "pdb-{{ (cluster | hash('sha1'))[:8] }}"

- name: Take over a LUN whose old contents are known to be disposable
  polardb.stack.lun_filesystem:
    device: /dev/disk/by-id/wwn-0x600140512345678900000000000000a1
    label: pdb-1a2b3c4d
    force: true

- name: Grow the mounted file system after the LUN was grown on the array
  polardb.stack.lun_filesystem:
    device: "{{ lun.lun.device }}"
    label: pdb-1a2b3c4d
    mountpoint: /srv/polardb/demo
"""

RETURN = r"""
filesystem:
  description: The file system on the device (in check mode, what it would be).
  returned: success
  type: dict
  contains:
    device:
      description: The device, as given.
      type: str
      sample: /dev/disk/by-id/wwn-0x600140512345678900000000000000a1
    fstype:
      description: File system type.
      type: str
      sample: xfs
    label:
      description: File system label.
      type: str
      sample: pdb-1a2b3c4d
    uuid:
      description: File system UUID; V(null) in check mode when it would be created.
      type: str
      sample: 26db3892-164d-422e-b0c5-4a1980f9ffa9
    size_bytes:
      description: Bytes the file system spans; the device size in check mode when it would be created or grown.
      type: int
      sample: 2147483648
    device_size_bytes:
      description: Size of the device in bytes.
      type: int
      sample: 2147483648
created:
  description: Whether the file system was (in check mode, would be) created.
  returned: success
  type: bool
  sample: true
grown:
  description: Whether the file system was (in check mode, would be) grown.
  returned: success
  type: bool
  sample: false
executed_commands:
  description: Every command run on the host, probes included; none that write in check mode.
  returned: success
  type: list
  elements: str
  sample: ["/usr/sbin/blkid -p -o export /dev/loop3", "/usr/sbin/mkfs.xfs -L pdb-1a2b3c4d /dev/loop3"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.filesystem import FSTYPES, ensure_filesystem
from ansible_collections.polardb.stack.plugins.module_utils.lun import HostFiles
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            device=dict(type='path', required=True),
            fstype=dict(type='str', default='xfs', choices=list(FSTYPES)),
            label=dict(type='str', required=True),
            force=dict(type='bool', default=False),
            grow=dict(type='bool', default=True),
            mountpoint=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    runner = CommandRunner(module)
    result = fail_on_error(module, ensure_filesystem, runner, HostFiles(), check_mode=module.check_mode,
                           **module.params)
    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(executed_commands=runner.executed, **result)


if __name__ == '__main__':
    main()
