#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: switchover
short_description: Move the RW role to a streaming replica with no loss and a sub-second write outage
version_added: 0.1.0
description:
  - Runs on the host of the current RW. Hands the RW role to O(target), a
    replica streaming from this RW, in one module run, so that the per-task
    overhead of Ansible stays outside the time writes are unavailable.
  - Checks first, before any change - the local engine runs and is not in
    recovery; the target is reachable, in recovery, of the same system
    identifier, streams from this RW (a streaming walsender of this RW serves
    the target's slot or its application_name), lags at most O(max_lag_bytes)
    and its login user may execute C(pg_promote). A lagging, stopped or foreign
    target is refused and nothing changes.
  - Then - C(CHECKPOINT) on the local engine, again while the last one took
    more than 0.1 s, at most 3 times (before the window; under load what a slow
    checkpoint leaves dirty would otherwise be written by the shutdown
    checkpoint, inside the window); wait until the target replayed up to the local
    flush position of that moment (before the window too - under load the
    replay may lag; a target that does not get there within O(catchup_timeout)
    is refused and nothing changes); stop the local engine (O(stop_command), a fast
    shutdown - the walsenders send all WAL including the shutdown checkpoint to
    the connected standbys before the engine exits); the stop runs in the
    background while C(global/pg_control) is read every 2 ms, and once it says
    C(shut down) (written by the shutdown checkpoint, after the last backend
    ended) the checkpoint's location is taken from it, without waiting for the
    engine to exit (when the stop ends first, C(pg_controldata) tells, and the
    state must be C(shut down)); poll the target every 10 ms, over the
    connection opened for the checks, until it has replayed past that record
    (everything the old RW ever acknowledged is then on the target);
    C(SELECT pg_promote(false\)) on the target, then poll
    C(pg_is_in_recovery()) every 10 ms until it is false, asking again every
    30 ms (a request that reaches the target while its startup process goes to
    sleep for C(wal_retrieve_retry_interval) is seen only when it wakes up; a
    second one wakes it; C(pg_promote(true\)) would look only every 100 ms).
  - After the window - wait for the stop to end and check with
    C(pg_controldata) that the engine is shut down at that checkpoint (a
    warning otherwise); create O(target_slots) on the new RW.
  - If the target does not catch up within O(catchup_timeout), or the promote
    fails while the target is still in recovery, the local engine is started
    again (O(start_command)) as the RW and the module fails saying so; nothing
    was lost. If the promote fails and the target does not answer, the old RW
    is left stopped (two RWs are worse than none) and the module fails saying
    what to check. The old RW is never restarted once the target is RW.
  - Re-running after a completed switchover changes nothing - when the local
    engine is in recovery, or stopped after a clean shutdown as RW whose
    shutdown checkpoint the target replayed before leaving the old timeline
    (read from the target's timeline history), and the target is the RW of the
    same system, the module returns C(changed=false), C(already switched).
  - The old RW is left stopped. Rejoining it as a replica of the new RW
    (C(standby.signal), C(replication.conf)), re-pointing the other replicas
    and the replication slots on the new RW are the playbook's job, after
    writes have resumed. The P(polardb.stack.switchover_target#filter) filter
    picks the target from M(polardb.stack.cluster_info) before anything changes.
  - Why not C(pg_ctl promote) from a playbook, or Patroni - a playbook pays
    Ansible's task overhead inside the window and does not wait for the
    shutdown checkpoint on the target (zero loss); Patroni needs a DCS and takes
    over a second per switchover.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  target:
    description: The replica that becomes the RW.
    type: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the node; its C(application_name) on this RW (a walsender
            serving it is looked up by the target's slot, then by this name).
        type: str
        required: true
      host:
        description: Address of the target, reachable from this host over TCP.
        type: str
        required: true
      port:
        description: Port of the target's engine.
        type: int
        default: 5432
  node_name:
    description:
      - Name of this (the current RW's) node, for the result (C(old_rw)) and
        messages. Playbooks pass C(inventory_hostname).
      - Defaults to the host name.
    type: str
  service:
    description:
      - The systemd unit of the local engine, for example C(polardb@demo.service).
      - Required unless both O(stop_command) and O(start_command) are given.
    type: str
  stop_command:
    description:
      - For special setups only - the command (argv list) that stops the local
        engine with a fast shutdown and returns once it has exited.
      - Defaults to C(systemctl stop <service>) (the unit has C(KillSignal=SIGINT)).
    type: list
    elements: str
  start_command:
    description:
      - For special setups only - the command (argv list) that starts the local
        engine again after a failed switchover.
      - Defaults to C(systemctl start <service>).
    type: list
    elements: str
  max_lag_bytes:
    description: The target must be at most this many bytes behind (RW current LSN minus target replay LSN) before anything starts.
    type: int
    default: 16777216
  catchup_timeout:
    description:
      - Seconds the target may take to replay up to the local flush position before the stop (else refused, nothing
        changed), and again, after the stop, to replay past the shutdown checkpoint (else the old RW is started again).
    type: float
    default: 30
  promote_timeout:
    description: Seconds the promotion may take (polled after C(pg_promote(false\))).
    type: int
    default: 60
  target_slots:
    description:
      - Physical replication slots to create on the new RW once it is promoted
        (those it lacks), for the nodes that will follow it - so that they find
        their slot when they are re-pointed. A failure is a warning.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.local_instance
  - polardb.stack.connection
attributes:
  check_mode:
    support: full
    description: Runs every check, reports what would happen in C(planned), changes nothing.
  diff_mode:
    support: none
    description: No diff; C(executed) lists the steps.
notes:
  - The login options are for the target (over TCP); the local engine is
    reached through its unix socket as O(owner), without a password.
  - The session to the target bounds its statements by O(promote_timeout)
    plus O(connect_timeout) plus 5 seconds, not by O(connect_timeout) alone.
  - C(timings.write_unavailable_s) runs from the stop command to the end of the
    promote. Clients reconnect on top of that (a multi-host DSN with
    C(target_session_attrs=read-write) finds the new RW).
seealso:
  - module: polardb.stack.cluster_info
'''

EXAMPLES = r'''
- name: Discover the topology
  polardb.stack.cluster_info:
    nodes: "{{ polardb_nodes }}"
    login_password: "{{ polardb_superuser_password }}"
    ca_cert: /etc/polardb-stack/demo/ca.crt
  register: topo
  no_log: true

- name: Choose the target (or refuse a named one) before anything changes
  ansible.builtin.set_fact:
    switch: "{{ topo.cluster | polardb.stack.switchover_target(polardb_switchover_target | default(none)) }}"

- name: Refuse early
  ansible.builtin.assert:
    that: switch.error is none
    fail_msg: "{{ switch.error }}"

- name: Switch over (on the current RW's host)
  polardb.stack.switchover:
    target: "{{ switch.node }}"
    node_name: "{{ topo.cluster.rw }}"
    data_dir: /srv/polardb/demo/data
    service: polardb@demo.service
    port: 5432
    login_password: "{{ polardb_superuser_password }}"
    ca_cert: /etc/polardb-stack/demo/ca.crt
  delegate_to: "{{ topo.cluster.rw }}"
  register: sw

- name: Show the window
  ansible.builtin.debug:
    msg: "{{ sw.new_rw }} is RW on timeline {{ sw.timeline }}; writes paused {{ sw.timings.write_unavailable_s }} s"
'''

RETURN = r'''
msg:
  description: What happened, for people.
  returned: always
  type: str
  sample: "switched over from pdb1 to pdb2: writes unavailable 0.079 s, nothing lost (the target replayed past the shutdown checkpoint 0/5000028)"
old_rw:
  description: Name of this node (O(node_name)).
  returned: always
  type: str
  sample: pdb1
new_rw:
  description: Name of the RW after the run (the target); null when nothing was switched.
  returned: always
  type: str
  sample: pdb2
shutdown_checkpoint_lsn:
  description: Location of the old RW's shutdown checkpoint record (where its WAL ends).
  returned: always
  type: str
  sample: 0/5000028
target_replay_lsn:
  description: Replay LSN of the target when it had caught up (in check mode, at the check).
  returned: always
  type: str
  sample: 0/50000A0
timeline:
  description: Timeline of the new RW after the promote (of the RW, when already switched); null in check mode.
  returned: always
  type: int
  sample: 2
lag_bytes:
  description: Lag of the target at the check, in bytes.
  returned: always
  type: int
  sample: 0
timings:
  description:
    - Seconds - C(checkpoint_s) (all rounds; C(checkpoints) is their number) and C(precatchup_s) (before the
      window), C(stop_s) (until pg_control said C(shut down), or the stop ended), C(controldata_s) (0 when
      pg_control told), C(catchup_s), C(promote_s) (C(promote_requests) is how many were sent),
      C(write_unavailable_s) (stop to promoted) and C(total_s) (the whole run, checks included). Keys of steps
      not run are absent.
  returned: always
  type: dict
  sample: {checkpoint_s: 0.021, checkpoints: 1, precatchup_s: 0.002, stop_s: 0.027, controldata_s: 0.0, catchup_s: 0.001, promote_s: 0.051,
           promote_requests: 2, write_unavailable_s: 0.079, total_s: 0.31}
executed:
  description: The steps run, checks included (no secrets).
  returned: always
  type: list
  elements: str
  sample: ["check: local engine (pg_controldata, status query on /var/run/postgresql port 5432)",
           "check: target pdb2 status", "CHECKPOINT on the local engine",
           "wait for pdb2 to replay up to 0/4FFF000 (before the stop)", "stop: systemctl stop polardb@demo.service",
           "pg_control: shut down, checkpoint at 0/5000028 (the engine still exits)",
           "wait for pdb2 to replay past 0/5000028",
           "pg_promote(false) on pdb2, then poll until it left recovery (at most 60 s)",
           "pg_controldata after the stop: shut down, checkpoint at 0/5000028", "slots on pdb2: pdb1, pdb3"]
slots_created:
  description: The slots of O(target_slots) created on the new RW (it lacked them).
  returned: when the switchover happened in this run
  type: list
  elements: str
  sample: [pdb1, pdb3]
planned:
  description: In check mode, the steps that would run.
  returned: check mode, when a switchover would happen
  type: list
  elements: str
old_rw_writable:
  description:
    - On failure, whether the old RW takes writes - V(true) it was not stopped, or was started again (the switchover did
      not happen); V(false) it was stopped (whether the target is RW, the message says); V(null) it was not found running
      as the RW.
  returned: on failure
  type: bool
  sample: true
warning:
  description: Something odd that did not stop the switchover (for example pg_promote's answer was lost but the target is RW).
  returned: when there is one
  type: str
'''

import signal
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils import sql
from ansible_collections.polardb.stack.plugins.module_utils.instance import from_params, local_argument_spec
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error
from ansible_collections.polardb.stack.plugins.module_utils.switchover import (
    DEFAULT_MAX_LAG_BYTES, Switchover)


def build(module):
    p = module.params
    target = p['target']
    stop = p['stop_command'] or ['systemctl', 'stop', p['service']]
    start = p['start_command'] or ['systemctl', 'start', p['service']]
    statement_timeout_ms = (p['promote_timeout'] + p['connect_timeout'] + 5) * 1000

    def connect():
        return sql.connect(target['host'], target['port'], p['login_user'], p['login_password'],
                           p['login_db'], p['connect_timeout'], 'polardb.stack switchover',
                           statement_timeout_ms=statement_timeout_ms, libpq=sql.libpq_params(p))

    runner = CommandRunner(module)
    instance = from_params(runner, p)
    return Switchover(instance, runner, connect, target, stop, start,
                      node_name=p['node_name'] or socket.gethostname().split('.')[0],
                      max_lag_bytes=p['max_lag_bytes'], catchup_timeout=p['catchup_timeout'],
                      promote_timeout=p['promote_timeout'], target_slots=p['target_slots'],
                      check_mode=module.check_mode)


def main():
    argument_spec = dict(
        target=dict(type='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            host=dict(type='str', required=True),
            port=dict(type='int', default=5432),
        )),
        node_name=dict(type='str'),
        service=dict(type='str'),
        stop_command=dict(type='list', elements='str'),
        start_command=dict(type='list', elements='str'),
        max_lag_bytes=dict(type='int', default=DEFAULT_MAX_LAG_BYTES),
        catchup_timeout=dict(type='float', default=30),
        promote_timeout=dict(type='int', default=60),
        target_slots=dict(type='list', elements='str', default=[]),
    )
    argument_spec.update(local_argument_spec())
    argument_spec.update(sql.connection_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[('service', 'stop_command'), ('service', 'start_command')],
        supports_check_mode=True,
    )
    sql.ensure_driver(module)
    # Once writes have stopped, the run must end with a promoted target or a
    # restarted old RW, even if the controller goes away (its SSH session hangs up).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    result = fail_on_error(module, build(module).run)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
