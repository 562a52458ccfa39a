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

A driver speaks one PR dialect (``scsi3_pr``: sg_persist / mpathpersist,
``nvme``: nvme-cli; ``lab``: the lab's emulated array, filled in by the lab) and
offers the same small set of methods (see ``FenceDriver``). ``ensure_fence``
walks a device towards a wanted state one step at a time: read, decide the next
step, act, read again, until nothing is left to do. The last read is the
verification; a failed step rolls back a registration it added, and the error
carries what the device reports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
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


def _hex(key):
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

    A new driver (the lab's) is a subclass that sets the class attributes and
    implements ``check``, ``read`` and the PR OUT methods; ``ensure_fence``
    needs nothing else. Every method raises PolarDBError with a message for
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


def _condense(res):
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


# SPC-4 PERSISTENT RESERVE type codes, named as sg_persist and mpathpersist print them.
SCSI_TYPE_NAMES = {
    1: 'Write Exclusive',
    3: 'Exclusive Access',
    5: 'Write Exclusive, registrants only',
    6: 'Exclusive Access, registrants only',
    7: 'Write Exclusive, all registrants',
    8: 'Exclusive Access, all registrants',
}
_SCSI_TYPE_CODES = dict((v.lower(), k) for k, v in SCSI_TYPE_NAMES.items())
_GENERATION_RE = re.compile(r'PR generation=0x([0-9a-fA-F]+)')
_KEYS_HEADER_RE = re.compile(r'(\d+) registered reservation keys? follows?:')
_KEY_LINE_RE = re.compile(r'^\s+0x([0-9a-fA-F]{1,16})\s*$')
_RESV_KEY_RE = re.compile(r'Key\s*=\s*0x([0-9a-fA-F]{1,16})')
_RESV_TYPE_RE = re.compile(r'type\s*[:=]\s*(.+?)\s*$')


def _unexpected(what, text):
    return PolarDBError('unexpected %s output: %r' % (what, (text or '')[:400]), stdout=text)


def parse_read_keys(text):
    """``sg_persist --in --read-keys`` / ``mpathpersist --in --read-keys`` →
    (generation, [keys]). Both print ``  PR generation=0x…, `` and then
    ``N registered reservation key(s) follow(s):`` with one ``    0x…`` line
    per registration, or sg_persist ``there are NO registered reservation keys``,
    mpathpersist ``0 registered reservation key.``; sg_persist prints the INQUIRY
    vendor / product lines first unless --no-inquiry."""
    m = _GENERATION_RE.search(text or '')
    if not m:
        raise _unexpected('read-keys', text)
    generation = int(m.group(1), 16)
    header, _sep, rest = text[m.end():].partition('\n')
    if 'NO registered reservation keys' in header or re.search(r'\b0 registered reservation key', header):
        return generation, []
    count = _KEYS_HEADER_RE.search(header)
    if not count:
        raise _unexpected('read-keys', text)
    keys = [int(km.group(1), 16) for km in (_KEY_LINE_RE.match(ln) for ln in rest.splitlines()) if km]
    if len(keys) != int(count.group(1)):
        raise PolarDBError('read-keys announced %s keys and listed %d: %r' % (count.group(1), len(keys), text),
                           stdout=text)
    return generation, keys


def parse_read_reservation(text):
    """``--in --read-reservation`` → (generation, None | {key, type}).
    sg_persist: ``Reservation follows:`` / ``    Key=0x…`` /
    ``    scope: LU_SCOPE,  type: Write Exclusive, all registrants``;
    mpathpersist: ``   Key = 0x…`` / ``  scope = LU_SCOPE, type = …``;
    both ``there is NO reservation held``. Under an all-registrants type the
    standard reports key 0 (some arrays report the reserving key)."""
    m = _GENERATION_RE.search(text or '')
    if not m:
        raise _unexpected('read-reservation', text)
    generation = int(m.group(1), 16)
    if re.search(r'there is NO reservation held', text, re.I):
        return generation, None
    if 'Reservation follows' not in text:
        raise _unexpected('read-reservation', text)
    key = _RESV_KEY_RE.search(text)
    scope_lines = [ln for ln in text.splitlines() if 'scope' in ln]
    rtype = _RESV_TYPE_RE.search(scope_lines[0]) if scope_lines else None
    if not key or not rtype:
        raise _unexpected('read-reservation', text)
    name = rtype.group(1).strip().lower()
    if name in _SCSI_TYPE_CODES:
        code = _SCSI_TYPE_CODES[name]
    else:
        obsolete = re.match(r'obsolete \[(0x[0-9a-f]+|\d+)\]$', name)
        if not obsolete:
            raise PolarDBError('unknown reservation type %r in: %r' % (rtype.group(1), text), stdout=text)
        code = int(obsolete.group(1), 0)
    return generation, dict(key=int(key.group(1), 16), type=code)


class ScsiPrDriver(FenceDriver):
    """SCSI-3 persistent reservations: sg_persist (sg3-utils) on a SCSI device,
    mpathpersist (multipath-tools) on a dm-multipath map, which registers every
    path of the map and keeps multipathd registering paths that come back."""

    name = 'scsi3_pr'
    writer_type = 7
    type_names = SCSI_TYPE_NAMES
    all_registrants_types = (7, 8)
    registrants_types = (5, 6, 7, 8)

    def check(self):
        tool, package = ('mpathpersist', 'multipath-tools') if self.multipath else ('sg_persist', 'sg3-utils')
        path = self.runner.which(tool)
        if not path:
            raise self._missing(tool, package)
        self.tool, self.tool_name = path, tool

    def _argv(self, args):
        # --no-inquiry: no INQUIRY round trip and no vendor lines in the output.
        head = [self.tool, '--no-inquiry'] if self.tool_name == 'sg_persist' else [self.tool]
        return head + list(args) + [self.device]

    def _run(self, what, *args):
        argv = self._argv(args)
        res = self.runner.run(argv, check=False)
        if res.rc != 0 and self._unit_attention(res):
            # The first command after another host changed the registrations may
            # report that as a unit attention; the retry sees the new state.
            res = self.runner.run(argv, check=False)
        if res.rc != 0:
            raise self._error(what, argv, res)
        return res.stdout

    def _unit_attention(self, res):
        text = (res.stderr or '') + (res.stdout or '')
        return res.rc == 6 or 'unit attention' in text.lower()

    def _error(self, what, argv, res):
        text = (res.stderr or '') + '\n' + (res.stdout or '')
        said = _condense(res)
        where = '%s on %s' % (self.device, self.hostname)
        details = dict(rc=res.rc, stdout=res.stdout, stderr=res.stderr, cmd=argv, device=self.device)
        if self.tool_name == 'sg_persist':
            unsupported = (res.rc in (5, 9) and '--in' in argv) or 'command not supported' in text or \
                'Inappropriate ioctl' in text or 'SCSI INQUIRY failed' in text
            conflict = res.rc == 24 or 'Reservation conflict' in text
            refused = res.rc == 5
        else:
            if 'not a multipath device' in text:
                return PolarDBError('%s is not a dm-multipath map (mpathpersist: %s)' % (where, said), **details)
            unsupported = res.rc == 7
            conflict = res.rc == 11 or 'Reservation Conflict' in text
            refused = res.rc == 5
            if "reservation key doesn't match" in text or 'reservation_key not set' in text or \
                    'no configured reservation key' in text:
                return PolarDBError(
                    '%s: %s refused the key (%s). mpathpersist only accepts keys multipathd knows: set '
                    '"reservation_key file" in the defaults section of /etc/multipath.conf and run '
                    '"multipathd reconfigure"' % (what, where, said), **details)
        if unsupported:
            return PolarDBError('%s does not support SCSI-3 persistent reservations (%s: %s); the scsi3_pr '
                                'driver needs a SCSI LUN or a dm-multipath map of one' % (where, self.tool_name, said),
                                **details)
        if conflict:
            return PolarDBError('%s: %s answered RESERVATION CONFLICT (%s): the key is not registered for '
                                'this host or another host holds the reservation' % (what, where, said), **details)
        if refused:
            return PolarDBError('%s: %s refused the command as an illegal request (%s): does the array support '
                                'the reservation type "%s"?' % (what, where, said, self.type_name(self.writer_type)),
                                **details)
        return PolarDBError('%s: %s failed (%s rc=%d): %s' % (what, where, self.tool_name, res.rc, said), **details)

    def read(self):
        generation, keys = parse_read_keys(self._run('read the registrations', '--in', '--read-keys'))
        _gen, reservation = parse_read_reservation(self._run('read the reservation', '--in', '--read-reservation'))
        return PRState(keys, reservation, generation)

    def register(self, key):
        # REGISTER AND IGNORE EXISTING KEY: also replaces a stale key of this host.
        self._run('register key %s' % _hex(key), '--out', '--register-ignore', '--param-sark=' + _hex(key))

    def unregister(self, key):
        self._run('unregister key %s' % _hex(key), '--out', '--register', '--param-rk=' + _hex(key))

    def reserve(self, key):
        self._run('reserve with key %s' % _hex(key), '--out', '--reserve', '--param-rk=' + _hex(key),
                  '--prout-type=%d' % self.writer_type)

    def preempt(self, key, victim_key):
        self._run('preempt key %s' % _hex(victim_key), '--out', '--preempt-abort', '--param-rk=' + _hex(key),
                  '--param-sark=' + _hex(victim_key), '--prout-type=%d' % self.writer_type)

    def release(self, key, rtype):
        self._run('release the reservation', '--out', '--release', '--param-rk=' + _hex(key),
                  '--prout-type=%d' % rtype)

    def clear(self, key):
        self._run('clear the registrations', '--out', '--clear', '--param-rk=' + _hex(key))


# NVMe Reservation Type (Reservation Acquire RTYPE / Report rtype).
NVME_TYPE_NAMES = {
    1: 'Write Exclusive',
    2: 'Exclusive Access',
    3: 'Write Exclusive - Registrants Only',
    4: 'Exclusive Access - Registrants Only',
    5: 'Write Exclusive - All Registrants',
    6: 'Exclusive Access - All Registrants',
}


def parse_resv_report(text):
    """``nvme resv-report DEV [--eds] --output-format=json`` (nvme-cli 2.x) →
    PRState. Top level ``gen``, ``rtype`` (0: no reservation), ``regctl``,
    ``ptpls``, then ``regctlext`` (with --eds; 128-bit ``hostid`` as hex) or
    ``regctls`` (64-bit ``hostid``; some versions call it ``Host ID``), each
    entry with ``cntlid``, ``rcsts`` (bit 0: holds the reservation) and
    ``rkey`` (a JSON number; older builds print keys above 2^63 negative)."""
    try:
        data = json.loads(text or '')
    except ValueError:
        raise _unexpected('nvme resv-report', text)
    if not isinstance(data, dict) or 'rtype' not in data:
        raise _unexpected('nvme resv-report', text)
    entries = data.get('regctlext')
    if entries is None:
        entries = data.get('regctls') or []
    keys, holders = [], []
    for entry in entries:
        rkey = int(entry.get('rkey', 0))
        if rkey < 0:
            rkey += 1 << 64
        keys.append(rkey)
        if int(entry.get('rcsts', 0)) & 1:
            holders.append(rkey)
    rtype = int(data.get('rtype') or 0)
    reservation = None
    if rtype:
        # Every registrant holds an all-registrants reservation: report key 0, as SCSI does.
        holder = 0 if rtype in (5, 6) or not holders else holders[0]
        reservation = dict(key=holder, type=rtype)
    return PRState(keys, reservation, data.get('gen'))


class NvmeDriver(FenceDriver):
    """NVMe reservations through nvme-cli 2.x on a namespace (``/dev/nvmeXnY``).
    Registrations belong to the host (its Host Identifier), not to a path, so a
    natively multipathed namespace needs nothing more."""

    name = 'nvme'
    writer_type = 5
    type_names = NVME_TYPE_NAMES
    all_registrants_types = (5, 6)
    registrants_types = (3, 4, 5, 6)

    def check(self):
        path = self.runner.which('nvme')
        if not path:
            raise self._missing('nvme', 'nvme-cli')
        self.tool, self.tool_name = path, 'nvme'

    def _run(self, what, *args, **kwargs):
        argv = [self.tool, args[0], self.device] + list(args[1:])
        res = self.runner.run(argv, check=False)
        failed = res.rc != 0 or 'NVMe status:' in (res.stderr or '')
        if failed and kwargs.get('raise_error', True):
            raise self._error(what, argv, res)
        return res, failed, argv

    def _error(self, what, argv, res):
        text = (res.stderr or '') + '\n' + (res.stdout or '')
        said = _condense(res)
        where = '%s on %s' % (self.device, self.hostname)
        details = dict(rc=res.rc, stdout=res.stdout, stderr=res.stderr, cmd=argv, device=self.device)
        if 'Invalid Command Opcode' in text:
            return PolarDBError('%s does not support NVMe reservations (nvme: %s)' % (where, said), **details)
        if 'get-namespace-id' in text or 'Inappropriate ioctl' in text or 'not a block or character device' in text:
            return PolarDBError('%s is not an NVMe namespace (nvme: %s); the nvme driver needs /dev/nvmeXnY'
                                % (where, said), **details)
        if 'Reservation Conflict' in text:
            return PolarDBError('%s: %s answered Reservation Conflict (%s): the key is not registered for this '
                                'host or another host holds the reservation' % (what, where, said), **details)
        return PolarDBError('%s: %s failed (nvme rc=%d): %s' % (what, where, res.rc, said), **details)

    def read(self):
        what = 'read the reservation status'
        res, failed, argv = self._run(what, 'resv-report', '--eds', '--output-format=json', raise_error=False)
        if failed and 'Invalid Field' in (res.stderr or ''):
            # A controller with 64-bit Host Identifiers may refuse the extended structure.
            res, failed, argv = self._run(what, 'resv-report', '--output-format=json')
        elif failed:
            raise self._error(what, argv, res)
        return parse_resv_report(res.stdout)

    def register(self, key):
        what = 'register key %s' % _hex(key)
        res, failed, argv = self._run(what, 'resv-register', '--nrkey=' + _hex(key), '--rrega=0', raise_error=False)
        if failed and 'Reservation Conflict' in (res.stderr or ''):
            # This host is registered with another key: replace it, ignoring the old one.
            self._run(what, 'resv-register', '--nrkey=' + _hex(key), '--rrega=2', '--iekey')
        elif failed:
            raise self._error(what, argv, res)

    def unregister(self, key):
        self._run('unregister key %s' % _hex(key), 'resv-register', '--crkey=' + _hex(key), '--rrega=1')

    def reserve(self, key):
        self._run('reserve with key %s' % _hex(key), 'resv-acquire', '--crkey=' + _hex(key),
                  '--rtype=%d' % self.writer_type, '--racqa=0')

    def preempt(self, key, victim_key):
        # racqa 2: Preempt and Abort, as PREEMPT AND ABORT on SCSI.
        self._run('preempt key %s' % _hex(victim_key), 'resv-acquire', '--crkey=' + _hex(key),
                  '--prkey=' + _hex(victim_key), '--rtype=%d' % self.writer_type, '--racqa=2')

    def release(self, key, rtype):
        self._run('release the reservation', 'resv-release', '--crkey=' + _hex(key), '--rtype=%d' % rtype,
                  '--rrela=0')

    def clear(self, key):
        self._run('clear the registrations', 'resv-release', '--crkey=' + _hex(key), '--rrela=1')


class LabDriver(FenceDriver):
    """The lab's emulated SAN array (roles/lab): SCSI-3 semantics over HTTP+JSON.

    The array knows the caller by its source address, as a real array knows an
    initiator by its port, so a host can only register or preempt as itself.
    Type codes are SCSI's; the array names them in SPC-4 words.
    """

    name = 'lab'
    writer_type = 7
    type_names = SCSI_TYPE_NAMES
    all_registrants_types = (7, 8)
    registrants_types = (5, 6, 7, 8)
    # The main lab's endpoint; the inventory the lab writes names its own
    # (polardb_lab_array_url), which the module passes as array_url.
    url = 'http://10.213.77.1:8790'

    def __init__(self, runner, device, wwid=None, multipath=False, hostname=None, url=None):
        super(LabDriver, self).__init__(runner, device, wwid=wwid, multipath=multipath, hostname=hostname)
        if url:
            if not re.match(r'^https?://[^/\s]+/?$', url):
                raise PolarDBError('array_url %r is not the lab array\'s endpoint: expected http://ADDRESS:PORT' % url,
                                   device=device, driver=self.name)
            self.url = url.rstrip('/')
    _TYPE_WORDS = {1: 'write-exclusive', 3: 'exclusive-access', 5: 'write-exclusive-registrants-only',
                   6: 'exclusive-access-registrants-only', 7: 'write-exclusive-all-registrants',
                   8: 'exclusive-access-all-registrants'}

    def _request(self, what, path, body=None):
        # Imported here: only the lab driver talks HTTP.
        from ansible.module_utils.urls import open_url
        from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
        data = json.dumps(body) if body is not None else None
        try:
            resp = open_url(self.url + path, method='POST' if body is not None else 'GET', data=data,
                            headers={'Content-Type': 'application/json'}, timeout=10)
            return json.loads(resp.read())
        except HTTPError as e:
            try:
                reason = json.loads(e.read()).get('error')
            except ValueError:
                reason = None
            raise PolarDBError('the lab array refused to %s on %s: %s' % (what, self.device, reason or e),
                               device=self.device, driver=self.name, http_status=e.code)
        except (URLError, OSError) as e:
            raise PolarDBError('the lab array at %s does not answer from %s: %s' % (self.url, self.hostname, e),
                               device=self.device, driver=self.name)

    def _lun(self):
        luns = self._request('read the reservations', '/v1/status')['luns']
        for name, entry in sorted(luns.items()):
            if str(entry.get('wwid')).lower() == str(self.wwid).lower():
                return name, entry
        raise PolarDBError('the lab array maps no LUN with WWID %s to %s' % (self.wwid, self.hostname),
                           device=self.device, driver=self.name)

    def check(self):
        if not self.wwid:
            # The lab presents LUNs as /dev/disk/by-id/wwn-0x<WWID> device nodes.
            m = re.search(r'wwn-0x([0-9a-fA-F]+)$', self.device or '')
            if not m:
                raise PolarDBError('the lab driver needs the LUN by wwid (or its wwn-0x<WWID> path)',
                                   device=self.device, driver=self.name)
            self.wwid = m.group(1).lower()
        self.tool = self.url
        self.tool_name = 'lab array'
        self.lun_name = self._lun()[0]

    def read(self):
        entry = self._lun()[1]
        registrations = [int(k, 16) for k in (entry.get('registrations') or {}).values()]
        res = entry.get('reservation')
        reservation = None
        if res:
            codes = dict((v, k) for k, v in self._TYPE_WORDS.items())
            reservation = {'key': int(res.get('key') or '0x0', 16), 'type': codes.get(res['type'], res['type'])}
        return PRState(registrations, reservation)

    def _post(self, what, action, **body):
        body['lun'] = self.lun_name
        self._request(what, '/v1/pr/' + action, body)

    def register(self, key):
        self._post('register key %s' % _hex(key), 'register', key=_hex(key))

    def unregister(self, key):
        self._post('unregister', 'register', key='0x0')

    def reserve(self, key):
        self._post('reserve', 'reserve', key=_hex(key), type=self._TYPE_WORDS[self.writer_type])

    def preempt(self, key, victim_key):
        self._post('preempt key %s' % _hex(victim_key), 'preempt', key=_hex(key), victim_key=_hex(victim_key),
                   type=self._TYPE_WORDS[self.writer_type])

    def release(self, key, rtype):
        self._post('release the reservation', 'release', key=_hex(key))

    def clear(self, key):
        self._post('clear the registrations', 'clear', key=_hex(key))


DRIVERS = {
    'scsi3_pr': ScsiPrDriver,
    'nvme': NvmeDriver,
    'lab': LabDriver,
}


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


def ensure_fence(runner, host, state='query', driver='scsi3_pr', wwid=None, device=None, cluster=None,
                 node=None, key=None, victim=None, nodes=None, check_mode=False, array_url=None):
    """Bring the LUN to ``state`` (see STATES) for this host. Returns changed,
    fence (the report), actions (for people) and diff (before / after).
    ``array_url``: the lab array's endpoint (driver lab only)."""
    if state not in STATES:
        raise PolarDBError('state must be one of %s, not %r' % (', '.join(STATES), state))
    if driver not in DRIVERS:
        raise PolarDBError('driver must be one of %s, not %r' % (', '.join(sorted(DRIVERS)), driver))
    if array_url and driver != 'lab':
        raise PolarDBError('array_url is for driver=lab only (the %s driver talks to the device itself)' % driver)
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
    extra = dict(url=array_url) if driver == 'lab' else {}
    drv = DRIVERS[driver](runner, target['device'], wwid=target['wwid'], multipath=target['multipath'],
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
