# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's directories and configuration files, brought to their content,
owner and mode in one module run.

The caller renders every file on the controller (templates, certificates read
from the controller) and hands over the whole set; this host only compares and
writes what differs. One module run per host instead of a task per file: each
task is an SSH round trip, and a converge of a cluster that is already right
should cost a handful of them.

Writes are atomic (a temporary file in the same directory, fsync, rename) and
the owner and mode are set before the rename, so a reader never sees a file
half written or with the wrong mode (a private key is never world-readable,
not even for a moment).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import os
import pwd
import stat
import tempfile

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError


def parse_mode(mode, what):
    try:
        value = int(str(mode), 8)
    except ValueError:
        raise PolarDBError('%s: mode %r is not an octal number (for example "0640")' % (what, mode))
    if value < 0 or value > 0o7777:
        raise PolarDBError('%s: mode %r is out of range' % (what, mode))
    return value


def owner_ids(owner, group, what):
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise PolarDBError('%s: user %s does not exist' % (what, owner))
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise PolarDBError('%s: group %s does not exist' % (what, group))
    return uid, gid


def write_atomically(path, content, uid, gid, mode):
    """``path`` holds ``content`` (bytes): a temporary file in the same directory
    with the final owner and mode, synced, renamed in place."""
    directory = os.path.dirname(path) or '.'
    try:
        fd, tmp = tempfile.mkstemp(prefix='.polardb-', dir=directory)
    except OSError as e:
        raise PolarDBError('cannot write %s: %s' % (path, e))
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PolarDBError('cannot write %s: %s' % (path, e))


class NodeFiles(object):
    """``directories``: [{path, owner, group, mode}]; ``files``: [{path, content,
    owner, group, mode, secret}]. ``run()`` -> {changed, changed_paths, diff}."""

    def __init__(self, directories=(), files=(), check_mode=False, ids=owner_ids):
        self.directories = list(directories or [])
        self.files = list(files or [])
        self.check_mode = check_mode
        self.ids = ids
        self.changed_paths = []
        self.actions = []
        self.before = {}
        self.after = {}

    def _note(self, path, what):
        if path not in self.changed_paths:
            self.changed_paths.append(path)
        self.actions.append('%s%s %s' % ('would ' if self.check_mode else '', what, path))

    def _metadata(self, path, st, uid, gid, mode):
        """Owner and mode of an existing path."""
        if (st.st_uid, st.st_gid) != (uid, gid):
            if not self.check_mode:
                os.chown(path, uid, gid)
            self._note(path, 'chown')
        if stat.S_IMODE(st.st_mode) != mode:
            if not self.check_mode:
                os.chmod(path, mode)
            self._note(path, 'chmod %04o' % mode)

    def _directory(self, spec):
        path = spec['path']
        uid, gid = self.ids(spec['owner'], spec['group'], path)
        mode = parse_mode(spec['mode'], path)
        try:
            st = os.stat(path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise PolarDBError('cannot stat %s: %s' % (path, e))
            if not self.check_mode:
                os.makedirs(path)
                os.chown(path, uid, gid)
                os.chmod(path, mode)
            self._note(path, 'create directory')
            return
        if not stat.S_ISDIR(st.st_mode):
            raise PolarDBError('%s exists and is not a directory' % path)
        self._metadata(path, st, uid, gid, mode)

    def _file(self, spec):
        path = spec['path']
        content = spec['content'].encode('utf-8')
        uid, gid = self.ids(spec['owner'], spec['group'], path)
        mode = parse_mode(spec['mode'], path)
        try:
            with open(path, 'rb') as f:
                old = f.read()
            st = os.stat(path)
        except (IOError, OSError) as e:
            if e.errno != errno.ENOENT:
                raise PolarDBError('cannot read %s: %s' % (path, e))
            old, st = None, None
        if old == content:
            self._metadata(path, st, uid, gid, mode)
            return
        if not spec.get('secret'):
            self.before[path] = None if old is None else old.decode('utf-8', 'replace')
            self.after[path] = spec['content']
        if not self.check_mode:
            write_atomically(path, content, uid, gid, mode)
        self._note(path, 'write' if old is not None else 'create')

    def run(self):
        for spec in self.directories:
            self._directory(spec)
        for spec in self.files:
            self._file(spec)
        return {'changed': bool(self.changed_paths), 'changed_paths': self.changed_paths,
                'actions': self.actions, 'diff': {'before': self.before, 'after': self.after}}
