# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCSI-3 persistent reservations for storage_fence (driver ``scsi3_pr``):
sg_persist (sg3-utils) on a SCSI device, mpathpersist (multipath-tools) on a
dm-multipath map. The walk to a state is fencing.py's; this file only speaks
the tools and reads their output."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.polardb.stack.plugins.module_utils.fencing import (
    FenceDriver, PRState, condense, hex_key, unexpected_output)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError


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


def parse_read_keys(text):
    """``sg_persist --in --read-keys`` / ``mpathpersist --in --read-keys`` →
    (generation, [keys]). Both print ``  PR generation=0x…, `` and then
    ``N registered reservation key(s) follow(s):`` with one ``    0x…`` line
    per registration, or sg_persist ``there are NO registered reservation keys``,
    mpathpersist ``0 registered reservation key.``; sg_persist prints the INQUIRY
    vendor / product lines first unless --no-inquiry."""
    m = _GENERATION_RE.search(text or '')
    if not m:
        raise unexpected_output('read-keys', text)
    generation = int(m.group(1), 16)
    header, _sep, rest = text[m.end():].partition('\n')
    if 'NO registered reservation keys' in header or re.search(r'\b0 registered reservation key', header):
        return generation, []
    count = _KEYS_HEADER_RE.search(header)
    if not count:
        raise unexpected_output('read-keys', text)
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
        raise unexpected_output('read-reservation', text)
    generation = int(m.group(1), 16)
    if re.search(r'there is NO reservation held', text, re.I):
        return generation, None
    if 'Reservation follows' not in text:
        raise unexpected_output('read-reservation', text)
    key = _RESV_KEY_RE.search(text)
    scope_lines = [ln for ln in text.splitlines() if 'scope' in ln]
    rtype = _RESV_TYPE_RE.search(scope_lines[0]) if scope_lines else None
    if not key or not rtype:
        raise unexpected_output('read-reservation', text)
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
        said = condense(res)
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
        self._run('register key %s' % hex_key(key), '--out', '--register-ignore', '--param-sark=' + hex_key(key))

    def unregister(self, key):
        self._run('unregister key %s' % hex_key(key), '--out', '--register', '--param-rk=' + hex_key(key))

    def reserve(self, key):
        self._run('reserve with key %s' % hex_key(key), '--out', '--reserve', '--param-rk=' + hex_key(key),
                  '--prout-type=%d' % self.writer_type)

    def preempt(self, key, victim_key):
        self._run('preempt key %s' % hex_key(victim_key), '--out', '--preempt-abort', '--param-rk=' + hex_key(key),
                  '--param-sark=' + hex_key(victim_key), '--prout-type=%d' % self.writer_type)

    def release(self, key, rtype):
        self._run('release the reservation', '--out', '--release', '--param-rk=' + hex_key(key),
                  '--prout-type=%d' % rtype)

    def clear(self, key):
        self._run('clear the registrations', '--out', '--clear', '--param-rk=' + hex_key(key))
