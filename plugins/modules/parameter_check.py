#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: parameter_check
short_description: Check engine parameters against the engine's own catalog
version_added: 0.1.0
description:
  - Checks every name and value of O(parameters) as the engine would, before
    anything is written - the name exists, the value parses for its type
    (C(bool), C(integer), C(real), C(string), C(enum)) with the units the
    engine accepts (C(128MB) for a parameter counted in 8kB blocks, C(5min)
    for a time), and the value converted to the parameter's unit lies within
    its C(min_val) .. C(max_val), or is one of its C(enumvals).
  - The catalog comes from, best first - the running engine of O(data_dir)
    (C(pg_settings), which also gives the current values, so each change is
    classified as needing a reload or a restart); the installed engine binary
    (C(postgres --describe-config)); the catalog shipped with the collection
    for O(engine_major) (generated from C(postgres --describe-config) and
    C(pg_settings) by C(make param-catalog)). O(catalog) forces one.
  - Names in O(reserved) or starting with one of O(reserved_prefixes) are
    refused. An unknown name with a dot (an extension's parameter, kept by
    the engine as a placeholder) is reported as a warning, not a problem.
  - Never changes anything and never fails because of a bad parameter - the
    problems are returned in RV(problems); it fails only when no catalog can
    be read.
  - String values are not checked beyond line breaks; check hooks of some
    strings (time zones, libraries to preload) are the engine's.
author:
  - polardb.stack developers (!UNKNOWN)
options:
  parameters:
    description: Parameter names and values, as they go into C(postgresql.conf).
    type: dict
    required: true
  reserved:
    description: Names that may not be set (managed elsewhere).
    type: list
    elements: str
    default: []
  reserved_prefixes:
    description: Prefixes of names that may not be set (for example V(ssl)).
    type: list
    elements: str
    default: []
  managed:
    description:
      - Names the configuration file sets besides O(parameters) (written by the
        collection itself, such as V(cluster_name)); they are not reported in
        RV(resets).
    type: list
    elements: str
    default: []
  engine_major:
    description: Major version of the engine, for the shipped catalog.
    type: str
    default: "15"
  catalog:
    description:
      - Where the catalog comes from. V(auto) - the first available of V(engine),
        V(binary), V(shipped).
    type: str
    default: auto
    choices: [auto, engine, binary, shipped]
extends_documentation_fragment:
  - polardb.stack.attributes
  - polardb.stack.attributes.read_only
  - polardb.stack.local_instance
notes:
  - Integers are parsed as the engine parses them (decimal, C(0x) hex, leading-zero
    octal, a fraction rounded); a fractional value with a unit is rounded to the
    next smaller unit first. Units are case-sensitive (C(MB), not C(mb)).
  - Booleans accept unique prefixes of C(true), C(false), C(yes), C(no), and
    C(on), C(off), C(1), C(0); enums are matched case-insensitively and an enum
    that has C(on)/C(off) also takes C(true)/C(false), C(yes)/C(no), C(1)/C(0).
  - Context C(postmaster) needs a restart, C(internal) cannot be set, any other
    context takes effect on a reload.
'''

EXAMPLES = r'''
- name: Check the parameters before anything is written
  polardb.stack.parameter_check:
    parameters: "{{ polardb_default_parameters | combine(polardb_parameters) }}"
    reserved: [listen_addresses, port]
    reserved_prefixes: [ssl]
    data_dir: /srv/polardb/demo/data
  register: params

- name: Refuse bad parameters
  ansible.builtin.assert:
    that: params.problems | length == 0
    fail_msg: "{{ params.problems | join('; ') }}"

- name: Restart only if a changed parameter needs it
  ansible.builtin.debug:
    msg: "restart needed: {{ params.restart_required }}"
'''

RETURN = r'''
problems:
  description: What is wrong, one sentence per parameter, naming it and the allowed values.
  returned: always
  type: list
  elements: str
  sample: ["shared_buffers='lots': not an integer (optionally with a unit: \"B\", \"kB\", \"MB\", \"GB\", \"TB\")"]
valid:
  description: True when there is no problem.
  returned: always
  type: bool
  sample: true
warnings_found:
  description: Parameters that could not be checked (extension parameters unknown to the engine).
  returned: always
  type: list
  elements: str
  sample: ["auto_explain.log_min_duration is not known to the engine (an extension parameter?); not checked"]
catalog:
  description: Where the catalog came from - C(source) (V(engine), V(binary), V(shipped)), C(version), C(notes).
  returned: always
  type: dict
  sample: {source: engine, version: "15.14 (Debian 15.14-0+deb12u1)", notes: []}
parameters:
  description:
    - Every parameter that passed, by lower-case name - C(value) (as given), C(normalised)
      (in the parameter's unit, as C(pg_settings.setting) shows it), C(vartype), C(unit),
      C(context), C(apply) (V(reload) or V(restart)) and C(change) (V(none), V(reload),
      V(restart) compared with the running engine; null without one).
  returned: always
  type: dict
  sample: {shared_buffers: {value: 128MB, normalised: 16384, vartype: integer, unit: 8kB,
           context: postmaster, apply: restart, change: none}}
resets:
  description:
    - With a running engine, the parameters it took from a configuration file that are
      neither in O(parameters) nor reserved nor managed, by lower-case name - what their
      return to the engine's default needs (V(reload) or V(restart)). A parameter removed
      from the inventory shows here until the engine runs without it.
  returned: always
  type: dict
  sample: {work_mem: reload}
pending_restart:
  description: The parameters the running engine says wait for a restart (C(pg_settings.pending_restart)).
  returned: always
  type: list
  elements: str
  sample: [shared_buffers]
restart_required:
  description: A parameter differs from the running engine's and needs a restart, or one waits for a restart.
  returned: always
  type: bool
  sample: false
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, fail_on_error
from ansible_collections.polardb.stack.plugins.module_utils.instance import from_params, local_argument_spec
from ansible_collections.polardb.stack.plugins.module_utils import params as pg_params


def check(module):
    p = module.params
    catalog, info = pg_params.load_catalog(from_params(CommandRunner(module), p), p['engine_major'], p['catalog'])
    result = pg_params.check_parameters(p['parameters'], catalog, p['reserved'], p['reserved_prefixes'], p['managed'])
    result['catalog'] = info
    return result


def main():
    argument_spec = local_argument_spec()
    argument_spec.update(
        parameters=dict(type='dict', required=True),
        reserved=dict(type='list', elements='str', default=[]),
        reserved_prefixes=dict(type='list', elements='str', default=[]),
        managed=dict(type='list', elements='str', default=[]),
        engine_major=dict(type='str', default='15'),
        catalog=dict(type='str', default='auto', choices=list(pg_params.CATALOG_SOURCES)),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    result = fail_on_error(module, check, module)
    for warning in result['warnings']:
        module.warn(warning)
    module.exit_json(changed=False, valid=not result['problems'], problems=result['problems'],
                     warnings_found=result['warnings'], catalog=result['catalog'],
                     parameters=result['parameters'], resets=result['resets'],
                     pending_restart=result['pending_restart'], restart_required=result['restart_required'])


if __name__ == '__main__':
    main()
