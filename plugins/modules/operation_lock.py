#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: operation_lock
short_description: One lifecycle operation at a time per cluster, resumable
version_added: 0.1.0
description:
  - Holds the operation lock of a cluster, like the per-cluster workflow lock of
    PolarDB Stack - a switchover, a failover, a rebuild cannot run while another
    operation of the same cluster is under way.
  - The lock also makes operations resumable - it records what the operation
    decided (O(params), for example the source and the target of a switchover),
    so a playbook killed mid-way that is run again finds what it was doing and
    finishes the same operation.
  - The lock is a JSON file C(<lock_dir>/<cluster>.json) (mode 0600, directory
    0700) on the host the module runs on; playbooks hold it on every node of
    the cluster, so any survivor has it. Writes are durable - the file and the
    directory are fsynced, so a lock survives a power cut of the host.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  cluster:
    description: Name of the cluster; must match C(^[a-z][a-z0-9_-]{0,30}$).
    type: str
    required: true
  state:
    description:
      - V(query) returns the lock (or null) and changes nothing.
      - V(acquired) creates the lock for O(operation), or updates the lock this run
        (O(owner.run_id)) already holds - O(params) are merged into the stored
        ones, new keys win. A lock of another run is refused unless O(takeover=true).
      - V(released) removes the lock of this run; a lock of another run is refused
        unless O(takeover=true). No lock - no change.
    type: str
    choices: [query, acquired, released]
    default: query
  operation:
    description:
      - The operation the lock is for, for example V(switchover), V(failover),
        V(rebuild_node), V(create_cluster).
      - Required with O(state=acquired); ignored otherwise.
      - This run holding the lock for another operation is refused unless O(takeover=true).
    type: str
  params:
    description:
      - "What the operation decided, for example C({from: pdb1, to: pdb2}); stored so
        a resumed run can finish the same operation."
      - With O(state=acquired) on a lock of the same operation, merged into the
        stored params (new keys overwrite).
    type: dict
    default: {}
  owner:
    description:
      - The run that holds the lock. Required with O(state=acquired) and O(state=released).
    type: dict
    suboptions:
      run_id:
        description: Identifies the run (for example a UUID generated once per playbook run).
        type: str
        required: true
      controller:
        description: Host name of the controller the run runs on.
        type: str
      pid:
        description: Process id of the run on the controller.
        type: int
  takeover:
    description:
      - Take the lock over from another run (that is dead) - with O(state=acquired)
        the lock is replaced atomically, keeping C(started) and merging C(params)
        when the operation is the same, and records the previous owner in
        C(taken_over_from); with O(state=released) the lock of another run is removed.
    type: bool
    default: false
  lock_dir:
    description: Directory of the lock files; created (0700) when missing.
    type: path
    default: /var/lib/polardb-stack/locks
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    support: full
    description: Reports the lock as it would be; writes nothing.
  diff_mode:
    support: full
    description: The lock file's content before and after.
notes:
  - A new lock is created atomically - written to a temporary file in O(lock_dir)
    then hard-linked to its name, which fails if another run created it first;
    that run wins and this one is refused, whatever O(takeover) says.
  - Playbooks acquire the lock on every node of the cluster. Two runs started
    together may each win on some nodes - both are refused on the others, and
    each should release what it holds (O(state=released) with its own
    O(owner.run_id) only removes its own locks).
  - C(updated) is the time of the last change of the lock; acquiring again with
    the same params writes nothing.
seealso:
  - module: polardb.stack.switchover
'''

EXAMPLES = r'''
- name: Identify this run, once per playbook run
  ansible.builtin.set_fact:
    polardb_run_owner:
      run_id: "{{ 2147483647 | random | to_uuid }}"
      controller: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
      pid: "{{ lookup('ansible.builtin.pipe', 'echo $PPID') | int }}"
  run_once: true

- name: What is cluster demo doing?
  polardb.stack.operation_lock:
    cluster: demo
  register: demo_lock

- name: Lock cluster demo for a switchover (or update the lock this run holds)
  polardb.stack.operation_lock:
    cluster: demo
    state: acquired
    operation: switchover
    params: {from: pdb1, to: pdb2}
    owner: "{{ polardb_run_owner }}"
  when: demo_lock.lock is none

- name: Resume the switchover of a run that died, with what it decided
  polardb.stack.operation_lock:
    cluster: demo
    state: acquired
    operation: switchover
    params: "{{ demo_lock.lock.params }}"
    owner: "{{ polardb_run_owner }}"
    takeover: true
  when: demo_lock.lock is not none and demo_lock.lock.operation == 'switchover'

- name: Release the lock at the end of the operation
  polardb.stack.operation_lock:
    cluster: demo
    state: released
    owner: "{{ polardb_run_owner }}"
'''

RETURN = r'''
lock:
  description: The lock after the task (in check mode - as it would be); null when there is none.
    Also returned when the task fails because another run holds the lock - that run's lock.
  returned: always
  type: dict
  contains:
    cluster:
      description: The cluster.
      type: str
      sample: demo
    operation:
      description: The operation that holds the lock.
      type: str
      sample: switchover
    params:
      description: What the operation decided.
      type: dict
      sample: {from: pdb1, to: pdb2}
    owner:
      description: The run that holds the lock - C(run_id), C(controller), C(pid).
      type: dict
      sample: {run_id: 1a2b3c4d, controller: ctl1, pid: 1234}
    started:
      description: When the operation took the lock (UTC, ISO 8601); kept by a takeover of the same operation.
      type: str
      sample: "2026-11-26T13:40:01Z"
    updated:
      description: When the lock last changed (UTC, ISO 8601).
      type: str
      sample: "2026-11-26T13:41:12Z"
    host:
      description: The host that wrote the lock.
      type: str
      sample: pdb1
    taken_over_from:
      description: The owner the lock was taken over from; absent when it never was.
      type: dict
      sample: {run_id: 9f8e7d6c, controller: ctl1, pid: 1200}
previous:
  description: The lock before the task; null when there was none.
  returned: always
  type: dict
  sample: null
lock_file:
  description: The lock file.
  returned: success, and failures about the lock file or another run's lock
  type: str
  sample: /var/lib/polardb-stack/locks/demo.json
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import (
    DEFAULT_LOCK_DIR, STATES, LockFiles, ensure_lock)
from ansible_collections.polardb.stack.plugins.module_utils.runner import fail_on_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type='str', required=True),
            state=dict(type='str', default='query', choices=list(STATES)),
            operation=dict(type='str'),
            params=dict(type='dict', default={}),
            owner=dict(type='dict', options=dict(
                run_id=dict(type='str', required=True),
                controller=dict(type='str'),
                pid=dict(type='int'),
            )),
            takeover=dict(type='bool', default=False),
            lock_dir=dict(type='path', default=DEFAULT_LOCK_DIR),
        ),
        required_if=[
            ('state', 'acquired', ('operation', 'owner')),
            ('state', 'released', ('owner',)),
        ],
        supports_check_mode=True,
    )
    p = module.params
    result = fail_on_error(module, ensure_lock, LockFiles(p['lock_dir']), check_mode=module.check_mode, **p)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
