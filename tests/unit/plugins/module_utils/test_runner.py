# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import shutil
import subprocess

import pytest

from ansible_collections.polardb.stack.plugins.module_utils import runner
from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandRunner, PolarDBError, as_user


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


ME = pwd.getpwuid(os.getuid())


def test_as_user_changes_only_the_ids_with_setpriv(monkeypatch):
    monkeypatch.setattr(runner.shutil, 'which', lambda name: '/usr/bin/' + name)
    argv, env = as_user(ME.pw_name, ['psql', '-c', 'select 1'])
    assert argv[:3] == ['setpriv', '--reuid=%s' % ME.pw_name, '--regid=%s' % runner.grp.getgrgid(ME.pw_gid).gr_name]
    assert argv[3:] == ['--init-groups', 'psql', '-c', 'select 1']
    assert env == {'HOME': ME.pw_dir, 'USER': ME.pw_name, 'LOGNAME': ME.pw_name}


def test_as_user_falls_back_to_runuser(monkeypatch):
    monkeypatch.setattr(runner.shutil, 'which', lambda name: None)
    assert as_user(ME.pw_name, ['id']) == (['runuser', '-u', ME.pw_name, '--', 'id'], {})
    monkeypatch.setattr(runner.shutil, 'which', lambda name: '/usr/bin/' + name)
    # a user this host does not know: runuser says so
    assert as_user('no-such-user-here', ['id']) == (['runuser', '-u', 'no-such-user-here', '--', 'id'], {})


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which('setpriv'), reason='needs root and setpriv')
def test_as_user_runs_the_command_as_that_user():
    nobody = pwd.getpwnam('nobody')
    argv, env = as_user('nobody', ['sh', '-c', 'id -u; id -g; echo $HOME'])
    out = subprocess.run(argv, env=dict(os.environ, **env), cwd='/', stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert out.split() == [str(nobody.pw_uid), str(nobody.pw_gid), nobody.pw_dir]
