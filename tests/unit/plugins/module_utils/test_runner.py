# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, PolarDBError


def test_spawn_runs_in_the_background_and_reports_its_end():
    runner = CommandRunner(module=None)
    started = runner.spawn(['sh', '-c', 'read line; echo out; echo err >&2; exit 3'])
    # stdin is /dev/null: read ends at once; before that the command may still run
    res = started.wait()
    assert (res.rc, res.stdout, res.stderr) == (3, 'out\n', 'err\n')
    assert started.poll() is res and started.wait() is res       # the same result, not a second wait
    with pytest.raises(PolarDBError) as e:
        started.wait(check=True)
    assert e.value.msg == "command failed (rc=3): sh -c read line; echo out; echo err >&2; exit 3: err"
    assert runner.executed == ['sh -c read line; echo out; echo err >&2; exit 3']


def test_spawn_poll_is_none_while_it_runs():
    started = CommandRunner(module=None).spawn(['sleep', '5'])
    try:
        assert started.poll() is None
    finally:
        started.proc.kill()
    assert started.wait().rc == -9


def test_spawn_of_a_missing_program_is_a_domain_error():
    with pytest.raises(PolarDBError) as e:
        CommandRunner(module=None).spawn(['/nonexistent/polardb-stack-stop'])
    assert e.value.msg.startswith('command failed to start: /nonexistent/polardb-stack-stop:')
