"""The AWX / Automation Controller surveys in docs/awx/surveys/ (docs/awx.md).

Each file is a job template survey_spec that AWX's API accepts (the checks of
its JobTemplateSurveySpec view, repeated here), asks for variables its
playbook actually reads, and every lifecycle playbook in playbooks/ has one.
Surveys for playbooks that do not exist yet are allowed; their variables are
checked once the playbook is there.
"""
from __future__ import absolute_import, division, print_function

import glob
import json
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SURVEYS = os.path.join(ROOT, 'docs', 'awx', 'surveys')
PLAYBOOKS = os.path.join(ROOT, 'playbooks')
ROLES = os.path.join(ROOT, 'roles')
JOB_TEMPLATES = os.path.join(ROOT, 'docs', 'awx', 'job_templates.yml')

# playbooks that are not lifecycle operations: no job template, no survey
# (fleet runs the others per cluster; in AWX a workflow job template does that;
# k8s_setup installs the CRD and RBAC once, as a Kubernetes administrator, not
# as the service account AWX's jobs run as)
NOT_LIFECYCLE = {'dsn', 'fleet', 'k8s_setup'}

# AWX's JobTemplateSurveySpec.ALLOWED_TYPES: question type -> type of a non-empty default
ALLOWED_TYPES = {
    'text': str,
    'textarea': str,
    'password': str,
    'multiplechoice': str,
    'multiselect': str,
    'integer': int,
    'float': float,
}
QUESTION_KEYS = {'question_name', 'question_description', 'required', 'type', 'variable',
                 'min', 'max', 'default', 'choices', 'new_question'}
CHOICE_TYPES = ('multiplechoice', 'multiselect')
BOOLEAN_CHOICES = ['false', 'true']

# The variables each survey asks for: what docs/awx.md documents per playbook.
EXPECTED_VARIABLES = {
    'create_cluster': ['cluster', 'polardb_storage_force'],
    'status': ['cluster'],
    'destroy_cluster': ['cluster', 'confirm_destroy', 'wipe'],
    'switchover': ['cluster', 'target', 'polardb_switchover_max_lag_bytes'],
    'failover': ['cluster', 'force', 'polardb_failover_unfenced'],
    'rebuild_node': ['cluster', 'node', 'source'],
    'refresh_params': ['cluster', 'polardb_restart_strategy'],
    'restart': ['cluster', 'node', 'polardb_restart_strategy'],
    'minor_upgrade': ['cluster', 'version', 'polardb_allow_downgrade', 'polardb_restart_strategy'],
    'scale': ['cluster', 'polardb_class', 'polardb_restart_strategy'],
    'add_node': ['cluster', 'node'],
    'remove_node': ['cluster', 'node', 'wipe'],
    'expand_storage': ['cluster', 'size'],
    'migrate_node': ['cluster', 'node', 'to_host', 'wipe'],
    'ha': ['cluster', 'state', 'reason'],
    'reconcile': ['cluster'],
}
# yes/no questions: multiple choice "false"/"true" (the playbooks read them with | bool)
BOOLEAN_VARIABLES = {'polardb_storage_force', 'wipe', 'force', 'polardb_failover_unfenced', 'polardb_allow_downgrade'}


def survey_names():
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(SURVEYS, '*.json')))


def lifecycle_playbooks():
    names = (os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(PLAYBOOKS, '*.yml')))
    return sorted(n for n in names if n not in NOT_LIFECYCLE)


def load_survey(name):
    with open(os.path.join(SURVEYS, name + '.json')) as f:
        return json.load(f)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def awx_spec_errors(spec):
    """What AWX's API (POST .../survey_spec/) refuses, plus what would make a
    question useless at launch (a default outside its own bounds or choices)."""
    errors = []
    for field, kind in (('name', str), ('description', str), ('spec', list)):
        if field not in spec:
            errors.append("field '%s' is missing from the survey spec" % field)
        elif not isinstance(spec[field], kind):
            errors.append("field '%s' must be a %s" % (field, kind.__name__))
    if errors:
        return errors
    if not spec['spec']:
        return ["'spec' has no questions"]
    seen = set()
    for idx, q in enumerate(spec['spec']):
        where = 'question %d' % idx
        if not isinstance(q, dict):
            errors.append('%s is not an object' % where)
            continue
        where = 'question %d (%s)' % (idx, q.get('variable'))
        unknown = set(q) - QUESTION_KEYS
        if unknown:
            errors.append('%s: unknown keys %s' % (where, sorted(unknown)))
        for field in ('type', 'question_name', 'question_description', 'variable'):
            if not isinstance(q.get(field), str) or not q.get(field):
                errors.append('%s: %r must be a non-empty string' % (where, field))
        if not isinstance(q.get('required'), bool):
            errors.append("%s: 'required' must be a boolean" % where)
        if 'new_question' in q and not isinstance(q['new_question'], bool):
            errors.append("%s: 'new_question' must be a boolean" % where)
        variable = q.get('variable')
        if isinstance(variable, str):
            if not re.match(r'^[a-z_][a-z0-9_]*$', variable):
                errors.append('%s: the variable name is not a plain Ansible variable name' % where)
            if variable in seen:
                errors.append('%s: variable %r is asked twice' % (where, variable))
            seen.add(variable)
        qtype = q.get('type')
        if qtype not in ALLOWED_TYPES:
            errors.append('%s: type %r is not one of %s' % (where, qtype, ', '.join(sorted(ALLOWED_TYPES))))
            continue
        default = q.get('default', '')
        has_default = 'default' in q and default != ''
        if has_default:
            kind = ALLOWED_TYPES[qtype]
            if not isinstance(default, kind) or isinstance(default, bool):
                errors.append('%s: default %r must be a %s' % (where, default, kind.__name__))
        for key in ('min', 'max'):
            if key in q and q[key] is not None and not _is_int(q[key]):
                errors.append('%s: %s must be an integer or null' % (where, key))
        low, high = q.get('min'), q.get('max')
        if _is_int(low) and _is_int(high) and low > high:
            errors.append('%s: min %d > max %d' % (where, low, high))
        if has_default and qtype in ('integer', 'float') and isinstance(default, (int, float)):
            if (_is_int(low) and default < low) or (_is_int(high) and default > high):
                errors.append('%s: default %r is outside [%s, %s]' % (where, default, low, high))
        if has_default and qtype in ('text', 'textarea', 'password') and isinstance(default, str):
            if (_is_int(low) and len(default) < low) or (_is_int(high) and len(default) > high):
                errors.append('%s: default %r is not %s..%s characters long' % (where, default, low, high))
        if qtype in CHOICE_TYPES:
            choices = q.get('choices')
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                errors.append('%s: a %s question needs choices (a list of strings)' % (where, qtype))
                continue
            if has_default:
                defaults = default.splitlines() if isinstance(default, str) else default
                if qtype == 'multiplechoice' and len(defaults) > 1:
                    errors.append('%s: a multiple choice question has one default' % where)
                if any(d not in choices for d in defaults):
                    errors.append('%s: default %r is not among the choices %s' % (where, default, choices))
    return errors


# --- which variables a playbook reads ------------------------------------------------------------

class _AnyTagLoader(yaml.SafeLoader):
    """SafeLoader that reads tagged scalars (!unsafe, !vault) as plain strings."""


_AnyTagLoader.add_multi_constructor('!', lambda loader, suffix, node: loader.construct_scalar(node)
                                    if isinstance(node, yaml.ScalarNode) else None)

CONDITION_KEYS = ('when', 'that', 'failed_when', 'changed_when', 'until')
JINJA = re.compile(r'\{\{(.*?)\}\}|\{%(.*?)%\}', re.S)
ROLE_REF = re.compile(r'polardb\.stack\.([a-z0-9_]+)')


def _expressions(data, out):
    """Jinja expressions in loaded YAML: {{ }} / {% %} in any string, and the
    bare expressions of conditionals."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in CONDITION_KEYS:
                for cond in value if isinstance(value, list) else [value]:
                    if isinstance(cond, str):
                        out.append(cond)
            _expressions(value, out)
    elif isinstance(data, list):
        for value in data:
            _expressions(value, out)
    elif isinstance(data, str):
        out.extend(a or b for a, b in JINJA.findall(data))


def _role_files(role):
    base = os.path.join(ROLES, role)
    for sub in ('tasks', 'handlers', 'defaults', 'vars', 'meta', 'templates'):
        for path in sorted(glob.glob(os.path.join(base, sub, '**', '*'), recursive=True)):
            if os.path.isfile(path):
                yield path


def read_expressions(playbook):
    """Every Jinja expression of a playbook and of the roles it reaches
    (FQCN role references, followed through role files)."""
    exprs = []
    todo = [os.path.join(PLAYBOOKS, playbook + '.yml')]
    done, roles = set(), set()
    while todo:
        path = todo.pop()
        if path in done:
            continue
        done.add(path)
        with open(path) as f:
            text = f.read()
        if path.endswith(('.yml', '.yaml')):
            _expressions(yaml.load(text, Loader=_AnyTagLoader), exprs)
        else:  # templates: the whole file is Jinja
            exprs.extend(a or b for a, b in JINJA.findall(text))
        # import_playbook: the imported playbook is part of this one
        todo.extend(os.path.join(os.path.dirname(path), p)
                    for p in re.findall(r'import_playbook:\s*([\w./-]+\.yml)', text))
        for role in ROLE_REF.findall(text):
            if role not in roles and os.path.isdir(os.path.join(ROLES, role)):
                roles.add(role)
                todo.extend(_role_files(role))
    return exprs


def reads_variable(exprs, variable):
    word = re.compile(r'(?<![\w.\'"])%s(?![\w\'"])' % re.escape(variable))
    return any(word.search(e) for e in exprs)


# --- tests ---------------------------------------------------------------------------------------

def test_there_are_surveys():
    assert survey_names(), 'no survey in %s' % SURVEYS


@pytest.mark.parametrize('name', survey_names())
def test_survey_is_a_valid_awx_survey_spec(name):
    errors = awx_spec_errors(load_survey(name))
    assert not errors, '%s.json:\n  %s' % (name, '\n  '.join(errors))


@pytest.mark.parametrize('name', survey_names())
def test_survey_asks_the_documented_variables(name):
    assert name in EXPECTED_VARIABLES, (
        'docs/awx/surveys/%s.json is for no lifecycle playbook this test knows: add it to '
        'EXPECTED_VARIABLES (and a job template and a section in docs/awx.md)' % name)
    variables = [q['variable'] for q in load_survey(name)['spec']]
    assert variables == EXPECTED_VARIABLES[name]


@pytest.mark.parametrize('name', survey_names())
def test_yes_no_questions_are_false_or_true(name):
    for q in load_survey(name)['spec']:
        if q['variable'] in BOOLEAN_VARIABLES:
            assert q['type'] == 'multiplechoice' and q['choices'] == BOOLEAN_CHOICES, q
            assert q.get('default') == 'false', 'a yes/no question of %s defaults to "false": %r' % (name, q)


@pytest.mark.parametrize('name', survey_names())
def test_survey_variables_are_read_by_the_playbook(name):
    if not os.path.exists(os.path.join(PLAYBOOKS, name + '.yml')):
        pytest.skip('playbooks/%s.yml is not there yet' % name)
    exprs = read_expressions(name)
    unread = [q['variable'] for q in load_survey(name)['spec'] if not reads_variable(exprs, q['variable'])]
    assert not unread, (
        'docs/awx/surveys/%s.json asks for %s, which playbooks/%s.yml and its roles never read: '
        'rename the survey variable (and docs/awx.md) to what the playbook reads' % (name, unread, name))


USAGE = re.compile(r'ansible-playbook polardb\.stack\.([a-z0-9_]+)\s+(.*)$')
USAGE_VAR = re.compile(r'(\[)?-e ([a-z_][a-z0-9_]*)=')


def usage_variables(playbook):
    """The -e variables of the playbook's usage comment: {name: required}
    (``-e cluster=NAME`` is required, ``[-e wipe=true]`` optional)."""
    found = {}
    with open(os.path.join(PLAYBOOKS, playbook + '.yml')) as f:
        for line in f:
            if not line.startswith('#'):
                continue
            m = USAGE.search(line)
            if m and m.group(1) == playbook:
                for optional, name in USAGE_VAR.findall(m.group(2)):
                    found[name] = not optional
    return found


@pytest.mark.parametrize('name', survey_names())
def test_survey_asks_what_the_playbook_usage_names(name):
    if not os.path.exists(os.path.join(PLAYBOOKS, name + '.yml')):
        pytest.skip('playbooks/%s.yml is not there yet' % name)
    usage = usage_variables(name)
    assert usage, 'playbooks/%s.yml has no usage line "#   ansible-playbook polardb.stack.%s -e ..."' % (name, name)
    questions = {q['variable']: q for q in load_survey(name)['spec']}
    missing = sorted(set(usage) - set(questions))
    assert not missing, 'playbooks/%s.yml takes %s, which docs/awx/surveys/%s.json does not ask' % (name, missing, name)
    optional = sorted(v for v, required in usage.items() if required and not questions[v]['required'])
    assert not optional, 'playbooks/%s.yml needs %s, optional in the survey' % (name, optional)


def test_every_lifecycle_playbook_has_a_survey():
    missing = sorted(set(lifecycle_playbooks()) - set(survey_names()))
    assert not missing, 'playbooks without a survey in docs/awx/surveys/: %s' % missing


def test_job_templates_playbook_creates_one_template_per_survey():
    with open(JOB_TEMPLATES) as f:
        plays = yaml.load(f, Loader=_AnyTagLoader)
    assert sorted(plays[0]['vars']['polardb_awx_playbooks']) == survey_names()


def test_the_check_finds_a_survey_that_awx_would_refuse():
    good = load_survey('create_cluster')
    assert awx_spec_errors(good) == []
    bad = json.loads(json.dumps(good))
    bad['spec'][0]['type'] = 'boolean'
    bad['spec'][1]['default'] = 'maybe'
    bad['spec'].append(dict(bad['spec'][0], type='integer', default='10', min=''))
    del bad['description']
    assert awx_spec_errors(bad) == ["field 'description' is missing from the survey spec"]
    bad['description'] = ''
    errors = awx_spec_errors(bad)
    assert any("type 'boolean' is not one of" in e for e in errors), errors
    assert any("default 'maybe' is not among the choices" in e for e in errors), errors
    assert any('variable' in e and 'asked twice' in e for e in errors), errors
    assert any("default '10' must be a int" in e for e in errors), errors
    assert any('min must be an integer or null' in e for e in errors), errors


def test_the_check_finds_a_variable_the_playbook_does_not_read():
    exprs = read_expressions('create_cluster')
    assert reads_variable(exprs, 'cluster')
    assert reads_variable(exprs, 'polardb_storage_force')   # read in roles/preflight and roles/storage
    assert not reads_variable(exprs, 'storage_force')
    assert not reads_variable(exprs, 'confirm_destroy')
