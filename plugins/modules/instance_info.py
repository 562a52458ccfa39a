#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: instance_info
short_description: Local facts of one engine instance, running or not
version_added: 0.1.0
description:
  - Reports the state of one data directory on the host the module runs on -
    whether it is initialised (C(PG_VERSION)), its control data
    (C(pg_controldata) - system identifier, cluster state, latest checkpoint),
    its signal file and, when the engine accepts connections on the local
    socket, what the engine says about itself (recovery, timeline, LSNs, WAL
    receiver, version, flavour).
  - Runs as root and drops to O(owner) for C(pg_controldata) and C(psql)
    (peer authentication on the unix socket); needs no password.
  - Works whether the engine runs or not; never changes anything.
  - Why not M(community.postgresql.postgresql_info) - it needs a running
    server and a login; this module also describes a stopped or absent
    instance from its files.
author:
  - polardb.stack developers (!UNKNOWN)
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.attributes.read_only
  - polardb.stack.local_instance
options:
  service:
    description:
      - The engine's systemd unit, for example C(polardb@demo.service); its state is returned in C(unit).
    type: str
notes:
  - The engine on O(socket_dir)/O(port) only counts as this instance when it
    serves O(data_dir) and has its system identifier; otherwise the instance
    is reported C(stopped) with C(connect_error) saying why.
  - Timeline - on a primary, the timeline of the current WAL file (the
    checkpoint's timeline lags after a promote); on a replica, C(received_tli)
    of the WAL receiver, else the timeline of the last restartpoint; when
    stopped, from C(pg_controldata) (the latest checkpoint's timeline, or the
    minimum recovery ending timeline when that is higher).
'''

EXAMPLES = r'''
- name: Look at the instance of cluster demo
  polardb.stack.instance_info:
    data_dir: /srv/polardb/demo/data
    port: 5432
  register: local

- name: Start the engine when it is initialised and down
  ansible.builtin.systemd_service:
    name: polardb@demo.service
    state: started
  when: local.instance.role == 'stopped'
'''

RETURN = r'''
instance:
  description: Facts of the instance.
  returned: always
  type: dict
  contains:
    data_dir:
      description: The data directory (absolute).
      type: str
      sample: /srv/polardb/demo/data
    initialized:
      description: C(PG_VERSION) is present.
      type: bool
      sample: true
    major_version:
      description: Content of C(PG_VERSION); null when not initialised.
      type: str
      sample: "15"
    system_identifier:
      description: Database system identifier (pg_controldata).
      type: str
      sample: "7312345678901234567"
    cluster_state:
      description: Database cluster state (pg_controldata).
      type: str
      sample: in production
    checkpoint_lsn:
      description: Latest checkpoint location (pg_controldata).
      type: str
      sample: 0/3000028
    checkpoint_timeline:
      description: Latest checkpoint's TimeLineID (pg_controldata).
      type: int
      sample: 1
    wal_segment_size_mb:
      description: WAL segment size in MB, fixed when the cluster was created (pg_controldata C(Bytes per WAL segment)).
      type: int
      sample: 16
    signal:
      description: V(replica) (PolarDB C(replica.signal)), V(standby), V(recovery) or null.
      type: str
      sample: standby
    running:
      description: The engine of this data directory accepts connections on the local socket.
      type: bool
      sample: true
    in_recovery:
      description: C(pg_is_in_recovery); null when not running.
      type: bool
      sample: false
    role:
      description: V(primary), V(replica) (in recovery), V(stopped) (initialised, not answering) or V(absent).
      type: str
      sample: primary
    timeline:
      description: Current timeline (see the notes for its source).
      type: int
      sample: 1
    lsn:
      description: C(current) (primary), C(receive) and C(replay) (replica); null when unknown.
      type: dict
      sample: {current: 0/3000148, receive: null, replay: null}
    upstream:
      description: The WAL receiver - C(host), C(port), C(status), C(slot); null without one.
      type: dict
      sample: {host: 10.213.77.11, port: 5432, status: streaming, slot: pdb2}
    server_version:
      description: C(server_version) setting; null when not running.
      type: str
      sample: "15.14 (Debian 15.14-0+deb12u1)"
    server_version_num:
      description: C(server_version_num) setting; null when not running.
      type: int
      sample: 150014
    flavour:
      description: V(polardb) when the engine has C(polar_version), else V(postgresql); null when not running.
      type: str
      sample: postgresql
    connect_error:
      description: Why an initialised instance counts as not running; null otherwise.
      type: str
      sample: null
    unit:
      description:
        - The systemd unit O(service) - C(name), C(enabled) (it starts at boot), C(active); null without
          O(service) or when C(systemctl) cannot tell.
      type: dict
      sample: {name: polardb@demo.service, enabled: true, active: true}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error
from ansible_collections.polardb.stack.plugins.module_utils.instance import from_params, local_argument_spec


def main():
    spec = local_argument_spec()
    spec['service'] = dict(type='str')
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    inst = from_params(CommandRunner(module), module.params)
    instance = fail_on_error(module, inst.info, module.params['service'])
    module.exit_json(changed=False, instance=instance)


if __name__ == '__main__':
    main()
