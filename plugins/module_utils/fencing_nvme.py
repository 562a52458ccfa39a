# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NVMe reservations for storage_fence (driver ``nvme``) through nvme-cli 2.x.
The walk to a state is fencing.py's; this file only speaks nvme-cli."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.polardb.stack.plugins.module_utils.fencing import (
    FenceDriver, PRState, condense, hex_key, unexpected_output)
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError


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
        raise unexpected_output('nvme resv-report', text)
    if not isinstance(data, dict) or 'rtype' not in data:
        raise unexpected_output('nvme resv-report', text)
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
        said = condense(res)
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
        what = 'register key %s' % hex_key(key)
        res, failed, argv = self._run(what, 'resv-register', '--nrkey=' + hex_key(key), '--rrega=0', raise_error=False)
        if failed and 'Reservation Conflict' in (res.stderr or ''):
            # This host is registered with another key: replace it, ignoring the old one.
            self._run(what, 'resv-register', '--nrkey=' + hex_key(key), '--rrega=2', '--iekey')
        elif failed:
            raise self._error(what, argv, res)

    def unregister(self, key):
        self._run('unregister key %s' % hex_key(key), 'resv-register', '--crkey=' + hex_key(key), '--rrega=1')

    def reserve(self, key):
        self._run('reserve with key %s' % hex_key(key), 'resv-acquire', '--crkey=' + hex_key(key),
                  '--rtype=%d' % self.writer_type, '--racqa=0')

    def preempt(self, key, victim_key):
        # racqa 2: Preempt and Abort, as PREEMPT AND ABORT on SCSI.
        self._run('preempt key %s' % hex_key(victim_key), 'resv-acquire', '--crkey=' + hex_key(key),
                  '--prkey=' + hex_key(victim_key), '--rtype=%d' % self.writer_type, '--racqa=2')

    def release(self, key, rtype):
        self._run('release the reservation', 'resv-release', '--crkey=' + hex_key(key), '--rtype=%d' % rtype,
                  '--rrela=0')

    def clear(self, key):
        self._run('clear the registrations', 'resv-release', '--crkey=' + hex_key(key), '--rrela=1')
