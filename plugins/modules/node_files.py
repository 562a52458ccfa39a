#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: node_files
short_description: A node's directories and configuration files, in one module run
version_added: 0.2.0
description:
  - Brings every directory of O(directories) and every file of O(files) to its owner, group and mode, and every file to
    its content (written atomically - a temporary file with the final owner and mode, synced, then renamed in place)
    when it differs. Directories are handled first, in order.
  - Why not M(ansible.builtin.template), M(ansible.builtin.copy) and M(ansible.builtin.file) - each is one SSH round trip
    per file, about ten per node for the engine's configuration, and a converge of a cluster that is already right
    should cost a handful of round trips. The caller renders the files on the controller (for example with the
    C(ansible.builtin.template) lookup) and this module only compares and writes what differs, in one run per host.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  directories:
    description: Directories to create when missing, with their owner, group and mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner (user name).
        type: str
        default: root
      group:
        description: Group (name).
        type: str
        default: root
      mode:
        description: Mode, an octal string such as V(0750).
        type: str
        required: true
  files:
    description: Files with their content, owner, group and mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist (or be in O(directories)).
        type: path
        required: true
      content:
        description: The whole text of the file.
        type: str
        required: true
      owner:
        description: Owner (user name).
        type: str
        default: root
      group:
        description: Group (name).
        type: str
        default: root
      mode:
        description: Mode, an octal string such as V(0640).
        type: str
        required: true
  sensitive_files:
    description:
      - Files whose content is secret (a private key, a password file) - as O(files), but their content is never
        logged nor shown in a diff. Written after O(files).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist (or be in O(directories)).
        type: path
        required: true
      content:
        description: The whole text of the file.
        type: str
        required: true
      owner:
        description: Owner (user name).
        type: str
        default: root
      group:
        description: Group (name).
        type: str
        default: root
      mode:
        description: Mode, an octal string such as V(0600).
        type: str
        required: true
extends_documentation_fragment:
  - polardb.stack.attributes
attributes:
  check_mode:
    support: full
    description: Reports what would change (C(actions) start with "would"); writes nothing.
  diff_mode:
    support: full
    description: Before and after of every file of O(files) whose content changes.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
'''

EXAMPLES = r'''
- name: The engine's configuration directory and files, in one run
  polardb.stack.node_files:
    directories:
      - {path: /etc/polardb-stack/demo, owner: postgres, group: postgres, mode: "0750"}
    files:
      - path: /etc/polardb-stack/demo/postgresql.conf
        content: "{{ lookup('ansible.builtin.template', 'postgresql.conf.j2') }}"
        owner: postgres
        group: postgres
        mode: "0640"
    sensitive_files:
      - path: /etc/polardb-stack/demo/server.key
        content: "{{ lookup('ansible.builtin.file', 'secrets/demo/tls/pdb1.key') }}"
        owner: postgres
        group: postgres
        mode: "0600"
  register: demo_files
'''

RETURN = r'''
changed_paths:
  description: The paths created, written, or whose owner or mode changed (would change, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/polardb-stack/demo/postgresql.conf]
actions:
  description: What was done, in order.
  returned: always
  type: list
  elements: str
  sample: ["write /etc/polardb-stack/demo/postgresql.conf"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.node_files import NodeFiles
from ansible_collections.polardb.stack.plugins.module_utils.runner import fail_on_error


def file_options(no_log):
    return dict(
        path=dict(type='path', required=True),
        content=dict(type='str', required=True, no_log=no_log),
        owner=dict(type='str', default='root'),
        group=dict(type='str', default='root'),
        mode=dict(type='str', required=True),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                owner=dict(type='str', default='root'),
                group=dict(type='str', default='root'),
                mode=dict(type='str', required=True),
            )),
            files=dict(type='list', elements='dict', default=[], options=file_options(no_log=False)),
            sensitive_files=dict(type='list', elements='dict', default=[], options=file_options(no_log=True)),
        ),
        supports_check_mode=True,
    )
    p = module.params
    files = p['files'] + [dict(spec, secret=True) for spec in p['sensitive_files']]
    result = fail_on_error(module, NodeFiles(p['directories'], files, check_mode=module.check_mode).run)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
