#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster_manager
short_description: Reads, pauses or resumes a cluster's manager in etcd (or the Kubernetes API)
version_added: 0.3.0
description:
  - Reads what etcd holds for one cluster - the report of each node's agent (its engine's role, timeline, LSNs, how old
    the report is), the leader key of the RW's agent and whether the manager is paused - and how the etcd cluster is
    (its members, each endpoint's version and leader).
  - With O(state=paused) it writes the cluster's pause (who, when, why), with O(state=enabled) it removes it. A pause has
    no lease - it outlives every agent and playbook run until it is removed.
  - Talks to etcd v3 through its JSON gateway over HTTPS with a client certificate (module_utils C(etcd)); the hosts need
    nothing but Python. Why not a module of another collection - none of the ansible bundle's collections talks to etcd v3.
  - Runs where the etcd client certificate is - a node of the cluster (role C(polardb.stack.cluster_manager) puts it
    there) or the controller.
  - With O(kubernetes) instead of O(endpoints), the store is the Kubernetes API in etcd's place - keys in ConfigMaps,
    leases in C(coordination.k8s.io/v1) Leases of a namespace (module_utils C(k8s_kv)) - reached with the agents'
    service account token, as the agents reach it (they run on the hosts with nothing but Python, so not through
    kubernetes.core's client).
author:
  - polardb.stack developers (!UNKNOWN)
options:
  cluster:
    description: Name of the cluster; must match C(^[a-z][a-z0-9_-]{0,30}$).
    type: str
    required: true
  state:
    description:
      - V(query) changes nothing; V(paused) pauses the manager of O(cluster) (a pause already there is kept as it is);
        V(enabled) removes the pause.
    type: str
    choices: [query, enabled, paused]
    default: query
  by:
    description: Who pauses (kept in the pause, for people), for example the playbook and the controller.
    type: str
  reason:
    description: Why the manager is paused (kept in the pause, for people).
    type: str
  endpoints:
    description:
      - The client URLs of the etcd members (C(https://host:2379)). Tried in turn.
      - Exactly one of O(endpoints) and O(kubernetes) is required.
    type: list
    elements: str
  kubernetes:
    description: The Kubernetes API in etcd's place.
    type: dict
    suboptions:
      server:
        description: The API server's URL (C(https://host:port)), as the hosts reach it.
        type: str
        required: true
      namespace:
        description: The namespace of the keys' ConfigMaps and the leases' Leases.
        type: str
        required: true
      token_file:
        description: A file holding the service account token (bound to ClusterRole C(polardb-stack-ha-agent)).
        type: path
        required: true
      ca_file:
        description: The certificate (PEM) of the CA that signed the API server's.
        type: path
  namespace:
    description: The prefix of every key of the collection in etcd; the cluster's keys are under C(<namespace>/<cluster>/).
    type: str
    default: /polardb-stack
  ca_file:
    description: The etcd CA's certificate (PEM).
    type: path
  cert_file:
    description: The client certificate (PEM) etcd requires.
    type: path
  key_file:
    description: The client certificate's private key (PEM).
    type: path
  timeout:
    description: Seconds each request to one endpoint (or to the API server) may take; an endpoint that does not answer
      in time is skipped.
    type: float
    default: 2
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    support: full
    description: Reports what O(state) would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the pause before and after.
'''

EXAMPLES = r'''
- name: Pause the manager of cluster demo before a maintenance
  polardb.stack.cluster_manager:
    cluster: demo
    state: paused
    by: ansible-playbook on ctl1
    reason: storage maintenance
    endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379, https://10.0.0.13:2379]
    ca_file: /etc/polardb-stack/_etcd/ca.crt
    cert_file: /etc/polardb-stack/_etcd/node.crt
    key_file: /etc/polardb-stack/_etcd/node.key

- name: What the agents report
  polardb.stack.cluster_manager:
    cluster: demo
    endpoints: "{{ polardb_etcd_endpoints }}"
    ca_file: /etc/polardb-stack/_etcd/ca.crt
    cert_file: /etc/polardb-stack/_etcd/node.crt
    key_file: /etc/polardb-stack/_etcd/node.key
  register: ha

- name: The same on the Kubernetes API in etcd's place
  polardb.stack.cluster_manager:
    cluster: demo
    kubernetes:
      server: https://10.0.0.1:6443
      namespace: db-clusters
      token_file: /etc/polardb-stack/demo/ha-k8s.token
      ca_file: /etc/polardb-stack/demo/ha-k8s-ca.crt
  register: ha
'''

RETURN = r'''
cluster:
  description: What etcd holds for the cluster, and how etcd is.
  returned: always
  type: dict
  contains:
    revision:
      description: etcd's revision of the read.
      type: int
    members:
      description:
        - Per node, its agent's last report - C(role) (primary, replica, standby or down), C(running), C(timeline),
          C(lsn) (current, receive, replay), C(upstream), C(unit_active), C(error), C(conflict), C(updated) (epoch
          seconds) and C(age) (seconds since, by the clock of the host this module ran on).
        - A node missing here has no live agent (stopped, or its host silent for longer than the agent's lease).
      type: dict
      sample: {pdb1: {role: primary, timeline: 3, running: true, age: 0.4}}
    leader:
      description: The leader key - C(node), C(timeline), C(since) - held by the RW's agent; null when none holds it.
      type: dict
    paused:
      description: The pause - C(by), C(since), C(reason) - or null.
      type: dict
    etcd:
      description:
        - The etcd cluster - C(members) (name, id, URLs), C(endpoints) (per URL C(healthy), C(version), C(leader),
          C(raft_term), C(error)) and C(leader_agreed) (every endpoint that answered names the same leader).
        - C(label) names the store - C(etcd), or C(the Kubernetes API) with the API server as its one member and
          endpoint.
      type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.etcd import Etcd
from ansible_collections.polardb.stack.plugins.module_utils.k8s_kv import KubeKV, TokenApi
from ansible_collections.polardb.stack.plugins.module_utils.ha_manager import STATES, ensure_state
from ansible_collections.polardb.stack.plugins.module_utils.runner import fail_on_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type='str', required=True),
            state=dict(type='str', default='query', choices=list(STATES)),
            by=dict(type='str'),
            reason=dict(type='str'),
            endpoints=dict(type='list', elements='str'),
            kubernetes=dict(type='dict', options=dict(
                server=dict(type='str', required=True),
                namespace=dict(type='str', required=True),
                token_file=dict(type='path', required=True, no_log=False),
                ca_file=dict(type='path'),
            )),
            namespace=dict(type='str', default='/polardb-stack'),
            ca_file=dict(type='path'),
            cert_file=dict(type='path'),
            key_file=dict(type='path', no_log=False),
            timeout=dict(type='float', default=2),
        ),
        supports_check_mode=True,
        mutually_exclusive=[('endpoints', 'kubernetes')],
        required_one_of=[('endpoints', 'kubernetes')],
    )
    p = module.params
    kube = p['kubernetes']
    if kube:
        api = fail_on_error(module, TokenApi, kube['server'], kube['token_file'], ca_file=kube['ca_file'],
                            timeout=p['timeout'])
        etcd = KubeKV(api, kube['namespace'])
    elif not p['endpoints']:
        module.fail_json(msg='no etcd endpoint given (endpoints is empty): is the etcd group of the inventory empty?')
    else:
        etcd = fail_on_error(module, Etcd, p['endpoints'], timeout=p['timeout'], ca_file=p['ca_file'],
                             cert_file=p['cert_file'], key_file=p['key_file'])
    result = fail_on_error(module, ensure_state, etcd, p['namespace'], p['cluster'], p['state'], time.time(),
                           by=p['by'], reason=p['reason'], check_mode=module.check_mode)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
