# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: reconcile_plan
author: polardb.stack developers (!UNKNOWN)
version_added: 0.4.0
short_description: What a reconcile of a PolarDBCluster does, and the status the engines give it
description:
  - From a C(PolarDBCluster) resource (as M(polardb.stack.cluster_resource) returns it) and the topology the engines
    report (the C(cluster) result of M(polardb.stack.cluster_info)), the lifecycle operations that make the engines
    what the resource says, in the order they run, and what stops the reconcile before any change.
  - A change is what the spec says differently from C(status.applied) (what the last successful reconcile made true),
    so an automatic failover is not undone; a new C(spec.primary) is a switchover.
  - Operations not in O(supported) are refused, naming the playbook that does them.
options:
  _input:
    description: The resource.
    type: dict
    required: true
  topology:
    description: The C(cluster) result of M(polardb.stack.cluster_info).
    type: dict
    required: true
  resume:
    description:
      - Whether the step of an earlier run that did not finish (the status's C(lastOperation) says C(Running) or
        C(Interrupted)) comes first; false for the plan made again after this run's steps.
    type: bool
    default: true
  ran:
    description:
      - The steps this run made (its C(run)), for the plan made again after them - what they made true (the new
        primary, parameters, class) is no longer a change, C(status.applied) being written only at the end of the run.
    type: list
    elements: dict
  supported:
    description:
      - The operations this reconcile runs itself; by default those C(playbooks/reconcile.yml) runs (C(create_cluster), C(add_node),
        C(remove_node), C(switchover), C(refresh_params), C(scale)).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Plan the reconcile
  ansible.builtin.set_fact:
    plan: "{{ resource | polardb.stack.reconcile_plan(polardb_topology) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    steps:
      description: C({operation, node, reason}) in the order to run them.
      type: list
      elements: dict
    refused:
      description: Why the reconcile cannot go on (empty when it can).
      type: list
      elements: str
    run:
      description:
        - The steps this run makes - every step up to the first removal included (the removed node stays in the run's
          inventory); empty when something is refused.
      type: list
      elements: dict
    lines:
      description: The plan as a person reads it - a line per step (C(next run:) before those left for the next run,
        C(nothing to change) without any), then C(refused:) and each reason.
      type: list
      elements: str
    deleting:
      description:
        - Whether the resource was deleted (C(metadata.deletionTimestamp)) - the only step is then C(destroy_cluster)
          (with C(wipe) from C(spec.deletionPolicy)), while its finalizer C(stack.polardb.io/engines) holds it.
      type: bool
    finalizers:
      description:
        - The resource's C(metadata.finalizers) as the reconcile leaves them - ours added to a live resource, removed
          from a deleted one once its engines are removed; null when they are right already.
      type: list
      elements: str
    observed:
      description: The status fields the engines decide - C(phase), C(rw), C(ready), C(instances).
      type: dict
    applied:
      description: What the spec makes true once every step ran (the next C(status.applied)).
      type: dict
"""


# ansible-core imports every filter file of a collection in each forked worker that
# templates any one of its filters: the domain module is imported when a filter is called.
def reconcile_status(resource, result, now, run=None, started=None, ran=None):
    from ansible_collections.polardb.stack.plugins.module_utils import reconcile
    return reconcile.status_patch(resource, result, now, run=run, started=started, ran=ran or ())


def reconcile_progress(result, operations, run, started):
    from ansible_collections.polardb.stack.plugins.module_utils import reconcile
    return reconcile.progress_patch(result, operations, run, started)


def reconcile_interrupted(resource, now, reason):
    from ansible_collections.polardb.stack.plugins.module_utils import reconcile
    return reconcile.interrupted_patch(resource, now, reason)


def reconcile_plan(resource, topology, supported=None, resume=True, ran=None):
    from ansible_collections.polardb.stack.plugins.module_utils import reconcile
    result = reconcile.plan(resource, topology, supported=reconcile.RUN_BY_RECONCILE if supported is None else supported,
                            resume=resume, ran=ran or ())
    result['observed'] = reconcile.observed(resource, topology)
    result['applied'] = reconcile.applied_of(resource.get('spec') or {})
    return result


class FilterModule(object):
    def filters(self):
        return {'reconcile_plan': reconcile_plan, 'reconcile_status': reconcile_status,
                'reconcile_progress': reconcile_progress, 'reconcile_interrupted': reconcile_interrupted}
