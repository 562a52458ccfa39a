# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one node is, read in one module run: its LUN, its engine instance, who
may write to its LUN, which engine packages are installed.

Each of these is a module of its own (lun_info, instance_info, storage_fence
state=query, dpkg-query), but every module run costs a host a few tenths of a
second of CPU before it does anything (Ansible's module payload is compiled
each time), so a run that needs all of them before its first change asks once.
A section that cannot be read is reported, not raised: the caller names every
problem of every host at once, and no host leaves the play early.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError

DPKG_FORMAT = '${Package} ${Version} ${db:Status-Abbrev}\n'


def read_sections(readers):
    """Call every reader (section name -> callable without arguments).
    Returns (found, errors): what each returned, and the message of each
    PolarDBError raised, by section."""
    found, errors = {}, {}
    for name in sorted(readers):
        try:
            found[name] = readers[name]()
        except PolarDBError as e:
            errors[name] = e.msg
    return found, errors


def installed_packages(runner, names):
    """{package: version} of the packages among ``names`` that dpkg has
    installed (status ``ii``); packages it does not know are left out."""
    if not names:
        return {}
    # rc 1 when one of the names is unknown to dpkg: the others are still listed
    result = runner.run(['dpkg-query', '-W', '-f', DPKG_FORMAT] + list(names), check=False)
    installed = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == 'ii':
            installed[fields[0]] = fields[1]
    return installed


def listening_ports(tables):
    """Ports with a TCP socket in LISTEN state, from the texts of
    /proc/net/tcp and /proc/net/tcp6 (``tables``)."""
    ports = set()
    for text in tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            # sl local_address rem_address st ...; st 0A is LISTEN
            if len(fields) > 3 and fields[3] == '0A' and ':' in fields[1]:
                ports.add(int(fields[1].rsplit(':', 1)[1], 16))
    return ports


def read_tables(paths=('/proc/net/tcp', '/proc/net/tcp6')):
    texts = []
    for path in paths:
        try:
            with open(path) as f:
                texts.append(f.read())
        except (IOError, OSError):
            pass
    return texts
