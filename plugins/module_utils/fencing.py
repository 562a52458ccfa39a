# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage write fencing with persistent reservations (PR).

The model (the one PolarDB Stack uses): the LUN carries one reservation of the
type "Write Exclusive - All Registrants" (SCSI type 7, NVMe rtype 5). Under it
every registered host may write and every other host may only read. Only the
writer is registered; moving the writer is one preempt-and-abort by the new
writer of the old writer's key, which removes the old writer's registration and
aborts its queued commands at the array, so its next write fails at once.

A driver speaks one PR dialect and offers the same small set of methods (see
``FenceDriver``): ``scsi3_pr`` (sg_persist / mpathpersist, fencing_scsi.py),
``nvme`` (nvme-cli, fencing_nvme.py) and ``command`` (the user's own fence
command, fencing_command.py). ``ensure_fence``
walks a device towards a wanted state one step at a time: read, decide the next
step, act, read again, until nothing is left to do. The last read is the
verification; a failed step rolls back a registration it added, and the error
carries what the device reports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.polardb.stack.plugins.module_utils.lun import block_device, find_lun, holders, multipath_dm
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

STATES = ('writer', 'fenced_out', 'registered', 'released', 'query')
MAX_STEPS = 8
_KEY_RE = re.compile(r'^\s*0x([0-9a-fA-F]{1,16})\s*$')


# --- keys ------------------------------------------------------------------------------

def derive_key(cluster, node):
    """The reservation key of ``node`` in ``cluster``: the first 8 bytes of
    sha1("<cluster>/<node>"), so every host computes every other host's key."""
    digest = hashlib.sha1(('%s/%s' % (cluster, node)).encode('utf-8')).hexdigest()
    # 0 means "no key" to every PR command; a digest starting with 8 zero bytes
    # is not going to happen, but would still give a usable key.
    return int(digest[:16], 16) or int(digest[16:32], 16) or 1


def format_key(key):
    """Keys as the collection reports them: 0x and 16 lower-case hex digits."""
    return '0x%016x' % key


def parse_key(text, what='key'):
    m = _KEY_RE.match(str(text))
    if not m:
        raise PolarDBError('%s %r is not a reservation key: expected 0x and 1 to 16 hex digits' % (what, text))
    value = int(m.group(1), 16)
    if value == 0:
        raise PolarDBError('%s 0x0 is not a reservation key: 0 means "no key" to the device' % what)
    return value


def is_key(text):
    return bool(_KEY_RE.match(str(text)))


def hex_key(key):
    # sg_persist and mpathpersist read keys with %x (hex whatever the prefix);
    # nvme-cli with strtoull(..., 0): the 0x prefix makes both agree.
    return '0x%x' % key


# --- the state of a LUN ----------------------------------------------------------------

class PRState(object):
    """Registered keys (ints, each once: a host registered through several paths
    shows its key once per path) and the reservation ``{key, type}`` or None.
    ``type`` is the driver's own code; ``key`` is 0 under an all-registrants
    reservation on devices that follow the standard (they report no holder)."""

    def __init__(self, registrations, reservation=None, generation=None):
        self.registrations = sorted(set(registrations))
        self.reservation = dict(reservation) if reservation else None
        self.generation = generation

    def same(self, other):
        return self.registrations == other.registrations and self.reservation == other.reservation

    def __repr__(self):
        return 'PRState(%r, %r)' % ([format_key(k) for k in self.registrations], self.reservation)


# --- drivers -----------------------------------------------------------------------------

class FenceDriver(object):
    """The interface of a PR driver. Keys are ints, types the driver's own codes.

    A new driver is a subclass that sets the class attributes and implements
    ``check``, ``read`` and the PR OUT methods; ``ensure_fence`` needs nothing
    else. Every method raises PolarDBError with a message for
    people when the device or the tool refuses.
    """

    name = None
    writer_type = None            # "Write Exclusive - All Registrants" in this dialect
    type_names = {}
    all_registrants_types = ()    # types without a single holder (every registrant holds it)
    registrants_types = ()        # types under which every registrant may write

    def __init__(self, runner, device, wwid=None, multipath=False, hostname=None):
        self.runner = runner
        self.device = device
        self.wwid = wwid
        self.multipath = multipath
        self.hostname = hostname or 'this host'
        self.tool = None          # the command's path, set by check()
        self.tool_name = None     # what to call it in messages and reports

    def check(self):
        """Find the tool; raise PolarDBError naming the package when it is missing."""
        raise NotImplementedError

    def read(self):
        """The device's registrations and reservation, as a PRState."""
        raise NotImplementedError

    def register(self, key):
        """Register ``key`` for this host, replacing any key this host had."""
        raise NotImplementedError

    def unregister(self, key):
        """Remove this host's registration (releases a reservation only it held)."""
        raise NotImplementedError

    def reserve(self, key):
        """Take the writer_type reservation (this host registered with ``key``)."""
        raise NotImplementedError

    def preempt(self, key, victim_key):
        """Preempt and abort: remove ``victim_key``'s registrations (0: every other
        one under an all-registrants reservation; ``key`` itself: change the type
        of a reservation this host holds) and hold a writer_type reservation."""
        raise NotImplementedError

    def release(self, key, rtype):
        raise NotImplementedError

    def clear(self, key):
        raise NotImplementedError

    def type_name(self, rtype):
        return self.type_names.get(rtype, 'type %s' % rtype)

    def _missing(self, tool, package):
        return PolarDBError('%s not found on %s: install %s' % (tool, self.hostname, package),
                            device=self.device, driver=self.name)


_LOG_STAMP_RE = re.compile(r'^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \| ')


def condense(res):
    """The tool's complaint on one line: stderr then stdout, without the usage text
    mpathpersist adds to a refusal and without libmultipath's time stamps."""
    kept = []
    for stream in (res.stderr or '', res.stdout or ''):
        for ln in stream.splitlines():
            ln = _LOG_STAMP_RE.sub('', ln.strip())
            if ln.startswith('Usage:') or ln.startswith('multipath-tools v'):
                break
            if ln:
                kept.append(ln)
    return '; '.join(kept) or 'no output'


def unexpected_output(what, text):
    return PolarDBError('unexpected %s output: %r' % (what, (text or '')[:400]), stdout=text)


# --- what to do next ---------------------------------------------------------------------

def next_action(drv, state, goal, key, victim=None):
    """The next PR command towards ``goal`` from ``state``, or None when it is reached.
    Actions are tuples: ('register', key), ('unregister', key), ('reserve', key),
    ('preempt', key, victim_key)."""
    regs, res = state.registrations, state.reservation
    others = [k for k in regs if k != key]
    if goal == 'writer':
        if key not in regs:
            return ('register', key)
        if res is None:
            return ('reserve', key)
        if res['type'] != drv.writer_type:
            if res['type'] in drv.all_registrants_types:
                # preempt with key 0: every other registration goes, ours becomes the writer type
                return ('preempt', key, 0)
            if res['key'] == key:
                return ('preempt', key, key)  # preempting itself changes the type
            if res['key'] in others:
                return ('preempt', key, res['key'])
            raise PolarDBError('%s is reserved (%s) with key %s, which is not registered: cannot take it over'
                               % (drv.device, drv.type_name(res['type']), format_key(res['key'])))
        if others:
            return ('preempt', key, others[0])
        return None
    if goal == 'fenced_out':
        if victim in regs:
            if key not in regs:
                return ('register', key)
            if res is None:
                return ('reserve', key)  # first hold the reservation, then drop the victim from it
            return ('preempt', key, victim)
        if res is None:
            # Not registered, but without a reservation every host writes.
            return ('register', key) if key not in regs else ('reserve', key)
        return None
    if goal == 'registered':
        if key in regs:
            return None
        if res is not None and res['type'] in drv.registrants_types and others:
            raise PolarDBError(
                'registering key %s on %s would make this host a writer beside %s (every registrant writes under '
                '"%s"): only the writer is registered; take over with state=writer (register and preempt in one '
                'step)' % (format_key(key), drv.device, ', '.join(format_key(k) for k in others),
                           drv.type_name(res['type'])))
        return ('register', key)
    if goal == 'released':
        return ('unregister', key) if key in regs else None
    return None


def simulate(drv, state, action):
    """The state an action leads to, per SPC-4 / NVMe, for check mode and diff."""
    regs = list(state.registrations)
    res = dict(state.reservation) if state.reservation else None
    verb, key = action[0], action[1]
    all_reg = drv.all_registrants_types
    writer = dict(key=0 if drv.writer_type in all_reg else key, type=drv.writer_type)
    if verb == 'register':
        regs.append(key)
    elif verb == 'unregister':
        regs = [k for k in regs if k != key]
        if res is not None and ((res['type'] in all_reg and not regs) or
                                (res['type'] not in all_reg and res['key'] == key)):
            res = None
    elif verb == 'reserve':
        res = writer
    elif verb == 'preempt':
        victim = action[2]
        if victim == 0:
            regs, res = [key], writer
        elif victim == key:
            res = writer
        else:
            regs = [k for k in regs if k != victim]
            if res is not None and res['key'] == victim:
                res = writer  # the holder was preempted: the preempting host holds it now
    return PRState(regs, res)


def _execute(drv, action):
    getattr(drv, action[0])(*action[1:])


def describe(drv, action, names):
    def who(key):
        return '%s (%s)' % (format_key(key), names[key]) if key in names else format_key(key)
    verb = action[0]
    if verb == 'register':
        return 'register key %s on %s' % (who(action[1]), drv.device)
    if verb == 'unregister':
        return 'unregister key %s from %s' % (who(action[1]), drv.device)
    if verb == 'reserve':
        return 'reserve %s as "%s" with key %s' % (drv.device, drv.type_name(drv.writer_type), who(action[1]))
    if action[2] == 0:
        return 'preempt and abort every registration but %s on %s' % (who(action[1]), drv.device)
    if action[2] == action[1]:
        return 'change the reservation of %s to "%s"' % (drv.device, drv.type_name(drv.writer_type))
    return 'preempt and abort key %s on %s' % (who(action[2]), drv.device)


def converge(drv, goal, key, victim=None, check_mode=False):
    """Walk the device to ``goal``. Returns dict(before, after, actions, warnings):
    ``after`` is the last read (the verification), the prediction in check mode."""
    before = drv.read()
    state, actions, warnings = before, [], []
    if check_mode:
        for _step in range(MAX_STEPS):
            action = next_action(drv, state, goal, key, victim)
            if action is None:
                break
            actions.append(action)
            state = simulate(drv, state, action)
        return dict(before=before, after=state, actions=actions, warnings=warnings)
    try:
        for _step in range(MAX_STEPS):
            action = next_action(drv, state, goal, key, victim)
            if action is None:
                return dict(before=before, after=state, actions=actions, warnings=warnings)
            if actions and action == actions[-1]:
                raise PolarDBError('%s on %s did not change after the last command (%s): it reports %s'
                                   % (drv.device, drv.hostname, action[0], describe_state(drv, state)))
            try:
                _execute(drv, action)
            except PolarDBError as e:
                # Another host may have changed the registrations since the last read
                # (a preempted key that is gone already answers RESERVATION CONFLICT):
                # go on from what the device reports now, unless nothing changed.
                now = drv.read()
                if now.same(state):
                    raise
                warnings.append('%s failed (%s), but %s changed meanwhile: went on from %s'
                                % (action[0], e.msg, drv.device, describe_state(drv, now)))
                state = now
                continue
            actions.append(action)
            state = drv.read()
        raise PolarDBError('%s on %s is not %s after %d commands: it reports %s'
                           % (drv.device, drv.hostname, goal, MAX_STEPS, describe_state(drv, state)))
    except PolarDBError as e:
        raise _failed(drv, goal, key, before, actions, e)


def _failed(drv, goal, key, before, actions, error):
    """Never a half state silently: undo a registration this run added (under an
    all-registrants reservation it would be a second writer) and say what the
    device reports now."""
    notes = []
    if goal in ('writer', 'fenced_out') and key not in before.registrations and \
            any(a[0] == 'register' for a in actions):
        try:
            drv.unregister(key)
            notes.append('the registration of %s this run added was removed again' % format_key(key))
        except PolarDBError as undo:
            notes.append('removing the registration of %s this run added failed too: %s' % (format_key(key), undo.msg))
    try:
        now = drv.read()
        notes.append('%s now reports %s' % (drv.device, describe_state(drv, now)))
        fence = state_dict(drv, now)
    except PolarDBError as e:
        notes.append('reading %s afterwards failed: %s' % (drv.device, e.msg))
        fence = None
    details = dict(error.details)
    details.update(fence_state=fence, done=[a[0] for a in actions])
    return PolarDBError('%s%s' % (error.msg, ''.join('; ' + n for n in notes)), **details)


# --- reports -----------------------------------------------------------------------------

def state_dict(drv, state):
    """What diff shows: the registered keys and the reservation."""
    res = state.reservation
    return dict(
        registrations=[format_key(k) for k in state.registrations],
        reservation=None if res is None else dict(key=format_key(res['key']), type=res['type'],
                                                  type_name=drv.type_name(res['type'])))


def describe_state(drv, state):
    res = state.reservation
    regs = ', '.join(format_key(k) for k in state.registrations) or 'none'
    if res is None:
        return 'registrations %s, no reservation' % regs
    return 'registrations %s, reservation "%s" key %s' % (regs, drv.type_name(res['type']), format_key(res['key']))


def writers(drv, state):
    """Keys whose hosts may write; None when there is no reservation (every host may)."""
    res = state.reservation
    if res is None:
        return None
    if res['type'] in drv.registrants_types:
        return [format_key(k) for k in state.registrations]
    return [format_key(res['key'])]


def report(drv, state, key, victim=None, names=None):
    names = names or {}
    res = state.reservation
    fence = dict(driver=drv.name, tool=drv.tool_name, device=drv.device, key=format_key(key),
                 generation=state.generation, writers=writers(drv, state),
                 this_host_registered=key in state.registrations,
                 this_host_writer=bool(state.registrations == [key] and res is not None and
                                       res['type'] == drv.writer_type),
                 victim_key=format_key(victim) if victim else None,
                 registered_nodes=[names[k] for k in state.registrations if k in names])
    fence.update(state_dict(drv, state))
    return fence


# --- the one call the module makes -------------------------------------------------------

def resolve_target(runner, host, wwid=None, device=None):
    """The device to fence: by WWID through lun_info's lookup (a multipath map
    wins over a single path), or the given device node."""
    if wwid:
        lun = find_lun(runner, host, wwid)
        return dict(device=lun['device'], wwid=lun['wwid'], multipath=lun['multipath'])
    if not device:
        raise PolarDBError('wwid or device is needed')
    blk = block_device(host, device)
    if multipath_dm(host, blk) is None:
        for holder in holders(host, blk):
            dm = multipath_dm(host, dict(sysdir='/sys/class/block/' + holder))
            if dm:
                # A registration through one path would leave this host's writes
                # through the map's other paths refused once the LUN is reserved.
                raise PolarDBError('%s on %s is a path of the multipath map %s: fence the map (/dev/mapper/%s or '
                                   'wwid), which registers every path' % (device, host.hostname(), dm[0], dm[0]),
                                   device=device)
    return dict(device=device, wwid=None, multipath=multipath_dm(host, blk) is not None)


def drivers():
    """The driver classes by name. Imported here: each driver file imports this one."""
    from ansible_collections.polardb.stack.plugins.module_utils.fencing_command import CommandDriver
    from ansible_collections.polardb.stack.plugins.module_utils.fencing_nvme import NvmeDriver
    from ansible_collections.polardb.stack.plugins.module_utils.fencing_scsi import ScsiPrDriver
    return dict((cls.name, cls) for cls in (ScsiPrDriver, NvmeDriver, CommandDriver))


def ensure_fence(runner, host, state='query', driver='scsi3_pr', wwid=None, device=None, cluster=None,
                 node=None, key=None, victim=None, nodes=None, check_mode=False, command=None,
                 command_timeout=None):
    """Bring the LUN to ``state`` (see STATES) for this host. Returns changed,
    fence (the report), actions (for people) and diff (before / after).
    ``command`` / ``command_timeout``: the user's fence command (driver command only)."""
    if state not in STATES:
        raise PolarDBError('state must be one of %s, not %r' % (', '.join(STATES), state))
    classes = drivers()
    if driver not in classes:
        raise PolarDBError('driver must be one of %s, not %r' % (', '.join(sorted(classes)), driver))
    if command and driver != 'command':
        raise PolarDBError('command is for driver=command only (the %s driver runs its own tool). Nothing was '
                           'changed' % driver)
    if driver == 'command' and not command:
        raise PolarDBError('driver=command needs command: the fence command as a list of arguments '
                           '(polardb_fence_command). Nothing was changed')
    hostname = host.hostname()
    node = node or hostname.split('.')[0]
    if key:
        my_key = parse_key(key)
    elif cluster:
        my_key = derive_key(cluster, node)
    else:
        raise PolarDBError('cluster (to derive the key of %s) or key is needed' % node)
    names = {}
    if cluster:
        for name in list(nodes or []) + [node]:
            names[derive_key(cluster, name)] = name
    names[my_key] = node

    victim_key = None
    if state == 'fenced_out':
        if not victim:
            raise PolarDBError('state=fenced_out needs victim: the node (or key) to fence out')
        if is_key(victim):
            victim_key = parse_key(victim, 'victim')
        elif cluster:
            victim_key = derive_key(cluster, victim)
            names[victim_key] = victim
        else:
            raise PolarDBError('victim %r is a node name: cluster is needed to derive its key' % victim)
        if victim_key == my_key:
            raise PolarDBError('victim %s is this host (%s, key %s): a host does not fence itself out'
                               % (victim, node, format_key(my_key)))

    target = resolve_target(runner, host, wwid=wwid, device=device)
    extra = {}
    if driver == 'command':
        extra = dict(command=command, timeout=command_timeout, cluster=cluster, node=node, names=names)
    drv = classes[driver](runner, target['device'], wwid=target['wwid'], multipath=target['multipath'],
                          hostname=hostname, **extra)
    drv.check()
    run = converge(drv, state, my_key, victim=victim_key, check_mode=check_mode)
    return dict(
        changed=bool(run['actions']),
        fence=report(drv, run['before'] if check_mode else run['after'], my_key, victim_key, names),
        actions=[describe(drv, a, names) for a in run['actions']],
        diff=dict(before=state_dict(drv, run['before']), after=state_dict(drv, run['after'])),
        warnings=run['warnings'],
    )
