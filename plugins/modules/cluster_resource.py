#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster_resource
short_description: Declares a PolarDB cluster in the Kubernetes API (a PolarDBCluster resource)
version_added: 0.4.0
description:
  - Creates, updates, reads or deletes a C(PolarDBCluster) (C(stack.polardb.io/v1alpha1)) - the cluster as declared in
    Kubernetes - and can wait until its status reaches a phase. The engines stay on their SAN hosts;
    C(playbooks/reconcile.yml) makes them what the resource says and writes its status.
  - Options in the module's terms (O(primary), O(replicas), O(nodes), O(instance_class), O(parameters), ...) rather than a
    raw manifest, so that a typo is refused by the module before the API server sees it; the API server's schema then
    checks the rest (WWIDs, names, counts).
  - Built on kubernetes.core's client, service and runner layers (connection options, server-side dry run in check
    mode, create or merge-patch, diff, waiter). Why not C(kubernetes.core.k8s) alone - a parameter removed from a map is
    kept by a merge patch; this module removes it, and it waits for the resource's own phase, which has no condition
    kubernetes.core knows.
  - Deleting a resource does not wipe anything by itself - the resource's finalizer keeps it until a reconcile removed the
    engines as O(deletion_policy) says (V(Retain) keeps every LUN's data).
author:
  - polardb.stack developers (!UNKNOWN)
extends_documentation_fragment:
  - polardb.stack.k8s_auth
  - polardb.stack.attributes
attributes:
  check_mode:
    support: full
    description: A server-side dry run - the API server validates the resource and changes nothing.
  diff_mode:
    support: full
    description: The spec before and after.
options:
  name:
    description: Name of the resource; the cluster's name on the hosts, with C(-) read as C(_).
    type: str
    required: true
  namespace:
    description: Namespace of the resource.
    type: str
    required: true
  state:
    description:
      - V(present) creates the resource or makes its spec say what the options say (options not given are kept);
        V(absent) deletes it (a resource reconciled once stays, held by its finalizer, until a reconcile removed its
        engines); V(query) only reads it; V(status) writes O(status) into its status (the reconciler's
        write; the spec options are ignored).
    type: str
    choices: [present, absent, query, status]
    default: present
  status:
    description:
      - With O(state=status), the status fields to write (a merge patch of the status subresource - fields not given
        are kept, a field set to null is removed), for example C(phase), C(rw), C(instances), C(lastOperation).
      - The live readings - C(heartbeat) and each instance's C(lagBytes) - do not count as a change; a converged
        cluster's reconcile writes them and reports no change.
    type: dict
  primary:
    description: Name of the node that should be the read-write node (on a running cluster, a different name is a switchover).
    type: str
  replicas:
    description: How many read-only replicas run (taken in the order of O(nodes) among the non-standby nodes).
    type: int
  nodes:
    description: Where the cluster may run - one entry per node, each with a LUN of its own.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the node.
        type: str
        required: true
      host:
        description: Address the controller reaches the node's host at.
        type: str
        required: true
      wwid:
        description: WWID of the node's LUN.
        type: str
        required: true
      port:
        description: Port of the engine on its host.
        type: int
      standby:
        description: A disaster-recovery standby (never chosen by a switchover unless named).
        type: bool
  instance_class:
    description: Instance class of every node.
    type: str
    aliases: [class]
  engine_version:
    description: Debian package version of the engine.
    type: str
  parameters:
    description: Engine parameters; the resource's map becomes exactly this one (a name left out is removed).
    type: dict
  storage_size:
    description: Size every node's LUN is grown to, for example V(20Gi).
    type: str
  deletion_policy:
    description: What deleting the resource does to the data - V(Retain) keeps every LUN's data, V(Wipe) erases them.
    type: str
    choices: [Retain, Wipe]
  labels:
    description: Labels of the resource (added or changed; others are kept).
    type: dict
  wait_phase:
    description: Wait until the status reaches this phase for the current generation of the spec (after a reconcile).
    type: str
    choices: [Running, Degraded, Interrupted, Failed]
  wait_timeout:
    description: How long to wait for O(wait_phase), in seconds.
    type: int
    default: 600
  wait_sleep:
    description: Seconds between two reads while waiting.
    type: int
    default: 2
notes:
  - The resource's definition is installed by C(playbooks/k8s_setup.yml) (CRD and RBAC).
seealso:
  - module: kubernetes.core.k8s
  - module: kubernetes.core.k8s_info
'''

EXAMPLES = r'''
- name: Declare cluster orders with two replicas
  polardb.stack.cluster_resource:
    name: orders
    namespace: databases
    primary: db-a1
    replicas: 2
    instance_class: medium
    parameters:
      work_mem: 16MB
    nodes:
      - {name: db-a1, host: 10.20.1.11, wwid: 3600a098038304437415d4b6a59684a51}
      - {name: db-a2, host: 10.20.1.12, wwid: 600a098038304437415d4b6a59684a52}
      - {name: db-b1, host: 10.20.2.11, wwid: 600a098038304437415d4b6a59684a53}

- name: Switch over to db-a2 once a reconcile ran
  polardb.stack.cluster_resource:
    name: orders
    namespace: databases
    primary: db-a2
    wait_phase: Running
    wait_timeout: 300

- name: Read it
  polardb.stack.cluster_resource:
    name: orders
    namespace: databases
    state: query
  register: orders
'''

RETURN = r'''
resource:
  description: The resource as the API server returned it (empty when it does not exist).
  returned: always
  type: dict
summary:
  description: Phase, RW, ready instances, and whether the status speaks of the current generation of the spec.
  returned: always
  type: dict
  sample: {exists: true, phase: Running, rw: db-a1, ready: 3/3, generation: 2, observed_generation: 2, current: true}
changes:
  description: The spec keys the run changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [primary, replicas]
method:
  description: What was done - create, update, delete, or none.
  returned: always
  type: str
duration:
  description: Seconds spent waiting for O(wait_phase).
  returned: when O(wait_phase) was given
  type: int
'''

import copy
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.runner import perform_action
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import K8sService
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.waiter import Waiter
from ansible_collections.polardb.stack.plugins.module_utils import k8s_resource
from ansible_collections.polardb.stack.plugins.module_utils.k8s_api import (
    API_VERSION, KIND, MERGE_PATCH, KubeApi, check, cluster_path)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError


def argument_spec():
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        name=dict(type='str', required=True),
        namespace=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent', 'query', 'status']),
        status=dict(type='dict'),
        primary=dict(type='str'),
        replicas=dict(type='int'),
        nodes=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            host=dict(type='str', required=True),
            wwid=dict(type='str', required=True),
            port=dict(type='int'),
            standby=dict(type='bool'),
        )),
        instance_class=dict(type='str', aliases=['class']),
        engine_version=dict(type='str'),
        parameters=dict(type='dict'),
        storage_size=dict(type='str'),
        deletion_policy=dict(type='str', choices=['Retain', 'Wipe']),
        labels=dict(type='dict'),
        wait_phase=dict(type='str', choices=['Running', 'Degraded', 'Interrupted', 'Failed']),
        wait_timeout=dict(type='int', default=600),
        wait_sleep=dict(type='int', default=2),
    )
    return spec


def read(svc, resource, name, namespace):
    found = svc.retrieve(resource, dict(metadata=dict(name=name, namespace=namespace)))
    return found.to_dict() if found else {}


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        client = get_api_client(module)
        svc = K8sService(client, module)
        resource = svc.find_resource(KIND, API_VERSION, fail=True)
        existing = read(svc, resource, p['name'], p['namespace'])
        result = dict(changed=False, method='none', changes=[])
        obj = existing
        if p['state'] == 'present':
            desired = k8s_resource.definition(p['name'], p['namespace'], k8s_resource.spec_from_options(p),
                                              labels=p['labels'])
            if not existing and not desired['spec'].get('nodes'):
                module.fail_json(msg='resource %s/%s does not exist: nodes and primary are needed to create it'
                                 % (p['namespace'], p['name']), **result)
            result['changes'] = k8s_resource.spec_changes(existing, desired) if existing else ['created']
            if not existing or result['changes']:
                body = k8s_resource.update_patch(existing, desired) if existing else desired
                body.update(apiVersion=API_VERSION, kind=KIND)
                done = perform_action(svc, body, dict(state='present'))
                obj = done.get('result') or obj
                result.update(changed=True, method=done.get('method'))
                if module._diff:
                    result['diff'] = dict(before=existing.get('spec') or {}, after=obj.get('spec') or {})
        elif p['state'] == 'status':
            if not existing:
                module.fail_json(msg='resource %s/%s does not exist: no status to write' % (p['namespace'], p['name']))
            changes = k8s_resource.status_changes(existing, p['status'] or {})
            result.update(changed=bool(changes), method='status', changes=changes)
            if module._diff:
                result['diff'] = dict(before=existing.get('status') or {}, after=p['status'] or {})
            if not module.check_mode and (changes or 'heartbeat' in (p['status'] or {})):
                api = KubeApi(client)
                obj = check(api.call('PATCH', cluster_path(p['namespace'], p['name'], status=True),
                                     dict(status=p['status']), content_type=MERGE_PATCH),
                            'writing the status of %s/%s' % (p['namespace'], p['name']), ok=(200,))
        # deleted already, held by its finalizer until a reconcile removed its engines: nothing more to do
        elif p['state'] == 'absent' and existing and not (existing.get('metadata') or {}).get('deletionTimestamp'):
            perform_action(svc, dict(apiVersion=API_VERSION, kind=KIND,
                                     metadata=dict(name=p['name'], namespace=p['namespace'])), dict(state='absent'))
            result.update(changed=True, method='delete', changes=['deleted'])
            if module._diff:
                result['diff'] = dict(before=existing.get('spec') or {}, after={})
            obj = {} if module.check_mode else read(svc, resource, p['name'], p['namespace'])
        if p['wait_phase'] and p['state'] != 'absent' and not module.check_mode:
            waiter = Waiter(client, resource,
                            lambda o: o is not None and k8s_resource.phase_reached(o.to_dict(), p['wait_phase']))
            ok, found, duration = waiter.wait(timeout=p['wait_timeout'], sleep=p['wait_sleep'],
                                              name=p['name'], namespace=p['namespace'])
            obj = found or obj
            result['duration'] = duration
            if not ok:
                module.fail_json(msg='%s/%s did not reach phase %s for generation %s in %ss (now: %s)'
                                 % (p['namespace'], p['name'], p['wait_phase'], (obj.get('metadata') or {}).get('generation'),
                                    p['wait_timeout'], k8s_resource.summary(obj)),
                                 resource=obj, summary=k8s_resource.summary(obj), **result)
        module.exit_json(resource=obj, summary=k8s_resource.summary(obj), **result)
    except CoreException as e:
        module.fail_json(msg='%s/%s: %s' % (p['namespace'], p['name'], api_message(e)))
    except PolarDBError as e:
        module.fail_json(msg=e.msg, **e.details)


def api_message(error):
    """The API server's own words (its Status message: every invalid field) rather than the JSON around them."""
    body = getattr(error.__cause__, 'body', None)
    try:
        status = json.loads(body)
        return 'the API server refused it (%s): %s' % (status.get('reason'), status['message'])
    except (TypeError, ValueError, KeyError):
        return '%s' % error


if __name__ == '__main__':
    main()
