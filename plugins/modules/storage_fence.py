#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: storage_fence
short_description: Fence writes to a shared LUN with SCSI-3 or NVMe persistent reservations or a fence command
version_added: 0.1.0
description:
  - Makes the array itself refuse writes from every host but the writer of a shared LUN, as
    PolarDB Stack does - a persistent reservation of the type C(Write Exclusive - All Registrants)
    (SCSI type 7, NVMe reservation type 5) with one key per host.
  - 'The model: under that type every B(registered) host may write and every other host may only read,
    so only the writer is registered. Replicas stay unregistered (they read). Moving the writer is one
    step of the new writer - register its own key and preempt and abort the old writer''s key, which
    removes the old registration and aborts the old writer''s queued commands at the array, so its next
    write fails at once.'
  - 'O(state=writer) - this host becomes the only writer: registers its key, takes the reservation if
    there is none (or turns one of another type into type 7 / 5) and preempts and aborts every other
    registered key.'
  - 'O(state=fenced_out) - run on a survivor: O(victim) can no longer write. Registers this host, takes
    the reservation if there is none, then preempts and aborts the victim''s key. This host stays
    registered (the reservation lasts only while some host is registered), so it is the one writer
    afterwards; promote its engine, or run O(state=writer) on the host that will write. A victim that is
    not registered while a reservation is held is fenced already - no change.'
  - 'O(state=registered) - registers this host''s key only. Under the model this is for a LUN without a
    reservation (a host that will reserve later); it refuses to add a registrant beside others under a
    reservation that lets every registrant write, since that would be a second writer.'
  - O(state=released) - unregisters this host. The reservation goes with the last registrant, so after the
    writer releases, every host may write again (for a planned hand-over or when the cluster is destroyed).
  - O(state=query) - reads only.
  - Keys are derived from the cluster and node names (see O(key)), so every host knows every other host's key,
    and a re-run that finds the LUN as wanted changes nothing.
  - After every command the module reads the LUN again and decides the next one from what the LUN reports;
    the last read is the verification. When a command fails, a registration this run added is removed again
    (it would be a second writer) and the failure names what the device reports then.
  - Why a new module - no existing collection manages SCSI-3 or NVMe persistent reservations.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  wwid:
    description:
      - The LUN's WWID, found as M(polardb.stack.lun_info) finds it (a dm-multipath map wins over a single path).
      - For O(driver=nvme) give O(device).
    type: str
  device:
    description:
      - The device node instead of O(wwid) - a SCSI disk, a dm-multipath map (C(/dev/mapper/...)) or an NVMe
        namespace (C(/dev/nvmeXnY)).
    type: path
  driver:
    description:
      - V(scsi3_pr) - SCSI-3 persistent reservations with C(sg_persist) (sg3-utils) on a SCSI device or
        C(mpathpersist) (multipath-tools) on a dm-multipath map, which registers every path of the map.
      - V(nvme) - NVMe reservations with C(nvme) (nvme-cli 2.x) on a namespace. Registrations belong to the host,
        not to a path.
      - V(command) - the user's own fence command O(command), for storage that the other drivers do not speak (an
        array's API, a fence agent). The module calls it with one action at a time and reads its C(status) after each;
        see O(command) for the contract.
    type: str
    choices: [scsi3_pr, nvme, command]
    default: scsi3_pr
  command:
    description:
      - For O(driver=command) (required there, refused with the other drivers) - the fence command as a list of
        arguments, run without a shell, the first one an executable on the host (a path or a name in E(PATH)).
      - 'Placeholders in any argument are replaced for each call - C({action}), C({cluster}), C({node}) (this host),
        C({key}) (this host''s key, V(0x) and 16 hex digits), C({wwid}), C({device}), and for the C(fence) action
        C({victim}) and C({victim_key}) (empty for the other actions). The same values are in the environment as
        E(POLARDB_FENCE_ACTION), E(POLARDB_FENCE_NODE), and so on. An unknown placeholder is refused.'
      - 'The actions - C(status) (read only; exit 0 and print one JSON object C({"registrations": [...], "reserved":
        true|false}), each registration a key or a node name of the cluster; C(reserved) V(true) - only registered
        hosts may write, V(false) - every host may), C(register) (register C({key}) for C({node})), C(reserve) (only
        registered hosts may write from now on), C(fence) (C({victim_key}) is no longer registered and its writes in
        flight are aborted; reserves the LUN if it was not) and C(release) (C({node}) is no longer registered; the
        reservation goes with the last registration).'
      - 'Exit status of the changing actions - 0 done or nothing to do, 2 refused as a conflict (not registered, or
        another host holds the LUN), 3 action or LUN not supported, anything else failed. Messages on stderr are
        reported. Every action must be idempotent.'
      - The collection's documentation (C(docs/fencing.md)) has the full contract and an example.
    type: list
    elements: str
  command_timeout:
    description:
      - Seconds one call of O(command) may take before C(timeout) ends it (coreutils; without it on the host the
        command is not bounded).
    type: int
    default: 60
  state:
    description:
      - What the LUN should look like for this host, see the description.
    type: str
    choices: [writer, fenced_out, registered, released, query]
    default: query
  cluster:
    description:
      - The cluster's name, from which keys are derived together with node names.
      - Required unless O(key) is given; also needed to name O(victim) and O(nodes) by node name.
    type: str
  node:
    description:
      - This host's name in the cluster, for its key. Use the same name on every host (the inventory name),
        since other hosts derive this host's key from it as O(victim).
      - Defaults to the host's short host name.
    type: str
  key:
    description:
      - This host's reservation key, instead of the derived one - V(0x) and 1 to 16 hex digits, not zero.
      - The derived key is the first 8 bytes of C(sha1("<cluster>/<node>")), written V(0x) and 16 hex digits; in
        a playbook C("0x" ~ ((cluster ~ "/" ~ node) | hash("sha1"))[:16]).
    type: str
  victim:
    description:
      - For O(state=fenced_out) (required there) - the node to fence out, by name (its key is derived as this
        host's is, with O(cluster)) or by key (V(0x...)).
    type: str
  nodes:
    description:
      - The cluster's node names, so that RV(fence.registered_nodes) names the hosts whose keys are registered.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the LUN (PERSISTENT RESERVE IN / resv-report / the fence command's C(status)) and predicts the
        commands; no PR OUT command (no changing action of the fence command) runs.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Before and after - the registered keys and the reservation (key, type).
requirements:
  - sg_persist (sg3-utils) for a SCSI device, mpathpersist (multipath-tools) for a dm-multipath map, nvme (nvme-cli 2.x)
    for an NVMe namespace, the user's fence command for O(driver=command)
  - blkid (util-linux) when the LUN is given by O(wwid)
notes:
  - Runs as root.
  - 'With dm-multipath, mpathpersist only accepts keys multipathd knows: set C(reservation_key file) in the
    C(defaults) section of C(/etc/multipath.conf) and run C(multipathd reconfigure), so that registrations
    are kept in C(/etc/multipath/prkeys) and re-made on paths that come back.'
  - Registrations are not made to persist through a power loss of the array (no APTPL).
  - Under type 7 the standard makes the array report the reservation key as 0 (no single holder); some arrays
    report the key that reserved. Both are understood.
  - With O(driver=command) the type in RV(fence.reservation) is V(7) (only registered hosts write), whatever
    the command does to get there.
seealso:
  - module: polardb.stack.lun_info
"""

EXAMPLES = r"""
- name: Make this host the only writer of the cluster LUN (first RW, or a switchover target)
  polardb.stack.storage_fence:
    wwid: "{{ polardb_lun_wwid }}"
    cluster: "{{ cluster }}"
    node: "{{ inventory_hostname }}"
    state: writer

- name: From a survivor, fence the dead RW out before promoting a replica
  polardb.stack.storage_fence:
    wwid: "{{ polardb_lun_wwid }}"
    cluster: "{{ cluster }}"
    node: "{{ inventory_hostname }}"
    victim: "{{ polardb_old_rw }}"
    state: fenced_out

- name: Who may write? (read-only)
  polardb.stack.storage_fence:
    device: /dev/mapper/mpatha
    cluster: "{{ cluster }}"
    node: "{{ inventory_hostname }}"
    nodes: "{{ groups['polardb_' ~ cluster] }}"
  register: fence

- name: The same through the site's own fence command (driver command)
  polardb.stack.storage_fence:
    wwid: "{{ polardb_lun_wwid }}"
    driver: command
    command: [/usr/local/sbin/site-fence, "{action}", --lun, "{wwid}", --node, "{node}", --key, "{key}",
              --victim-key, "{victim_key}"]
    cluster: "{{ cluster }}"
    node: "{{ inventory_hostname }}"
    victim: "{{ polardb_old_rw }}"
    state: fenced_out

- name: Give the LUN free when the cluster is destroyed
  polardb.stack.storage_fence:
    device: /dev/nvme0n1
    driver: nvme
    cluster: "{{ cluster }}"
    node: "{{ inventory_hostname }}"
    state: released
"""

RETURN = r"""
fence:
  description: The LUN's persistent reservation state for this host (in check mode - as it is now).
  returned: success
  type: dict
  contains:
    driver:
      description: The driver used.
      type: str
      sample: scsi3_pr
    tool:
      description: The command that talked to the device (V(sg_persist), V(mpathpersist), V(nvme), or the name of
        the fence command).
      type: str
      sample: sg_persist
    device:
      description: The device node.
      type: str
      sample: /dev/mapper/mpatha
    key:
      description: This host's key, V(0x) and 16 hex digits.
      type: str
      sample: "0x120534175508b10b"
    registrations:
      description: The registered keys, each once (a map lists a key once per path), sorted.
      type: list
      elements: str
      sample: ["0x120534175508b10b"]
    reservation:
      description:
        - The reservation - C(key) (V(0x0000000000000000) under an all-registrants type on arrays that follow the
          standard), C(type) (the SCSI or NVMe code) and C(type_name); V(null) when there is none.
      type: dict
      sample: {key: "0x0000000000000000", type: 7, type_name: "Write Exclusive, all registrants"}
    generation:
      description: The PR generation the device reports (it counts PR OUT commands).
      type: int
      sample: 4
    writers:
      description:
        - The keys whose hosts may write - every registration under a registrants type, the holder under the others;
          V(null) without a reservation, when every host may write.
      type: list
      elements: str
      sample: ["0x120534175508b10b"]
    this_host_registered:
      description: Whether this host's key is registered.
      type: bool
      sample: true
    this_host_writer:
      description: Whether this host is the only registration under a C(Write Exclusive - All Registrants) reservation.
      type: bool
      sample: true
    victim_key:
      description: The key of O(victim) with O(state=fenced_out), else V(null).
      type: str
      sample: "0xb50ec543f35ed573"
    registered_nodes:
      description: The names of this host, O(victim) and O(nodes) whose keys are registered.
      type: list
      elements: str
      sample: [pdb2]
actions:
  description: What was done (in check mode - what would be done), for people.
  returned: success
  type: list
  elements: str
  sample:
    - register key 0x120534175508b10b (pdb2) on /dev/mapper/mpatha
    - preempt and abort key 0xb50ec543f35ed573 (pdb1) on /dev/mapper/mpatha
executed_commands:
  description: The command lines run, reads included.
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/mpathpersist --in --read-keys /dev/mapper/mpatha"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.fencing import STATES, ensure_fence
from ansible_collections.polardb.stack.plugins.module_utils.lun import HostFiles
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, PolarDBError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            wwid=dict(type='str'),
            device=dict(type='path'),
            driver=dict(type='str', default='scsi3_pr', choices=['scsi3_pr', 'nvme', 'command']),
            state=dict(type='str', default='query', choices=list(STATES)),
            cluster=dict(type='str'),
            node=dict(type='str'),
            key=dict(type='str', no_log=False),
            victim=dict(type='str'),
            nodes=dict(type='list', elements='str', default=[]),
            command=dict(type='list', elements='str'),
            command_timeout=dict(type='int', default=60),
        ),
        mutually_exclusive=[('wwid', 'device')],
        required_one_of=[('wwid', 'device'), ('cluster', 'key')],
        required_if=[('state', 'fenced_out', ('victim',)), ('driver', 'command', ('command',))],
        supports_check_mode=True,
    )
    runner = CommandRunner(module)
    try:
        result = ensure_fence(runner, HostFiles(), check_mode=module.check_mode, **module.params)
    except PolarDBError as e:
        module.fail_json(msg=e.msg, executed_commands=runner.executed, **e.details)
    for warning in result.pop('warnings'):
        module.warn(warning)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(executed_commands=runner.executed, **result)


if __name__ == '__main__':
    main()
