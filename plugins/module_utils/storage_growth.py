# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding a storage expansion: every node's LUN grows to one size, online.

The size is given as bytes or with a binary unit (``512M``, ``4G``, ``1T``).
A LUN is never shrunk: a size below any node's LUN is refused before anything
changes. A LUN already at the size is not grown again (the run still rescans
and grows its file system, so an interrupted run is finished by the next).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_UNITS = {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3, 'T': 1024 ** 4}
_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$', re.IGNORECASE)


def parse_size(text):
    """Bytes of ``text`` (``4G``, ``512MiB``, ``2147483648``); None when it is not a size."""
    m = _SIZE_RE.match(str(text))
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def human(size):
    for unit in ('T', 'G', 'M', 'K'):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return '%d %siB' % (size // _UNITS[unit], unit)
    return '%d bytes' % size


def plan_expand(size, luns):
    """``size``: the wanted size (text or bytes); ``luns``: {node: lun_info's
    lun}. Returns {bytes, nodes: {node: {wwid, before, grow}}, problems}."""
    problems = []
    wanted = parse_size(size)
    if wanted is None or wanted <= 0:
        return {'bytes': None, 'nodes': {}, 'problems': [
            'size=%r is not a size: give bytes or a number with K, M, G or T (binary units), e.g. size=4G' % (size,)]}
    nodes = {}
    for node in sorted(luns):
        before = int(luns[node]['size_bytes'])
        nodes[node] = {'wwid': luns[node]['wwid'], 'before': before, 'grow': wanted > before}
        if wanted < before:
            problems.append('the LUN of %s has %s: a LUN is never shrunk (size=%s is %s)'
                            % (node, human(before), size, human(wanted)))
    return {'bytes': wanted, 'nodes': nodes, 'problems': problems}
