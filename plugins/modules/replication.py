#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: replication
short_description: Put a node in its place in the cluster's replication - the RW, or a follower of the RW - in one run
version_added: 0.2.0
description:
  - Without O(upstream) - the local engine is the RW. Writes O(conf_path) (its replication settings, naming no
    upstream), reloads the engine when that file changed, and creates a physical replication slot for each of O(slots)
    that is missing.
  - With O(upstream) - the local engine follows the RW O(upstream). Refuses a data directory that holds no data or an
    engine that runs as a primary (it needs a rebuild). Creates C(standby.signal), writes O(conf_path), starts the
    engine when it is stopped or reloads it when the file changed, waits until a WAL receiver streams from O(upstream)
    (and restarts the engine once when no receiver comes - a startup process that gave up on streaming waits for WAL for ever),
    then drops each of O(drop_slots) left on this node from when it was the RW.
  - Why not community.postgresql and builtin tasks - after a switchover or a failover every node must take its place
    quickly; done as one task per step it costs about ten SSH round trips per node. This module does the same steps in
    one module run per host. Replication slots alone are what M(community.postgresql.postgresql_slot) also does; the
    configuration file is rendered by the caller (the C(replication.conf.j2) template of role C(polardb.stack.instance)),
    so create_cluster and this module write the same text.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  service:
    description: systemd unit of the engine (started, reloaded, restarted with C(systemctl)).
    type: str
    required: true
  conf_path:
    description: Path of the engine's replication settings file (included by its C(postgresql.conf)).
    type: path
    required: true
  conf_content:
    description: The text O(conf_path) must hold (written atomically, owner O(owner), mode 0640, when it differs).
    type: str
    required: true
  upstream:
    description:
      - The RW this node follows; omitted - this node is the RW.
    type: dict
    suboptions:
      name:
        description: Inventory name of the RW (for messages).
        type: str
      host:
        description: Address of the RW, as in C(primary_conninfo) (the WAL receiver's C(sender_host)).
        type: str
        required: true
      port:
        description: Port of the RW.
        type: int
        default: 5432
  slots:
    description:
      - Physical slots this node must have; missing ones are created. With no O(upstream), those of the RW (one per other
        node); with O(upstream), those of the nodes that stream from this follower (cascading - a switchover's followers
        stream from its target before the stop when replication is synchronous). Never dropped.
    type: list
    elements: str
    default: []
  drop_slots:
    description: With O(upstream) - slots to drop from this node when present (those it kept as the RW).
    type: list
    elements: str
    default: []
  receiver_timeout:
    description: Seconds to wait for a WAL receiver streaming from O(upstream), before and after the one restart.
    type: float
    default: 10
extends_documentation_fragment:
  - polardb.stack.local_instance
  - polardb.stack.operation_lock_release
  - polardb.stack.attributes
attributes:
  check_mode:
    support: full
    description: Reports what it would do (C(actions) start with "would"); writes, reloads, starts nothing.
  diff_mode:
    support: full
    description: The replication settings file before and after.
notes:
  - Runs as root (it writes files owned by O(owner) and calls C(systemctl)); SQL goes through the local socket with
    peer authentication as O(owner).
seealso:
  - module: polardb.stack.switchover
  - module: community.postgresql.postgresql_slot
'''

EXAMPLES = r'''
- name: The new RW replicates from nobody and keeps a slot for pdb1 and pdb3
  polardb.stack.replication:
    data_dir: /srv/polardb/demo/data
    service: polardb@demo.service
    conf_path: /etc/polardb-stack/demo/replication.conf
    conf_content: "# pdb2 is the read-write node: it replicates from nobody.\n"
    slots: [pdb1, pdb3]

- name: The old RW follows the new one and drops the slots it kept
  polardb.stack.replication:
    data_dir: /srv/polardb/demo/data
    service: polardb@demo.service
    conf_path: /etc/polardb-stack/demo/replication.conf
    conf_content: "{{ lookup('ansible.builtin.template', 'replication.conf.j2') }}"
    upstream: {name: pdb2, host: 10.213.77.12, port: 5432}
    drop_slots: [pdb2, pdb3]
'''

RETURN = r'''
role:
  description: V(rw) (no O(upstream)) or V(replica).
  returned: always
  type: str
  sample: replica
actions:
  description: What was done, in order (what would be done, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["create /srv/polardb/demo/data/standby.signal", "write /etc/polardb-stack/demo/replication.conf", "start polardb@demo.service"]
conf_changed:
  description: O(conf_path) was (would be) rewritten.
  returned: always
  type: bool
signal_created:
  description: C(standby.signal) was (would be) created.
  returned: always
  type: bool
reloaded:
  description: The engine was reloaded.
  returned: always
  type: bool
started:
  description: The engine was started (it was stopped).
  returned: always
  type: bool
restarted:
  description: The engine was restarted because no WAL receiver came towards O(upstream).
  returned: always
  type: bool
slots_created:
  description: Slots created on the RW.
  returned: always
  type: list
  elements: str
slots_dropped:
  description: Slots dropped from the follower.
  returned: always
  type: list
  elements: str
receiver:
  description: Status of the WAL receiver towards O(upstream) at the end (for example V(streaming)); null for the RW.
  returned: always
  type: str
  sample: streaming
operation_lock:
  description:
    - With O(release_lock) - what became of the run's record of the lock on this host - C(released) (true - no
      record of the run is left, removed now (C(changed)) or there was none), C(lock), C(previous), C(lock_file); or
      C(released=false) with C(error) (a record this run cannot release), or with C(skipped) (the node is not in its
      place, so the record stays for a run that resumes).
  returned: when O(release_lock) is given
  type: dict
  sample: {released: true, lock: null, lock_file: /var/lib/polardb-stack/locks/demo.json}
timings:
  description: Seconds spent - C(receiver_s) (waiting for the WAL receiver), C(total_s).
  returned: always
  type: dict
  sample: {receiver_s: 0.31, total_s: 0.52}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.instance import from_params, local_argument_spec
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import (
    RELEASE_ARGUMENT_SPEC, release_record)
from ansible_collections.polardb.stack.plugins.module_utils.replication import (
    DEFAULT_RECEIVER_TIMEOUT, Replication, in_place)
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error


def main():
    argument_spec = dict(
        service=dict(type='str', required=True),
        conf_path=dict(type='path', required=True),
        conf_content=dict(type='str', required=True),
        upstream=dict(type='dict', options=dict(
            name=dict(type='str'),
            host=dict(type='str', required=True),
            port=dict(type='int', default=5432),
        )),
        slots=dict(type='list', elements='str', default=[]),
        drop_slots=dict(type='list', elements='str', default=[]),
        receiver_timeout=dict(type='float', default=DEFAULT_RECEIVER_TIMEOUT),
        release_lock=RELEASE_ARGUMENT_SPEC,
    )
    argument_spec.update(local_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    runner = CommandRunner(module)

    def run():
        return Replication(from_params(runner, p), runner, p['service'], p['conf_path'], p['conf_content'],
                           upstream=p['upstream'], slots=p['slots'], drop_slots=p['drop_slots'],
                           receiver_timeout=p['receiver_timeout'], check_mode=module.check_mode).run()

    result = fail_on_error(module, run)
    if p['release_lock']:
        result['operation_lock'] = (release_record(p['release_lock'], check_mode=module.check_mode)
                                    if in_place(result) else dict(released=False, skipped='the node is not in place'))
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
