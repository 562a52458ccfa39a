"""Role argument specs (issue 7, part 9) on the lab's live cluster "demo".

A wrongly typed input is refused by the argument spec of the first role entry
point that reads it, with Ansible's message naming the variable, before any
change: the cluster's fingerprint (managed files, engines, slots, locks, the
array's registrations and fences) is the same afterwards and no task changed."""
import json

import pytest

from labtools import cluster_fingerprint, no_lock_left, one_line

CASES = {
    # common main (the first role of the operation's plays) checks the port
    'port_not_a_number': ('switchover', ['-e', 'polardb_port=abc'], 'common', 'main',
                          "argument 'polardb_port' is of type str and we were unable to convert to int"),
    # lock inspect, before the lock is taken
    'lock_wait_not_a_number': ('rebuild_node', ['-e', 'node=pdb3', '-e', json.dumps({'polardb_lock_wait_seconds': [60]})],
                               'lock', 'inspect',
                               "argument 'polardb_lock_wait_seconds' is of type list and we were unable to convert to int"),
    # topology: a probe timeout that is no number of seconds
    'probe_timeout_not_a_number': ('status', ['-e', 'polardb_probe_timeout=fast'], 'topology', 'main',
                                   "argument 'polardb_probe_timeout' is of type str and we were unable to convert to int"),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_a_wrongly_typed_input_is_refused_by_the_spec(case, playbook, ssh, lab_hosts):
    name, args, role, entry, message = CASES[case]
    before = cluster_fingerprint(ssh, lab_hosts)
    run = playbook(name, '-e', 'cluster=demo', *args)
    text = one_line(run.output)
    assert run.rc != 0, text[-3000:]
    assert 'polardb.stack.%s : Validating arguments against arg spec \'%s\'' % (role, entry) in text, text[-3000:]
    assert 'Validation of arguments failed' in text and message in text, text[-3000:]
    assert run.changed() == {}, run.changed()
    assert cluster_fingerprint(ssh, lab_hosts) == before
    no_lock_left(ssh, lab_hosts)
