"""The role argument specs (roles/*/meta/argument_specs.yml, issue 7 part 9).

Ansible checks a role's spec each time the role is entered, and ansible-doc
shows it. Here: every role has one; every entry point is a tasks file of the
role and every tasks_from the playbooks and roles use is an entry point; every
option has a description and a valid type; a default the spec shows is the one
in the defaults files; and every variable of roles/common/defaults/main.yml
that a role's tasks or templates use is an option of that role.
"""
from __future__ import absolute_import, division, print_function

import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(ROOT, 'roles')
ROLE_NAMES = sorted(os.listdir(ROLES))
TYPES = {'str', 'int', 'bool', 'list', 'dict', 'float', 'path', 'raw'}
VAR = re.compile(r'\bpolardb_[a-z0-9_]+\b')
# Defaults that roles/common/defaults/main.yml labels "Derived": computed from
# other options (which the specs list instead), not set by users.
DERIVED = {'polardb_tls_user_certs', 'polardb_tls_ca_cert', 'polardb_tls_cert', 'polardb_tls_key',
           'polardb_derived_parameters', 'polardb_effective_parameters', 'polardb_class_spec'}


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _spec(role):
    return _load(os.path.join(ROLES, role, 'meta', 'argument_specs.yml'))['argument_specs']


def _defaults(role):
    path = os.path.join(ROLES, role, 'defaults', 'main.yml')
    return _load(path) if os.path.exists(path) else {}


def _read(paths):
    text = ''
    for path in paths:
        with open(path) as f:
            text += f.read()
    return text


@pytest.mark.parametrize('role', ROLE_NAMES)
def test_every_option_has_a_description_and_a_type(role):
    spec = _spec(role)
    assert 'main' in spec
    for entry, data in spec.items():
        assert os.path.exists(os.path.join(ROLES, role, 'tasks', entry + '.yml')), (role, entry)
        assert data.get('short_description') and data.get('description'), (role, entry)
        for name, option in data.get('options', {}).items():
            where = '%s %s %s' % (role, entry, name)
            assert option.get('description'), where
            assert option.get('type') in TYPES, where
            assert (option['type'] == 'list') == ('elements' in option), where
            assert not (option.get('required') and 'default' in option), where
            if option.get('choices') and option.get('default') is not None:
                assert option['default'] in option['choices'], where


@pytest.mark.parametrize('role', ROLE_NAMES)
def test_a_default_the_spec_shows_is_the_role_default(role):
    defaults = dict(_defaults('common'), **_defaults(role))
    for entry, data in _spec(role).items():
        for name, option in data.get('options', {}).items():
            if 'default' in option and name in defaults:
                assert option['default'] == defaults[name], (role, entry, name)


@pytest.mark.parametrize('role', ROLE_NAMES)
def test_every_common_default_the_role_uses_is_an_option(role):
    used = set(VAR.findall(_read(glob.glob(os.path.join(ROLES, role, 'tasks', '*.yml'))
                                 + glob.glob(os.path.join(ROLES, role, 'templates', '*')))))
    options = set()
    for data in _spec(role).values():
        options |= set(data.get('options', {}))
    missing = (used & set(_defaults('common'))) - DERIVED - options
    assert not missing, '%s uses %s but its argument spec does not list them' % (role, sorted(missing))


def test_every_tasks_from_is_an_entry_point():
    # Ansible picks the spec by the literal tasks_from: "inspect.yml" would match
    # no entry point and silently skip the validation.
    files = glob.glob(os.path.join(ROOT, 'playbooks', '*.yml')) + glob.glob(os.path.join(ROLES, '*', 'tasks', '*.yml'))
    calls = re.findall(r'name:\s*polardb\.stack\.(\w+)\s*\n\s*tasks_from:\s*(\S+)', _read(files))
    assert len(calls) > 10
    for role, entry in calls:
        assert entry in _spec(role), 'tasks_from: %s of role %s is no entry point of its argument spec' % (entry, role)
