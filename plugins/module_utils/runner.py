# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-command adapter and the one error type of the collection.

Domain files take a ``runner`` (anything with ``run(argv, ...)``) instead of an
AnsibleModule, so unit tests can hand them a fake that replays recorded output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import shutil
import subprocess


class PolarDBError(Exception):
    """A domain error: ``msg`` for people, ``details`` for fail_json."""

    def __init__(self, msg, **details):
        super(PolarDBError, self).__init__(msg)
        self.msg = msg
        self.details = details


def command_failed(argv, rc, stdout, stderr):
    """The PolarDBError of a command that exited with ``rc`` != 0."""
    return PolarDBError('command failed (rc=%d): %s: %s' % (rc, ' '.join(argv), (stderr or stdout or '').strip()),
                        rc=rc, stdout=stdout, stderr=stderr, cmd=list(argv))


class CommandResult(object):
    def __init__(self, rc, stdout, stderr):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self):
        return self.rc == 0


class Spawned(object):
    """A command started by ``CommandRunner.spawn``."""

    def __init__(self, proc, argv):
        self.proc = proc
        self.argv = list(argv)
        self.result = None

    def poll(self):
        """None while it runs, else its CommandResult."""
        if self.result is None and self.proc.poll() is None:
            return None
        return self.wait()

    def wait(self, check=False):
        """Its CommandResult once it ended (PolarDBError on failure with ``check``)."""
        if self.result is None:
            out, err = self.proc.communicate()
            self.result = CommandResult(self.proc.returncode, out, err)
        if check and self.result.rc != 0:
            raise command_failed(self.argv, self.result.rc, self.result.stdout, self.result.stderr)
        return self.result


def as_user(user, argv):
    """(argv, environment) to run ``argv`` as ``user``: setpriv, which only
    changes the ids (about 10 ms for a psql here); runuser opens a PAM session
    each time (about 40 ms, and journal lines), so it serves only where setpriv
    is missing."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        pw = None   # runuser says so
    if pw is None or not shutil.which('setpriv'):
        return ['runuser', '-u', user, '--'] + list(argv), {}
    try:
        group = grp.getgrgid(pw.pw_gid).gr_name
    except KeyError:
        group = str(pw.pw_gid)
    return ['setpriv', '--reuid=%s' % user, '--regid=%s' % group, '--init-groups'] + list(argv), user_environment(pw)


def user_environment(pw):
    """The variables a login of ``pw`` (a pwd entry) would set, for a command run as it."""
    return {'HOME': pw.pw_dir, 'USER': pw.pw_name, 'LOGNAME': pw.pw_name}


class CommandRunner(object):
    """Runs host commands through AnsibleModule.run_command and records them.

    ``executed`` lists every command line run (secrets never appear in argv:
    callers pass them through files or the environment).
    """

    def __init__(self, module):
        self.module = module
        self.executed = []

    def run(self, argv, check=True, data=None, environ=None, cwd=None, become_user=None):
        environ = dict(environ or {})
        if become_user:
            argv, identity = as_user(become_user, argv)
            environ = dict(identity, **environ)
        self.executed.append(' '.join(argv))
        rc, out, err = self.module.run_command(
            argv, data=data, environ_update=environ, cwd=cwd, check_rc=False)
        if check and rc != 0:
            raise command_failed(argv, rc, out, err)
        return CommandResult(rc, out, err)

    def spawn(self, argv):
        """Start ``argv`` without waiting for it: a Spawned to poll or wait for."""
        self.executed.append(' '.join(argv))
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True, universal_newlines=True)
        except OSError as e:
            raise PolarDBError('command failed to start: %s: %s' % (' '.join(argv), e), cmd=argv)
        return Spawned(proc, argv)

    def which(self, name, required=False):
        return self.module.get_bin_path(name, required=required)


class ProcessRunner(object):
    """CommandRunner's interface without Ansible: for the cluster manager's
    agent, a service on the host. Every command is bounded by ``timeout``."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.executed = []

    def run(self, argv, check=True, data=None, environ=None, cwd=None, become_user=None):
        self.executed = (self.executed + [' '.join(argv)])[-20:]
        env = dict(os.environ, **(environ or {})) if environ else None
        # as another user without runuser: no PAM session (and no journal lines) every round
        ids = {}
        if become_user:
            pw = pwd.getpwnam(become_user)
            ids = {'user': pw.pw_uid, 'group': pw.pw_gid, 'extra_groups': []}
            env = dict(env or os.environ, **user_environment(pw))
        try:
            proc = subprocess.run(list(argv), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=None if data is not None else subprocess.DEVNULL,
                                  cwd=cwd, env=env, timeout=self.timeout, universal_newlines=True, check=False, **ids)
        except subprocess.TimeoutExpired:
            raise PolarDBError('command timed out after %s s: %s' % (self.timeout, ' '.join(argv)), cmd=list(argv))
        except OSError as e:
            raise PolarDBError('command failed to start: %s: %s' % (' '.join(argv), e), cmd=list(argv))
        if check and proc.returncode != 0:
            raise command_failed(argv, proc.returncode, proc.stdout, proc.stderr)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def which(self, name, required=False):
        path = shutil.which(name)
        if required and not path:
            raise PolarDBError('%s not found in PATH' % name)
        return path


def fail_on_error(module, func, *args, **kwargs):
    """Call ``func``; map PolarDBError to fail_json in one place."""
    try:
        return func(*args, **kwargs)
    except PolarDBError as e:
        module.fail_json(msg=e.msg, **e.details)
