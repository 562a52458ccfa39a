#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: instance
short_description: One engine instance's data directory
version_added: 0.1.0
description:
  - Makes O(data_dir) an initialised data directory - C(initdb) for a
    V(primary), a base backup (C(pg_basebackup -X stream)) from O(source) for
    a V(replica) or V(standby), which then gets C(standby.signal).
  - A data directory that is already initialised is left alone (no change),
    whatever its role - promoting or demoting is not this module's job. Only
    its mode is set to 0700.
  - A non-empty directory without C(PG_VERSION), or a data directory of
    another cluster than O(expected_system_identifier), is refused unless
    O(allow_overwrite=true); then its content is discarded first (never while
    a postmaster runs on it).
  - Runs as root and drops to O(owner) for the engine commands. Passwords go
    through 0600 temporary files owned by O(owner) (C(initdb --pwfile), a
    C(PGPASSFILE) for C(pg_basebackup)), removed afterwards, also on failure;
    they never appear in a command line or in the results.
  - Configuration lives outside the data directory; the C(postgresql.conf)
    that initdb or the base backup leaves in it is not used. Replication
    settings are not written either (no C(-R)).
  - PolarDB shared-storage initialisation (C(polar-initdb.sh)) is not done by
    this module.
  - Why ours - the community.postgresql collection has no module that creates a data
    directory; C(initdb)/C(pg_basebackup) through M(ansible.builtin.command)
    would put secrets in argv and could not tell a foreign directory from ours.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  data_dir:
    description: The data directory. Missing parent directories are created (root, 0755).
    type: path
    required: true
  role:
    description:
      - V(primary) - initdb. V(replica) or V(standby) - base backup from O(source), then C(standby.signal).
    type: str
    required: true
    choices: [primary, replica, standby]
  superuser:
    description: Name of the superuser initdb creates.
    type: str
    default: postgres
  superuser_password:
    description: Password of O(superuser); required for O(role=primary).
    type: str
  source:
    description: Where a V(replica) or V(standby) takes its base backup from; required for those roles.
    type: dict
    suboptions:
      host:
        description: Host of the source (the RW).
        type: str
        required: true
      port:
        description: Port of the source.
        type: int
        default: 5432
      user:
        description: Replication user.
        type: str
        default: replicator
      password:
        description: Password of O(source.user).
        type: str
      slot:
        description: Physical replication slot on the source to stream WAL through (C(-S)); it must exist.
        type: str
      application_name:
        description: C(application_name) of the base backup's connections.
        type: str
      ssl_mode:
        description:
          - TLS of the base backup's connections (libpq C(sslmode)).
          - V(verify-full) checks that the source's certificate is signed by
            O(source.ca_cert) and names O(source.host).
        type: str
        default: verify-full
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file on the node (libpq C(sslrootcert)) that signed the source's certificate.
        type: path
  initdb_options:
    description: Further initdb options (after C(--auth-local=peer --auth-host=scram-sha-256)).
    type: list
    elements: str
    default: [--data-checksums, --encoding=UTF8, --locale=C.UTF-8]
  wal_segment_size_mb:
    description:
      - WAL segment size in MB given to initdb (C(--wal-segsize)) for V(primary).
        Omitted - initdb's default (16 MB), or what O(initdb_options) say.
      - The size is fixed when a cluster is created. A data directory made with another size
        is left as it is, with a warning; replicas take the size of their source.
      - A promotion copies the segment it ends in to the new timeline and syncs it to disk
        before the node accepts writes, so a smaller segment shortens a switchover's write gap.
    type: int
    choices: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
  allow_overwrite:
    description:
      - The named opt-in to discard the content of O(data_dir) when it is not
        empty and not a data directory, or holds another cluster than
        O(expected_system_identifier).
    type: bool
    default: false
  expected_system_identifier:
    description:
      - The system identifier the data directory must have when it is initialised.
        A different one fails (V(replica)/V(standby) - unless O(allow_overwrite), then
        it is rebuilt; V(primary) - always, initdb cannot make a given cluster).
      - For V(replica)/V(standby) the new base backup is checked too; a
        mismatch removes its files and fails.
    type: str
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.local_instance
attributes:
  check_mode:
    support: full
    description: Reports what would be done (RV(actions)) and changes nothing.
  diff_mode:
    support: full
    description: C(initialized) and C(system_identifier) before and after.
'''

EXAMPLES = r'''
- name: Initialise the RW's data directory
  polardb.stack.instance:
    data_dir: /srv/polardb/demo/data
    role: primary
    superuser_password: "{{ polardb_superuser_password }}"
  no_log: true

- name: Build a replica from the RW
  polardb.stack.instance:
    data_dir: /srv/polardb/demo/data
    role: replica
    expected_system_identifier: "{{ rw_facts.instance.system_identifier }}"
    source:
      host: 10.213.77.11
      port: 5432
      user: replicator
      password: "{{ polardb_replication_password }}"
      slot: pdb2
      application_name: pdb2
  no_log: true
'''

RETURN = r'''
instance:
  description: Facts of the instance after the run, as M(polardb.stack.instance_info) returns them.
  returned: always
  type: dict
  sample:
    data_dir: /srv/polardb/demo/data
    initialized: true
    major_version: "15"
    system_identifier: "7312345678901234567"
    cluster_state: shut down
    checkpoint_lsn: 0/14EEA58
    checkpoint_timeline: 1
    wal_segment_size_mb: 16
    signal: null
    running: false
    in_recovery: null
    role: stopped
    timeline: 1
    lsn: {current: null, receive: null, replay: null}
    upstream: null
    server_version: null
    server_version_num: null
    flavour: null
    connect_error: "psql: error: connection to server on socket ... failed: No such file or directory"
actions:
  description: What was done (in check mode, what would be done), for people.
  returned: always
  type: list
  elements: str
  sample: ["create /srv/polardb/demo/data (0700, postgres)", "initdb -D /srv/polardb/demo/data -U postgres (--data-checksums)"]
wal_segment_size_mb:
  description: The data directory's WAL segment size in MB (pg_controldata); null in check mode before initdb.
  returned: always
  type: int
  sample: 4
warning:
  description: Set when the data directory was made with another WAL segment size than O(wal_segment_size_mb).
  returned: when it differs
  type: str
executed_commands:
  description: The command lines run on the host to inspect and build the data directory (no passwords in them).
  returned: always
  type: list
  elements: str
  sample:
    - >-
      setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/initdb
      -D /srv/polardb/demo/data -U postgres --pwfile=/tmp/polardb-initdb-x1y2
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error
from ansible_collections.polardb.stack.plugins.module_utils.instance import (
    DEFAULT_INITDB_OPTIONS, WAL_SEGMENT_SIZES_MB, from_params, local_argument_spec)


def run(module):
    p = module.params
    runner = CommandRunner(module)

    def at(r):
        return from_params(r, p)

    result = at(runner).ensure(
        p['role'], superuser=p['superuser'], superuser_password=p['superuser_password'],
        source=p['source'], initdb_options=p['initdb_options'],
        allow_overwrite=p['allow_overwrite'],
        expected_system_identifier=p['expected_system_identifier'],
        wal_segment_size_mb=p['wal_segment_size_mb'], check_mode=module.check_mode)
    if result.get('warning'):
        module.warn(result['warning'])
    # The report's own commands (pg_controldata, the status query) are not listed.
    result['instance'] = at(CommandRunner(module)).info()
    result['executed_commands'] = runner.executed
    return result


def main():
    argument_spec = local_argument_spec()
    argument_spec.update(
        role=dict(type='str', required=True, choices=['primary', 'replica', 'standby']),
        superuser=dict(type='str', default='postgres'),
        superuser_password=dict(type='str', no_log=True),
        source=dict(type='dict', options=dict(
            host=dict(type='str', required=True),
            port=dict(type='int', default=5432),
            user=dict(type='str', default='replicator'),
            password=dict(type='str', no_log=True),
            slot=dict(type='str'),
            application_name=dict(type='str'),
            ssl_mode=dict(type='str', default='verify-full',
                          choices=['allow', 'disable', 'prefer', 'require', 'verify-ca', 'verify-full']),
            ca_cert=dict(type='path'),
        )),
        initdb_options=dict(type='list', elements='str', default=list(DEFAULT_INITDB_OPTIONS)),
        wal_segment_size_mb=dict(type='int', choices=list(WAL_SEGMENT_SIZES_MB)),
        allow_overwrite=dict(type='bool', default=False),
        expected_system_identifier=dict(type='str'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[
            ('role', 'primary', ['superuser_password']),
            ('role', 'replica', ['source']),
            ('role', 'standby', ['source']),
        ],
        supports_check_mode=True,
    )
    result = fail_on_error(module, run, module)
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
