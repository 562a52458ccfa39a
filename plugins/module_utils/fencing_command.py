# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``command`` fence driver: the user's own fence command, as Pacemaker fence
agents and Patroni callbacks work.

The command is an argv list (never a shell line) with placeholders that are
filled in for each call: ``{action}``, ``{cluster}``, ``{node}`` (this host),
``{key}`` (this host's reservation key), ``{wwid}``, ``{device}``, ``{victim}``
and ``{victim_key}`` (for ``fence``; empty otherwise). The same values are in
the environment as ``POLARDB_FENCE_<NAME>``. The contract (docs/fencing.md):

- ``status``: read only. Exit 0 and print one JSON object on stdout:
  ``{"registrations": [...], "reserved": true|false}``; a registration is a key
  (``0x`` and hex digits) or a node name of the cluster. ``reserved`` true: only
  the registered hosts may write to the LUN; false: every host may.
- ``register``: register ``{key}`` for ``{node}`` (replacing another key of it).
- ``reserve``: from now on only registered hosts may write (``{node}`` is registered).
- ``fence``: ``{victim}`` (``{victim_key}``) is no longer registered and its
  writes in flight are aborted; reserves the LUN if it was not.
- ``release``: ``{node}`` is no longer registered; with the last registration
  the reservation goes and every host may write again.

Exit status of the changing actions: 0 done (or nothing to do), 2 refused as
a conflict (this node is not registered, another host holds the LUN), 3 the
action or the LUN is not supported, anything else a failure; stderr says why.
The module reads ``status`` again after every action and decides the next one
from what it reports, as with the SCSI and NVMe drivers (the semantics are
SCSI's "Write Exclusive - All Registrants").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.polardb.stack.plugins.module_utils.fencing import (
    FenceDriver, PRState, condense, derive_key, format_key, is_key, parse_key)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

ACTIONS = ('status', 'register', 'reserve', 'fence', 'release')
PLACEHOLDERS = ('action', 'cluster', 'node', 'key', 'wwid', 'device', 'victim', 'victim_key')
_PLACEHOLDER_RE = re.compile(r'\{([a-z_]+)\}')
# what the exit status of the command means (any other non-zero: failed)
RC_CONFLICT = 2
RC_UNSUPPORTED = 3
RC_TIMEOUT = 124          # timeout(1): the command ran past command_timeout
RC_KILLED = 137           # timeout(1) --kill-after: it ignored SIGTERM too
DEFAULT_TIMEOUT = 60
# the reservation the contract describes: only registered hosts write (SCSI type 7)
WRITER_TYPE = 7


def check_template(argv):
    """The command as given: a non-empty list of strings, placeholders known,
    ``{action}`` used (the command could not tell the actions apart otherwise)."""
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
        raise PolarDBError('command (polardb_fence_command) must be a non-empty list of strings (the argv, no '
                           'shell), not %r. Nothing was changed' % (argv,))
    unknown = sorted(set(n for a in argv for n in _PLACEHOLDER_RE.findall(a)) - set(PLACEHOLDERS))
    if unknown:
        raise PolarDBError('command (polardb_fence_command) uses unknown placeholders %s: known are %s. Nothing was '
                           'changed' % (', '.join('{%s}' % n for n in unknown),
                                        ', '.join('{%s}' % n for n in PLACEHOLDERS)))
    if not any('{action}' in a for a in argv):
        raise PolarDBError('command (polardb_fence_command) must pass {action} (status, register, reserve, fence or '
                           'release) to the fence command. Nothing was changed')


def render(argv, values):
    """Each argument with its placeholders filled in; nothing else is touched."""
    return [_PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], a) for a in argv]


def parse_status(text, cluster=None):
    """The JSON object ``status`` prints -> PRState. Registrations are keys or
    node names (whose keys derive from the cluster)."""
    try:
        data = json.loads(text or '')
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get('registrations'), list) or \
            not isinstance(data.get('reserved'), bool):
        raise PolarDBError('the fence command\'s status printed %r, not a JSON object with "registrations" (a list of '
                           'keys or node names) and "reserved" (true or false)' % (text or '')[:400], stdout=text)
    keys = []
    for entry in data['registrations']:
        if isinstance(entry, str) and is_key(entry):
            keys.append(parse_key(entry, 'registration'))
        elif isinstance(entry, str) and entry and cluster:
            keys.append(derive_key(cluster, entry))
        else:
            raise PolarDBError('the fence command\'s status lists the registration %r: expected a key (0x and hex '
                               'digits)%s' % (entry, ' or a node name' if cluster else ''), stdout=text)
    generation = data.get('generation')
    reservation = dict(key=0, type=WRITER_TYPE) if data['reserved'] else None
    return PRState(keys, reservation, generation if isinstance(generation, int) else None)


class CommandDriver(FenceDriver):
    """Fencing through the user's command (see the module docstring for the contract)."""

    name = 'command'
    writer_type = WRITER_TYPE
    type_names = {WRITER_TYPE: 'only registered hosts write'}
    all_registrants_types = (WRITER_TYPE,)
    registrants_types = (WRITER_TYPE,)

    def __init__(self, runner, device, wwid=None, multipath=False, hostname=None, command=None, timeout=None,
                 cluster=None, node=None, names=None):
        super(CommandDriver, self).__init__(runner, device, wwid=wwid, multipath=multipath, hostname=hostname)
        check_template(command)
        self.template = list(command)
        self.timeout = int(timeout or DEFAULT_TIMEOUT)
        self.cluster = cluster or ''
        self.node = node or ''
        self.names = names or {}
        self.wrapper = []

    def check(self):
        program = self.template[0]
        path = self.runner.which(program)
        if not path:
            raise PolarDBError('the fence command %s (polardb_fence_command) is not an executable on %s'
                               % (program, self.hostname), device=self.device, driver=self.name)
        self.tool = program if program.startswith('/') else path
        self.tool_name = os.path.basename(program)
        timeout = self.runner.which('timeout')
        if timeout:
            # A fence command that hangs must not hold a failover: timeout(1) ends it.
            self.wrapper = [timeout, '--kill-after=5', '%ds' % self.timeout]

    def _values(self, action, key, victim_key=None):
        return dict(action=action, cluster=self.cluster, node=self.node, key=format_key(key) if key else '',
                    wwid=self.wwid or '', device=self.device or '',
                    victim=self.names.get(victim_key, '') if victim_key else '',
                    victim_key=format_key(victim_key) if victim_key else '')

    def _run(self, action, key=None, victim_key=None):
        values = self._values(action, key, victim_key)
        argv = [self.tool] + render(self.template[1:], values)
        environ = dict(('POLARDB_FENCE_' + k.upper(), v) for k, v in values.items())
        res = self.runner.run(self.wrapper + argv, check=False, environ=environ)
        if res.rc != 0:
            raise self._error(action, values, argv, res)
        return res.stdout

    def _error(self, action, values, argv, res):
        what = 'the fence command\'s %s' % action
        if values['victim_key']:
            what += ' of %s' % (values['victim'] or values['victim_key'])
        where = '%s on %s' % (self.device, self.hostname)
        said = condense(res)
        details = dict(rc=res.rc, stdout=res.stdout, stderr=res.stderr, cmd=argv, device=self.device)
        if res.rc == RC_CONFLICT:
            return PolarDBError('%s for %s was refused as a conflict (exit 2: %s): the key %s of %s is not registered '
                                'or another host holds the LUN' % (what, where, said, values['key'], self.node),
                                **details)
        if res.rc == RC_UNSUPPORTED:
            return PolarDBError('%s for %s is not supported (exit 3: %s): the command must implement the actions %s '
                                'for this LUN (docs/fencing.md)' % (what, where, said, ', '.join(ACTIONS)), **details)
        if self.wrapper and res.rc in (RC_TIMEOUT, RC_KILLED):
            return PolarDBError('%s for %s did not finish within %d s (polardb_fence_command_timeout) and was ended'
                                % (what, where, self.timeout), **details)
        return PolarDBError('%s for %s failed (exit %d): %s' % (what, where, res.rc, said), **details)

    def read(self):
        return parse_status(self._run('status'), self.cluster)

    def register(self, key):
        self._run('register', key)

    def unregister(self, key):
        self._run('release', key)

    def reserve(self, key):
        self._run('reserve', key)

    def preempt(self, key, victim_key):
        if victim_key in (0, key):
            # The walk never asks for these: the command only knows the writer type.
            raise PolarDBError('the fence command cannot preempt %s: fence takes another host\'s key'
                               % format_key(victim_key), device=self.device, driver=self.name)
        self._run('fence', key, victim_key)

    def release(self, key, rtype):
        raise PolarDBError('release of a reservation is not part of the fence command contract; use state=released',
                           device=self.device, driver=self.name)

    def clear(self, key):
        raise PolarDBError('clear is not part of the fence command contract', device=self.device, driver=self.name)
