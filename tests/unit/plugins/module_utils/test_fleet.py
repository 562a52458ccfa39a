# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import fleet

GROUPS = {'all': ['pdb1', 'b1'], 'polardb_demo': ['pdb1'], 'polardb_billing': ['b1'], 'polardb_empty': [],
          'ungrouped': []}

OK_OUTPUT = """
PLAY [Create cluster | Check the command line] *********************************

PLAY RECAP *********************************************************************
localhost                  : ok=2    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
pdb1                       : ok=108  changed=2    unreachable=0    failed=0    skipped=29   rescued=0    ignored=0
pdb2                       : ok=68   changed=7    unreachable=0    failed=0    skipped=13   rescued=0    ignored=0
pdb3                       : ok=68   changed=0    unreachable=0    failed=0    skipped=13   rescued=0    ignored=0
"""

YAML_FAILURE = """
TASK [polardb.stack.preflight : Preflight | Refuse what is wrong] **************
fatal: [b1]: FAILED! =>
    assertion: problems | length == 0
    changed: false
    evaluated_to: false
    msg: 'Cluster billing: b1: no LUN with WWID 600140500000000000000000000000ff
        (polardb_lun_wwid). Nothing was changed.'

NO MORE HOSTS LEFT *************************************************************

PLAY RECAP *********************************************************************
b1                         : ok=12   changed=0    unreachable=0    failed=1    skipped=3    rescued=0    ignored=0
"""


@pytest.mark.parametrize('value, names', [
    ('demo,billing', ['demo', 'billing']),
    (' demo, billing  crm ', ['demo', 'billing', 'crm']),
    (['demo', ' billing'], ['demo', 'billing']),
    ('', []),
    (None, []),
])
def test_clusters_are_a_list_or_a_string_of_names(value, names):
    assert fleet.cluster_names(value) == names


def test_good_input_has_no_problem():
    assert fleet.problems('demo,billing', 'create_cluster', GROUPS, 4, {}) == []
    assert fleet.problems(['demo'], 'minor_upgrade', GROUPS, '2', {'version': '15.10-0+deb12u1'}) == []


@pytest.mark.parametrize('clusters, operation, parallel, extra, says', [
    ('', 'create_cluster', 4, {}, 'name the clusters with -e clusters=NAME,NAME,...'),
    ('demo,Billing!', 'create_cluster', 4, {}, "clusters: 'Billing!' must each be 1 to 31 lower-case letters"),
    ('demo,demo', 'create_cluster', 4, {}, 'clusters: demo named twice'),
    ('demo,crm,empty', 'create_cluster', 4, {},
     'clusters: crm, empty not in the inventory (no group polardb_NAME with hosts; clusters here: billing, demo)'),
    ('demo', 'switchover', 4, {}, 'operation=switchover is not one a fleet runs (create_cluster, status'),
    ('demo', 'create_cluster', 0, {}, 'parallel=0 must be a whole number of runs at once, at least 1'),
    ('demo', 'create_cluster', 'many', {}, 'parallel=many must be a whole number'),
    ('demo', 'create_cluster', True, {}, 'parallel=True must be a whole number'),
    ('demo', 'create_cluster', 4, ['x'], 'polardb_fleet_vars must be a mapping'),
    ('demo', 'create_cluster', 4, {'cluster': 'billing'}, 'polardb_fleet_vars must not set cluster'),
])
def test_each_bad_input_is_named(clusters, operation, parallel, extra, says):
    got = fleet.problems(clusters, operation, GROUPS, parallel, extra)
    assert len(got) == 1 and got[0].startswith(says), got


def test_the_command_of_a_run_carries_the_inventories_the_cluster_the_vars_and_check_mode():
    argv = fleet.command('/venv/bin/ansible-playbook', 'create_cluster', 'billing', ['/inv/a.yml', '/inv/b.yml'],
                         {'polardb_restart_strategy': 'in_place', 'b': 1}, check=True, diff=True)
    assert argv == ['/venv/bin/ansible-playbook', 'polardb.stack.create_cluster', '-i', '/inv/a.yml', '-i', '/inv/b.yml',
                    '-e', 'cluster=billing', '-e', '{"b": 1, "polardb_restart_strategy": "in_place"}',
                    '--check', '--diff']
    assert fleet.command('ansible-playbook', 'status', 'demo', [], {}) == [
        'ansible-playbook', 'polardb.stack.status', '-e', 'cluster=demo']


def test_the_recap_counts_each_host():
    assert fleet.recap(OK_OUTPUT) == {
        'localhost': {'ok': 2, 'changed': 0, 'unreachable': 0, 'failed': 0},
        'pdb1': {'ok': 108, 'changed': 2, 'unreachable': 0, 'failed': 0},
        'pdb2': {'ok': 68, 'changed': 7, 'unreachable': 0, 'failed': 0},
        'pdb3': {'ok': 68, 'changed': 0, 'unreachable': 0, 'failed': 0}}


def test_a_failure_printed_as_yaml_gives_its_message():
    assert fleet.failure(YAML_FAILURE) == ('b1: Cluster billing: b1: no LUN with WWID 600140500000000000000000000000ff '
                                           '(polardb_lun_wwid). Nothing was changed.')


def test_a_failure_printed_as_json_and_an_unreachable_host():
    out = ('fatal: [b1]: FAILED! => {"changed": false, "msg": "first"}\n'
           'fatal: [b2]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh", '
           '"unreachable": true}\n')
    assert fleet.failure(out) == 'b2: Failed to connect to the host via ssh'
    assert fleet.failure(OK_OUTPUT) == ''


def job(cluster, rc=0, stdout=OK_OUTPUT, finished=1, delta='0:01:02.345678'):
    out = {'item': {'item': cluster, 'ansible_job_id': 'j.' + cluster}, 'finished': finished}
    if finished:
        out.update(rc=rc, stdout=stdout, stderr='', delta=delta)
    return out


def test_a_finished_run_counts_its_nodes_and_changes():
    assert fleet.result(job('demo')) == {
        'cluster': 'demo', 'finished': True, 'rc': 0, 'seconds': 62.3, 'hosts': 3, 'changed': 9, 'message': ''}


def test_the_report_names_the_failed_and_unfinished_clusters_and_keeps_the_others():
    report = fleet.report([fleet.result(job('demo')),
                           fleet.result(job('billing', rc=2, stdout=YAML_FAILURE, delta='0:00:09.000000')),
                           fleet.result(job('crm', finished=0))],
                          'create_cluster', '/tmp/f', check=False)
    assert report['failed'] == ['billing', 'crm']
    assert report['changed'] is True
    assert report['lines'][0] == 'create_cluster on 3 cluster(s); the log of each: /tmp/f/CLUSTER.log'
    assert report['lines'][1] == 'demo: ok in 62.3 s, 3 node(s), 9 change(s)'
    assert report['lines'][2].startswith('billing: FAILED (rc 2) in 9.0 s: b1: Cluster billing: b1: no LUN with WWID')
    assert report['lines'][3] == ('crm: NOT FINISHED: did not finish within polardb_fleet_timeout; it may still run: '
                                  'see its lock')
    assert 'each ran on its own' in report['lines'][4]
    assert report['message'] == ('The run of billing, crm failed or did not finish (above, and in /tmp/f); '
                                 'the runs of the other clusters finished, unaffected')


def test_when_every_run_failed_no_other_cluster_is_claimed_fine():
    report = fleet.report([fleet.result(job('billing', rc=2, stdout=YAML_FAILURE))], 'create_cluster', '/tmp/f')
    assert report['message'] == 'The run of billing failed or did not finish (above, and in /tmp/f)'
    assert len(report['lines']) == 2


def test_a_preview_says_so_and_a_run_without_changes_says_none():
    quiet = OK_OUTPUT.replace('changed=2', 'changed=0').replace('changed=7', 'changed=0')
    report = fleet.report([fleet.result(job('demo', stdout=quiet))], 'create_cluster', '/tmp/f', check=True)
    assert report == {'lines': ['create_cluster on 1 cluster(s) -- CHECK MODE: nothing is changed; the log of each: '
                                '/tmp/f/CLUSTER.log', 'demo: ok in 62.3 s, 3 node(s), 0 change(s)'],
                      'failed': [], 'changed': False, 'message': ''}
