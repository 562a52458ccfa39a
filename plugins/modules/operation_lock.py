#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: operation_lock
short_description: One lifecycle operation at a time per cluster - a lease, resumable
version_added: 0.1.0
description:
  - Holds this node's record of a cluster's operation lock. The lock is a lease -
    its holder (a playbook run) renews it while it works, and it expires when the
    holder stops renewing it (killed, controller or container gone), so the next
    run, from any controller, resumes the recorded operation without any extra option.
  - The record names the holder (O(owner)), the operation and what it decided
    (O(params), for example the source and the target of a switchover, which a
    resumed run goes on with), the lease duration and the last renewal.
  - Expiry is judged by this node with its own clock - the boot-time clock since
    the last renewal (the wall clock after a reboot of the node). No clock of
    another host is ever compared with it.
  - The record is a JSON file C(<lock_dir>/<cluster>.json) (mode 0600, directory
    0700). Every write is a compare-and-swap under an exclusive C(flock) of
    C(<lock_dir>/<cluster>.flock), atomic (rename) and durable (fsync of the file
    and the directory). Playbooks take it on the first node of a fixed order,
    then on the other nodes at once, all or nothing, and hold it when a majority of the cluster's nodes
    granted it (role C(polardb.stack.lock)).
author:
  - polardb.stack developers (!UNKNOWN)
options:
  cluster:
    description: Name of the cluster; must match C(^[a-z][a-z0-9_-]{0,30}$).
    type: str
    required: true
  state:
    description:
      - V(query) returns the record (or null) and whether its lease expired; changes nothing.
      - V(acquired) creates the record for O(operation), or renews the record this run
        (O(owner.run_id)) already holds (O(params) merged into the stored ones, new keys win).
        Another run's record is taken over only when its lease expired and it is for the same
        O(operation) (the run resumes it - its params are kept); a live lease is always refused.
      - V(renewed) renews this run's lease. No record - no change (the lock was released,
        a heartbeat stops). Another run's record fails (the lease was lost).
      - V(released) removes this run's record, or puts O(restore) back in its place.
        Another run's record is refused unless O(takeover=true). No record - no change.
    type: str
    choices: [query, acquired, renewed, released]
    default: query
  operation:
    description:
      - The operation the lock is for, for example V(switchover), V(failover),
        V(rebuild_node), V(create_cluster), V(destroy_cluster).
      - Required with O(state=acquired); ignored otherwise.
    type: str
  params:
    description:
      - "What the operation decided, for example C({from: pdb1, to: pdb2}); stored so
        a resumed run can finish the same operation."
      - With O(state=acquired) on a record of the same operation, merged into the
        stored params (new keys overwrite).
    type: dict
    default: {}
  owner:
    description:
      - The run that holds the lock (the lease's holder identity). Required with
        O(state=acquired), O(state=renewed) and O(state=released).
    type: dict
    suboptions:
      run_id:
        description: Identifies the run (generated once per playbook run).
        type: str
        required: true
      controller:
        description: Host name of the controller the run runs on (for people).
        type: str
      pid:
        description: Process id of the run on the controller (for people).
        type: int
  lease_seconds:
    description:
      - Duration of the lease written with O(state=acquired) and O(state=renewed); the
        holder must renew it within that time. At least 3.
    type: int
    default: 30
  expect_version:
    description:
      - With O(state=acquired) - the compare of the compare-and-swap. The C(version) of
        the record this run read (C(version) from O(state=query)), or the empty string
        when it read none. When the record changed since, the task is refused.
      - Omitted - no such check.
    type: str
  expect_wait:
    description:
      - With O(expect_version) - when the record is not that version, read it again every
        0.1 s for up to this many seconds before deciding. The playbook asks a node again
        this way when another run that raced for the lock took it and lost the race on the
        first node - that run gives back what it took.
    type: float
    default: 0
  restore:
    description:
      - With O(state=released) - the record to put back instead of removing this run's
        (the rollback of an acquisition that took over a dead run's lock keeps that
        run's operation and params for the next resume).
    type: dict
  takeover:
    description:
      - Expert override. With O(state=acquired) - also take an expired lease of
        another operation (abandoning that operation). With O(state=released) - remove
        another run's record. Never takes a live lease.
    type: bool
    default: false
  wait:
    description:
      - With O(state=query) - when another run's lease has not expired, wait up to this
        many seconds for it to expire or be released; return as soon as its holder renews
        it (C(renewed_while_waiting)). Reads only.
    type: int
    default: 0
  lock_dir:
    description: Directory of the lock files; created (0700) when missing.
    type: path
    default: /var/lib/polardb-stack/locks
  store:
    description:
      - V(file) - the record is a file on this node (O(lock_dir)).
      - V(kubernetes) - the cluster is declared in Kubernetes - the record is the C(coordination.k8s.io/v1) Lease
        C(polardb-lock-<cluster>) in O(k8s_namespace), read and written through kubernetes.core's client (the
        connection options below). The compare-and-swap is the API server's (resourceVersion, 409 Conflict) and expiry
        is judged by the API server's clock (the Date of its answers), so one task on the controller is the whole lock -
        no majority of nodes.
    type: str
    choices: [file, kubernetes]
    default: file
  k8s_namespace:
    description: Namespace of the Lease (the namespace of the cluster's resource), with O(store=kubernetes).
    type: str
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reports the record as it would be; writes nothing, not even the directory.
  diff_mode:
    support: full
    description: The record before and after.
notes:
  - Two runs acquiring at the same time - the compare-and-swap lets exactly one
    write; the other decides again from what the winner wrote and is refused.
  - C(renewed) and C(updated) are this node's wall clock (UTC, for people); expiry
    uses C(clock), the node's boot id and boot-time clock of the last write.
seealso:
  - module: polardb.stack.switchover
'''

EXAMPLES = r'''
- name: What is cluster demo doing? Wait up to 40 s for a lease that is not renewed
  polardb.stack.operation_lock:
    cluster: demo
    wait: 40
  register: demo_lock

- name: Lock cluster demo for a switchover, if nobody changed the record since
  polardb.stack.operation_lock:
    cluster: demo
    state: acquired
    operation: switchover
    params: {from: pdb1, to: pdb2}
    owner: {run_id: 1a2b3c4d, controller: ctl1, pid: 1234}
    lease_seconds: 30
    expect_version: "{{ demo_lock.lock.version | default('', true) }}"

- name: Renew the lease (every lease_seconds / 3)
  polardb.stack.operation_lock:
    cluster: demo
    state: renewed
    owner: {run_id: 1a2b3c4d}
    lease_seconds: 30

- name: Release the lock at the end of the operation
  polardb.stack.operation_lock:
    cluster: demo
    state: released
    owner: {run_id: 1a2b3c4d}
'''

RETURN = r'''
lock:
  description: The record after the task (in check mode - as it would be); null when there is none.
    Also returned when the task fails because another run holds the lock - that run's record.
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
      description: The run that holds the lease - C(run_id), C(controller), C(pid).
      type: dict
      sample: {run_id: 1a2b3c4d, controller: ctl1, pid: 1234}
    lease_seconds:
      description: The lease duration.
      type: int
      sample: 30
    started:
      description: When the operation first took the lock (this node's clock, UTC); kept when a run resumes it.
      type: str
      sample: "2026-11-26T13:40:01Z"
    acquired:
      description: When the current holder took it (this node's clock, UTC).
      type: str
      sample: "2026-11-26T13:40:01Z"
    renewed:
      description: The last renewal (this node's clock, UTC).
      type: str
      sample: "2026-11-26T13:41:12Z"
    renewals:
      description: Writes by the current holder.
      type: int
      sample: 7
    transitions:
      description: How many times the record changed holder on this node (a Lease's leaseTransitions).
      type: int
      sample: 0
    version:
      description: Opaque token, new on every write - the compare of the compare-and-swap.
      type: str
      sample: 3f2a9c0d1e4b5a69
    host:
      description: The node that keeps the record.
      type: str
      sample: pdb1
    taken_over_from:
      description: The owner of the expired lease this run took over; absent when it did not.
      type: dict
      sample: {run_id: 9f8e7d6c, controller: ctl1, pid: 1200}
previous:
  description: The record before the task; null when there was none.
  returned: always
  type: dict
  sample: null
expired:
  description: Whether the lease of RV(lock) has expired, by this node's clock; null without a record.
  returned: always
  type: bool
  sample: false
expires_in:
  description: Seconds until the lease of RV(lock) expires, by this node's clock (0 when it has).
  returned: always
  type: float
  sample: 21.4
waited:
  description: Seconds waited (O(state=query) with O(wait)).
  returned: with O(state=query)
  type: float
  sample: 0.0
renewed_while_waiting:
  description: The holder renewed (or another run took) the lease while this task waited - it is alive.
  returned: with O(state=query)
  type: bool
  sample: false
refused:
  description: The task failed because another run holds the lock (or the record changed since O(expect_version)).
  returned: failure
  type: bool
  sample: true
raced:
  description: The task was refused because the record changed since O(expect_version) (a run racing for the lock).
  returned: failure
  type: bool
  sample: true
lock_file:
  description: The lock file.
  returned: success, and failures about the lock file or another run's lock
  type: str
  sample: /var/lib/polardb-stack/locks/demo.json
'''

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.polardb.stack.plugins.module_utils.k8s_api import KubeApi
from ansible_collections.polardb.stack.plugins.module_utils.k8s_lease import K8sLeaseStore
from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import (
    DEFAULT_LEASE_SECONDS, DEFAULT_LOCK_DIR, OWNER_ARGUMENT_SPEC, STATES, FileLeaseStore, ensure_lock)
from ansible_collections.polardb.stack.plugins.module_utils.runner import fail_on_error


def kubernetes_store(module):
    p = module.params
    if not p['k8s_namespace']:
        module.fail_json(msg='store=kubernetes needs k8s_namespace (the namespace of the cluster\'s resource)')
    auth = dict((k, p[k]) for k in AUTH_ARG_SPEC if p.get(k) is not None)
    try:
        client = get_api_client(**auth)
    except CoreException as e:
        module.fail_json(msg='cannot connect to the Kubernetes API: %s' % e)
    return K8sLeaseStore(KubeApi(client), p['k8s_namespace'], client.configuration.host)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type='str', required=True),
            state=dict(type='str', default='query', choices=list(STATES)),
            operation=dict(type='str'),
            params=dict(type='dict', default={}),
            owner=OWNER_ARGUMENT_SPEC,
            lease_seconds=dict(type='int', default=DEFAULT_LEASE_SECONDS),
            expect_version=dict(type='str'),
            expect_wait=dict(type='float', default=0),
            restore=dict(type='dict'),
            takeover=dict(type='bool', default=False),
            wait=dict(type='int', default=0),
            lock_dir=dict(type='path', default=DEFAULT_LOCK_DIR),
            store=dict(type='str', default='file', choices=['file', 'kubernetes']),
            k8s_namespace=dict(type='str'),
            **copy.deepcopy(AUTH_ARG_SPEC)
        ),
        required_if=[
            ('state', 'acquired', ('operation', 'owner')),
            ('state', 'renewed', ('owner',)),
            ('state', 'released', ('owner',)),
        ],
        supports_check_mode=True,
    )
    p = module.params
    args = dict((k, v) for k, v in p.items() if k not in AUTH_ARG_SPEC and k not in ('store', 'k8s_namespace'))
    if p['store'] == 'kubernetes':
        store = kubernetes_store(module)
        clock = store.clock
    else:
        store, clock = FileLeaseStore(p['lock_dir']), None  # None: the node's own clock
    result = fail_on_error(module, ensure_lock, store, check_mode=module.check_mode, clock=clock, **args)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
