# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's main() as Ansible does, for the module tests: arguments
in, exit_json / fail_json out, host commands answered by a fake."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


@contextlib.contextmanager
def module_args(args):
    """The module's arguments, as ansible-core hands them over."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        @contextlib.contextmanager
        def patch_module_args(a):
            old = basic._ANSIBLE_ARGS
            basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': a}))
            try:
                yield
            finally:
                basic._ANSIBLE_ARGS = old
    with patch_module_args(args):
        yield


class ModuleExit(Exception):
    """How a module run ended: ``failed``, its ``result`` and the ``warnings`` it raised."""

    def __init__(self, failed, result):
        super(ModuleExit, self).__init__(result.get('msg'))
        self.failed = failed
        self.result = result
        self.warnings = []


def run_module(monkeypatch, main, args, commands=None):
    """Run ``main()`` with ``args``; ``commands`` (run_command / get_bin_path) answers host commands."""
    warnings = []

    def exit_json(module, **result):
        raise ModuleExit(False, result)

    def fail_json(module, **result):
        raise ModuleExit(True, result)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, w: warnings.append(w))
    if commands is not None:
        monkeypatch.setattr(basic.AnsibleModule, 'run_command',
                            lambda module, argv, **kw: commands.run_command(argv, **kw))
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda module, name, **kw: commands.get_bin_path(name))
    with module_args(args):
        with pytest.raises(ModuleExit) as e:
            main()
    e.value.warnings = warnings
    return e.value
