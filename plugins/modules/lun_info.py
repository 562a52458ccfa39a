#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lun_info
short_description: Find a SAN LUN by its WWID on a host and report what it holds
version_added: 0.1.0
description:
  - Resolves a WWID to a block device, preferring a dm-multipath map over a single path, and
    reports the device's size, paths, holders, mount points and the signatures on it.
  - Looks at C(/dev/mapper/3<wwid>), C(/dev/mapper/<wwid>), C(/dev/disk/by-id/dm-uuid-mpath-3<wwid>),
    the map that C(multipath -ll) names for the WWID, then C(/dev/disk/by-id/wwn-0x<wwid>) and
    C(/dev/disk/by-id/scsi-3<wwid>).
  - Fails, naming the WWID, the host and every path it looked at, when no device has that WWID.
  - Why a new module - no existing module resolves a WWID to a device across udev and
    dm-multipath and reports whether the LUN already holds data.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  wwid:
    description:
      - The LUN's WWID. Accepted as printed by the array or the tools, in any case
        (V(600140512345678900000000000000a1), V(0x6001405…), the C(scsi_id) / multipath
        form V(36001405…)), and returned normalised.
    type: str
    required: true
  multipath:
    description:
      - V(auto) uses a multipath map of the WWID when there is one, else a single path.
      - V(yes) fails unless there is a multipath map; V(no) looks at single paths only.
    type: str
    choices: [auto, 'yes', 'no']
    default: auto
  rescan:
    description:
      - Ask every SCSI host to scan for new LUNs (C(echo '- - -' > /sys/class/scsi_host/host*/scan))
        before looking, then wait for udev. A host without SCSI hosts has nothing to scan.
      - This is done in check mode too - it changes no data and discovery needs it.
    type: bool
    default: false
  resize:
    description:
      - After the array grew the LUN - every SCSI path of it re-reads its capacity
        (C(echo 1 > /sys/class/block/<path>/device/rescan)), then a multipath map takes the new size
        (C(multipathd resize map <map>)), before the size is read. A device without a SCSI device
        (a loop device, an NVMe namespace) needs nothing. RV(lun.rescanned) names what was rescanned.
      - This is done in check mode too - it changes no data.
    type: bool
    default: false
    version_added: 0.2.0
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
requirements:
  - blkid (util-linux) on the host
  - multipath (multipath-tools) for path states, when the LUN is multipathed
notes:
  - Runs as root - it reads the first MiB of the device to tell a blank LUN from one with data.
seealso:
  - module: polardb.stack.lun_filesystem
"""

EXAMPLES = r"""
- name: Find the cluster LUN
  polardb.stack.lun_info:
    wwid: "{{ polardb_lun_wwid }}"
    rescan: true
  register: lun

- name: Stop when the LUN holds data that is not this cluster's
  ansible.builtin.assert:
    that: not lun.lun.has_data or lun.lun.signature.label == polardb_fs_label
    fail_msg: "{{ lun.lun.device }} holds {{ lun.lun.signature }}"
"""

RETURN = r"""
lun:
  description: The device found for the WWID and what it holds.
  returned: success
  type: dict
  contains:
    wwid:
      description: The WWID, normalised (lower case, no C(0x), no NAA designator C(3)).
      type: str
      sample: 600140512345678900000000000000a1
    device:
      description: The stable path to use for the LUN (a multipath map's path when there is one).
      type: str
      sample: /dev/disk/by-id/wwn-0x600140512345678900000000000000a1
    real_device:
      description: The kernel's name of the device.
      type: str
      sample: /dev/loop3
    multipath:
      description: Whether RV(lun.device) is a dm-multipath map.
      type: bool
      sample: false
    multipath_map:
      description: The map's name, dm device and, from C(multipath -ll), vendor, product, size, features,
        hardware handler and write protection; V(null) without multipath.
      type: dict
      sample: {name: mpatha, sysfs: dm-0, vendor: NETAPP, product: LUN C-Mode, size: 100G,
               features: "3 queue_if_no_path pg_init_retries 50", hwhandler: "1 alua", wp: rw}
    paths:
      description:
        - The paths of a multipath map from C(multipath -ll) - C(device) (V(null) when its node is gone),
          C(state) (device-mapper's V(active) or V(failed)), C(checker), C(online), C(hcil), C(dev_t)
          and the C(group_status) of its path group.
        - Without C(multipath -ll) output only C(device) is known and C(state) is V(null). Empty without multipath.
      type: list
      elements: dict
      sample: [{device: sdb, state: active, checker: ready, online: running, hcil: "1:0:0:1",
                dev_t: "8:16", group_status: active}]
    size_bytes:
      description: Size of the device in bytes.
      type: int
      sample: 2147483648
    read_only:
      description: Whether the kernel has the device read-only.
      type: bool
      sample: false
    holders:
      description: Devices stacked on it (C(/sys/class/block/X/holders)).
      type: list
      elements: str
      sample: []
    mountpoints:
      description: Where the device is mounted in the host's mount namespace.
      type: list
      elements: str
      sample: [/srv/polardb/demo]
    signature:
      description:
        - What C(blkid -p) finds - C(type), C(label), C(uuid), C(usage), C(pttype), C(ptuuid);
          C(ambivalent=true) when it finds several file systems at once. Empty when it finds nothing.
      type: dict
      sample: {type: xfs, label: pdb-1a2b3c4d, uuid: 26db3892-164d-422e-b0c5-4a1980f9ffa9,
               usage: filesystem, pttype: null, ptuuid: null}
    has_data:
      description: Any signature, or a non-zero byte in the first MiB.
      type: bool
      sample: false
    rescanned:
      description: With O(resize=true), the path devices and the multipath map that re-read their capacity.
      type: list
      elements: str
      returned: with O(resize=true)
      sample: [sdb, sdc, mpatha]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.lun import HostFiles, MULTIPATH_CHOICES, find_lun
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            wwid=dict(type='str', required=True),
            multipath=dict(type='str', default='auto', choices=list(MULTIPATH_CHOICES)),
            rescan=dict(type='bool', default=False),
            resize=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    runner = CommandRunner(module)
    lun = fail_on_error(module, find_lun, runner, HostFiles(), module.params['wwid'],
                        multipath=module.params['multipath'], rescan=module.params['rescan'],
                        resize=module.params['resize'])
    module.exit_json(changed=False, lun=lun)


if __name__ == '__main__':
    main()
