#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: node_info
short_description: What one node is - its LUN, its engine, its LUN's fence, its engine packages - in one run
version_added: 0.2.0
description:
  - Reads, on the host it runs on, any of - the LUN with a WWID (as M(polardb.stack.lun_info)), the
    engine instance of a data directory (as M(polardb.stack.instance_info)), who may write to a LUN
    (as M(polardb.stack.storage_fence) with O(polardb.stack.storage_fence#module:state=query)) and which of
    some packages dpkg has installed.
  - A section that cannot be read does not fail the module - its message is in RV(errors), so a
    preflight can name every problem of every host at once and no host leaves the play early.
  - Never changes anything.
  - Why a new module - each section is a module of its own, but every module run costs a host a few
    tenths of a second before it does anything. A run that needs all of them before its first change
    (create_cluster's preflight) asks once per host.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  lun:
    description:
      - Find the LUN with this WWID and report what it holds (the options of M(polardb.stack.lun_info)).
    type: dict
    suboptions:
      wwid:
        description: The LUN's WWID, in any of the forms M(polardb.stack.lun_info) accepts.
        type: str
        required: true
      multipath:
        description: V(auto) prefers a multipath map, V(yes) needs one, V(no) looks at single paths only.
        type: str
        choices: [auto, 'yes', 'no']
        default: auto
  instance:
    description:
      - Describe the engine instance of a data directory, running or not (the options of
        M(polardb.stack.instance_info)).
    type: dict
    suboptions:
      data_dir:
        description: The data directory of the local engine.
        type: path
        required: true
      bin_dir:
        description: Directory of the engine's programs.
        type: path
        default: /usr/lib/postgresql/15/bin
      owner:
        description: OS user that owns the data directory; C(psql) runs as this user (peer authentication).
        type: str
        default: postgres
      port:
        description: Port of the local engine; it names the engine's unix socket.
        type: int
        default: 5432
      socket_dir:
        description: Directory of the local engine's unix socket.
        type: path
        default: /var/run/postgresql
      service:
        description: The engine's systemd unit; its state is returned in C(unit) of RV(instance).
        type: str
  fence:
    description:
      - Read the persistent reservations of a LUN for this host (the options of
        M(polardb.stack.storage_fence) that a query uses).
    type: dict
    suboptions:
      wwid:
        description: The LUN's WWID.
        type: str
        required: true
      driver:
        description: How the LUN is fenced.
        type: str
        choices: [scsi3_pr, nvme, command]
        default: scsi3_pr
      cluster:
        description: The cluster; with O(fence.node) it derives this host's key.
        type: str
        required: true
      node:
        description: This node's name in the cluster.
        type: str
        required: true
      nodes:
        description: The other nodes of the cluster, to name the keys that are registered.
        type: list
        elements: str
        default: []
      command:
        description: The fence command as a list of arguments (O(fence.driver=command) only).
        type: list
        elements: str
      command_timeout:
        description: Seconds the fence command may take.
        type: int
        default: 60
  packages:
    description: Package names to look up in dpkg's database.
    type: list
    elements: str
    default: []
  ports:
    description: TCP ports to look for a listening socket on (any address, IPv4 or IPv6).
    type: list
    elements: int
    default: []
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.attributes.read_only
  - polardb.stack.operation_lock_read
notes:
  - Runs as root (it reads the LUN's first MiB and its reservations).
seealso:
  - module: polardb.stack.lun_info
  - module: polardb.stack.instance_info
  - module: polardb.stack.storage_fence
'''

EXAMPLES = r'''
- name: Read each node before changing anything
  polardb.stack.node_info:
    lun:
      wwid: "{{ polardb_lun_wwid }}"
    instance:
      data_dir: /srv/polardb/demo/data
      port: 5432
    fence:
      wwid: "{{ polardb_lun_wwid }}"
      cluster: demo
      node: "{{ inventory_hostname }}"
      nodes: "{{ groups['polardb_demo'] }}"
    packages: [postgresql-15, postgresql-client-15]
    ports: [5432]
  register: node

- name: Name what could not be read
  ansible.builtin.assert:
    that: node.errors | length == 0
    fail_msg: "{{ node.errors }}"
'''

RETURN = r'''
lun:
  description:
    - The LUN found for O(lun.wwid), as RV(polardb.stack.lun_info#module:lun) describes it, and C(filesystem) -
      the xfs or ext4 file system mounted from it - its C(mountpoint) (the first), the C(uid), C(gid) and C(mode)
      of its C(root) directory, its C(size_bytes) and whether it spans less of the LUN than
      M(polardb.stack.lun_filesystem) leaves alone (C(grow_needed); these two null when its size cannot be read);
      null when none is mounted.
  returned: when O(lun) is given and the LUN was found
  type: dict
  sample: {wwid: 600140512345678900000000000000a1, device: /dev/disk/by-id/wwn-0x600140512345678900000000000000a1,
           has_data: true, mountpoints: [/srv/polardb/demo], signature: {type: xfs},
           filesystem: {mountpoint: /srv/polardb/demo, root: {uid: 0, gid: 0, mode: "0755"}, size_bytes: 2147483648,
                        grow_needed: false}}
instance:
  description: The instance, as RV(polardb.stack.instance_info#module:instance) describes it.
  returned: when O(instance) is given and could be read
  type: dict
  sample: {initialized: true, running: true, role: primary, unit: {name: polardb@demo.service, enabled: true, active: true}}
fence:
  description: The LUN's reservations for this host, as RV(polardb.stack.storage_fence#module:fence) describes them.
  returned: when O(fence) is given and could be read
  type: dict
  sample: {driver: scsi3_pr, registrations: ["0x120534175508b10b"], this_host_registered: true}
packages:
  description: The version of each package of O(packages) that dpkg has installed; the others are left out.
  returned: always
  type: dict
  sample: {postgresql-15: 15.20-0+deb12u1}
listening:
  description: For each port of O(ports), whether a socket listens on it.
  returned: always
  type: dict
  sample: {"5432": true}
operation_lock:
  description:
    - This host's record of the lock, as M(polardb.stack.operation_lock) returns it with
      O(polardb.stack.operation_lock#module:state=query) - C(lock) (null when free), C(previous), C(lock_file),
      C(expired), C(expires_in), C(waited) (V(0)), C(renewed_while_waiting) (V(false)).
  returned: when O(operation_lock) is given and could be read
  type: dict
  sample: {lock: null, previous: null, lock_file: /var/lib/polardb-stack/locks/demo.json, expired: null,
           expires_in: null, waited: 0.0, renewed_while_waiting: false}
errors:
  description: Why a section could not be read, by section (V(lun), V(instance), V(fence), V(operation_lock)).
  returned: always
  type: dict
  sample: {lun: "No device with WWID 600140512345678900000000000000a1 on pdb1 ..."}
executed_commands:
  description: The command lines run.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils import filesystem
from ansible_collections.polardb.stack.plugins.module_utils.fencing import ensure_fence
from ansible_collections.polardb.stack.plugins.module_utils.instance import from_params, local_argument_spec
from ansible_collections.polardb.stack.plugins.module_utils.lun import MULTIPATH_CHOICES, HostFiles, find_lun
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import READ_ARGUMENT_SPEC, read_record
from ansible_collections.polardb.stack.plugins.module_utils.node_info import (
    installed_packages, listening_ports, read_sections, read_tables)
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner


def argument_spec():
    return dict(
        lun=dict(type='dict', options=dict(
            wwid=dict(type='str', required=True),
            multipath=dict(type='str', default='auto', choices=list(MULTIPATH_CHOICES)),
        )),
        instance=dict(type='dict', options=dict(local_argument_spec(), service=dict(type='str'))),
        fence=dict(type='dict', options=dict(
            wwid=dict(type='str', required=True),
            driver=dict(type='str', default='scsi3_pr', choices=['scsi3_pr', 'nvme', 'command']),
            cluster=dict(type='str', required=True),
            node=dict(type='str', required=True),
            nodes=dict(type='list', elements='str', default=[]),
            command=dict(type='list', elements='str'),
            command_timeout=dict(type='int', default=60),
        ), required_if=[('driver', 'command', ('command',))]),
        packages=dict(type='list', elements='str', default=[]),
        ports=dict(type='list', elements='int', default=[]),
        operation_lock=READ_ARGUMENT_SPEC,
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    runner = CommandRunner(module)
    host = HostFiles()
    params = module.params
    readers = {}
    if params['lun']:
        def read_lun():
            found = find_lun(runner, host, params['lun']['wwid'], multipath=params['lun']['multipath'])
            found['filesystem'] = filesystem.mounted(runner, host, found)
            return found
        readers['lun'] = read_lun
    if params['instance']:
        readers['instance'] = lambda: from_params(runner, params['instance']).info(params['instance']['service'])
    if params['fence']:
        readers['fence'] = lambda: ensure_fence(runner, host, state='query', check_mode=True, **params['fence'])['fence']
    if params['operation_lock']:
        readers['operation_lock'] = lambda: read_record(params['operation_lock'])
    found, errors = read_sections(readers)
    listening = listening_ports(read_tables()) if params['ports'] else set()
    module.exit_json(changed=False, packages=installed_packages(runner, params['packages']), errors=errors,
                     listening=dict((str(p), p in listening) for p in params['ports']),
                     executed_commands=runner.executed, **found)


if __name__ == '__main__':
    main()
