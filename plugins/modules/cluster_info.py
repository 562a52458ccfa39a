#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster_info
short_description: Discover the topology of a cluster from its engines
version_added: 0.1.0
description:
  - Connects to every node of a cluster over TCP, in parallel, and asks each
    engine about itself (C(pg_is_in_recovery), timeline, LSNs, WAL receiver,
    WAL senders, replication slots, system identifier).
  - From the answers it tells which node is read-write (RW), how far each
    replica lags and what is wrong (no RW, more than one RW, a node
    unreachable, a replica not streaming, a replica of another cluster, a
    replica streaming from something that is not the RW).
  - Never fails because a node is down; an unreachable node is reported as such.
  - The inventory is not trusted for roles; the engines are.
  - Why not M(community.postgresql.postgresql_info) - it describes one server;
    this module compares the servers of a cluster with each other.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  nodes:
    description:
      - The nodes of the cluster. Give the addresses the nodes use for
        replication (a replica's upstream is matched against O(nodes[].host)
        and O(nodes[].port); names are resolved when they differ).
      - An empty list probes nothing (RV(cluster) is null) - a run that only reads O(operation_lock).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the node (the inventory hostname).
        type: str
        required: true
      host:
        description: Address or host name of the node.
        type: str
        required: true
      port:
        description: Port of the engine.
        type: int
        default: 5432
  max_lag_bytes:
    description:
      - When set, a replica whose replay lags more than this many bytes behind
        the RW is a problem (and the cluster is not healthy).
    type: int
  wait_seconds:
    description:
      - Probe again, every 0.25 s, until the cluster is what is waited for or this
        many seconds have passed; V(0) probes once. RV(waited) says whether it arrived.
      - What is waited for - the cluster healthy, or, with O(wait_for_rw), that node
        the only RW and every node of O(wait_for_streaming) streaming from it.
      - Why here - a wait by C(until)/C(retries) costs a module run per attempt and
        its C(delay); C(until)/C(retries) around this option only repeats it (and
        shows progress) for waits longer than O(wait_seconds).
    type: int
    default: 0
  wait_for_rw:
    description: The node that must be the only RW (see O(wait_seconds)).
    type: str
  wait_for_streaming:
    description: Nodes that must stream from O(wait_for_rw) (see O(wait_seconds)).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.attributes.read_only
  - polardb.stack.connection
  - polardb.stack.operation_lock_read
notes:
  - Timeline of a primary - the timeline of its current WAL file; of a replica -
    C(received_tli) of its WAL receiver, else the timeline of its last restartpoint.
  - A slot of the RW whose C(wal_status) is V(lost) (its WAL was removed, beyond
    C(max_slot_wal_keep_size)) or V(unreserved) (about to be) is a problem naming the
    node it feeds (found by the replica's WAL receiver slot, else by the slot name the
    collection gives a node - its name in lower case, other characters than a-z, 0-9
    and _ replaced by _).
  - C(lag_bytes) of a replica - from the RW's C(pg_stat_replication) row of
    that replica (RW current LSN minus the replay LSN the replica last reported)
    when there is one, else the RW's current LSN minus the replica's own replay
    LSN, both from the probes. Never negative.
'''

EXAMPLES = r'''
- name: Discover the topology
  polardb.stack.cluster_info:
    nodes:
      - {name: pdb1, host: 10.213.77.11, port: 5432}
      - {name: pdb2, host: 10.213.77.12, port: 5432}
      - {name: pdb3, host: 10.213.77.13, port: 5432}
    login_password: "{{ polardb_superuser_password }}"
    ca_cert: /etc/polardb-stack/demo/ca.crt
  register: topo

- name: Stop unless exactly one RW answers
  ansible.builtin.assert:
    that: topo.cluster.rw_nodes | length == 1
    fail_msg: "{{ topo.cluster.problems | join('; ') }}"

- name: Wait until every replica has caught up
  polardb.stack.cluster_info:
    nodes: "{{ polardb_nodes }}"
    login_password: "{{ polardb_superuser_password }}"
    ca_cert: /etc/polardb-stack/demo/ca.crt
    max_lag_bytes: 16777216
    wait_seconds: 10          # polls every 0.25 s inside the module
  register: topo
  until: topo.cluster.healthy
  retries: 6                  # up to a minute, a line of progress every 10 s
  delay: 0

- name: Wait until pdb2 is the only RW and pdb3 streams from it
  polardb.stack.cluster_info:
    nodes: "{{ polardb_nodes }}"
    login_password: "{{ polardb_superuser_password }}"
    ca_cert: /etc/polardb-stack/demo/ca.crt
    wait_seconds: 30
    wait_for_rw: pdb2
    wait_for_streaming: [pdb3]
  register: topo
  failed_when: not topo.waited.arrived
'''

RETURN = r'''
operation_lock:
  description:
    - This host's record of the lock, as M(polardb.stack.operation_lock) returns it with
      O(polardb.stack.operation_lock#module:state=query) - C(lock) (null when free), C(previous), C(lock_file),
      C(expired), C(expires_in), C(waited) (V(0)), C(renewed_while_waiting) (V(false)).
  returned: when O(operation_lock) is given
  type: dict
  sample: {lock: null, previous: null, lock_file: /var/lib/polardb-stack/locks/demo.json, expired: null,
           expires_in: null, waited: 0.0, renewed_while_waiting: false}
waited:
  description: How the wait of O(wait_seconds) ended.
  returned: always
  type: dict
  contains:
    arrived:
      description: Whether the cluster became what was waited for.
      type: bool
      sample: true
    attempts:
      description: How many times the engines were probed.
      type: int
      sample: 3
    seconds:
      description: How long it waited.
      type: float
      sample: 0.52
cluster:
  description: The topology; null when O(nodes) is empty.
  returned: always
  type: dict
  contains:
    rw:
      description: Name of the RW node; null when there is none; the first of several when split.
      type: str
      sample: pdb1
    rw_nodes:
      description: Names of every node that is not in recovery.
      type: list
      elements: str
      sample: [pdb1]
    healthy:
      description: True when there is no problem (exactly one RW, every node reachable, replicas streaming from it).
      type: bool
      sample: true
    problems:
      description: What is wrong, for people.
      type: list
      elements: str
      sample: ["2 RW nodes: pdb1, pdb2", "pdb3 (10.213.77.13:5432) unreachable: connection refused"]
    nodes:
      description:
        - One entry per node, keyed by name, in the order of O(nodes).
        - Every entry has every key; facts of an unreachable node are null.
        - C(role) (V(primary), V(replica), null when unreachable), C(in_recovery),
          C(timeline), C(system_identifier), C(server_version), C(server_version_num),
          C(flavour) (V(postgresql) or V(polardb)), C(lsn) (C(current), C(receive), C(replay)),
          C(upstream) (WAL receiver - C(host), C(port), C(status), C(slot); null without one),
          C(upstream_node) (name of the node C(upstream) points at, null when none matches),
          C(replication) (WAL senders - C(application_name), C(client_addr), C(state),
          C(sync_state), C(slot_name), C(sent_lsn), C(write_lsn), C(flush_lsn),
          C(replay_lsn), C(replay_lag_bytes)), C(lag_bytes) and C(streaming)
          (replicas of the RW; null otherwise), C(reachable), C(error).
        - C(slots) - the node's replication slots (C(pg_replication_slots)) - C(name), C(type),
          C(active), C(restart_lsn), C(wal_status) (V(reserved), V(extended), V(unreserved),
          V(lost)), C(safe_wal_size), C(retained_bytes) (the node's current LSN minus the
          slot's C(restart_lsn) - the WAL the slot holds back; null on a replica) and, on the
          RW, C(node) (the node the slot feeds, null when none).
        - C(slot) - of a node fed by the RW, its slot there (the C(slots) entry plus C(on),
          the RW's name); null otherwise. C(max_slot_wal_keep_size) - the node's setting.
      type: dict
      sample:
        pdb1:
          name: pdb1
          host: 10.213.77.11
          port: 5432
          reachable: true
          error: null
          role: primary
          in_recovery: false
          timeline: 1
          system_identifier: "7312345678901234567"
          server_version: "15.14 (Debian 15.14-0+deb12u1)"
          server_version_num: 150014
          flavour: postgresql
          lsn: {current: 0/3000148, receive: null, replay: null}
          upstream: null
          upstream_node: null
          replication:
            - {application_name: pdb2, client_addr: 10.213.77.12, state: streaming, sync_state: async,
               slot_name: pdb2, sent_lsn: 0/3000148, write_lsn: 0/3000148, flush_lsn: 0/3000148,
               replay_lsn: 0/3000148, replay_lag_bytes: 0}
          lag_bytes: null
          streaming: null
          max_slot_wal_keep_size: 512MB
          slots:
            - {name: pdb2, type: physical, active: true, restart_lsn: 0/3000148, wal_status: reserved,
               safe_wal_size: 536870912, retained_bytes: 0, node: pdb2}
          slot: null
'''

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.operation_lock import READ_ARGUMENT_SPEC, read_record
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError, fail_on_error
from ansible_collections.polardb.stack.plugins.module_utils import sql
from ansible_collections.polardb.stack.plugins.module_utils.topology import (
    arrived, build_topology, probe_all, probe_node, resolving_same_host, wait_for)


def discover(params):
    nodes = params['nodes']
    names = [n['name'] for n in nodes]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise PolarDBError('node names must be unique: %s' % ', '.join(duplicates))
    timeout = params['connect_timeout']
    connect = functools.partial(sql.connect, libpq=sql.libpq_params(params))

    def probe_one(node):
        return probe_node(node, connect, params['login_user'], params['login_password'],
                          params['login_db'], timeout)

    probes = probe_all(nodes, probe_one, timeout * 2 + 5)
    return build_topology(probes, same_host=resolving_same_host(),
                          max_lag_bytes=params['max_lag_bytes'])


def main():
    argument_spec = dict(
        nodes=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            host=dict(type='str', required=True),
            port=dict(type='int', default=5432),
        )),
        max_lag_bytes=dict(type='int'),
        wait_seconds=dict(type='int', default=0),
        wait_for_rw=dict(type='str'),
        wait_for_streaming=dict(type='list', elements='str', default=[]),
        operation_lock=READ_ARGUMENT_SPEC,
    )
    argument_spec.update(sql.connection_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    sql.ensure_driver(module)
    params = module.params
    result = dict(changed=False, cluster=None, waited=dict(arrived=True, attempts=0, seconds=0.0))
    if params['operation_lock']:
        result['operation_lock'] = fail_on_error(module, read_record, params['operation_lock'])
    if params['nodes']:
        result['cluster'], result['waited'] = fail_on_error(
            module, wait_for, lambda: discover(params), params['wait_seconds'],
            lambda found: arrived(found, params['wait_for_rw'], params['wait_for_streaming']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
